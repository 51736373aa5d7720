"""The solver plugin interface.

A solver is a class with typed constructor settings (diffrax/torchode style, no option
dicts) registered through the ``register_solvers`` hook. ``simulate`` integrates a model
over time; ``equilibrate`` drives it to a fixed point. A solver that supports only one of
them lists what it does in ``capabilities``.
"""
from __future__ import annotations

import abc
from typing import Any, ClassVar, Sequence

import torch

from .solution import Solution


class Solver(abc.ABC):
    """Base class of solver plugins."""

    #: registry key, e.g. ``"torch"``
    name: ClassVar[str] = ""
    #: what the solver can do: ``"simulate"``, ``"equilibrate"``
    capabilities: ClassVar[frozenset[str]] = frozenset({"simulate"})
    #: the model forms it accepts: ``"dynamics"`` (torch Dynamics / ModelIR), ``"sbml"``, ``"network"``
    accepts: ClassVar[frozenset[str]] = frozenset({"dynamics"})
    #: methods the ``method`` setting accepts (for ``neuroplex solvers``)
    methods: ClassVar[Sequence[str]] = ()

    def simulate(
        self,
        model: Any,
        t_span: tuple[float, float],
        *,
        y0: torch.Tensor | None = None,
        params: torch.Tensor | None = None,
        t_eval: torch.Tensor | None = None,
        inputs: torch.Tensor | None = None,
        progress: bool = False,
    ) -> Solution:
        """Integrate ``model`` over ``t_span``; outputs at ``t_eval`` (default: both ends)."""
        raise NotImplementedError(f"solver {self.name!r} cannot simulate")

    def equilibrate(
        self,
        model: Any,
        y0: torch.Tensor | None = None,
        *,
        params: torch.Tensor | None = None,
        inputs: torch.Tensor | None = None,
    ) -> Solution:
        """Find a fixed point of ``model`` starting from ``y0``."""
        raise NotImplementedError(f"solver {self.name!r} cannot equilibrate")

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "name": cls.name,
            "capabilities": sorted(cls.capabilities),
            "accepts": sorted(cls.accepts),
            "methods": list(cls.methods),
            "doc": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
        }
