"""The solver plugin interface.

A solver is a class with typed constructor settings (diffrax/torchode style, no option
dicts) registered through the ``register_solvers`` hook. ``simulate`` integrates a model
over time; ``equilibrate`` drives it to a fixed point. A solver that supports only one of
them lists what it does in ``capabilities``. ODE solvers hold their settings as typed values
(``control``: :class:`~neuroplex.settings.StepControl`, ``execution``:
:class:`~neuroplex.settings.Execution`) and offer :meth:`Solver.integrator` to the runners of
model kinds they do not run themselves (:mod:`neuroplex.runners`).
"""
from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import torch

from .errors import SolverError
from .settings import Execution, StepControl
from .solution import Solution

if TYPE_CHECKING:
    from .integration import AutoPolicy, Integrator
    from .kinds import Model


class Solver(abc.ABC):
    """Base class of solver plugins."""

    #: registry key, e.g. ``"torch"``
    name: ClassVar[str] = ""
    #: what the solver can do: ``"simulate"``, ``"equilibrate"``
    capabilities: ClassVar[frozenset[str]] = frozenset({"simulate"})
    #: the model kinds it runs itself (:mod:`neuroplex.kinds`): ``"ir"`` (ModelIR), ``"dynamics"``,
    #: ``"sbml"``, ``"network"``, ...; other kinds run on it through registered runners
    #: (:mod:`neuroplex.runners`); :func:`neuroplex.api.make_solver` enforces both
    accepts: ClassVar[frozenset[str]] = frozenset({"ir", "dynamics"})
    #: methods the ``method`` setting accepts (for ``neuroplex solvers``)
    methods: ClassVar[Sequence[str]] = ()
    #: the method in use, and as the user gave it (None: each model kind's default)
    method: str = ""
    requested_method: str | None = None
    #: step control and execution settings (solvers set their own from their constructor)
    control: StepControl = StepControl()
    execution: Execution = Execution()
    #: what ``method="auto"`` runs (None: the solver has no ``auto``); the same policy for every
    #: model kind the solver runs, runners included (:class:`~neuroplex.integration.AutoPolicy`)
    auto_policy: ClassVar["AutoPolicy | None"] = None

    def integrator(self) -> "Integrator":
        """The functional integrator (:class:`neuroplex.integration.Integrator`) runners use."""
        raise SolverError(f"solver {self.name!r} offers no integrator to runners")

    def simulate(
        self,
        model: Model,
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
        model: Model,
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
