"""Physical units: values with units and dimension checks of model equations.

The IR keeps every number in SI and every :class:`~neuroplex.ir.State` and
:class:`~neuroplex.ir.Parameter` carries a unit string (``"volt"``, ``"farad/meter**2"``).
This module turns user values into SI with a check against that unit, and checks that a
model's equations are dimensionally consistent:

* :func:`to_si` reads a value given for a quantity with a unit: a :class:`Quantity`
  (``-65*mV`` with this module's units), a Brian2 quantity (``brian2.mV``; recognised by its
  ``dim``, without importing Brian2), a string (``"-65*mV"``, ``"-65 mV"``), or a plain number
  only when the unit is dimensionless, the number is 0, or ``units=False`` says "plain numbers
  are SI". Anything else raises a :class:`UnitError` naming the parameter and the unit.
* :func:`check_model` walks a :class:`~neuroplex.ir.ModelIR`'s expressions: sums and
  comparisons of like dimensions, ``d x/dt`` in ``[x]/[time]``, resets in the state's unit,
  arguments of ``exp``/``log``/``exprel`` dimensionless, a refractory period a time. Float
  literals inside the equations are SI constants of unknown dimension (the registered
  neurons fold e.g. ``0.040`` volts into rate functions) and are not held against them;
  integers and rationals (``2*v``, ``-v``) are dimensionless.

Brian2's unit names are understood (``mV``, ``ms``, ``nS``, ``pF``, ``nA``, ``uS``,
``Mohm``, ``umetre``, ``cm2``, ``Hz``, ...), as are full names (``volt``, ``msecond``).
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Iterable, Mapping, Union

import sympy

from .errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    from .ir import ModelIR

BASE = ("metre", "kilogram", "second", "amp", "kelvin", "mole", "candela")


class UnitError(ModelError):
    """A value or an equation whose units do not fit (Brian2's ``DimensionMismatchError``)."""


@dataclass(frozen=True)
class Dimension:
    """Exponents of the seven SI base units (m, kg, s, A, K, mol, cd)."""

    powers: tuple[Fraction, ...] = (Fraction(0),) * 7

    def __mul__(self, other: "Dimension") -> "Dimension":
        return Dimension(tuple(a + b for a, b in zip(self.powers, other.powers)))

    def __truediv__(self, other: "Dimension") -> "Dimension":
        return Dimension(tuple(a - b for a, b in zip(self.powers, other.powers)))

    def __pow__(self, exponent: int | Fraction) -> "Dimension":
        return Dimension(tuple(a * Fraction(exponent) for a in self.powers))

    @property
    def dimensionless(self) -> bool:
        return not any(self.powers)

    def __str__(self) -> str:
        return unit_name(self)


DIMENSIONLESS = Dimension()


def _base(i: int) -> Dimension:
    return Dimension(tuple(Fraction(int(k == i)) for k in range(7)))


_M, _KG, _S, _A = _base(0), _base(1), _base(2), _base(3)
_V = _M**2 * _KG / _S**3 / _A
#: named coherent SI units (scale 1) and their dimensions, in the order names are printed
NAMED: dict[str, Dimension] = {
    "volt": _V, "second": _S, "amp": _A, "siemens": _A / _V, "ohm": _V / _A, "farad": _A * _S / _V,
    "hertz": _S ** -1, "coulomb": _A * _S, "joule": _V * _A * _S, "watt": _V * _A, "newton": _KG * _M / _S**2,
    "metre": _M, "kilogram": _KG, "kelvin": _base(4), "mole": _base(5), "candela": _base(6),
}
#: mole per litre: 1000 mol/m**3 in SI, as Brian2's ``molar`` (``mM``/``mmolar`` = 1 mol/m**3)
_MOLAR = (1e3, _base(5) / _M**3)
_SYMBOLS = {"volt": "V", "second": "s", "amp": "A", "siemens": "S", "farad": "F", "hertz": "Hz",
            "coulomb": "C", "joule": "J", "watt": "W", "newton": "N", "metre": "m", "mole": "mol",
            "kelvin": "K"}
_PREFIXES = {"p": 1e-12, "n": 1e-9, "u": 1e-6, "m": 1e-3, "c": 1e-2, "k": 1e3, "M": 1e6, "G": 1e9,
             "f": 1e-15}


def _table() -> dict[str, tuple[float, Dimension]]:
    units: dict[str, tuple[float, Dimension]] = {}
    for name, dim in NAMED.items():
        names = [name] + ([_SYMBOLS[name]] if name in _SYMBOLS else [])
        for base in names:
            units[base] = (1.0, dim)
            for prefix, scale in _PREFIXES.items():
                if name in ("kilogram",):
                    continue
                units.setdefault(prefix + base, (scale, dim))
    units.update({"meter": (1.0, _M), "ampere": (1.0, _A), "gram": (1e-3, _KG), "kg": (1.0, _KG), "g": (1e-3, _KG),
                  "ohm": (1.0, NAMED["ohm"]), "Ohm": (1.0, NAMED["ohm"]), "mohm": (1e-3, NAMED["ohm"]),
                  "kohm": (1e3, NAMED["ohm"]), "Mohm": (1e6, NAMED["ohm"]), "Gohm": (1e9, NAMED["ohm"]),
                  "litre": (1e-3, _M**3), "liter": (1e-3, _M**3), "l": (1e-3, _M**3),
                  "dimensionless": (1.0, DIMENSIONLESS)})
    for base in ("molar", "M"):  # not coherent SI: every prefix scales 1000 mol/m**3
        units[base] = _MOLAR
        for prefix, scale in _PREFIXES.items():
            units[prefix + base] = (float(f"{scale * _MOLAR[0]:.12g}"), _MOLAR[1])
    for length, scale in (("metre", 1.0), ("meter", 1.0), ("m", 1.0), ("cm", 1e-2), ("cmetre", 1e-2),
                          ("mm", 1e-3), ("mmetre", 1e-3), ("um", 1e-6), ("umetre", 1e-6)):
        units[length + "2"] = (scale**2, _M**2)
        units[length + "3"] = (scale**3, _M**3)
    return units


#: every unit name understood: name -> (value in SI, dimension)
UNITS: dict[str, tuple[float, Dimension]] = _table()


def unit_name(dim: Dimension) -> str:
    """A readable unit for ``dim``: a named unit (``volt``, ``siemens``), an inverse
    (``1/volt``), a named unit over a power of metre (``siemens/metre**2``) or over a second
    (``volt/second``), else base units."""
    if dim.dimensionless:
        return "1"
    for name, d in NAMED.items():
        if d == dim:
            return name
    for name, d in NAMED.items():
        if d ** -1 == dim:
            return f"1/{name}"
    for name, d in NAMED.items():
        for k in (2, 3):
            if d / _M**k == dim:
                return f"{name}/metre**{k}"
        if d / _S == dim:
            return f"{name}/second"
    parts = []
    for name, power in zip(BASE, dim.powers):
        if power:
            p = int(power) if power.denominator == 1 else float(power)
            parts.append(name if p == 1 else f"{name}**{p}")
    return " * ".join(parts)


# ------------------------------------------------------------------- quantities
Number = Union[int, float]


class Quantity:
    """A value (number, numpy array or torch tensor) in SI together with its dimension.

    ``from neuroplex.units import mV, ms``; ``-65*mV`` is ``Quantity(-0.065, volt)``. Arithmetic
    keeps dimensions (``+``/``-`` need like dimensions); :attr:`si` is the SI value."""

    __array_priority__ = 1000  # numpy arrays defer to our __rmul__

    def __init__(self, si: object, dim: Dimension = DIMENSIONLESS):
        self.si = si
        self.dim = dim

    def _other(self, other: object) -> "Quantity":
        return other if isinstance(other, Quantity) else Quantity(other, DIMENSIONLESS)

    def __mul__(self, other: object) -> "Quantity":
        o = self._other(other)
        return Quantity(self.si * o.si, self.dim * o.dim)  # type: ignore[operator]

    __rmul__ = __mul__

    def __truediv__(self, other: object) -> "Quantity":
        o = self._other(other)
        return Quantity(self.si / o.si, self.dim / o.dim)  # type: ignore[operator]

    def __rtruediv__(self, other: object) -> "Quantity":
        return self._other(other) / self

    def __pow__(self, exponent: int) -> "Quantity":
        return Quantity(self.si ** exponent, self.dim ** Fraction(exponent))  # type: ignore[operator]

    def __neg__(self) -> "Quantity":
        return Quantity(-self.si, self.dim)  # type: ignore[operator]

    def _same(self, other: object, op: str) -> "Quantity":
        o = self._other(other)
        if o.dim != self.dim:
            raise UnitError(f"cannot {op} {unit_name(self.dim)} and {unit_name(o.dim)}")
        return o

    def __add__(self, other: object) -> "Quantity":
        return Quantity(self.si + self._same(other, "add").si, self.dim)  # type: ignore[operator]

    __radd__ = __add__

    def __sub__(self, other: object) -> "Quantity":
        return Quantity(self.si - self._same(other, "subtract").si, self.dim)  # type: ignore[operator]

    def __rsub__(self, other: object) -> "Quantity":
        return -(self - other)

    def __float__(self) -> float:
        if not self.dim.dimensionless:
            raise UnitError(f"{self} has units; use .si for its value in SI")
        return float(self.si)  # type: ignore[arg-type]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Quantity) and other.dim == self.dim and bool(other.si == self.si)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{self.si!r} {unit_name(self.dim)}" if not self.dim.dimensionless else f"{self.si!r}"


#: what a parameter value may be given as: a Quantity (ours or Brian2's), a string or a number
QuantityLike = Union[Quantity, str, float, int]


def _export_units() -> dict[str, Quantity]:
    return {name: Quantity(scale, dim) for name, (scale, dim) in UNITS.items() if name.isidentifier()}


_QUANTITIES = _export_units()
mV, ms, nS, pF, nA, pA, uS = (_QUANTITIES[n] for n in ("mV", "ms", "nS", "pF", "nA", "pA", "uS"))
volt, second, siemens, amp, farad, ohm, Hz = (_QUANTITIES[n] for n in ("volt", "second", "siemens", "amp",
                                                                        "farad", "ohm", "Hz"))
Mohm, metre, cm2, um2, msecond, mvolt = (_QUANTITIES[n] for n in ("Mohm", "metre", "cm2", "um2", "msecond", "mvolt"))


def unit(text: str) -> Quantity:
    """A unit string (``"volt"``, ``"mV"``, ``"farad/meter**2"``, ``"1/second"``, ``"1"``) as
    a :class:`Quantity` of its SI scale."""
    return parse_quantity(text or "1", f"unit {text!r}")


_NUMBER_SPACE = re.compile(r"(?<=[0-9.])\s+(?=[A-Za-z])")


def parse_quantity(text: str, where: str = "") -> Quantity:
    """``"-65*mV"``, ``"-65 mV"``, ``"0.04/mV"``, ``"20 Hz"``, ``"1"`` as a :class:`Quantity`."""
    source = _NUMBER_SPACE.sub("*", text.strip())
    try:
        tree = ast.parse(source, mode="eval")
        return _evaluate(tree.body)
    except (SyntaxError, KeyError, ValueError, TypeError, ZeroDivisionError) as exc:
        raise UnitError(f"cannot read {text!r}{' as ' + where if where else ''}: "
                        f"{exc if not isinstance(exc, KeyError) else 'unknown unit ' + str(exc)}") from None


def _evaluate(node: ast.AST) -> Quantity:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return Quantity(node.value)
    if isinstance(node, ast.Name):
        scale, dim = UNITS[node.id]
        return Quantity(scale, dim)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _evaluate(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.Div):
            return left / right
        if isinstance(node.op, ast.Pow) and right.dim.dimensionless:
            exponent = Fraction(str(right.si)).limit_denominator(12)
            return Quantity(left.si ** float(exponent), left.dim ** exponent)  # type: ignore[operator]
    raise ValueError(f"unsupported syntax {ast.unparse(node)!r} (numbers, unit names, *, /, ** only)")


def unit_symbols(expr: sympy.Basic, reserved: Iterable[str] = ()) -> dict[sympy.Symbol, Quantity]:
    """The free symbols of ``expr`` that name units (``mV`` in ``v > -55*mV``), except the
    ``reserved`` names (the model's own symbols win over unit names, as in Brian2)."""
    taken = set(reserved)
    return {sym: Quantity(*UNITS[sym.name]) for sym in expr.free_symbols
            if sym.name in UNITS and sym.name not in taken and sym.name.isidentifier()}


def in_si(expr: sympy.Basic, reserved: Iterable[str] = ()) -> sympy.Basic:
    """``expr`` with unit names replaced by their SI values (``-55*mV`` -> ``-0.055``)."""
    units = unit_symbols(expr, reserved)
    return expr.xreplace({sym: sympy.Float(q.si) for sym, q in units.items()}) if units else expr


def dimension(text: str, where: str = "") -> Dimension:
    """The dimension of a unit string; a :class:`UnitError` naming ``where`` if unreadable."""
    return parse_quantity(text or "1", where or f"unit {text!r}").dim


def _brian_dim(value: object) -> Dimension | None:
    """The dimension of a Brian2 quantity (read from its ``dim._dims``), without importing Brian2."""
    dims = getattr(getattr(value, "dim", None), "_dims", None)
    if dims is None:
        return None
    return Dimension(tuple(Fraction(float(p)).limit_denominator(12) for p in dims))


def as_quantity(value: object, name: str) -> Quantity:
    """``value`` as a :class:`Quantity`: ours, a Brian2 quantity, a string (``"-65 mV"``), or
    a plain number (dimensionless)."""
    if isinstance(value, Quantity):
        return value
    if isinstance(value, str):
        return parse_quantity(value, f"a value of {name}")
    brian = _brian_dim(value)
    if brian is not None:
        return Quantity(float(value), brian)  # type: ignore[arg-type]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Quantity(float(value), DIMENSIONLESS)
    raise UnitError(f"{name}: cannot use {value!r} as a value (give a quantity, e.g. -65*mV, or a string, '-65 mV')")


def to_si(value: object, unit_text: str, name: str, *, units: bool = True) -> float:
    """``value`` of parameter ``name`` (declared in ``unit_text``) as an SI float.

    Accepts a :class:`Quantity`, a Brian2 quantity, a string (``"-65 mV"``) of the right
    dimension, or a plain number when ``unit_text`` is dimensionless, the number is 0, or
    ``units=False`` (then it is taken as SI). Otherwise :class:`UnitError`, naming ``name``,
    the unit expected and how to write it."""
    want = dimension(unit_text, f"the unit of {name}")
    if isinstance(value, str):
        value = parse_quantity(value, f"a value of {name}")
    brian = _brian_dim(value)
    if brian is not None:
        value = Quantity(float(value), brian)  # type: ignore[arg-type]
    if isinstance(value, Quantity):
        if value.dim != want and not (value.dim.dimensionless and (not units or value.si == 0)):
            raise UnitError(f"{name} expects {unit_name(want)}; got {_show(value)}, "
                            f"{'in ' + unit_name(value.dim) if not value.dim.dimensionless else 'dimensionless'}")
        return float(value.si)  # type: ignore[arg-type]
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise UnitError(f"{name} expects {unit_name(want)}; got {value!r}")
    number = float(value)  # type: ignore[arg-type]
    if want.dimensionless or number == 0 or not units:
        return number
    example = _example(number, want)
    text = f"{example} or '{example.replace('*', ' ')}'" if not example.startswith("'") else example
    raise UnitError(f"{name} expects {unit_name(want)}; got plain {_fmt(number)}: write {text} "
                    f"(or units=False to give SI numbers)")


def _fmt(x: float) -> str:
    return f"{x:g}"


def _show(q: Quantity) -> str:
    if q.dim.dimensionless:
        return _fmt(float(q.si))  # type: ignore[arg-type]
    usual = _USUAL.get(unit_name(q.dim))
    scale = UNITS[usual][0] if usual else 1.0
    return f"{_fmt(float(q.si) / scale)} {usual or unit_name(q.dim)}"  # type: ignore[arg-type]


#: the unit a user most likely meant for a plain number, by dimension
_USUAL = {"volt": "mV", "second": "ms", "siemens": "nS", "farad": "pF", "amp": "nA", "ohm": "Mohm", "hertz": "Hz"}


def _example(number: float, dim: Dimension) -> str:
    """``-65*mV`` for -65 given for a voltage; ``2*ms`` for 0.002 (a number below 1 is
    probably already in SI)."""
    name = unit_name(dim)
    usual = _USUAL.get(name)
    if usual is None:
        return f"{_fmt(number)}*{name}" if name.isidentifier() else f"'{_fmt(number)} {name}'"
    scale = UNITS[usual][0]
    if (scale < 1 and abs(number) < 1) or (scale > 1 and abs(number) >= scale):
        number = number / scale
    return f"{_fmt(number)}*{usual}"


def pretty(value: float, unit_text: str) -> str:
    """An SI value in the unit people write it in: ``-0.06, "volt"`` -> ``-60 mV``,
    ``2.81e-10, "farad"`` -> ``281 pF``; other units as ``value unit``."""
    dim = dimension(unit_text)
    if dim.dimensionless:
        return _fmt(value)
    name = unit_name(dim)
    usual = {**_USUAL, "1/volt": "1/mV", "siemens/metre**2": "mS/cm2", "farad/metre**2": "uF/cm2",
             "amp/metre**2": "uA/cm2"}.get(name)
    return f"{_fmt(value / float(parse_quantity(usual).si))} {usual}" if usual else f"{_fmt(value)} {name}"


# -------------------------------------------------------- dimension of equations

def expression_dimension(expr: sympy.Basic, dims: Mapping[str, Dimension | None], where: str) -> Dimension | None:
    """The dimension of ``expr`` given the dimensions of its symbols (``None``: unknown,
    because it is scaled by a float literal). Raises :class:`UnitError` naming ``where`` at
    the first sum, comparison or function argument whose dimensions do not fit."""
    return _Walker(dims, where).dim(expr)


class _Walker:
    _FREE_ARG = (sympy.exp, sympy.log, sympy.sin, sympy.cos, sympy.tan, sympy.tanh, sympy.sinh, sympy.cosh)

    def __init__(self, dims: Mapping[str, Dimension | None], where: str):
        self.dims, self.where = dims, where

    def fail(self, message: str, expr: sympy.Basic) -> UnitError:
        return UnitError(f"{self.where}: {message} in {expr}")

    def same(self, parts: Iterable[sympy.Basic], expr: sympy.Basic, op: str) -> Dimension | None:
        known = None
        for part in parts:
            d = self.dim(part)
            if d is None:
                continue
            if known is not None and d != known:
                raise self.fail(f"cannot {op} {unit_name(known)} and {unit_name(d)}", expr)
            known = d
        return known

    def dimensionless_args(self, expr: sympy.Basic) -> Dimension:
        for arg in expr.args:
            d = self.dim(arg)
            if d is not None and not d.dimensionless:
                raise self.fail(f"{type(expr).__name__} of a quantity in {unit_name(d)} (must be dimensionless)", expr)
        return DIMENSIONLESS

    def dim(self, expr: sympy.Basic) -> Dimension | None:  # noqa: C901 - one case per node type
        if isinstance(expr, sympy.Symbol):
            if expr.name not in self.dims:
                raise self.fail(f"symbol {expr.name} has no unit", expr)
            return self.dims[expr.name]
        if isinstance(expr, (sympy.Integer, sympy.Rational)) or expr in (sympy.pi, sympy.E):
            return DIMENSIONLESS
        if isinstance(expr, sympy.Number):  # a float literal: an SI constant of unrecorded unit
            return None
        if isinstance(expr, (sympy.logic.boolalg.BooleanAtom,)):
            return DIMENSIONLESS
        if isinstance(expr, sympy.Add):
            return self.same(expr.args, expr, "add")
        if isinstance(expr, sympy.Mul):
            out = DIMENSIONLESS
            for arg in expr.args:
                d = self.dim(arg)
                if d is None:
                    return self._check_rest(expr)
                out = out * d
            return out
        if isinstance(expr, sympy.Pow):
            base, exponent = expr.args
            e = self.dim(exponent)
            if e is not None and not e.dimensionless:
                raise self.fail(f"exponent in {unit_name(e)}", expr)
            b = self.dim(base)
            if b is None:
                return None
            if isinstance(exponent, sympy.Rational):
                return b ** Fraction(int(exponent.p), int(exponent.q))
            if not b.dimensionless:
                raise self.fail(f"{unit_name(b)} raised to a non-constant power", expr)
            return DIMENSIONLESS
        if isinstance(expr, sympy.Rel):
            self.same((expr.lhs, expr.rhs), expr, "compare")
            return DIMENSIONLESS
        if isinstance(expr, (sympy.And, sympy.Or, sympy.Not)):
            for arg in expr.args:
                self.dim(arg)
            return DIMENSIONLESS
        if isinstance(expr, sympy.Piecewise):
            for _, cond in expr.args:
                self.dim(cond)
            return self.same([e for e, _ in expr.args], expr, "choose between")
        if isinstance(expr, (sympy.Abs, sympy.floor, sympy.ceiling)):
            return self.dim(expr.args[0])
        if isinstance(expr, (sympy.Min, sympy.Max)):
            return self.same(expr.args, expr, "compare")
        if isinstance(expr, (sympy.sign, sympy.Heaviside)):
            self.dim(expr.args[0])
            return DIMENSIONLESS
        if isinstance(expr, sympy.Function) and expr.func.__name__ == "sqrt":
            d = self.dim(expr.args[0])
            return None if d is None else d ** Fraction(1, 2)
        if isinstance(expr, sympy.Function):  # exp, log, exprel, sin, ...: dimensionless in and out
            return self.dimensionless_args(expr)
        raise self.fail(f"cannot work out the unit of {type(expr).__name__}", expr)

    def _check_rest(self, expr: sympy.Basic) -> None:
        """A product with a float literal: still check inside every factor."""
        for arg in expr.args:
            self.dim(arg)
        return None


def model_dimensions(model: "ModelIR") -> dict[str, Dimension | None]:
    """The dimension of every symbol of ``model``: states, parameters, time, inputs (given
    in ``metadata["input_units"]``, else solved from the first equation they enter) and
    assignments (worked out in order; ``None`` when a float literal scales them)."""
    dims: dict[str, Dimension | None] = {model.time.name: dimension(model.time_unit or "second", f"time unit of model {model.name!r}")}
    for s in model.states:
        dims[s.name] = dimension(s.unit, f"unit of state {s.name!r} of model {model.name!r}")
    for p in model.parameters:
        dims[p.name] = dimension(p.unit, f"unit of parameter {p.name!r} of model {model.name!r}")
    given = dict(model.metadata.get("input_units", {}) or {}) if isinstance(model.metadata, dict) else {}
    for name in model.inputs:
        if name in given:
            dims[name] = dimension(given[name], f"unit of input {name!r} of model {model.name!r}")
    pending = [n for n in model.inputs if n not in dims]
    for key, expr in model.assignments.items():
        dims[key] = _solve_inputs(model, expr, dims, pending, f"{key} of model {model.name!r}", None)
    for s in model.states:
        _solve_inputs(model, model.derivatives[s.name], dims, pending, f"d{s.name}/dt of model {model.name!r}",
                      _ratio(dims[s.name], dims[model.time.name]))
    for name in pending:  # enters no equation: dimensionless
        dims.setdefault(name, DIMENSIONLESS)
    return dims


def _ratio(a: Dimension | None, b: Dimension | None) -> Dimension | None:
    return None if a is None or b is None else a / b


def _solve_inputs(model: "ModelIR", expr: sympy.Basic, dims: dict[str, Dimension | None], pending: list[str],
                  where: str, want: Dimension | None) -> Dimension | None:
    """The dimension of ``expr``; an input not yet known takes the dimension that makes the
    sum it appears in consistent (``R_m*I`` next to ``E_l`` gives ``I`` amp)."""
    for name in list(pending):
        if not isinstance(expr, sympy.Basic) or sympy.Symbol(name) not in expr.free_symbols:
            continue
        found = _input_dimension(expr, name, dims, want)
        if found is not None:
            dims[name] = found
            pending.remove(name)
    if not isinstance(expr, sympy.Basic):
        return DIMENSIONLESS
    known = {k: v for k, v in dims.items()}
    for name in pending:
        known.setdefault(name, DIMENSIONLESS)
    return expression_dimension(expr, known, where) if not any(sympy.Symbol(n) in expr.free_symbols
                                                                  for n in pending) else None


def _input_dimension(expr: sympy.Basic, name: str, dims: Mapping[str, Dimension | None],
                     want: Dimension | None) -> Dimension | None:
    """Solve ``[name]`` from a term of ``expr`` that is linear in it: the other terms give
    the sum's dimension, the coefficient of ``name`` divides it."""
    sym = sympy.Symbol(name)
    target = want
    body = expr
    if isinstance(expr, sympy.Mul):  # (sum)/tau: the sum's dimension is want*[tau]
        rest = [a for a in expr.args if sym not in a.free_symbols]
        inner = [a for a in expr.args if sym in a.free_symbols]
        if len(inner) == 1 and target is not None:
            try:
                factor = expression_dimension(sympy.Mul(*rest), {**dims}, "")
            except UnitError:
                return None
            if factor is None:
                return None
            target, body = target / factor, inner[0]
    terms = body.args if isinstance(body, sympy.Add) else (body,)
    if target is None:
        for term in terms:
            if sym not in term.free_symbols:
                try:
                    target = expression_dimension(term, dims, "")
                except UnitError:
                    target = None
                if target is not None:
                    break
    if target is None:
        return None
    for term in terms:
        if sym in term.free_symbols:
            coeff = sympy.simplify(term / sym)
            if sym in coeff.free_symbols:
                return None
            try:
                c = expression_dimension(coeff, dims, "")
            except UnitError:
                return None
            return None if c is None else target / c
    return None


def check_model(model: "ModelIR") -> dict[str, Dimension | None]:
    """Check that ``model``'s equations are dimensionally consistent; returns the dimension
    of every symbol. Raises :class:`UnitError` naming the model, the equation and the
    mismatch (e.g. ``dv/dt has unit volt, expected volt/second``)."""
    dims = model_dimensions(model)
    time = dims[model.time.name]
    name = model.name

    def expect(where: str, expr: object, want: Dimension | None) -> None:
        if not isinstance(expr, sympy.Basic):
            return
        got = expression_dimension(expr, dims, f"model {name!r}, {where}")
        if want is not None and got is not None and got != want and not expr.is_zero:
            raise UnitError(f"model {name!r}, {where}: has unit {unit_name(got)}, expected {unit_name(want)} "
                            f"({expr})")

    for s in model.states:
        expect(f"d{s.name}/dt", model.derivatives.get(s.name), _ratio(dims[s.name], time))
        expect(f"initial value of {s.name}", s.initial, dims[s.name])
    for event in model.events:
        expect(f"threshold of event {event.name!r}", event.trigger, None)
        for key, expr in event.assignments.items():
            expect(f"reset of {key} (event {event.name!r})", expr, dims.get(key))
    ref = model.refractory
    if ref is not None:
        is_condition = isinstance(ref, (sympy.Rel, sympy.And, sympy.Or, sympy.Not))
        expect("refractory period", ref, None if is_condition else time)
    return dims


__all__ = ["QuantityLike", "Dimension", "DIMENSIONLESS", "Quantity", "UnitError", "UNITS", "NAMED", "unit", "unit_name", "pretty",
           "parse_quantity", "as_quantity", "dimension", "unit_symbols", "in_si", "to_si", "expression_dimension", "model_dimensions", "check_model",
           "mV", "ms", "nS", "pF", "nA", "pA", "uS", "volt", "second", "siemens", "amp", "farad", "ohm", "Hz",
           "Mohm", "metre", "cm2", "um2", "msecond", "mvolt"]
