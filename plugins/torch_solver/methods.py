"""The method table of the torch solver: ``register_method(name, factory, kind=...)``.

Simulation methods (``kind="simulate"``) are stepper factories: a zero-argument callable
returning a :class:`~.stepper.Stepper` (its ``info``, a :class:`~.stepper.MethodInfo`, and
``step(f, t, y, h, t_new, f0, tol, stiffness_test) -> StepResult``; see :mod:`.stepper`). Equilibrium
methods (``kind="equilibrate"``) are functions ``solve(F, y0, settings) -> (y, iterations,
residual, converged)``. ``kind="clock"`` names methods of the model kinds that run on this
solver through a registered runner (:mod:`neuroplex.runners`; the spiking plugin's
clock-driven network integrators): the solver passes them on to the runner, which validates
them; they are read from the runners' ``methods``. Families live in their own small modules (``explicit``, ``dopri5``,
``dop853``, ``rosenbrock``, ``equilibrium``) and register themselves on import.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from neuroplex.errors import NeuroplexError
from neuroplex.runners import runners_for


@dataclass(frozen=True)
class Method:
    """One entry of the method table."""

    name: str
    kind: str
    factory: Callable[..., Any]
    description: str = ""


_TABLE: dict[tuple[str, str], Method] = {}
KINDS = ("simulate", "equilibrate", "clock")


def _load_clock_methods() -> None:
    """Add the methods of the runners registered for the torch solver (the host's current ones)."""
    for runner in runners_for("torch"):
        for name in runner.methods:
            if ("clock", name) not in _TABLE:
                register_method(name, None, kind="clock",
                                description=f"run by the {runner.kind!r} runner ({runner.description or 'clock-driven'})")


def register_method(name: str, factory: Callable[..., Any], *, kind: str = "simulate",
                    description: str = "", replace: bool = False) -> Method:
    """Add a method to the table (``kind`` is ``"simulate"``, ``"equilibrate"`` or ``"clock"``;
    a clock method's factory is unused, None is fine)."""
    if kind not in KINDS:
        raise NeuroplexError(f"method {name!r}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    key = (kind, name)
    if key in _TABLE and not replace:
        raise NeuroplexError(f"torch solver: {kind} method {name!r} is already registered")
    _TABLE[key] = Method(name, kind, factory, description)
    return _TABLE[key]


def get_method(name: str, kind: str = "simulate") -> Method:
    """The registered method, or an error listing the known ones."""
    if kind == "clock":
        _load_clock_methods()
    try:
        return _TABLE[(kind, name)]
    except KeyError:
        raise NeuroplexError(f"torch solver: no {kind} method {name!r}; known: {', '.join(method_names(kind))}") from None


def has_method(name: str, kind: str = "simulate") -> bool:
    """Whether ``name`` is a registered method of ``kind`` (one dict lookup)."""
    if kind == "clock":
        _load_clock_methods()
    return (kind, name) in _TABLE


def method_names(kind: str = "simulate") -> list[str]:
    """Names of the registered methods of one kind, in registration order."""
    if kind == "clock":
        _load_clock_methods()
    return [m.name for (k, _), m in _TABLE.items() if k == kind]
