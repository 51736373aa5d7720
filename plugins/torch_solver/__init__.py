"""The ``torch`` solver plugin: batched explicit, adaptive and stiff integrators with
per-sample step control and events, and equilibrium solvers.

Functional core: :func:`integrate`. Solver class: :class:`TorchSolver`. Method table:
:func:`register_method`.
"""
from . import dopri5, explicit  # noqa: F401  (register their methods)
from .core import IntegrationResult, integrate
from .methods import get_method, method_names, register_method

__all__ = ["IntegrationResult", "integrate", "register_method", "get_method", "method_names"]
