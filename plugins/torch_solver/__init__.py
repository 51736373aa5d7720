"""The ``torch`` solver plugin: batched explicit, adaptive and stiff integrators with
per-sample step control and events, and equilibrium solvers.

Functional core: :func:`integrate`. Solver class: :class:`TorchSolver`. Method table:
:func:`register_method` (see ``docs/torch-solver.md``).
"""
from . import dopri5, equilibrium, explicit, rosenbrock  # noqa: F401  (register their methods)
from . import dop853  # noqa: F401,I001  (after dopri5 in the method table)
from neuroplex.integration import IntegrationResult

from .integrator import TorchIntegrator, integrate
from .stepper import MethodInfo, StepResult, Stepper, Tolerances
from .methods import get_method, method_names, register_method
from .solver import TorchSolver

__all__ = ["IntegrationResult", "MethodInfo", "StepResult", "Stepper", "Tolerances", "TorchIntegrator", "TorchSolver", "integrate", "register_method", "get_method", "method_names"]
