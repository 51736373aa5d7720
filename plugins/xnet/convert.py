"""A sympy formula as an X-Net tree (ours): the inverse of :func:`tree.to_sympy`, used to feed
structures proposed outside Alternating Backpropagation (``propose.py``) into the ABP trees.

Every node computes ``o = w * f(children) + b`` (section 4.1), so a numeric factor becomes a
node's scale and a numeric summand its bias; sums and products become balanced ``+`` / ``*``
subtrees, integer powers ``square`` and ``*`` nodes, ``x**-1`` a ``/`` under a constant leaf
(a leaf with ``w = 0``). A formula that needs a function outside the library, more slots than
the tree's depth allows or more than ``max_nodes`` neurons has no tree (``None``).

``plain=True`` (for ``constants=False``, where every neuron keeps ``w = 1, b = 0``): small
rational constants are built from the inputs instead, ``1 = x/x`` (exact wherever ``x != 0``),
``0 = x - x``, an integer ``n`` times a term as a balanced sum of ``n`` copies of its smallest
factor (``2x = x + x``), negative terms subtracted, ``p/q`` as ``(p t) / q``; a float that is not
such a rational has no plain tree.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import sympy

from .tree import EMPTY, TreeSpec


@dataclass
class _Node:
    code: int
    w: float = 1.0
    b: float = 0.0
    kids: list["_Node"] = field(default_factory=list)

    def size(self) -> int:
        return 1 + sum(k.size() for k in self.kids)

    def depth(self) -> int:
        return 1 + max((k.depth() for k in self.kids), default=0)


class _NoTree(Exception):
    pass


_SYMPY_UNARY = {sympy.sin: "sin", sympy.cos: "cos", sympy.exp: "exp", sympy.log: "log"}


def _split(args: tuple[sympy.Expr, ...], how: type) -> tuple[float, list[sympy.Expr]]:
    """The numbers among ``args`` combined (summed or multiplied by ``how``) and the rest."""
    nums = [a for a in args if a.is_Number]
    return float(how(*nums)) if nums else float(how.identity), [a for a in args if not a.is_Number]


class _Builder:
    def __init__(self, spec: TreeSpec, symbols: Sequence[sympy.Symbol]) -> None:
        self.spec = spec
        self.var = {s: i for i, s in enumerate(symbols)}
        self.bin = {a.name: spec.first_binary + i for i, a in enumerate(spec.binary)}
        self.una = {a.name: spec.first_unary + i for i, a in enumerate(spec.unary)}

    def op(self, name: str, *kids: _Node) -> _Node:
        table = self.bin if len(kids) == 2 else self.una
        if name not in table:
            raise _NoTree(name)
        return _Node(table[name], kids=list(kids))

    def const(self, v: float) -> _Node:
        return _Node(0, w=0.0, b=float(v))

    def balanced(self, name: str, parts: list[_Node]) -> _Node:
        if len(parts) == 1:
            return parts[0]
        h = len(parts) // 2
        return self.op(name, self.balanced(name, parts[:h]), self.balanced(name, parts[h:]))

    def power(self, base: sympy.Expr, e: int) -> _Node:
        if e == 1:
            return self.build(base)
        if e % 2 == 0 and "square" in self.una:
            return self.op("square", self.power(base, e // 2))
        return self.op("*", self.build(base), self.power(base, e - 1))

    def build(self, e: sympy.Expr) -> _Node:
        if e.is_Symbol:
            if e not in self.var:
                raise _NoTree(str(e))
            return _Node(self.var[e])
        if e.is_Number:
            return self.const(float(e))
        if e.is_Add:
            c, rest = _split(e.args, sympy.Add)
            node = self.balanced("+", [self.build(t) for t in rest]) if len(rest) > 1 else self.build(rest[0])
            node.b += float(c)
            return node
        if e.is_Mul:
            c, rest = _split(e.args, sympy.Mul)
            node = self.balanced("*", [self.build(t) for t in rest]) if len(rest) > 1 else self.build(rest[0])
            node.w, node.b = node.w * float(c), node.b * float(c)
            return node
        if e.is_Pow:
            base, ex = e.args
            if ex.is_Integer and int(ex) >= 1:
                return self.power(base, int(ex))
            if ex.is_Integer and int(ex) <= -1:
                return self.op("/", self.const(1.0), self.power(base, -int(ex)))
            if ex == sympy.Rational(1, 2):
                return self.op("sqrt", self.build(base))
            if ex == sympy.Rational(-1, 2):
                return self.op("/", self.const(1.0), self.op("sqrt", self.build(base)))
            return self.op("exp", self.build(ex * sympy.log(base)))
        if e.func in _SYMPY_UNARY and len(e.args) == 1:
            return self.op(_SYMPY_UNARY[e.func], self.build(e.args[0]))
        raise _NoTree(str(e.func))


class _PlainBuilder(_Builder):
    """Every neuron plain (``w = 1, b = 0``): constants built from the inputs (module docstring)."""

    #: largest integer factor or constant built by repeated addition
    MAX_INT = 6

    def __init__(self, spec: TreeSpec, symbols: Sequence[sympy.Symbol], max_den: int = 4) -> None:
        super().__init__(spec, symbols)
        self.max_den = max_den

    def _rational(self, v: sympy.Expr) -> sympy.Rational:
        r = sympy.Rational(v) if v.is_Rational else sympy.nsimplify(float(v), rational=True, tolerance=1e-9)
        if not r.is_Rational or abs(r.p) > self.MAX_INT or r.q > self.max_den:
            raise _NoTree(f"constant {v}")
        return r

    def _int(self, n: int) -> _Node:
        """A positive integer: a balanced sum of ``x1/x1``."""
        if n > self.MAX_INT:
            raise _NoTree(f"integer {n}")
        one = self.op("/", _Node(0), _Node(0))
        return self.balanced("+", [copy.deepcopy(one) for _ in range(n)])

    def const(self, v: float) -> _Node:
        r = self._rational(sympy.Float(v) if not isinstance(v, sympy.Basic) else v)
        if r == 0:
            return self.op("-", _Node(0), _Node(0))
        mag = self._int(abs(r.p)) if r.q == 1 else self.op("/", self._int(abs(r.p)), self._int(r.q))
        return mag if r > 0 else self.op("-", self.op("-", _Node(0), _Node(0)), mag)

    def _scaled(self, n: int, factors: list[_Node]) -> _Node | None:
        """``n`` times the product of ``factors`` (``n`` copies of the smallest one summed)."""
        if n > self.MAX_INT:
            raise _NoTree(f"factor {n}")
        if not factors:
            return self._int(n) if n > 1 else None
        factors = sorted(factors, key=lambda f: f.size())
        if n > 1:
            factors[0] = self.balanced("+", [copy.deepcopy(factors[0]) for _ in range(n)])
        return self.balanced("*", factors)

    def signed(self, e: sympy.Expr) -> tuple[bool, _Node]:
        """A term ``c * prod(factors)`` as (``c < 0``, tree of ``|c| * prod``): numerators over
        denominators (factors with a negative integer power), the coefficient's numerator as
        copies of the smallest numerator factor and its denominator as copies of the smallest
        denominator factor."""
        c, rest = e.as_coeff_Mul()
        r = self._rational(c)
        parts = [] if rest == 1 else list(rest.args) if rest.is_Mul else [rest]
        nums = [self.build(f) for f in parts if not (f.is_Pow and f.args[1].is_Integer and f.args[1] < 0)]
        dens = [self.build(f.args[0] ** -f.args[1]) for f in parts
                if f.is_Pow and f.args[1].is_Integer and f.args[1] < 0]
        num = self._scaled(abs(r.p), nums)
        den = self._scaled(r.q, dens)
        if num is None:
            num = self._int(1)
        return r < 0, num if den is None else self.op("/", num, den)

    def build(self, e: sympy.Expr) -> _Node:
        if e.is_Number:
            return self.const(e)
        if e.is_Add or e.is_Mul:
            terms = list(e.args) if e.is_Add else [e]
            pos, neg = [], []
            for t in terms:
                negative, node = self.signed(t)
                (neg if negative else pos).append(node)
            if not pos:
                pos = [self.op("-", _Node(0), _Node(0))]
            node = self.balanced("+", pos)
            return self.op("-", node, self.balanced("+", neg)) if neg else node
        return super().build(e)


def from_sympy(spec: TreeSpec, expr: sympy.Expr, symbols: Sequence[sympy.Symbol],
               max_nodes: int | None = None, plain: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The tree ``(ops, w, b)`` of ``expr`` in the variables ``symbols`` (``x1..xk`` in order),
    or ``None`` when it does not fit the library, the depth or ``max_nodes``. ``plain``: every
    neuron ``w = 1, b = 0``, constants built from the inputs (module docstring)."""
    try:
        builder = _PlainBuilder(spec, symbols) if plain else _Builder(spec, symbols)
        root = builder.build(sympy.sympify(expr))
    except (_NoTree, TypeError, ValueError):
        return None
    if root.depth() > spec.depth or (max_nodes is not None and root.size() > max_nodes):
        return None
    s = spec.slots
    ops, w, b = np.full(s, EMPTY, dtype=np.int64), np.ones(s), np.zeros(s)

    def place(n: _Node, i: int) -> None:
        ops[i], w[i], b[i] = n.code, n.w, n.b
        for j, k in enumerate(n.kids):
            place(k, 2 * i + 1 + j)

    place(root, 0)
    return ops, w, b


def smallest_tree(spec: TreeSpec, forms: Sequence[sympy.Expr], symbols: Sequence[sympy.Symbol],
                  max_nodes: int | None = None, plain: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Of several equal forms of a formula (e.g. expanded and Horner), the tree with fewest neurons."""
    best = None
    for f in forms:
        t = from_sympy(spec, f, symbols, max_nodes, plain)
        if t is not None and (best is None or (t[0] >= 0).sum() < (best[0] >= 0).sum()):
            best = t
    return best
