"""Sympy expressions to torch source code.

Every free symbol is bound to a tensor before an expression runs, and purely numeric
sub-expressions are folded to Python floats at print time, so each emitted function call
receives at least one tensor. Piecewise becomes nested ``torch.where``; relations and
logic become element-wise tensor operations. Symbols are renamed to safe local names, so
model ids that are Python keywords (``lambda``, ``in``) or shadow builtins are harmless.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import sympy
import torch

from .errors import ModelError
from .ir import exprel

_UNARY: dict[type, str] = {
    sympy.exp: "torch.exp",
    sympy.sin: "torch.sin",
    sympy.cos: "torch.cos",
    sympy.tan: "torch.tan",
    sympy.asin: "torch.asin",
    sympy.acos: "torch.acos",
    sympy.atan: "torch.atan",
    sympy.sinh: "torch.sinh",
    sympy.cosh: "torch.cosh",
    sympy.tanh: "torch.tanh",
    sympy.asinh: "torch.asinh",
    sympy.acosh: "torch.acosh",
    sympy.atanh: "torch.atanh",
    sympy.Abs: "torch.abs",
    sympy.floor: "torch.floor",
    sympy.ceiling: "torch.ceil",
    sympy.sign: "torch.sign",
    sympy.erf: "torch.erf",
    exprel: "_rt.exprel",
    sympy.sec: "_rt.sec",
    sympy.csc: "_rt.csc",
    sympy.cot: "_rt.cot",
    sympy.asec: "_rt.asec",
    sympy.acsc: "_rt.acsc",
    sympy.acot: "_rt.acot",
    sympy.sech: "_rt.sech",
    sympy.csch: "_rt.csch",
    sympy.coth: "_rt.coth",
    sympy.asech: "_rt.asech",
    sympy.acsch: "_rt.acsch",
    sympy.acoth: "_rt.acoth",
    sympy.factorial: "_rt.factorial",
    sympy.gamma: "_rt.gamma",
}


class TorchPrinter:
    """Print a sympy expression as torch source, given a symbol-name to local-name map."""

    def __init__(self, names: Mapping[str, str], functions: Mapping[str, str] | None = None):
        self.names = dict(names)
        self.functions = dict(functions or {})

    def __call__(self, expr: Any) -> str:
        return self.p(expr)

    def p(self, e: Any) -> str:  # noqa: C901 - a dispatch table in one place
        if isinstance(e, bool):
            return "True" if e else "False"
        if isinstance(e, (int, float)):
            return _num(float(e))
        if e is sympy.true or isinstance(e, sympy.logic.boolalg.BooleanTrue):
            return "True"
        if e is sympy.false or isinstance(e, sympy.logic.boolalg.BooleanFalse):
            return "False"
        if isinstance(e, sympy.Symbol):
            try:
                return self.names[e.name]
            except KeyError:
                raise ModelError(f"undefined symbol {e.name!r}") from None
        if getattr(e, "is_number", False) and not e.free_symbols and not isinstance(e, sympy.Piecewise):
            return _num(_evaluate_number(e))
        if isinstance(e, sympy.Add):
            return self._add(e)
        if isinstance(e, sympy.Mul):
            num, den = [], []
            for a in e.args:
                if isinstance(a, sympy.Pow) and a.exp.is_number and a.exp.is_negative:
                    den.append(self.p(sympy.Pow(a.base, -a.exp)) if a.exp != -1 else self.p(a.base))
                else:
                    num.append(self.p(a))
            text = " * ".join(num) if num else "1.0"
            if den:
                text = f"({text}) / ({' * '.join(den)})"
            return "(" + text + ")"
        if isinstance(e, sympy.Pow):
            base, exp = e.args
            if exp == sympy.Rational(1, 2):
                return f"torch.sqrt({self.p(base)})"
            if exp == -1:
                return f"(1.0 / {self.p(base)})"
            if exp.is_Integer and 1 < int(exp) <= 4:
                b = self.p(base)
                return "(" + " * ".join([b] * int(exp)) + ")"
            return f"_rt.power({self.p(base)}, {self.p(exp)})"
        if isinstance(e, sympy.log):
            if len(e.args) == 2:
                return f"(torch.log({self.p(e.args[0])}) / math.log({self.p(e.args[1])}))"
            return f"torch.log({self.p(e.args[0])})"
        if isinstance(e, sympy.Piecewise):
            return self._piecewise(e)
        if isinstance(e, sympy.Min):
            return self._fold("_rt.minimum", e.args)
        if isinstance(e, sympy.Max):
            return self._fold("_rt.maximum", e.args)
        if isinstance(e, sympy.Rel):
            op = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "==": "==", "!=": "!="}[e.rel_op]
            return f"_rt.rel({self.p(e.lhs)}, {self.p(e.rhs)}, {op!r})"
        if isinstance(e, sympy.And):
            return self._fold("_rt.logical_and", e.args)
        if isinstance(e, sympy.Or):
            return self._fold("_rt.logical_or", e.args)
        if isinstance(e, sympy.Xor):
            return self._fold("_rt.logical_xor", e.args)
        if isinstance(e, sympy.Not):
            return f"_rt.logical_not({self.p(e.args[0])})"
        if isinstance(e, sympy.Mod):
            return f"_rt.fmod({self.p(e.args[0])}, {self.p(e.args[1])})"
        for cls, name in _UNARY.items():
            if isinstance(e, cls):
                return f"{name}({', '.join(self.p(a) for a in e.args)})"
        if isinstance(e, sympy.Function) and type(e).__name__ in self.functions:
            return f"{self.functions[type(e).__name__]}({', '.join(self.p(a) for a in e.args)})"
        raise ModelError(f"cannot compile {type(e).__name__} expression {e}")

    def _add(self, e: sympy.Add) -> str:
        """A sum with its negative terms subtracted (``a - 2.0 * b``, not ``a + (-2.0 * b)``:
        one operation less per term, and the same IEEE result since negation is exact)."""
        plus, minus = [], []
        for a in e.args:
            coeff, rest = a.as_coeff_Mul() if isinstance(a, sympy.Mul) else (sympy.S.One, a)
            if coeff.is_number and coeff.is_extended_negative and rest != 1:
                factors = rest.args if isinstance(rest, sympy.Mul) else (rest,)
                minus.append(self.p(rest) if coeff == -1 else self.p(sympy.Mul(-coeff, *factors, evaluate=False)))
            else:
                plus.append(self.p(a))
        text = " + ".join(plus) if plus else "-" + minus.pop(0)
        return "(" + text + "".join(f" - {m}" for m in minus) + ")"

    def _fold(self, fn: str, args: Any) -> str:
        out = self.p(args[0])
        for a in args[1:]:
            out = f"{fn}({out}, {self.p(a)})"
        return out

    def _piecewise(self, e: sympy.Piecewise) -> str:
        out = "_rt.NAN"
        for value, cond in reversed(e.args):
            if cond is sympy.true or cond == True:  # noqa: E712 - sympy truth
                out = self.p(value)
            elif cond is sympy.false:
                continue
            else:
                out = f"_rt.where({self.p(cond)}, {self.p(value)}, {out})"
        return out


def _evaluate_number(e: Any) -> float:
    if e is sympy.nan:
        return math.nan
    if e in (sympy.oo, sympy.zoo):
        return math.inf
    if e == -sympy.oo:
        return -math.inf
    try:
        value = complex(e.evalf())
    except (TypeError, ValueError):
        return math.nan
    return value.real if abs(value.imag) < 1e-300 else math.nan


def _num(value: float) -> str:
    if math.isnan(value):
        return "_rt.NAN"
    if math.isinf(value):
        return "_rt.INF" if value > 0 else "(-_rt.INF)"
    return repr(float(value))


def build_function(name: str, args: list[str], body: list[str], namespace: dict[str, Any] | None = None) -> Callable:
    """Execute generated source and return the function (source kept on ``fn.__source__``, its
    arguments and body lines on ``fn.__args__`` and ``fn.__body__`` to rebuild it elsewhere)."""
    from . import runtime

    source = f"def {name}({', '.join(args)}):\n" + "\n".join("    " + line for line in body) + "\n"
    scope: dict[str, Any] = {"torch": torch, "math": math, "_rt": runtime, **(namespace or {})}
    try:
        exec(compile(source, f"<neuroplex:{name}>", "exec"), scope)  # noqa: S102 - our own generated code
    except SyntaxError as exc:  # pragma: no cover - would be a printer bug
        raise ModelError(f"generated code for {name} does not compile: {exc}\n{source}") from exc
    fn = scope[name]
    fn.__source__ = source
    fn.__args__, fn.__body__ = list(args), list(body)
    return fn


@dataclass
class SplitProgram:
    """Expressions split into a part bound once per parameter set and a part run every call.

    ``static``: ``(symbol, expr)`` definitions that depend on bound inputs only (parameters,
    constants), in dependency order; ``dynamic``: definitions that depend on a varying
    symbol (state, time), in dependency order; ``outputs``: the requested expressions
    rewritten over both. Common sub-expressions appear once (``sympy.cse``), and the
    bound-input parts of dynamic expressions (``k1 * k2 / (k3 + x)`` -> ``c0 / (k3 + x)``)
    are hoisted into ``static``, so a right-hand side called thousands of times per
    simulation does no work that only the parameters decide.
    """

    static: list[tuple[sympy.Symbol, Any]]
    dynamic: list[tuple[sympy.Symbol, Any]]
    outputs: list[Any]


def split_static(outputs: Sequence[Any], definitions: Mapping[str, Any], varying: set[str],
                 prefix: str = "_c") -> SplitProgram:
    """Split ``outputs`` (which may use the named ``definitions``) into static and dynamic
    definitions; symbols named in ``varying`` (and everything that uses them) are dynamic.
    New symbols are named ``{prefix}{i}``."""
    counter = iter(range(1 << 30))

    def fresh() -> sympy.Symbol:
        return sympy.Symbol(f"{prefix}{next(counter)}")

    names = list(definitions)
    exprs = [sympy.sympify(definitions[n]) for n in names] + [sympy.sympify(e) for e in outputs]
    cse_symbols = (sympy.Symbol(f"{prefix}x{i}") for i in range(1 << 30))
    replacements, reduced = sympy.cse(exprs, symbols=cse_symbols, order="none")
    defs: dict[sympy.Symbol, Any] = dict(replacements)
    for n, e in zip(names, reduced[:len(names)]):
        defs[sympy.Symbol(n)] = e
    outs = reduced[len(names):]
    order = _dependency_order(defs)
    dynamic_syms = {sympy.Symbol(v) for v in varying}
    for s in order:
        if defs[s].free_symbols & dynamic_syms:
            dynamic_syms.add(s)
    hoisted: dict[Any, sympy.Symbol] = {}
    static: list[tuple[sympy.Symbol, Any]] = [(s, defs[s]) for s in order if s not in dynamic_syms]

    def is_static(e: Any) -> bool:
        return not (getattr(e, "free_symbols", set()) & dynamic_syms)

    def hoist(e: Any) -> Any:
        if not isinstance(e, sympy.Basic) or e.is_Atom:
            return e
        if is_static(e):
            if e not in hoisted:
                hoisted[e] = fresh()
                static.append((hoisted[e], e))
            return hoisted[e]
        if isinstance(e, (sympy.Add, sympy.Mul)):
            fixed = [a for a in e.args if is_static(a)]
            moving = [hoist(a) for a in e.args if not is_static(a)]
            if len(fixed) > 1 or (fixed and not fixed[0].is_Atom):
                fixed = [hoist(type(e)(*fixed))]
            return type(e)(*fixed, *moving, evaluate=False)
        if isinstance(e, sympy.Piecewise):
            return sympy.Piecewise(*[(hoist(v), hoist(c)) for v, c in e.args], evaluate=False)
        return e.func(*[hoist(a) for a in e.args], evaluate=False)

    dynamic = [(s, hoist(defs[s])) for s in order if s in dynamic_syms]
    return SplitProgram(static, dynamic, [hoist(e) for e in outs])


def _dependency_order(defs: Mapping[sympy.Symbol, Any]) -> list[sympy.Symbol]:
    """Definitions ordered so that each comes after the ones it uses."""
    order: list[sympy.Symbol] = []
    state: dict[sympy.Symbol, int] = {}
    for root in defs:
        stack = [(root, False)]
        while stack:
            s, expanded = stack.pop()
            if expanded:
                state[s] = 2
                order.append(s)
                continue
            if state.get(s):
                continue
            state[s] = 1
            stack.append((s, True))
            for d in getattr(defs[s], "free_symbols", ()):
                if d in defs and not state.get(d):
                    stack.append((d, False))
    return order
