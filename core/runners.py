"""Who runs a model kind on a solver: :class:`Runner` entries registered through the
``register_runners`` hook, and the one dispatch that :func:`neuroplex.simulate` and the
solvers use.

A solver runs the kinds in its ``accepts`` itself. A plugin that brings a model kind with
its own semantics (SBML events, clock-driven spiking networks) registers a runner for
``(kind, solver)``; the solver hands such models to the runner, which receives the solver
instance (its ``control``/``execution`` settings and, for ODE solvers, ``solver.integrator()``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from .errors import SolverError
from .host import get_host
from .kinds import model_kinds
from .solution import Solution

if TYPE_CHECKING:
    from .solver import Solver


@dataclass(frozen=True)
class Runner:
    """Runs models of ``kind`` on solver ``solver`` (a registered solver name):
    ``run(model, solver, t_span, *, y0, params, t_eval, inputs, progress) -> Solution`` with the
    solver instance (its ``control``, ``execution``, ``method`` and ``integrator()``).

    ``methods``: extra ``method`` names the solver accepts for this kind (for example the
    clock-driven integrators of spiking networks), listed by ``neuroplex solvers``."""

    kind: str
    solver: str
    run: Callable[..., Solution]
    methods: tuple[str, ...] = ()
    description: str = ""

    @property
    def name(self) -> str:
        """Registry key ``"<kind>@<solver>"``."""
        return f"{self.kind}@{self.solver}"


def find_runner(kind: str, solver: str) -> Runner | None:
    """The runner registered for ``(kind, solver)``, or None."""
    host = get_host()
    host.load()
    entry = host.registry["runners"].get(f"{kind}@{solver}")
    return None if entry is None else entry.obj


def runners_for(solver: str) -> list[Runner]:
    """The runners registered for one solver."""
    host = get_host()
    return [host.get("runners", name).obj for name in host.names("runners")
            if host.get("runners", name).obj.solver == solver]


def route(model: object, solver: "Solver") -> Runner | None:
    """How ``solver`` runs ``model``: a registered runner for one of the model's kinds (the
    most specific first), None when the solver takes the model itself, or a
    :class:`~neuroplex.errors.SolverError` naming the model's kind and the solver."""
    kinds = model_kinds(model)
    for kind in kinds:
        runner = find_runner(kind, solver.name)
        if runner is not None:
            return runner
        if kind in solver.accepts:
            return None
    takes = sorted({*solver.accepts, *(r.kind for r in runners_for(solver.name))})
    raise SolverError(f"solver {solver.name!r} cannot run a {kinds[0]!r} model ({type(model).__name__}); "
                      f"it takes: {', '.join(takes) or 'nothing'}")


def check_accepts(model: object, solver: "Solver") -> None:
    """Raise unless ``solver`` takes ``model`` natively (equilibrate has no runners)."""
    kinds = model_kinds(model)
    if not any(kind in solver.accepts for kind in kinds):
        raise SolverError(f"solver {solver.name!r} cannot take a {kinds[0]!r} model ({type(model).__name__}); "
                          f"it takes: {', '.join(sorted(solver.accepts)) or 'nothing'}")
