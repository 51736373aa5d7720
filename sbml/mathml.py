"""SBML math (libsbml ``ASTNode`` trees) to sympy expressions.

Covers the core MathML subset of SBML Level 2 and 3: arithmetic, ``power``/``root``/``log``
with their qualifiers, trigonometric and hyperbolic functions (with reciprocals and
inverses), ``piecewise``, relational (n-ary, chained) and logical operators (``and``,
``or``, ``xor``, ``not``, ``implies``), ``min``/``max``/``rem``/``quotient`` (L3v2), the
constants ``pi``, ``exponentiale``, ``true``, ``false``, ``infinity``, ``notanumber``, the
csymbols ``time``, ``avogadro`` and ``rateOf``, and calls of function definitions (inlined).

Values and truth values are kept apart: a boolean used as a number becomes
``Piecewise((1, b), (0, True))`` and a number used as a condition becomes ``Ne(x, 0)``,
as SBML's MathML semantics prescribe. The csymbol ``delay`` raises
:class:`~neuroplex.sbml.errors.SBMLImportError` naming the element it appears in.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import libsbml
import sympy
from sympy.logic.boolalg import Boolean, BooleanFalse, BooleanTrue

from .errors import SBMLImportError

#: value of the ``avogadro`` csymbol fixed by the SBML Level 3 specification
AVOGADRO = 6.02214179e23


class RateOf(sympy.Function):
    """``rateOf(x)``: the time derivative of ``x``; the reader replaces it by the model's
    right-hand side (chain rule through assignment rules)."""

    nargs = 1


def quotient(a: Any, b: Any) -> Any:
    """SBML L3v2 ``quotient(a, b)``: ``a/b`` rounded towards zero."""
    ratio = _divide(a, b)
    return sympy.sign(ratio) * sympy.floor(sympy.Abs(ratio))


def rem(a: Any, b: Any) -> Any:
    """SBML L3v2 ``rem(a, b)``: the remainder with the sign of ``a`` (C ``fmod``)."""
    return a - b * quotient(a, b)


_UNARY: dict[int, Callable[[Any], Any]] = {
    libsbml.AST_FUNCTION_ABS: sympy.Abs,
    libsbml.AST_FUNCTION_CEILING: sympy.ceiling,
    libsbml.AST_FUNCTION_FLOOR: sympy.floor,
    libsbml.AST_FUNCTION_EXP: sympy.exp,
    libsbml.AST_FUNCTION_LN: sympy.log,
    libsbml.AST_FUNCTION_FACTORIAL: sympy.factorial,
    libsbml.AST_FUNCTION_SIN: sympy.sin,
    libsbml.AST_FUNCTION_COS: sympy.cos,
    libsbml.AST_FUNCTION_TAN: sympy.tan,
    libsbml.AST_FUNCTION_SEC: sympy.sec,
    libsbml.AST_FUNCTION_CSC: sympy.csc,
    libsbml.AST_FUNCTION_COT: sympy.cot,
    libsbml.AST_FUNCTION_SINH: sympy.sinh,
    libsbml.AST_FUNCTION_COSH: sympy.cosh,
    libsbml.AST_FUNCTION_TANH: sympy.tanh,
    libsbml.AST_FUNCTION_SECH: sympy.sech,
    libsbml.AST_FUNCTION_CSCH: sympy.csch,
    libsbml.AST_FUNCTION_COTH: sympy.coth,
    libsbml.AST_FUNCTION_ARCSIN: sympy.asin,
    libsbml.AST_FUNCTION_ARCCOS: sympy.acos,
    libsbml.AST_FUNCTION_ARCTAN: sympy.atan,
    libsbml.AST_FUNCTION_ARCSEC: sympy.asec,
    libsbml.AST_FUNCTION_ARCCSC: sympy.acsc,
    libsbml.AST_FUNCTION_ARCCOT: sympy.acot,
    libsbml.AST_FUNCTION_ARCSINH: sympy.asinh,
    libsbml.AST_FUNCTION_ARCCOSH: sympy.acosh,
    libsbml.AST_FUNCTION_ARCTANH: sympy.atanh,
    libsbml.AST_FUNCTION_ARCSECH: sympy.asech,
    libsbml.AST_FUNCTION_ARCCSCH: sympy.acsch,
    libsbml.AST_FUNCTION_ARCCOTH: sympy.acoth,
}

_RELATIONS: dict[int, str] = {
    libsbml.AST_RELATIONAL_EQ: "==",
    libsbml.AST_RELATIONAL_NEQ: "!=",
    libsbml.AST_RELATIONAL_GT: ">",
    libsbml.AST_RELATIONAL_GEQ: ">=",
    libsbml.AST_RELATIONAL_LT: "<",
    libsbml.AST_RELATIONAL_LEQ: "<=",
}


def is_boolean(expr: Any) -> bool:
    """A truth value (sympy's Symbol also derives from Boolean, but names a number here)."""
    return isinstance(expr, bool) or (isinstance(expr, Boolean) and not isinstance(expr, sympy.Symbol))


def as_number(expr: Any) -> sympy.Expr:
    """A truth value used as a number: 1 or 0."""
    if isinstance(expr, (BooleanTrue, bool)) and bool(expr):
        return sympy.Integer(1)
    if isinstance(expr, BooleanFalse) or expr is False:
        return sympy.Integer(0)
    if is_boolean(expr):
        return sympy.Piecewise((sympy.Integer(1), expr), (sympy.Integer(0), True))
    return expr


def as_boolean(expr: Any) -> Any:
    """A number used as a condition: true when non-zero."""
    if is_boolean(expr):
        return expr
    if expr.is_number:
        value = complex(expr.evalf())
        return sympy.true if value != 0 else sympy.false
    return sympy.Ne(expr, 0)


def relation(op: str, a: Any, b: Any) -> Any:
    """``a op b`` as a sympy relation (folded when both sides are numbers; NaN compares false)."""
    if is_boolean(a) or is_boolean(b):
        if op in ("==", "!="):
            if is_boolean(a) and is_boolean(b):
                differ = sympy.Xor(a, b)
                return sympy.Not(differ) if op == "==" else differ
        a, b = as_number(a), as_number(b)
    if a.is_number and b.is_number:
        x, y = _float(a), _float(b)
        result = {"==": x == y, "!=": x != y, ">": x > y, ">=": x >= y, "<": x < y, "<=": x <= y}[op]
        return sympy.true if result else sympy.false
    cls = {"==": sympy.Eq, "!=": sympy.Ne, ">": sympy.StrictGreaterThan, ">=": sympy.GreaterThan,
           "<": sympy.StrictLessThan, "<=": sympy.LessThan}[op]
    return cls(a, b, evaluate=False)


def _float(e: Any) -> float:
    if e is sympy.nan:
        return math.nan
    if e == sympy.oo:
        return math.inf
    if e == -sympy.oo:
        return -math.inf
    if e is sympy.zoo:
        return math.nan
    try:
        value = complex(e.evalf())
    except (TypeError, ValueError):
        return math.nan
    return value.real if value.imag == 0 else math.nan


def number(value: float) -> sympy.Expr:
    """A float as a sympy number, with infinities and NaN."""
    if math.isnan(value):
        return sympy.nan
    if math.isinf(value):
        return sympy.oo if value > 0 else -sympy.oo
    if float(value).is_integer() and abs(value) < 2**53:
        return sympy.Integer(int(value))
    return sympy.Float(value, 17)


class MathConverter:
    """Converts libsbml ASTNodes to sympy.

    ``resolve(name)`` maps an SBML id to its sympy symbol; ``functions`` maps function
    definition ids to their ``lambda`` ASTNode; ``time`` is the model's time symbol.
    """

    def __init__(self, resolve: Callable[[str], Any], functions: Mapping[str, Any], time: sympy.Symbol):
        self.resolve = resolve
        self.functions = functions
        self.time = time

    def convert(self, node: Any, where: str, *, boolean: bool | None = None,
                bindings: Mapping[str, Any] | None = None) -> Any:
        """Convert ``node``; ``where`` names the element (for errors). ``boolean=True``
        asks for a truth value, ``False`` for a number, ``None`` for whatever it is."""
        if node is None:
            raise SBMLImportError(f"{where}: no math")
        out = self._convert(node, where, dict(bindings or {}), 0)
        if boolean is True:
            return as_boolean(out)
        if boolean is False:
            return as_number(out)
        return out

    # ------------------------------------------------------------------ internals
    def _convert(self, node: Any, where: str, bind: dict[str, Any], depth: int) -> Any:  # noqa: C901
        if depth > 200:
            raise SBMLImportError(f"{where}: math nested too deeply (recursive function definitions?)")
        t = node.getType()
        kids = [node.getChild(i) for i in range(node.getNumChildren())]

        def num(i: int) -> Any:
            return as_number(self._convert(kids[i], where, bind, depth + 1))

        def nums() -> list[Any]:
            return [as_number(self._convert(k, where, bind, depth + 1)) for k in kids]

        def bools() -> list[Any]:
            return [as_boolean(self._convert(k, where, bind, depth + 1)) for k in kids]

        if t == libsbml.AST_INTEGER:
            return sympy.Integer(node.getInteger())
        if t in (libsbml.AST_REAL, libsbml.AST_REAL_E, libsbml.AST_RATIONAL):
            if t == libsbml.AST_RATIONAL:
                return sympy.Rational(node.getNumerator(), node.getDenominator())
            return number(node.getReal())
        if t == libsbml.AST_NAME:
            name = node.getName()
            if name in bind:
                return bind[name]
            return self.resolve(name)
        if t == libsbml.AST_NAME_TIME:
            return self.time
        if t == libsbml.AST_NAME_AVOGADRO:
            return sympy.Float(AVOGADRO, 17)
        if t == libsbml.AST_CONSTANT_PI:
            return sympy.pi
        if t == libsbml.AST_CONSTANT_E:
            return sympy.E
        if t == libsbml.AST_CONSTANT_TRUE:
            return sympy.true
        if t == libsbml.AST_CONSTANT_FALSE:
            return sympy.false
        if t == libsbml.AST_PLUS:
            return sympy.Add(*nums()) if kids else sympy.Integer(0)
        if t == libsbml.AST_TIMES:
            return sympy.Mul(*nums()) if kids else sympy.Integer(1)
        if t == libsbml.AST_MINUS:
            if len(kids) == 1:
                return -num(0)
            return num(0) - num(1)
        if t == libsbml.AST_DIVIDE:
            return _divide(num(0), num(1))
        if t in (libsbml.AST_POWER, libsbml.AST_FUNCTION_POWER):
            return _power(num(0), num(1))
        if t == libsbml.AST_FUNCTION_ROOT:
            if len(kids) == 1:
                return _power(num(0), sympy.Rational(1, 2))
            return _power(num(1), _divide(sympy.Integer(1), num(0)))
        if t == libsbml.AST_FUNCTION_LOG:
            if len(kids) == 1:
                return sympy.log(num(0), 10)
            return sympy.log(num(1), num(0))
        if t in _UNARY:
            if len(kids) != 1:
                raise SBMLImportError(f"{where}: {node.getName()} takes one argument, got {len(kids)}")
            return _UNARY[t](num(0))
        if t == libsbml.AST_FUNCTION_MAX:
            return sympy.Max(*nums())
        if t == libsbml.AST_FUNCTION_MIN:
            return sympy.Min(*nums())
        if t == libsbml.AST_FUNCTION_REM:
            return rem(num(0), num(1))
        if t == libsbml.AST_FUNCTION_QUOTIENT:
            return quotient(num(0), num(1))
        if t in _RELATIONS:
            vals = [self._convert(k, where, bind, depth + 1) for k in kids]
            if len(vals) < 2:
                return sympy.true
            parts = [relation(_RELATIONS[t], a, b) for a, b in zip(vals, vals[1:])]
            return sympy.And(*parts)
        if t == libsbml.AST_LOGICAL_AND:
            return sympy.And(*bools()) if kids else sympy.true
        if t == libsbml.AST_LOGICAL_OR:
            return sympy.Or(*bools()) if kids else sympy.false
        if t == libsbml.AST_LOGICAL_XOR:
            return sympy.Xor(*bools()) if kids else sympy.false
        if t == libsbml.AST_LOGICAL_NOT:
            return sympy.Not(bools()[0])
        if t == libsbml.AST_LOGICAL_IMPLIES:
            a, b = bools()
            return sympy.Or(sympy.Not(a), b)
        if t == libsbml.AST_FUNCTION_PIECEWISE:
            return self._piecewise(kids, where, bind, depth)
        if t == libsbml.AST_FUNCTION_RATE_OF:
            target = kids[0] if kids else None
            if target is None or target.getType() != libsbml.AST_NAME or target.getName() in bind:
                raise SBMLImportError(f"{where}: rateOf takes the id of a model variable")
            return RateOf(self.resolve(target.getName()))
        if t == libsbml.AST_FUNCTION_DELAY:
            raise SBMLImportError(f"{where}: the csymbol 'delay' (delay differential equations) is not supported")
        if t == libsbml.AST_FUNCTION:
            return self._call(node, kids, where, bind, depth)
        if t == libsbml.AST_LAMBDA:
            raise SBMLImportError(f"{where}: a lambda outside a function definition")
        raise SBMLImportError(f"{where}: unsupported MathML element {node.getName() or libsbml.formulaToL3String(node)!r}")

    def _piecewise(self, kids: list[Any], where: str, bind: dict[str, Any], depth: int) -> Any:
        pieces: list[tuple[Any, Any]] = []
        otherwise = None
        for i in range(0, len(kids) - 1, 2):
            value = self._convert(kids[i], where, bind, depth + 1)
            cond = as_boolean(self._convert(kids[i + 1], where, bind, depth + 1))
            pieces.append((value, cond))
        if len(kids) % 2 == 1:
            otherwise = self._convert(kids[-1], where, bind, depth + 1)
        values = [v for v, _ in pieces] + ([otherwise] if otherwise is not None else [])
        if values and all(is_boolean(v) for v in values):
            # a truth-valued piecewise (used in triggers): first true condition wins
            out = otherwise if otherwise is not None else sympy.false
            for value, cond in reversed(pieces):
                out = sympy.Or(sympy.And(cond, value), sympy.And(sympy.Not(cond), out))
            return out
        args = [(as_number(v), c) for v, c in pieces]
        args.append((as_number(otherwise) if otherwise is not None else sympy.nan, sympy.true))
        return sympy.Piecewise(*args)

    def _call(self, node: Any, kids: list[Any], where: str, bind: dict[str, Any], depth: int) -> Any:
        name = node.getName()
        lam = self.functions.get(name)
        if lam is None:
            raise SBMLImportError(f"{where}: call of undefined function {name!r}")
        n_args = lam.getNumChildren() - 1
        if n_args != len(kids):
            raise SBMLImportError(f"{where}: function {name!r} takes {n_args} argument(s), got {len(kids)}")
        args = [self._convert(k, where, bind, depth + 1) for k in kids]
        inner = {lam.getChild(i).getName(): args[i] for i in range(n_args)}
        body = lam.getChild(n_args)
        # a function body sees only its arguments (and global ids / csymbols)
        return self._convert(body, f"{where} (function {name!r})", inner, depth + 1)


def _divide(a: Any, b: Any) -> Any:
    if b.is_number and a.is_number:
        return number(_ieee_div(_float(a), _float(b)))
    return a / b


def _ieee_div(x: float, y: float) -> float:
    try:
        return x / y
    except ZeroDivisionError:
        if math.isnan(x) or x == 0:
            return math.nan
        return math.copysign(math.inf, x) * math.copysign(1.0, y)


def _power(a: Any, b: Any) -> Any:
    if a.is_number and b.is_number:
        x, y = _float(a), _float(b)
        try:
            value = math.pow(x, y)
        except OverflowError:
            value = math.inf
        except (ValueError, ZeroDivisionError):
            value = math.inf if x == 0 and y < 0 else math.nan
        return number(value)
    return sympy.Pow(a, b)
