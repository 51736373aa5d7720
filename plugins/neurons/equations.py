"""Neurons written as Brian2-style equation strings, compiled to the same
:class:`~neuroplex.ir.ModelIR` as the registered neurons.

::

    lif = from_equations('''
        dv/dt = (E_l - v + R_m*I)/tau_m : volt (unless refractory)
        I : amp
    ''', threshold="v > v_th", reset="v = v_reset", refractory="t_ref", method="exact",
        parameters={"E_l": -60*mV, "tau_m": 20*ms, "R_m": "100 Mohm", "v_th": -50*mV,
                    "v_reset": -60*mV, "t_ref": 5*ms}, init={"v": "v_reset"})

The equation lines follow Brian2's ``Equations`` syntax:

* ``dx/dt = expr : unit`` is a state (flag ``(unless refractory)``: held while refractory);
* ``name = expr : unit`` is a subexpression (an IR assignment);
* ``name : unit`` is a parameter when ``parameters`` gives its value, else an external input
  (default 0; set per population with ``Network.add_population(..., inputs=)``), and
  ``(constant)``/``(shared)`` flags are accepted;
* any other name the expressions use is a parameter taken from ``parameters`` (Brian2's
  namespace), with the unit of the value given;
* unit names (``mV``, ``ms``, ``nS``, ...) may appear in expressions (``-65*mV``); the model's
  own names win over unit names, as in Brian2.

``threshold`` is a condition, ``reset`` statements separated by ``;`` or new lines
(``v = v_r; w += b``; every right-hand side reads the values before the reset, as the
registered neurons do), ``refractory`` a duration (quantity, ``"5 ms"``, a parameter name) or a
condition. Every expression is dimension-checked with the declared units before unit names are
folded into SI numbers. ``method``: ``exact``, ``euler``, ``exponential_euler``, ``rk2``, ``rk4``;
by default ``exact`` for linear equations, else ``euler`` (Brian2's choice without noise).

The factory is registered as the neuron ``equations``; its ``metadata["factory_kwargs"]`` are
JSON-safe, so ``Network.export``/``Network.load`` and ``neuroplex compare-snn FILE`` run such
neurons on both engines.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

import sympy

from neuroplex.errors import ModelError
from neuroplex.ir import Event, ModelIR, Parameter, State, as_expr
from neuroplex.units import (QuantityLike, UnitError, as_quantity, check_model, dimension, parse_quantity, to_si, unit_name,
                             unit_symbols)

_FLAGS = {"constant", "shared", "unless refractory", "constant over dt", "linked"}
_DIFF = re.compile(r"^d\s*([A-Za-z_]\w*)\s*/\s*dt\s*=\s*(.+)$")
_SUB = re.compile(r"^([A-Za-z_]\w*)\s*=\s*(.+)$")
_PARAM = re.compile(r"^([A-Za-z_]\w*)$")
_RESET = re.compile(r"^\s*([A-Za-z_]\w*)\s*(\+|-|\*|/)?=\s*(.+?)\s*$")


@dataclass(frozen=True)
class Line:
    """One parsed equation line: kind ``diff`` / ``sub`` / ``param``."""

    kind: str
    name: str
    expr: str
    unit: str
    flags: frozenset[str]


def parse_equations(text: str) -> list[Line]:
    """The lines of a Brian2-style equation string, with an error naming a bad line."""
    out: list[Line] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        body, flags = line, frozenset()
        flag_match = re.search(r"\(([^()]*)\)\s*$", line)
        if flag_match and all(f.strip() in _FLAGS for f in flag_match.group(1).split(",")):
            flags = frozenset(f.strip() for f in flag_match.group(1).split(","))
            body = line[:flag_match.start()].strip()
        if ":" not in body:
            raise ModelError(f"equations, line {number} {raw.strip()!r}: no ': unit' (write e.g. 'dv/dt = -v/tau : volt')")
        lhs, unit_text = (part.strip() for part in body.rsplit(":", 1))
        try:
            dimension(unit_text or "1")
        except UnitError as exc:
            raise ModelError(f"equations, line {number} {raw.strip()!r}: {exc}") from None
        for kind, pattern in (("diff", _DIFF), ("sub", _SUB), ("param", _PARAM)):
            m = pattern.match(lhs)
            if m:
                out.append(Line(kind, m.group(1), m.group(2).strip() if kind != "param" else "", unit_text, flags))
                break
        else:
            raise ModelError(f"equations, line {number} {raw.strip()!r}: not 'dx/dt = ... : unit', "
                             f"'x = ... : unit' or 'x : unit'")
    names = [ln.name for ln in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ModelError(f"equations: defined twice: {', '.join(twice)}")
    return out


def _si_unit(text: str) -> str:
    """The coherent SI unit string the IR stores for a declared unit (``mV`` -> ``volt``)."""
    return unit_name(dimension(text or "1"))


def from_equations(equations: str, *, threshold: str | None = None, reset: str | None = None,
                   refractory: QuantityLike | None = None, parameters: Mapping[str, QuantityLike] | None = None,
                   init: Mapping[str, QuantityLike] | None = None, method: str | None = None,
                   name: str = "equations") -> ModelIR:
    """A neuron written as Brian2-style equation strings (``dv/dt = (E_l - v)/tau_m : volt``).

    ``equations``: Brian2 ``Equations`` text; ``threshold``/``reset``/``refractory`` as for
    Brian2's ``NeuronGroup``; ``parameters``: values of the other names (quantities, strings
    such as ``"-65 mV"``, or plain numbers for dimensionless ones); ``init``: initial values
    (quantities or expressions, default 0); ``method``: default ``exact`` when linear, else
    ``euler``. See :mod:`neuroplex.plugins.neurons.equations`."""
    lines = parse_equations(equations)
    given = dict(parameters or {})
    states = [ln for ln in lines if ln.kind == "diff"]
    if not states:
        raise ModelError(f"neuron {name!r}: the equations define no state (no 'dx/dt = ... : unit' line)")
    subs = [ln for ln in lines if ln.kind == "sub"]
    declared = {ln.name: ln for ln in lines if ln.kind == "param"}
    inputs = {n: ln for n, ln in declared.items() if n not in given}

    texts: dict[str, str] = {f"d{ln.name}/dt": ln.expr for ln in states}
    texts.update({ln.name: ln.expr for ln in subs})
    exprs = {key: as_expr(text, f"equation {key} of neuron {name!r}") for key, text in texts.items()}
    trigger = as_expr(threshold, f"threshold of neuron {name!r}") if threshold else None
    resets = _parse_reset(reset or "", name)
    ref_expr, ref_value = _refractory(refractory, name)
    init_exprs = {k: v for k, v in (init or {}).items()}

    own = {*(ln.name for ln in lines), *given, "t"}
    used: set[str] = set()
    every = [*exprs.values(), *(e for e in (trigger, ref_expr) if e is not None), *(e for _, e in resets)]
    init_parsed = {k: as_expr(v, f"initial value of {k}") if isinstance(v, str) and not _is_quantity_text(v) else None
                   for k, v in init_exprs.items()}
    every += [e for e in init_parsed.values() if e is not None]
    for expr in every:
        used |= {s.name for s in expr.free_symbols}
    units_used = {sym.name: q for expr in every for sym, q in unit_symbols(expr, own).items()}
    undefined = sorted(used - own - set(units_used))
    if undefined:
        raise ModelError(f"neuron {name!r}: {', '.join(undefined)} not defined: give a value in parameters= "
                         f"(e.g. parameters={{{undefined[0]!r}: 10*ms}}) or declare it ('{undefined[0]} : unit')")
    unused = sorted(set(given) - used - set(declared))
    if unused:
        raise ModelError(f"neuron {name!r}: parameters {', '.join(unused)} are not used by the equations")

    params: list[Parameter] = []
    for key, value in given.items():
        if key in declared:
            unit = _si_unit(declared[key].unit)
            params.append(Parameter(key, to_si(value, unit, f"{name}: {key}"), unit))
        else:
            q = as_quantity(value, f"{name}: {key}")
            params.append(Parameter(key, float(q.si), unit_name(q.dim)))  # type: ignore[arg-type]
    unit_params = [Parameter(u, float(q.si), unit_name(q.dim)) for u, q in sorted(units_used.items())]  # type: ignore[arg-type]

    state_objs = []
    for ln in states:
        value = init_exprs.get(ln.name, 0.0)
        initial = init_parsed.get(ln.name) if isinstance(value, str) and not _is_quantity_text(value) else \
            to_si(value, _si_unit(ln.unit), f"{name}: initial value of {ln.name}")
        state_objs.append(State(ln.name, initial, _si_unit(ln.unit), clamped_when_refractory="unless refractory" in ln.flags))
    unknown_init = sorted(set(init_exprs) - {ln.name for ln in states})
    if unknown_init:
        raise ModelError(f"neuron {name!r}: initial values for {', '.join(unknown_init)}, which are not states")

    events = []
    if trigger is not None:
        events.append(Event("spike", trigger, dict(_apply_reset(resets))))
    elif resets:
        raise ModelError(f"neuron {name!r}: a reset needs a threshold")
    metadata: dict[str, Any] = {
        "input_units": {n: _si_unit(ln.unit) for n, ln in inputs.items()},
        "factory": "equations",
        "factory_kwargs": {"equations": equations, "threshold": threshold, "reset": reset,
                           "refractory": ref_value, "method": method, "name": name,
                           "parameters": {p.name: f"{p.value!r}*{p.unit}" if p.unit != "1" else p.value for p in params},
                           "init": {k: _json_init(v, k, state_objs) for k, v in init_exprs.items()}},
        "sources": "Brian2-style equations given as text",
    }
    threshold_state = next((s.name for s in state_objs if trigger is not None and sympy.Symbol(s.name) in trigger.free_symbols),
                           state_objs[0].name)
    metadata["threshold_state"] = threshold_state

    # check the dimensions with unit names as parameters, then fold them into SI numbers
    checked = ModelIR(name=name, states=state_objs, parameters=params + unit_params,
                      derivatives={ln.name: exprs[f"d{ln.name}/dt"] for ln in states},
                      assignments={ln.name: exprs[ln.name] for ln in subs},
                      inputs={n: 0.0 for n in inputs}, events=events, refractory=ref_expr, metadata=metadata)
    checked.validate()
    try:
        dims = check_model(checked)
    except UnitError as exc:
        raise UnitError(f"neuron {name!r}: {exc}") from None
    for ln in subs:
        want = dimension(ln.unit)
        if dims.get(ln.name) is not None and dims[ln.name] != want:
            raise UnitError(f"neuron {name!r}: {ln.name} is declared in {unit_name(want)} but its expression "
                            f"is in {unit_name(dims[ln.name])}")  # type: ignore[arg-type]
    fold = {sympy.Symbol(p.name): sympy.Float(p.value) for p in unit_params}
    model = ModelIR(name=name, states=[State(s.name, _fold(s.initial, fold), s.unit, s.description,
                                             s.clamped_when_refractory) for s in state_objs],
                    parameters=params,
                    derivatives={k: _fold(v, fold) for k, v in checked.derivatives.items()},
                    assignments={k: _fold(v, fold) for k, v in checked.assignments.items()},
                    inputs=dict(checked.inputs),
                    events=[Event(e.name, _fold(e.trigger, fold), {k: _fold(v, fold) for k, v in e.assignments.items()})
                            for e in checked.events],
                    refractory=_fold(ref_expr, fold) if ref_expr is not None else None, metadata=metadata)
    model.validate()
    model.metadata["method"] = method or _default_method(model)
    return model


def _fold(expr: Any, fold: Mapping[sympy.Symbol, sympy.Float]) -> Any:
    return expr.xreplace(fold) if isinstance(expr, sympy.Basic) else expr


def _is_quantity_text(text: str) -> bool:
    try:
        parse_quantity(text)
    except UnitError:
        return False
    return True


def _json_init(value: Any, key: str, states: list[State]) -> Any:
    """An initial value as ``factory_kwargs`` stores it: an expression string as given, a
    quantity as ``"<SI value> <unit>"``."""
    if isinstance(value, str) and not _is_quantity_text(value):
        return value
    state = next(s for s in states if s.name == key)
    return f"{float(state.initial)!r}*{state.unit}" if state.unit != "1" else float(state.initial)


def _parse_reset(text: str, name: str) -> list[tuple[str, sympy.Basic]]:
    """``"v = v_r; w += b"`` as ``[("v", v_r), ("w", w + b)]``."""
    out = []
    for statement in re.split(r"[;\n]", text):
        if not statement.strip():
            continue
        m = _RESET.match(statement)
        if not m:
            raise ModelError(f"neuron {name!r}: reset statement {statement.strip()!r} is not 'x = ...' or 'x += ...'")
        target, op, rhs = m.group(1), m.group(2), as_expr(m.group(3), f"reset of neuron {name!r}")
        sym = sympy.Symbol(target)
        value = {None: rhs, "+": sym + rhs, "-": sym - rhs, "*": sym * rhs, "/": sym / rhs}[op]
        out.append((target, value))
    return out


def _apply_reset(resets: list[tuple[str, sympy.Basic]]) -> list[tuple[str, sympy.Basic]]:
    """Sequential statements as simultaneous assignments on pre-reset values (``v = 0; w = v``
    gives ``w = 0``), the IR's reset semantics."""
    done: dict[str, sympy.Basic] = {}
    for target, value in resets:
        done[target] = value.xreplace({sympy.Symbol(k): v for k, v in done.items()})
    return list(done.items())


def _refractory(value: Any, name: str) -> tuple[sympy.Basic | None, Any]:
    """``(IR expression, JSON-safe form)`` of the refractory argument."""
    if value is None or value is False:
        return None, None
    if isinstance(value, str):
        if _is_quantity_text(value) and not any(op in value for op in "<>="):
            seconds = to_si(value, "second", f"{name}: refractory")
            return sympy.Float(seconds), seconds
        return as_expr(value, f"refractory of neuron {name!r}"), value
    seconds = to_si(value, "second", f"{name}: refractory")
    return sympy.Float(seconds), seconds


def _default_method(model: ModelIR) -> str:
    """``exact`` when every derivative is linear in the states with state-free coefficients
    (Brian2 integrates those exactly by default), else ``euler``."""
    syms = [sympy.Symbol(s) for s in model.state_names]
    for expr in model.derivatives.values():
        full = expr
        for key, value in reversed(list(model.assignments.items())):
            full = full.xreplace({sympy.Symbol(key): value})
        for s in syms:
            coeff = sympy.diff(full, s)
            if any(x in coeff.free_symbols for x in syms) or model.time in coeff.free_symbols:
                return "euler"
    return "exact"


__all__ = ["from_equations", "parse_equations", "Line"]
