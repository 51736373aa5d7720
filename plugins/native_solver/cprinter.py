"""SBML expressions (sympy) printed as C99 with the torch path's semantics.

:class:`CPrinter` is sympy's :class:`~sympy.printing.c.C99CodePrinter` with the choices the
torch printer (:class:`neuroplex.codegen.TorchPrinter`) makes, so a compiled right-hand side
computes what the torch one computes: numeric sub-expressions folded to doubles, ``Piecewise``
as nested ``?:`` ending in NaN where no piece holds, relations and logic as C's (0/1 values),
``Min``/``Max`` propagating NaN (``torch.minimum``), ``Mod`` floored, small integer powers as
products, ``factorial``/``gamma`` through ``lgamma`` (as :mod:`neuroplex.runtime`), the
reciprocal trigonometric functions as ``1/cos`` etc. An expression it cannot print raises
:class:`NotCompilable` naming it (the solver then refuses the model with that reason).
"""
from __future__ import annotations

import math
from typing import Mapping

import sympy
from sympy.printing.c import C99CodePrinter

from neuroplex.functions import EXPREL_C
from neuroplex.ir import exprel

#: C helpers the printed expressions call (NaN-propagating min/max as torch.minimum/maximum)
PRELUDE = """
static inline double np_min(double a, double b) { return (a != a || b != b) ? NAN : (a < b ? a : b); }
static inline double np_max(double a, double b) { return (a != a || b != b) ? NAN : (a > b ? a : b); }
static inline double np_mod(double a, double b) { return a - b * floor(a / b); }
static inline double np_sign(double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : x); }
static inline double np_factorial(double x) { return exp(lgamma(x + 1.0)) * (x < -0.0 ? NAN : 1.0); }
""" + EXPREL_C.format(real="double", fabs="fabs", expm1="expm1", small="1e-06", one="1.0", two="2.0")

_RECIPROCAL = {sympy.sec: "cos", sympy.csc: "sin", sympy.cot: "tan", sympy.sech: "cosh", sympy.csch: "sinh",
               sympy.coth: "tanh"}
_OF_RECIPROCAL = {sympy.asec: "acos", sympy.acsc: "asin", sympy.acot: "atan", sympy.asech: "acosh",
                  sympy.acsch: "asinh", sympy.acoth: "atanh"}
_PLAIN = {sympy.exp: "exp", sympy.sin: "sin", sympy.cos: "cos", sympy.tan: "tan", sympy.asin: "asin",
          sympy.acos: "acos", sympy.atan: "atan", sympy.sinh: "sinh", sympy.cosh: "cosh", sympy.tanh: "tanh",
          sympy.asinh: "asinh", sympy.acosh: "acosh", sympy.atanh: "atanh", sympy.Abs: "fabs",
          sympy.floor: "floor", sympy.ceiling: "ceil", sympy.sign: "np_sign", sympy.erf: "erf",
          sympy.factorial: "np_factorial", exprel: "np_exprel"}


class NotCompilable(ValueError):
    """An expression the C printer has no translation for."""


def c_number(value: float) -> str:
    """A double literal (``NAN``/``INFINITY`` for the non-finite values)."""
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INFINITY" if value > 0 else "(-INFINITY)"
    return f"({value!r})" if value < 0 else repr(value)


def _evaluate_number(e: sympy.Basic) -> float:
    if e is sympy.nan:
        return math.nan
    if e in (sympy.oo, sympy.zoo):
        return math.inf
    if e == -sympy.oo:
        return -math.inf
    try:
        value = complex(e.evalf(17))
    except (TypeError, ValueError):
        return math.nan
    return value.real if abs(value.imag) < 1e-300 else math.nan


class CPrinter(C99CodePrinter):
    """C99 source of one expression; ``names`` maps symbol names to C expressions."""

    def __init__(self, names: Mapping[str, str]):
        super().__init__()
        self.names = dict(names)

    def __call__(self, expr: sympy.Basic) -> str:
        return self._print(sympy.sympify(expr))

    def _print(self, expr: object, **kwargs: object) -> str:
        if isinstance(expr, bool):
            return "1.0" if expr else "0.0"
        if isinstance(expr, (int, float)):
            return c_number(float(expr))
        if isinstance(expr, (sympy.logic.boolalg.BooleanTrue, sympy.logic.boolalg.BooleanFalse)):
            return "1.0" if expr == sympy.true else "0.0"
        if (isinstance(expr, sympy.Basic) and getattr(expr, "is_number", False) and not expr.free_symbols
                and not isinstance(expr, sympy.Piecewise)):
            return c_number(_evaluate_number(expr))
        return super()._print(expr, **kwargs)

    def _print_Symbol(self, expr: sympy.Symbol) -> str:
        try:
            return self.names[expr.name]
        except KeyError:
            raise NotCompilable(f"undefined symbol {expr.name!r}") from None

    def _print_Pow(self, expr: sympy.Pow) -> str:
        base, exp = expr.args
        b = self._print(base)
        if not (base.is_Symbol or base.is_Function or base.is_Number):
            b = f"({b})"
        if exp == sympy.Rational(1, 2):
            return f"sqrt({b})"
        if exp == -1:
            return f"(1.0 / {b})"
        if exp.is_Integer and 1 < int(exp) <= 4:
            return "(" + " * ".join([b] * int(exp)) + ")"
        return f"pow({b}, {self._print(exp)})"

    def _print_Piecewise(self, expr: sympy.Piecewise) -> str:
        out = "NAN"
        for value, cond in reversed(expr.args):
            if cond == sympy.true:
                out = self._print(value)
            elif cond == sympy.false:
                continue
            else:
                out = f"(({self._print(cond)}) ? ({self._print(value)}) : ({out}))"
        return out

    def _print_Relational(self, expr: sympy.core.relational.Relational) -> str:
        return f"(({self._print(expr.lhs)}) {expr.rel_op} ({self._print(expr.rhs)}))"

    def _logic(self, op: str, args: tuple[sympy.Basic, ...]) -> str:
        return "(" + f" {op} ".join(f"({self._print(a)} != 0.0)" for a in args) + ")"

    def _print_And(self, expr: sympy.And) -> str:
        return self._logic("&&", expr.args)

    def _print_Or(self, expr: sympy.Or) -> str:
        return self._logic("||", expr.args)

    def _print_Xor(self, expr: sympy.Xor) -> str:
        out = f"({self._print(expr.args[0])} != 0.0)"
        for a in expr.args[1:]:
            out = f"({out} != ({self._print(a)} != 0.0))"
        return out

    def _print_Not(self, expr: sympy.Not) -> str:
        return f"(!({self._print(expr.args[0])} != 0.0))"

    def _fold(self, fn: str, args: tuple[sympy.Basic, ...]) -> str:
        out = self._print(args[0])
        for a in args[1:]:
            out = f"{fn}({out}, {self._print(a)})"
        return out

    def _print_Min(self, expr: sympy.Min) -> str:
        return self._fold("np_min", expr.args)

    def _print_Max(self, expr: sympy.Max) -> str:
        return self._fold("np_max", expr.args)

    def _print_Mod(self, expr: sympy.Mod) -> str:
        return f"np_mod({self._print(expr.args[0])}, {self._print(expr.args[1])})"

    def _print_log(self, expr: sympy.log) -> str:
        if len(expr.args) == 2:
            return f"(log({self._print(expr.args[0])}) / log({self._print(expr.args[1])}))"
        return f"log({self._print(expr.args[0])})"

    def _print_sign(self, expr: sympy.sign) -> str:
        return f"np_sign({self._print(expr.args[0])})"

    def _print_gamma(self, expr: sympy.gamma) -> str:
        return f"exp(lgamma({self._print(expr.args[0])}))"

    def _print_Function(self, expr: sympy.Function) -> str:
        for cls, name in _RECIPROCAL.items():
            if isinstance(expr, cls):
                return f"(1.0 / {name}({self._print(expr.args[0])}))"
        for cls, name in _OF_RECIPROCAL.items():
            if isinstance(expr, cls):
                return f"{name}(1.0 / {self._print(expr.args[0])})"
        for cls, name in _PLAIN.items():
            if isinstance(expr, cls):
                return f"{name}({', '.join(self._print(a) for a in expr.args)})"
        raise NotCompilable(f"no C translation of {type(expr).__name__} in {expr}")

    def _print_not_supported(self, expr: object) -> str:
        raise NotCompilable(f"no C translation of {type(expr).__name__} in {expr}")

    emptyPrinter = _print_not_supported
