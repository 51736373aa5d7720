"""The model IR: one symbolic form that neurons, SBML models and paper plugins compile to.

Equations stay symbolic (sympy expressions, units as strings) so that other consumers can
read them: the torch code generator (:mod:`neuroplex.codegen`), the Brian2 backend (which
prints the same equations as Brian2 text) and the SBML writer. Batch is never part of the
IR: the compiled dynamics broadcast over any leading dimensions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

import sympy

from .errors import ModelError
from .units import Dimension, check_model, model_dimensions, to_si, unit_name

if TYPE_CHECKING:  # pragma: no cover
    from .dynamics import CompiledDynamics

Expr = sympy.Expr


def as_expr(value: Any, where: str = "") -> sympy.Basic:
    """A sympy expression from a number, a string or an expression."""
    if isinstance(value, sympy.Basic):
        return value
    if isinstance(value, bool):
        return sympy.true if value else sympy.false
    if isinstance(value, (int, float)):
        return sympy.Float(value) if isinstance(value, float) else sympy.Integer(value)
    if isinstance(value, str):
        try:
            return sympy.sympify(value, locals=_SYMPIFY_LOCALS)
        except (sympy.SympifyError, SyntaxError, TypeError) as exc:
            raise ModelError(f"cannot parse expression {value!r}{' in ' + where if where else ''}: {exc}") from exc
    raise ModelError(f"cannot use {value!r} as an expression{' in ' + where if where else ''}")


class exprel(sympy.Function):
    """(exp(x) - 1)/x with its limit 1 at x = 0 (Brian2's ``exprel``)."""

    nargs = 1

    @classmethod
    def eval(cls, x: sympy.Basic) -> sympy.Basic | None:
        if x.is_zero:
            return sympy.Integer(1)
        return None

    def _eval_evalf(self, prec: int) -> sympy.Basic:
        x = self.args[0]
        return ((sympy.exp(x) - 1) / x).evalf(prec)

    def fdiff(self, argindex: int = 1) -> sympy.Basic:
        x = self.args[0]
        return (x * sympy.exp(x) - sympy.exp(x) + 1) / x**2


_SYMPIFY_LOCALS: dict[str, Any] = {"exprel": exprel}
# names sympy would otherwise read as built-in objects
for _name in ("beta", "gamma", "E", "I", "N", "O", "Q", "S", "lambda", "zeta", "pi", "re", "im", "ln", "test"):
    _SYMPIFY_LOCALS.setdefault(_name, sympy.Symbol(_name))
_SYMPIFY_LOCALS["pi"] = sympy.pi
_SYMPIFY_LOCALS["exp"] = sympy.exp
_SYMPIFY_LOCALS["log"] = sympy.log


@dataclass
class State:
    """A state variable: ``d name/dt`` is given by :attr:`ModelIR.derivatives`."""

    name: str
    initial: Any = 0.0
    unit: str = "1"
    description: str = ""
    #: held fixed while the neuron is refractory (Brian2's ``(unless refractory)``)
    clamped_when_refractory: bool = False


@dataclass
class Parameter:
    """A named constant; batchable per sample, optionally learnable."""

    name: str
    value: float
    unit: str = "1"
    learnable: bool = False
    description: str = ""


@dataclass
class Event:
    """A discrete event: when ``trigger`` turns true, apply ``assignments`` to states.

    For spiking neurons the trigger is the threshold (``v > v_th``) and the assignments are
    the reset. SBML event options are kept so an SBML-aware driver can honour them.
    """

    name: str
    trigger: Any
    assignments: dict[str, Any] = field(default_factory=dict)
    delay: Any = None
    priority: Any = None
    persistent: bool = True
    initial_value: bool = True
    use_values_from_trigger_time: bool = True
    terminal: bool = False


def is_delayed(delay: object) -> bool:
    """Whether an event's ``delay`` (None, a number or a sympy expression) is other than zero."""
    return delay is not None and not (getattr(delay, "is_zero", False) or delay == 0)


@dataclass
class ModelIR:
    """A model in neuroplex's internal form.

    ``derivatives[state]`` is the right-hand side of ``d state/dt``; ``assignments`` are named
    intermediate expressions evaluated in order before anything else (they may use states,
    parameters, inputs, time and earlier assignments); ``inputs`` are external signals with
    default values; ``energy`` is an optional scalar energy ``E(y, p)``.
    """

    #: the model kind (see :mod:`neuroplex.kinds`)
    kind: ClassVar[str] = "ir"

    name: str
    states: list[State] = field(default_factory=list)
    parameters: list[Parameter] = field(default_factory=list)
    derivatives: dict[str, Any] = field(default_factory=dict)
    assignments: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, float] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    energy: Any = None
    refractory: Any = None
    time: sympy.Symbol = field(default_factory=lambda: sympy.Symbol("t"))
    time_unit: str = "second"
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.derivatives = {k: as_expr(v, f"d{k}/dt of model {self.name!r}") for k, v in self.derivatives.items()}
        self.assignments = {k: as_expr(v, f"{k} of model {self.name!r}") for k, v in self.assignments.items()}
        if self.energy is not None:
            self.energy = as_expr(self.energy, f"energy of model {self.name!r}")
        for state in self.states:
            state.initial = as_expr(state.initial, f"initial value of {state.name!r}")
        for event in self.events:
            event.trigger = as_expr(event.trigger, f"trigger of event {event.name!r}")
            event.assignments = {k: as_expr(v, f"event {event.name!r}") for k, v in event.assignments.items()}
            for attr in ("delay", "priority"):
                if getattr(event, attr) is not None:
                    setattr(event, attr, as_expr(getattr(event, attr), f"{attr} of event {event.name!r}"))
        if self.refractory is not None:
            self.refractory = as_expr(self.refractory, f"refractory period of model {self.name!r}")

    # ----------------------------------------------------------------- access
    @property
    def state_names(self) -> list[str]:
        return [s.name for s in self.states]

    @property
    def parameter_names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise ModelError(f"model {self.name!r} has no parameter {name!r}")

    def state(self, name: str) -> State:
        for s in self.states:
            if s.name == name:
                return s
        raise ModelError(f"model {self.name!r} has no state {name!r}")

    def with_parameters(self, **values: object) -> "ModelIR":
        """A copy with new default parameter values: numbers in SI, or quantities and strings
        (``-65*mV``, ``"-65 mV"``) checked against the parameter's unit
        (:func:`neuroplex.units.to_si` with ``units=False``)."""
        import copy

        model = copy.deepcopy(self)
        for key, value in values.items():
            prm = model.parameter(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                prm.value = float(value)  # SI, whatever the unit string (SBML units need not parse)
            else:
                prm.value = to_si(value, prm.unit, f"parameter {key!r} of model {self.name!r}", units=False)
        return model

    def check_units(self) -> dict[str, Dimension | None]:
        """Check that the equations are dimensionally consistent in the declared units
        (:func:`neuroplex.units.check_model`); returns each symbol's dimension."""
        return check_model(self)

    def units(self) -> dict[str, str]:
        """The unit string of every state, parameter and input (inputs: given in
        ``metadata["input_units"]`` or worked out from the equations where their units parse)."""
        out = {s.name: s.unit or "1" for s in self.states}
        out.update({p.name: p.unit or "1" for p in self.parameters})
        given = self.metadata.get("input_units", {}) if isinstance(self.metadata, dict) else {}
        out.update({k: v for k, v in dict(given or {}).items() if k in self.inputs})
        if any(name not in out for name in self.inputs):
            try:
                dims = model_dimensions(self)
            except ModelError:  # units that do not parse: the inputs stay unlabelled
                return out
            out.update({n: unit_name(d) for n in self.inputs if (d := dims.get(n)) is not None and n not in out})
        return out

    def validate(self) -> None:
        """Check that every symbol is defined and every state has a derivative."""
        known = {*self.state_names, *self.parameter_names, *self.inputs, self.time.name}
        names = [*self.state_names, *self.parameter_names, *self.inputs, *self.assignments]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ModelError(f"model {self.name!r}: names defined twice: {', '.join(sorted(dup))}")
        for key, expr in self.assignments.items():
            _check_symbols(self.name, key, expr, known)
            known.add(key)
        for state in self.states:
            if state.name not in self.derivatives:
                raise ModelError(f"model {self.name!r}: state {state.name!r} has no equation")
        for key, expr in self.derivatives.items():
            if key not in self.state_names:
                raise ModelError(f"model {self.name!r}: equation for {key!r}, which is not a state")
            _check_symbols(self.name, f"d{key}/dt", expr, known)
        for event in self.events:
            _check_symbols(self.name, f"trigger of {event.name}", event.trigger, known)
            for key, expr in event.assignments.items():
                if key not in self.state_names:
                    raise ModelError(f"model {self.name!r}: event {event.name!r} assigns {key!r}, which is not a state")
                _check_symbols(self.name, f"event {event.name}", expr, known)
        init_known = {*self.parameter_names, *self.state_names, *self.inputs, *self.assignments, self.time.name}
        for state in self.states:
            _check_symbols(self.name, f"initial value of {state.name}", state.initial, init_known)

    def compile(self, *, dtype: Any = None, device: Any = None) -> "CompiledDynamics":
        """Compile to batched torch dynamics (see :mod:`neuroplex.dynamics`)."""
        from .dynamics import CompiledDynamics

        self.validate()
        return CompiledDynamics(self, dtype=dtype, device=device)

    def describe(self) -> Mapping[str, Any]:
        """A plain summary (for ``neuroplex neurons`` and info commands)."""
        return {
            "name": self.name,
            "states": self.state_names,
            "parameters": {p.name: p.value for p in self.parameters},
            "inputs": dict(self.inputs),
            "events": [e.name for e in self.events],
            "has_energy": self.energy is not None,
        }


def _check_symbols(model: str, where: str, expr: Any, known: set[str]) -> None:
    if not isinstance(expr, sympy.Basic):
        return
    unknown = sorted(s.name for s in expr.free_symbols if s.name not in known)
    if unknown:
        raise ModelError(f"model {model!r}: {where} uses undefined symbol(s) {', '.join(unknown)}")
