"""What a model needs from a solver beyond its kind, and the host's refusal when a solver that
declares what it supports lacks it (issue 21 item 1).

A solver class may declare ``supports``, a set of :data:`FEATURES`; a model needs
``"events"`` when it has events (threshold/reset, SBML ``<event>``), ``"spikes"`` when those
events are a model's spikes that the :class:`~neuroplex.solution.Solution` records as a spike
train (every model with events except SBML models, whose events change values and record
nothing) and ``"refractory"`` when it has a refractory period. A solver may also declare the
``devices`` (``"cpu"``, ``"cuda"``) and ``dtypes`` (``"float32"``, ``"float64"``) it computes
on; :func:`check_placement` refuses any other, naming the solver and what it declares. Before every ``simulate`` / ``equilibrate`` the host checks
(first, through the ``neuroplex_simulation_start`` hook) that a solver declaring ``supports``
has everything the model needs, and otherwise raises a :class:`~neuroplex.errors.SolverError`
naming the solver, the model and what is missing -- instead of a trajectory that steps past the
model's resets and reports status ok. A solver without ``supports`` is not checked (it is
responsible for refusing what it cannot do itself).
"""
from __future__ import annotations

from typing import Any

import torch

from .errors import SolverError
from .hookspecs import hookimpl
from .kinds import has_kind, model_kinds
from .settings import as_dtype

#: features a solver can declare in ``supports``
FEATURES = frozenset({"events", "spikes", "refractory"})
#: devices and dtypes a solver can declare in ``devices`` / ``dtypes``
DEVICES = frozenset({"cpu", "cuda"})
DTYPES = frozenset({"float32", "float64"})


def model_needs(model: Any) -> frozenset[str]:
    """The features ``model`` (a ModelIR or compiled Dynamics) needs from a solver."""
    ir = getattr(model, "model", model)  # CompiledDynamics keeps its ModelIR
    needs = set()
    if getattr(model, "events", None) or getattr(ir, "events", None):
        needs.add("events")
        if not (has_kind(ir) and "sbml" in model_kinds(ir)):
            needs.add("spikes")
    if getattr(ir, "refractory", None) is not None:
        needs.add("refractory")
    return frozenset(needs)


def _declared(solver: object, attribute: str, known: frozenset[str], label: str) -> frozenset[str] | None:
    declared = getattr(solver, attribute, None)
    if declared is None:
        return None
    unknown = set(declared) - known
    if unknown:
        raise SolverError(f"solver {getattr(solver, 'name', solver)!r} declares unknown {label} "
                          f"{', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    return frozenset(declared)


def solver_supports(solver: Any) -> frozenset[str] | None:
    """The features a solver (class or instance) declares, or ``None`` when it declares none."""
    return _declared(solver, "supports", FEATURES, "features")


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


def solver_devices(solver: object) -> frozenset[str] | None:
    """The devices a solver (class or instance) declares, or ``None`` when it declares none."""
    return _declared(solver, "devices", DEVICES, "devices")


def solver_dtypes(solver: object) -> frozenset[str] | None:
    """The dtypes a solver (class or instance) declares, or ``None`` when it declares none."""
    return _declared(solver, "dtypes", DTYPES, "dtypes")


def check_declarations(solver: object) -> None:
    """Raise naming the solver when its ``supports``, ``devices`` or ``dtypes`` holds a name
    outside :data:`FEATURES`, :data:`DEVICES`, :data:`DTYPES` (a typo such as ``"event"``);
    the host calls it when a plugin registers the solver, so the plugin fails to load instead
    of every later run on that solver."""
    for attribute in ("supports", "devices", "dtypes"):
        declared = getattr(solver, attribute, None)
        if isinstance(declared, str):
            raise SolverError(f"solver {getattr(solver, 'name', solver)!r} declares {attribute} as the string "
                              f"{declared!r}; use a set of names, e.g. frozenset({{{declared!r}}})")
    solver_supports(solver)
    solver_devices(solver)
    solver_dtypes(solver)


def check_placement(solver: object, device: str | torch.device | None = None,
                    dtype: str | torch.dtype | None = None) -> None:
    """Raise naming the solver when it declares ``devices``/``dtypes`` and ``device``/``dtype``
    is not among them. ``None`` and ``"auto"`` (the best device available) always pass."""
    name = getattr(solver, "name", "?")
    devices = solver_devices(solver)
    if devices is not None and device is not None and str(device) != "auto":
        kind = torch.device(device).type
        if kind not in devices:
            raise SolverError(f"solver {name!r} does not run on device {str(device)!r} "
                              f"(it runs on: {', '.join(sorted(devices))})")
    dtypes = solver_dtypes(solver)
    if dtypes is not None and dtype is not None:
        wanted = str(as_dtype(dtype)).replace("torch.", "")
        if wanted not in dtypes:
            raise SolverError(f"solver {name!r} does not compute in {wanted} (it computes in: {', '.join(sorted(dtypes))})")


class FeatureGate:
    """Registered by every :class:`~neuroplex.host.PluginHost`: the check runs before any
    other plugin hears of the run."""

    @hookimpl(tryfirst=True)
    def neuroplex_simulation_start(self, model: Any, solver: Any) -> None:
        check_support(solver, model)
        execution = getattr(solver, "execution", None)
        if execution is not None:
            check_placement(solver, execution.device, execution.dtype)
