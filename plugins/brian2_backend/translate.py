"""Translate a neuron :class:`~neuroplex.ir.ModelIR` into Brian2 model text.

The IR keeps equations as sympy expressions with unit strings; Brian2 wants equation
strings (``dv/dt = ... : volt (unless refractory)``), a threshold condition, reset
statements, a refractory period and a namespace of constants. This module produces those
strings without importing brian2 at module level (the host must work without it); the
unit helpers import it when called.

Two unit modes:

* ``"si"``: every state/parameter carries its IR unit; Brian2 checks dimensional
  consistency (a model with a unit error is rejected naming the equation).
* ``"none"``: every quantity is a plain number in the model's units and the time
  derivative is divided by the model's time unit (``dv/dt = (rhs)/second : 1``). This runs
  models without unit annotations (e.g. SBML imports) and is numerically the same as
  ``"si"`` (Brian2 turns units into factors of 1 in SI).

``"auto"`` picks ``"si"`` when the model declares units and its time unit is seconds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterable, Sequence

import sympy
from sympy.printing.str import StrPrinter

from neuroplex.errors import ModelError
from neuroplex.ir import ModelIR, exprel, is_delayed
from neuroplex.units import Dimension, unit_name

#: identifiers Brian2 reserves or defines itself (variables, functions, constants)
BRIAN_RESERVED = frozenset({
    "t", "dt", "i", "j", "N", "xi", "lastspike", "not_refractory", "t_in_timesteps", "timestep",
    "rand", "randn", "poisson", "exp", "log", "log10", "expm1", "log1p", "exprel", "sqrt", "sin", "cos",
    "tan", "sinh", "cosh", "tanh", "arcsin", "arccos", "arctan", "abs", "sign", "int", "ceil", "floor",
    "clip", "inf", "pi", "e", "and", "or", "not", "True", "False", "lambda", "in", "is", "if", "else",
    "for", "while", "def", "class", "return", "None", "N_incoming", "N_outgoing", "delay", "lastupdate",
})

#: Brian2 integration methods this backend offers, with accepted aliases
METHOD_ALIASES = {
    "exact": "exact", "linear": "exact",
    "euler": "euler",
    "exponential_euler": "exponential_euler", "exp_euler": "exponential_euler", "expeuler": "exponential_euler",
    "rk2": "rk2", "midpoint": "rk2",
    "rk4": "rk4",
    "heun": "heun",
}


def brian_method(method: str | None) -> str | None:
    """The Brian2 name of an integration method (``None`` lets Brian2 choose)."""
    if method is None:
        return None
    key = method.lower().replace("-", "_")
    if key not in METHOD_ALIASES:
        raise ModelError(f"unknown integration method {method!r} for brian2 (known: {', '.join(sorted(set(METHOD_ALIASES.values())))})")
    return METHOD_ALIASES[key]


class BrianPrinter(StrPrinter):
    """Print sympy expressions as Brian2 expression strings.

    Floats print with full double precision (``repr``) so that the Brian2 run sees the
    same constants as the torch code; piecewise functions and min/max become products
    with ``int(condition)`` (Brian2 has no conditional expression).
    """

    def __init__(self, names: dict[str, str], time: str = "t", exprel_name: str = "exprel"):
        super().__init__({"full_prec": True})
        self.names = names
        self.time = time
        self.exprel_name = exprel_name

    def __call__(self, expr: Any) -> str:
        return self.doprint(expr)

    def _print_Symbol(self, expr: sympy.Symbol) -> str:
        if expr.name in self.names:
            return self.names[expr.name]
        raise ModelError(f"brian2 translation: undefined symbol {expr.name!r}")

    def _print_Float(self, expr: sympy.Float) -> str:
        return _num(float(expr))

    def _print_Integer(self, expr: sympy.Integer) -> str:
        return str(int(expr))

    def _print_Rational(self, expr: sympy.Rational) -> str:
        return _num(float(expr.p) / float(expr.q))

    def _print_Half(self, expr: Any) -> str:
        return "0.5"

    def _print_Exp1(self, expr: Any) -> str:
        return _num(math.e)

    def _print_Pi(self, expr: Any) -> str:
        return _num(math.pi)

    def _print_Infinity(self, expr: Any) -> str:
        return "inf"

    def _print_NegativeInfinity(self, expr: Any) -> str:
        return "(-inf)"

    def _print_BooleanTrue(self, expr: Any) -> str:
        return "True"

    def _print_BooleanFalse(self, expr: Any) -> str:
        return "False"

    def _print_Pow(self, expr: sympy.Pow, rational: bool = False) -> str:
        base, e = expr.args
        if e == sympy.Rational(1, 2):
            return f"sqrt({self._print(base)})"
        if e == -1:
            return f"1.0/({self._print(base)})"
        return f"({self._print(base)})**({self._print(e)})"

    def _print_Relational(self, expr: sympy.Rel) -> str:
        op = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}[expr.rel_op]
        return f"({self._print(expr.lhs)} {op} {self._print(expr.rhs)})"

    def _print_And(self, expr: Any) -> str:
        return "(" + " and ".join(self._print(a) for a in expr.args) + ")"

    def _print_Or(self, expr: Any) -> str:
        return "(" + " or ".join(self._print(a) for a in expr.args) + ")"

    def _print_Not(self, expr: Any) -> str:
        return f"(not {self._print(expr.args[0])})"

    def _print_Abs(self, expr: Any) -> str:
        return f"abs({self._print(expr.args[0])})"

    def _print_sign(self, expr: Any) -> str:
        return f"sign({self._print(expr.args[0])})"

    def _print_floor(self, expr: Any) -> str:
        return f"floor({self._print(expr.args[0])})"

    def _print_ceiling(self, expr: Any) -> str:
        return f"ceil({self._print(expr.args[0])})"

    def _print_Heaviside(self, expr: Any) -> str:
        x = self._print(expr.args[0])
        return f"(1.0*int(({x}) > 0) + 0.5*int(({x}) == 0))"

    def _print_Piecewise(self, expr: sympy.Piecewise) -> str:
        terms, previous = [], []
        for value, cond in expr.args:
            c = self._print(cond)
            guard = " and ".join([*(f"(not {p})" for p in previous), c]) if cond is not sympy.true else \
                (" and ".join(f"(not {p})" for p in previous) or "True")
            terms.append(f"({self._print(value)})*int({guard})")
            previous.append(c)
            if cond is sympy.true:
                break
        return "(" + " + ".join(terms) + ")"

    def _print_Min(self, expr: Any) -> str:
        a, *rest = expr.args
        return self._print(a) if not rest else self._minmax(a, sympy.Min(*rest), "<=")

    def _print_Max(self, expr: Any) -> str:
        a, *rest = expr.args
        return self._print(a) if not rest else self._minmax(a, sympy.Max(*rest), ">=")

    def _minmax(self, a: Any, b: Any, op: str) -> str:
        x, y = self._print(a), self._print(b)
        return f"(({x})*int(({x}) {op} ({y})) + ({y})*int(not (({x}) {op} ({y}))))"

    def _print_Function(self, expr: Any) -> str:
        name = expr.func.__name__
        allowed = {"exp", "log", "sqrt", "sin", "cos", "tan", "sinh", "cosh", "tanh", "exprel", "expm1",
                   "log1p", "log10"}
        mapped = {"asin": "arcsin", "acos": "arccos", "atan": "arctan"}
        name = mapped.get(name, name)
        if name == "exprel":
            name = self.exprel_name
        elif name not in allowed and name not in mapped.values():
            raise ModelError(f"brian2 translation: function {expr.func.__name__!r} has no Brian2 equivalent")
        return f"{name}({', '.join(self._print(a) for a in expr.args)})"

    _print_exprel = _print_Function


#: name of the fast ``exprel`` used with Brian2's numpy target (see :func:`fast_exprel`)
FAST_EXPREL = "exprel_np"


def fast_exprel() -> Any:
    """Brian2's own numpy ``exprel`` as a unit-free Brian2 ``Function``.

    With the numpy target Brian2 wraps ``exprel`` in a per-call unit check that costs about
    0.5 ms per call (it dominates Hodgkin-Huxley runs); the model is unit-checked anyway, so
    numpy runs call the same numpy code without the wrapper (identical values)."""
    from brian2 import Function
    from brian2.units.unitsafefunctions import exprel as brian_exprel

    raw = getattr(brian_exprel, "_orig_func", brian_exprel)
    fn = Function(raw, arg_units=[1], return_unit=1)
    fn.implementations.add_numpy_implementation(raw, discard_units=True)
    return fn


def _num(x: float) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "(-inf)"
    text = repr(x)
    return f"({text})" if x < 0 else text


def safe_names(names: Iterable[str], taken: Iterable[str] = ()) -> dict[str, str]:
    """IR name -> a Brian2-legal identifier (reserved words and leading underscores renamed)."""
    used = set(taken)
    out: dict[str, str] = {}
    for name in names:
        cand = name
        if cand.startswith("_"):
            cand = "u" + cand
        if not cand.isidentifier():
            cand = "".join(c if c.isalnum() or c == "_" else "_" for c in cand)
        base = cand
        k = 0
        while cand in BRIAN_RESERVED or cand in used:
            k += 1
            cand = f"{base}_ir{k if k > 1 else ''}"
        used.add(cand)
        out[name] = cand
    return out


def inline_assignments(model: ModelIR, expr: Any) -> Any:
    """``expr`` with the model's assignments substituted (in their definition order)."""
    if not isinstance(expr, sympy.Basic) or not model.assignments:
        return expr
    resolved: dict[sympy.Symbol, Any] = {}
    for key, value in model.assignments.items():
        resolved[sympy.Symbol(key)] = value.xreplace(resolved) if isinstance(value, sympy.Basic) else value
    for _ in range(len(resolved) + 1):
        new = expr.xreplace(resolved)
        if new == expr:
            break
        expr = new
    return expr


# ------------------------------------------------------------------------ units
def dims_of(unit: str | None, where: str) -> Any:
    """Brian2 dimensions of an IR unit string (``"volt"``, ``"mV"``, ``"siemens/meter**2"``, ``"1"``)."""
    from brian2.units.fundamentalunits import DIMENSIONLESS, get_dimensions

    text = (unit or "1").strip() or "1"
    if text.lower() in ("dimensionless", "none", "1"):
        return DIMENSIONLESS
    return get_dimensions(_eval_unit(text, where))


def _eval_unit(text: str, where: str) -> Any:
    import brian2

    from brian2.core.namespace import DEFAULT_UNITS

    names = dict(DEFAULT_UNITS)
    names.update({"meter": brian2.meter, "metre": brian2.metre})
    try:
        return eval(text, {"__builtins__": {}}, names)  # noqa: S307 - unit names only
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"brian2 translation: cannot read unit {text!r} of {where}: {exc}") from None


def unit_scale(unit: str | None, where: str) -> float:
    """Value in SI of one ``unit`` (``"ms"`` -> 0.001)."""
    import brian2
    from brian2.units.fundamentalunits import get_dimensions

    text = (unit or "1").strip() or "1"
    if text.lower() in ("dimensionless", "none", "1"):
        return 1.0
    value = _eval_unit(text, where)
    return float(value / brian2.get_unit(get_dimensions(value)))


def dims_text(dims: Any) -> str:
    """A unit string Brian2's equation parser accepts for ``dims``, as people write it:
    ``volt``, ``siemens``, ``farad/metre**2``, ``1/second`` (:func:`neuroplex.units.unit_name`;
    base units only where no named unit fits)."""
    powers = tuple(Fraction(float(p)).limit_denominator(12) for p in getattr(dims, "_dims", ()))
    return unit_name(Dimension(powers)) if powers else "1"


def _real_unit(unit: str | None) -> bool:
    return bool(unit) and unit.strip().lower() not in ("1", "dimensionless", "none", "")


def has_units(model: ModelIR) -> bool:
    """True when any state or parameter declares a unit other than ``1``."""
    return any(_real_unit(s.unit) for s in model.states) or any(_real_unit(p.unit) for p in model.parameters)


def all_si(model: ModelIR) -> bool:
    """True when every declared unit is a coherent SI unit (scale 1: volt, not mV)."""
    items = [(s.unit, f"state {s.name!r}") for s in model.states] + [(p.unit, f"parameter {p.name!r}") for p in model.parameters]
    return all(not _real_unit(u) or abs(unit_scale(u, w) - 1.0) < 1e-12 for u, w in items)


def model_time_scale(model: ModelIR) -> float:
    """Seconds per unit of the model's time (1 for SI models, 0.001 for ms)."""
    return 1.0 if is_seconds(model.time_unit) else unit_scale(model.time_unit, f"time of model {model.name!r}")


def brian_unit_names() -> frozenset[str]:
    """Every name Brian2 resolves as a unit (``ms``, ``mV``, ``nS``, ...): a model constant
    with such a name is renamed, or Brian2 would silently use its unit instead."""
    from brian2.core.namespace import DEFAULT_CONSTANTS, DEFAULT_FUNCTIONS, DEFAULT_UNITS

    return frozenset([*DEFAULT_UNITS, *DEFAULT_CONSTANTS, *DEFAULT_FUNCTIONS])


def is_seconds(time_unit: str | None) -> bool:
    return (time_unit or "second").strip().lower() in ("second", "s", "seconds", "sec")


# ------------------------------------------------------------------------ spec
@dataclass
class NeuronSpec:
    """A neuron model as Brian2 text plus the data to set it up.

    ``names`` maps IR names to Brian2 identifiers; ``namespace`` holds constants (Brian2
    Quantities in ``"si"`` mode, floats in ``"none"`` mode); ``per_neuron`` lists the IR
    parameters/inputs declared as per-neuron constants (set with raw SI values);
    ``time_scale`` is seconds per model time unit.
    """

    model: ModelIR
    names: dict[str, str]
    equations: str
    threshold: str | None
    reset: str | None
    refractory: Any
    namespace: dict[str, Any]
    per_neuron: list[str]
    units: str
    time_scale: float
    method: str | None
    state_dims: dict[str, Any] = field(default_factory=dict)
    input_dims: dict[str, Any] = field(default_factory=dict)
    spike_event: str | None = None
    timed_inputs: dict[str, str] = field(default_factory=dict)


def spike_event(model: ModelIR) -> Any:
    """The model's one event, as Brian2's ``threshold``/``reset`` (None without events). Another
    event, or SBML options Brian2's threshold cannot honour (a delay, a priority,
    ``initial_value=False``, a terminal event), are refused naming the event, not dropped."""
    if not model.events:
        return None
    if len(model.events) > 1:
        raise ModelError(f"model {model.name!r}: the brian2 backend runs one threshold event; have "
                         f"{', '.join(e.name for e in model.events)}")
    ev = model.events[0]
    options = [("a delay", is_delayed(ev.delay)),
               ("a priority", ev.priority is not None), ("initial_value=False", not ev.initial_value),
               ("terminal=True", ev.terminal)]
    for what, present in options:
        if present:
            raise ModelError(f"event {ev.name!r} of model {model.name!r} has {what}, which Brian2's "
                             f"threshold/reset cannot honour (SBML files run it through the SBML driver)")
    return ev


def translate_neuron(
    model: ModelIR,
    *,
    units: str = "auto",
    per_neuron: Sequence[str] = (),
    method: str | None = None,
    input_units: dict[str, str] | None = None,
    timed_inputs: dict[str, str] | None = None,
    target: str = "auto",
) -> NeuronSpec:
    """Brian2 text of one neuron model.

    ``per_neuron``: IR parameters that become per-neuron constants (batched parameter sets)
    instead of namespace constants; inputs are always per-neuron constants.
    ``input_units``: unit strings of inputs (else inferred from the equations).
    ``timed_inputs``: input name -> Brian2 call of a ``TimedArray`` (e.g. ``"ta_I(t, i)"``);
    such inputs become subexpressions instead of per-neuron constants.
    ``target``: the Brian2 codegen target the run resolves to (numpy runs use
    :func:`fast_exprel`; pass :func:`~neuroplex.plugins.brian2_backend.session.resolve_target`'s
    answer for ``auto``).
    """
    model.validate()
    if units not in ("auto", "si", "none"):
        raise ModelError(f"brian2: units must be 'auto', 'si' or 'none', not {units!r}")
    if units == "auto":
        si = has_units(model) and is_seconds(model.time_unit) and all_si(model) and unit_problem(model) is None
        units = "si" if si else "none"
    if units == "si" and not (is_seconds(model.time_unit) and all_si(model)):
        raise ModelError(f"model {model.name!r}: units='si' needs time in seconds and coherent SI units "
                         f"(volt, not mV); use units='none'")
    time_scale = model_time_scale(model)
    ir_names = [*model.state_names, *model.parameter_names, *model.inputs]
    names = safe_names(ir_names, brian_unit_names())
    if units == "si":
        names[model.time.name] = "t"
    else:
        names[model.time.name] = "(t/second)" if time_scale == 1.0 else f"(t/({_num(time_scale)}*second))"
    uses_exprel = any(isinstance(e, sympy.Basic) and e.has(exprel) for e in
                      [*model.derivatives.values(), *model.assignments.values(), *(ev.trigger for ev in model.events)])
    numpy_exprel = target == "numpy" and uses_exprel
    printer = BrianPrinter(names, exprel_name=FAST_EXPREL if numpy_exprel else "exprel")
    meta_method = model.metadata.get("method") if isinstance(model.metadata, dict) else None
    chosen = brian_method(method or meta_method)

    state_dims: dict[str, Any] = {}
    namespace: dict[str, Any] = {}
    input_dims: dict[str, Any] = {}
    per = set(per_neuron)
    if units == "si":
        for s in model.states:
            state_dims[s.name] = dims_of(s.unit, f"state {s.name!r} of model {model.name!r}")
        pdims = {p.name: dims_of(p.unit, f"parameter {p.name!r} of model {model.name!r}") for p in model.parameters}
        from brian2 import Quantity

        for p in model.parameters:
            if p.name not in per:
                namespace[names[p.name]] = Quantity(float(p.value), dim=pdims[p.name])
        input_dims = _input_dims(model, state_dims, pdims, input_units or model.metadata.get("input_units", {}) or {})
    else:
        for p in model.parameters:
            if p.name not in per:
                namespace[names[p.name]] = float(p.value)

    if numpy_exprel:
        namespace[FAST_EXPREL] = fast_exprel()
    lines: list[str] = []
    clamped = {s.name for s in model.states if s.clamped_when_refractory}
    for s in model.states:
        rhs = inline_assignments(model, model.derivatives[s.name])
        text = printer(rhs)
        if units == "si":
            unit = dims_text(state_dims[s.name])
        else:
            unit = "1"
            text = f"({text})/second" if time_scale == 1.0 else f"({text})/({_num(time_scale)}*second)"
        flag = " (unless refractory)" if s.name in clamped and model.refractory is not None else ""
        lines.append(f"d{names[s.name]}/dt = {text} : {unit}{flag}")
    for p in model.parameters:
        if p.name in per:
            unit = dims_text(pdims[p.name]) if units == "si" else "1"
            lines.append(f"{names[p.name]} : {unit} (constant)")
    timed_inputs = dict(timed_inputs or {})
    for name in model.inputs:
        unit = dims_text(input_dims[name]) if units == "si" else "1"
        if name in timed_inputs:
            lines.append(f"{names[name]} = {timed_inputs[name]} : {unit}")
        else:
            lines.append(f"{names[name]} : {unit} (constant)")

    threshold = reset = None
    ev = spike_event(model)
    if ev is not None:
        threshold = printer(inline_assignments(model, ev.trigger))
        reset = _reset_code(model, ev.assignments, printer, names) or None
    refractory = _refractory(model, printer, units, time_scale, per)
    return NeuronSpec(model=model, names=names, equations="\n".join(lines), threshold=threshold, reset=reset,
                      refractory=refractory, namespace=namespace, per_neuron=[p for p in model.parameter_names if p in per],
                      units=units, time_scale=time_scale, method=chosen, state_dims=state_dims,
                      input_dims=input_dims, spike_event=ev.name if ev is not None else None,
                      timed_inputs=timed_inputs)


def _reset_code(model: ModelIR, assignments: dict[str, Any], printer: BrianPrinter, names: dict[str, str]) -> str:
    """Reset statements with the IR's semantics (every right side uses pre-reset values):
    targets read by a later statement are saved in temporaries first."""
    items = [(k, inline_assignments(model, v)) for k, v in assignments.items()]
    targets = {k for k, _ in items}
    read = set()
    for _, v in items:
        read |= {s.name for s in getattr(v, "free_symbols", ())}
    saved = sorted(targets & read)
    lines = [f"{names[k]}_pre_reset = {names[k]}" for k in saved]
    tmp_names = dict(names)
    tmp_names.update({k: f"{names[k]}_pre_reset" for k in saved})
    tmp = BrianPrinter(tmp_names, printer.time, printer.exprel_name)
    lines += [f"{names[k]} = {tmp(v)}" for k, v in items]
    return "\n".join(lines)


def _refractory(model: ModelIR, printer: BrianPrinter, units: str, time_scale: float, per_neuron: set[str]) -> Any:
    """Brian2's ``refractory`` argument: a condition string (``'v > v_th'``), a duration
    (Quantity) for a number or an expression of shared parameters (as Brian2's examples
    write ``refractory=5*ms``), or a time expression string when it uses per-neuron
    parameters or inputs (evaluated per neuron by Brian2)."""
    ref = model.refractory
    if ref is None:
        return None
    ref = inline_assignments(model, ref)
    if isinstance(ref, (sympy.Rel, sympy.And, sympy.Or, sympy.Not)):
        return printer(ref)
    shared = {sympy.Symbol(p.name): sympy.Float(p.value) for p in model.parameters if p.name not in per_neuron}
    if isinstance(ref, sympy.Basic) and ref.xreplace(shared).is_number:
        from brian2 import second

        return float(ref.xreplace(shared)) * time_scale * second
    known = {*model.parameter_names, *model.inputs}
    free = {s.name for s in getattr(ref, "free_symbols", set())}
    if free - known:
        raise ModelError(f"model {model.name!r}: refractory period {ref} may only use parameters and inputs "
                         "(or be a condition)")
    text = printer(ref)
    if units == "si":
        return text
    return f"({text})*second" if time_scale == 1.0 else f"({text})*{_num(time_scale)}*second"


def _input_dims(model: ModelIR, state_dims: dict[str, Any], pdims: dict[str, Any], given: dict[str, str]) -> dict[str, Any]:
    """Dimensions of the model inputs: given, or solved from the equations they enter
    (``[input] = [state]/[second] / [d rhs/d input]``)."""
    from brian2 import Quantity, second
    from brian2.units.fundamentalunits import DIMENSIONLESS, get_dimensions

    out: dict[str, Any] = {}
    for name in model.inputs:
        if name in given:
            out[name] = dims_of(given[name], f"input {name!r} of model {model.name!r}")
            continue
        sym = sympy.Symbol(name)
        found = None
        for s in model.states:
            rhs = inline_assignments(model, model.derivatives[s.name])
            if not isinstance(rhs, sympy.Basic) or sym not in rhs.free_symbols:
                continue
            deriv = sympy.diff(rhs, sym).subs(sym, model.inputs[name])
            values: dict[str, Any] = {st.name: Quantity(1.0, dim=state_dims[st.name]) for st in model.states}
            values.update({p.name: Quantity(p.value if p.value else 1.0, dim=pdims[p.name]) for p in model.parameters})
            values.update({k: 1.0 for k in model.inputs})
            values[model.time.name] = 1.0 * second
            try:
                d = _eval_quantity(deriv, values)
                found = state_dims[s.name] / get_dimensions(second) / get_dimensions(d)
            except Exception:  # noqa: BLE001 - try the next equation
                continue
            break
        if found is None:
            found = DIMENSIONLESS
        out[name] = found
    return out


def unit_problem(model: ModelIR) -> str | None:
    """Why the model's equations are not dimensionally consistent in its declared units
    (``None`` when they are): every ``d state/dt`` must have the state's unit per second,
    the threshold must compare like with like, resets must keep units, and a refractory
    expression must be a time. Evaluated with Brian2 quantities, without building objects."""
    import numpy as np
    from brian2 import Quantity, second
    from brian2.units.fundamentalunits import DIMENSIONLESS, DimensionMismatchError, get_dimensions

    try:
        sdims = {s.name: dims_of(s.unit, f"state {s.name!r}") for s in model.states}
        pdims = {p.name: dims_of(p.unit, f"parameter {p.name!r}") for p in model.parameters}
        idims = _input_dims(model, sdims, pdims, model.metadata.get("input_units", {}) or {})
    except (ModelError, DimensionMismatchError) as exc:
        return str(exc)
    values: dict[str, Any] = {s.name: Quantity(1.0, dim=d) for s, d in zip(model.states, sdims.values())}
    values.update({p.name: Quantity(p.value if p.value else 1.0, dim=pdims[p.name]) for p in model.parameters})
    values.update({k: Quantity(1.0, dim=idims[k]) for k in model.inputs})
    values[model.time.name] = 1.0 * second
    checks: list[tuple[str, Any, Any]] = []
    for s in model.states:
        checks.append((f"d{s.name}/dt", model.derivatives[s.name], sdims[s.name] / get_dimensions(second)))
    ev = spike_event(model)
    if ev is not None:
        if isinstance(ev.trigger, sympy.Rel):
            checks.append(("threshold", ev.trigger.lhs - ev.trigger.rhs, None))
        for key, expr in ev.assignments.items():
            checks.append((f"reset of {key}", expr, sdims[key]))
    if model.refractory is not None and not isinstance(model.refractory, (sympy.Rel, sympy.And, sympy.Or, sympy.Not)):
        checks.append(("refractory", model.refractory, get_dimensions(second)))
    elif isinstance(model.refractory, sympy.Rel):
        checks.append(("refractory", model.refractory.lhs - model.refractory.rhs, None))
    with np.errstate(all="ignore"):
        for where, expr, want in checks:
            expr = inline_assignments(model, expr)
            try:
                got = get_dimensions(_eval_quantity(expr, values)) if isinstance(expr, sympy.Basic) and \
                    expr.free_symbols else DIMENSIONLESS
            except DimensionMismatchError as exc:
                return f"{where}: {exc}"
            except Exception as exc:  # noqa: BLE001 - a function Brian2 units do not support
                return f"{where}: {exc}"
            if want is not None and got != want and not (isinstance(expr, sympy.Basic) and expr.is_zero):
                return f"{where} has dimensions {got}, expected {want}"
    return None


def _eval_quantity(expr: Any, values: dict[str, Any]) -> Any:
    """Evaluate a sympy expression with Brian2 Quantities (to read off its dimensions)."""
    import brian2

    syms = sorted(expr.free_symbols, key=lambda s: s.name)
    fn = sympy.lambdify(syms, expr, modules=[{"exprel": brian2.exprel, "exp": brian2.exp, "log": brian2.log,
                                              "sqrt": brian2.sqrt, "Abs": abs}, "numpy"])
    return fn(*[values[s.name] for s in syms])


__all__ = ["BrianPrinter", "NeuronSpec", "translate_neuron", "brian_method", "safe_names", "inline_assignments",
           "dims_of", "has_units", "spike_event", "unit_problem", "fast_exprel"]
