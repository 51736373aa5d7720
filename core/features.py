"""What a model needs from a solver beyond its kind, and the host's refusal when a solver that
declares what it supports lacks it (issue 21 item 1).

A solver class may declare ``supports``, a set of :data:`FEATURES`; a model needs
``"events"`` when it has threshold/reset events (so spikes are recorded) and ``"refractory"``
when it has a refractory period. Before every ``simulate`` / ``equilibrate`` the host checks
(first, through the ``neuroplex_simulation_start`` hook) that a solver declaring ``supports``
has everything the model needs, and otherwise raises a :class:`~neuroplex.errors.SolverError`
naming the solver, the model and what is missing -- instead of a trajectory that steps past the
model's resets and reports status ok. A solver without ``supports`` is not checked (it is
responsible for refusing what it cannot do itself).
"""
from __future__ import annotations

from typing import Any

from .errors import SolverError
from .hookspecs import hookimpl

#: features a solver can declare in ``supports``
FEATURES = frozenset({"events", "refractory"})


def model_needs(model: Any) -> frozenset[str]:
    """The features ``model`` (a ModelIR or compiled Dynamics) needs from a solver."""
    ir = getattr(model, "model", model)  # CompiledDynamics keeps its ModelIR
    needs = set()
    if getattr(model, "events", None) or getattr(ir, "events", None):
        needs.add("events")
    if getattr(ir, "refractory", None) is not None:
        needs.add("refractory")
    return frozenset(needs)


def solver_supports(solver: Any) -> frozenset[str] | None:
    """The features a solver (class or instance) declares, or ``None`` when it declares none."""
    declared = getattr(solver, "supports", None)
    if declared is None:
        return None
    unknown = set(declared) - FEATURES
    if unknown:
        raise SolverError(f"solver {getattr(solver, 'name', solver)!r} declares unknown features "
                          f"{', '.join(sorted(unknown))} (known: {', '.join(sorted(FEATURES))})")
    return frozenset(declared)


def check_support(solver: Any, model: Any) -> None:
    """Raise naming the solver, the model and the missing features if ``solver`` declares
    ``supports`` and lacks something ``model`` needs."""
    supported = solver_supports(solver)
    if supported is None:
        return
    missing = model_needs(model) - supported
    if missing:
        raise SolverError(
            f"solver {getattr(solver, 'name', '?')!r} does not support {', '.join(sorted(missing))}, which model "
            f"{getattr(model, 'name', '?')!r} needs (the solver supports: {', '.join(sorted(supported)) or 'neither'}); "
            f"use a solver that does, e.g. solver='torch'")


class FeatureGate:
    """Registered by every :class:`~neuroplex.host.PluginHost`: the check runs before any
    other plugin hears of the run."""

    @hookimpl(tryfirst=True)
    def neuroplex_simulation_start(self, model: Any, solver: Any) -> None:
        check_support(solver, model)
