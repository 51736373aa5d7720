"""Structure proposals from a sparse regression over a term library (ours, an initialisation
step the paper does not have; see docs/xnet.md, "Proposals").

The targets are regressed on sparse linear combinations of terms built from the library:

* monomials of the inputs (total degree up to 6 for one input, fewer for more inputs);
* every unary library function ``u`` of an argument ``a``: an input ``x_i``, a product of two
  inputs, or an input times a unary function of an input (``x_j * v(x_i)``); ``exp(-a)`` too;
* unary functions and reciprocals of a monomial +- 1 and of the sum or difference of two
  monomials (degree <= 2), alone and times an input;
* products of two function terms, and of an input with one;
* ``1 / x_i`` and ``x_i / x_j`` when ``/`` is in the library.

A term enters only where the library builds it and where it is finite and inside every
function's domain on the training points. A beam search over orthogonal projections
(forward selection keeping the ``beam`` best sets at each size, intercept always in) finds the
best few sets of up to ``max_terms`` terms; each fitted combination becomes an X-Net tree
(``convert.py``, the smaller of the expanded and the Horner form) that the search refits,
simplifies and puts into the populations Alternating Backpropagation trains.
"""
from __future__ import annotations

import time
from fractions import Fraction
from itertools import combinations_with_replacement
from typing import Sequence

import numpy as np
import sympy
import torch

from .convert import smallest_tree
from .tree import TreeSpec, root_output

#: ``constants=False``: coefficients are rounded to fractions with at most this denominator
_PLAIN_DEN = 2

_NP = {"sin": np.sin, "cos": np.cos, "exp": np.exp, "log": np.log, "sqrt": np.sqrt}
_SP = {"sin": sympy.sin, "cos": sympy.cos, "exp": sympy.exp, "log": sympy.log, "sqrt": sympy.sqrt}


def _apply(name: str, v: np.ndarray) -> np.ndarray | None:
    """``name`` applied where it is the plain function on every point (else ``None``)."""
    if name in ("log", "sqrt") and not np.all(v > 1e-8):
        return None
    if name == "exp" and not np.all(v <= 18.0):
        return None
    with np.errstate(all="ignore"):
        out = _NP[name](v)
    return out if np.all(np.isfinite(out)) else None


def term_library(X: np.ndarray, spec: TreeSpec, symbols: Sequence[sympy.Symbol],
                 max_terms: int = 12000) -> tuple[list[tuple[sympy.Expr, ...]], np.ndarray, np.ndarray]:
    """Candidate terms (sympy factors, multiplied when used), their values [N, M] on ``X`` and
    their tier [M] (0: monomials, 1: a function of an input and quotients, 2: a function of a
    product of inputs, of a monomial (degree <= 2) +- 1 or of the sum or difference of two such
    monomials, 3: products
    of a function term with an input or with another function term, 4: functions of
    ``x_j * v(x_i)`` and their products); see the module docstring."""
    n, k = X.shape
    names = {a.name for a in spec.binary} | {a.name for a in spec.unary}
    mul = "*" in names
    unary = [u for u in _NP if u in names]
    exprs: list[tuple[sympy.Expr, ...]] = []
    vals: list[np.ndarray] = []
    tiers: list[int] = []

    def add(e: tuple[sympy.Expr, ...], v: np.ndarray | None, tier: int) -> None:
        if v is not None and np.all(np.isfinite(v)) and np.abs(v).max() < 1e8:
            exprs.append(e)
            vals.append(v)
            tiers.append(tier)

    deg = {1: 6, 2: 4, 3: 3}.get(k, 2) if (mul or "square" in names) else 1
    for d in range(1, deg + 1):
        for combo in combinations_with_replacement(range(k), d):
            add(tuple(symbols[i] for i in combo), np.prod(X[:, list(combo)], axis=1), 0)
    if "/" in names:
        for i in range(k):
            if np.all(np.abs(X[:, i]) > 1e-6):
                add((1 / symbols[i],), 1 / X[:, i], 1)
                for j in range(k):
                    if j != i:
                        add((symbols[j] / symbols[i],), X[:, j] / X[:, i], 1)
    args: list[tuple[sympy.Expr, np.ndarray, int]] = [(symbols[i], X[:, i], 1) for i in range(k)]
    if mul:
        args += [(symbols[i] * symbols[j], X[:, i] * X[:, j], 2) for i in range(k) for j in range(i, k)]
    if mul and k * k * len(unary) <= 64:  # x_j * v(x_i): only for a few inputs
        for i in range(k):
            for v in unary:
                inner = _apply(v, X[:, i])
                if inner is not None:
                    args += [(symbols[j] * _SP[v](symbols[i]), X[:, j] * inner, 4) for j in range(k)]
    funcs: list[tuple[sympy.Expr, np.ndarray, int]] = []
    for u in unary:
        for a, av, t in args:
            out = _apply(u, av)
            if out is not None:
                funcs.append((_SP[u](a), out, t))
            if u == "exp" and ("-" in names or mul):  # decay: exp(-a)
                out = _apply(u, -av)
                if out is not None:
                    funcs.append((sympy.exp(-a), out, t))
    for e, v, t in funcs:
        add((e,), v, t)
    if ("+" in names or "-" in names) and k <= 4:  # single terms: functions of a monomial +- 1 or of two monomials
        mono = [(symbols[i], X[:, i]) for i in range(k)]
        if mul or "square" in names:
            mono += [(symbols[i] * symbols[j], X[:, i] * X[:, j]) for i in range(k) for j in range(i, k)]
        sums = [(a + sg, av + sg) for a, av in mono for sg in (1, -1)]
        sums += [(a + sg * c, av + sg * cv) for p_, (a, av) in enumerate(mono) for c, cv in mono[p_ + 1:]
                 for sg in (1, -1)]
        shifted: list[tuple[sympy.Expr, np.ndarray]] = []
        for a, av in sums:
            for u in unary:
                out = _apply(u, av)
                if out is not None:
                    shifted.append((_SP[u](a), out))
            if "/" in names and np.all(np.abs(av) > 1e-6):
                shifted.append((1 / a, 1 / av))
        for e, v in shifted:
            add((e,), v, 2)
        if mul and k * len(shifted) <= max_terms // 4:
            for i in range(k):
                for e, v in shifted:
                    add((symbols[i], e), X[:, i] * v, 3)
    if mul and k * len(funcs) <= max_terms // 4:
        for i in range(k):
            for e, v, t in funcs:
                add((symbols[i], e), X[:, i] * v, max(t, 3))
    if mul and len(funcs) * (len(funcs) + 1) // 2 + len(exprs) <= max_terms:
        for p in range(len(funcs)):
            for q in range(p, len(funcs)):
                add((funcs[p][0], funcs[q][0]), funcs[p][1] * funcs[q][1], max(funcs[p][2], funcs[q][2], 3))
    if not vals:
        return [], np.zeros((n, 0)), np.zeros(0, dtype=np.int64)
    return exprs, np.stack(vals, axis=1), np.asarray(tiers)


def _dedupe(T: np.ndarray) -> np.ndarray:
    """Indices of columns that are not constant and not a multiple of an earlier column
    (centred and normalised, compared to 1e-9)."""
    c = T - T.mean(0)
    norm = np.linalg.norm(c, axis=0)
    keep, seen = [], set()
    for j in range(T.shape[1]):
        if norm[j] < 1e-10 * max(1.0, np.abs(T[:, j]).max()):
            continue
        u = c[:, j] / norm[j]
        u = u * np.sign(u[np.argmax(np.abs(u) > 1e-6)])
        key = tuple(np.round(u, 9))
        if key not in seen:
            seen.add(key)
            keep.append(j)
    return np.asarray(keep, dtype=np.int64)


def _best_pairs(C: np.ndarray, yc: np.ndarray, k: int, chunk: int = 512) -> list[tuple[int, int]]:
    """The ``k`` pairs of (unit, centred) columns that explain most of ``yc``, by all pairs
    (chunked; the closed form loses digits, the caller recomputes the residuals)."""
    b = C.T @ yc
    m = C.shape[1]
    best_v = np.zeros(0)
    best_ij = np.zeros((0, 2), dtype=np.int64)
    for s0 in range(0, m, chunk):
        g = C[:, s0:s0 + chunk].T @ C                      # [c, M]
        bi, bj = b[s0:s0 + chunk, None], b[None, :]
        den = 1.0 - g * g
        with np.errstate(all="ignore"):
            v = np.where(den > 1e-8, (bi * bi + bj * bj - 2 * g * bi * bj) / np.where(den > 1e-8, den, 1.0), -1.0)
        rows = np.arange(s0, s0 + v.shape[0])[:, None]
        v = np.where(np.arange(m)[None, :] > rows, v, -1.0)  # each pair once
        flat = v.ravel()
        thr = best_v.min() if best_v.size >= k else 0.0
        top = np.nonzero(flat > thr)[0]
        if top.size > k:
            top = top[np.argpartition(-flat[top], k)[:k]]
        best_v = np.concatenate([best_v, flat[top]])
        best_ij = np.concatenate([best_ij, np.stack([top // m + s0, top % m], axis=1)])
        keep = np.argsort(-best_v)[:k]
        best_v, best_ij = best_v[keep], best_ij[keep]
    return [(int(i), int(j)) for (i, j), v in zip(best_ij, best_v) if v > 0]


def sparse_fits(T: np.ndarray, y: np.ndarray, max_terms: int = 6, beam: int = 16,
                exact: float = 1e-22, max_pairs_of: int = 12000) -> list[tuple[tuple[int, ...], float]]:
    """Best subsets of columns of ``T`` (with an intercept) for ``y``: all single terms and all
    pairs (up to ``max_pairs_of`` columns, else the beam) are scored, larger sets grow by beam forward selection; per number of terms the
    ``beam`` best sets with their residual (share of the variance of ``y``). Stops after the
    first size with a fit below ``exact``."""
    n = T.shape[0]
    yc = y - y.mean()
    var = float(yc @ yc) or 1.0
    C = T - T.mean(0)
    C = C / np.linalg.norm(C, axis=0)
    out: list[tuple[tuple[int, ...], float]] = []

    def rescore(sets) -> list[tuple[float, tuple[int, ...], np.ndarray, np.ndarray]]:
        scored = []
        for sel in sets:  # residuals from a QR (the gains lose digits)
            Q, _r = np.linalg.qr(C[:, list(sel)])
            r = yc - Q @ (Q.T @ yc)
            scored.append((float(r @ r) / var, sel, r, Q))
        scored.sort(key=lambda t: t[0])
        return scored[:beam]

    singles = np.argsort(-np.abs(C.T @ yc))[:beam]
    levels = [rescore([(int(j),) for j in singles])]
    if max_terms >= 2 and n > 3 and levels[0] and levels[0][0][0] >= exact and C.shape[1] <= max_pairs_of:
        levels.append(rescore([p for p in _best_pairs(C, yc, 4 * beam)]))
    states = [(sel, r, Q) for _, sel, r, Q in levels[-1]]
    for lev in levels:
        out += [(sel, res) for res, sel, _, _ in lev]
    if min((res for _, res in out), default=1.0) < exact:
        return out
    for _ in range(len(levels), min(max_terms, n - 2)):
        children: set[tuple[int, ...]] = set()
        for sel, r, Q in states:
            P = C - Q @ (Q.T @ C)
            nn = (P * P).sum(0)
            ok = nn > 1e-8
            gain = np.where(ok, (P.T @ r) ** 2 / np.where(ok, nn, 1.0), -1.0)
            gain[list(sel)] = -1.0
            for j in np.argsort(-gain)[:beam]:
                if gain[j] > 0:
                    children.add(tuple(sorted(sel + (int(j),))))
        if not children:
            break
        scored = rescore(children)
        states = [(sel, r, Q) for _, sel, r, Q in scored]
        out += [(sel, res) for res, sel, _, _ in scored]
        if scored[0][0] < exact:
            break
    return out


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.process_time() >= deadline


def propose(X: np.ndarray, y: np.ndarray, spec: TreeSpec, symbols: Sequence[sympy.Symbol],
            max_nodes: int, per_size: int = 2, max_terms: int = 6, beam: int = 16, exact: float = 1e-22,
            plain: bool = False, deadline: float | None = None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Trees ``(ops, w, b)`` of the best sparse fits (``per_size`` per number of terms and
    tier), each within the depth and ``max_nodes``. The tiers are searched in order, each with
    the terms of the tiers below (simple terms first); the tier after the first exact fit
    (residual below ``exact`` of the variance) is the last, and exact fits come first.
    ``plain`` (for ``constants=False``): only trees without constants (every ``w = 1``,
    ``b = 0``): each fit's coefficients are rounded to simple fractions and built from the
    inputs (:func:`_plain_trees`), best first by their loss. No tier or conversion starts past
    ``deadline`` (``time.process_time()``; the fit's CPU budget)."""
    exprs, T, tier = term_library(X, spec, symbols)
    if T.shape[1] == 0:
        return []
    keep = _dedupe(T)
    exprs, T, tier = [exprs[i] for i in keep], T[:, keep], tier[keep]
    picked: list[tuple[tuple[int, ...], float]] = []
    exact_at = None
    for t in range(int(tier.max()) + 1):
        if (exact_at is not None and t > exact_at + 1) or _past(deadline):
            break
        cols = np.nonzero(tier <= t)[0]
        if t > 0 and not (tier == t).any():
            continue
        fits = sparse_fits(T[:, cols], y, max_terms=max_terms, beam=beam, exact=exact)
        by_size: dict[int, list[tuple[tuple[int, ...], float]]] = {}
        for sel, res in fits:
            by_size.setdefault(len(sel), []).append((tuple(int(cols[j]) for j in sel), res))
        picked += [f for v in by_size.values() for f in sorted(v, key=lambda f: f[1])[:per_size]]
        if exact_at is None and min((f[1] for f in picked), default=1.0) < exact:
            exact_at = t
    exact_first = sorted(picked, key=lambda f: (f[1] >= exact, len(f[0]) if f[1] < exact else f[1]))
    trees = []
    for sel, _ in exact_first:
        if _past(deadline):
            break
        if plain:
            trees += _plain_trees(T[:, list(sel)], y, [sympy.Mul(*exprs[j]) for j in sel], spec, symbols, max_nodes)
            continue
        A = np.concatenate([T[:, list(sel)], np.ones((T.shape[0], 1))], axis=1)
        coef = np.linalg.lstsq(A, y, rcond=None)[0]
        expr = sum((float(c) * sympy.Mul(*exprs[j]) for c, j in zip(coef[:-1], sel)), sympy.Float(coef[-1]))
        forms = [expr]
        if expr.is_polynomial(*symbols):
            forms.append(sympy.horner(expr, *[s for s in symbols if s in expr.free_symbols]))
        t = smallest_tree(spec, forms, symbols, max_nodes)
        if t is not None:
            trees.append(t)
    if plain:  # rounding changed the fits: best first by their loss on the training points
        trees = [t for _, _, t in sorted(((_mse(spec, t, X, y), i, t) for i, t in enumerate(trees)),
                                         key=lambda f: f[:2])]
    return trees


def _mse(spec: TreeSpec, t: tuple[np.ndarray, np.ndarray, np.ndarray], X: np.ndarray, y: np.ndarray) -> float:
    out = root_output(spec, *(torch.as_tensor(a[None]) for a in t), torch.as_tensor(X))[0].numpy()
    err = float(np.mean((out - y) ** 2))
    return err if np.isfinite(err) else np.inf


def _round_sequentially(Tsel: np.ndarray, y: np.ndarray, den: int, intercept: bool = True) -> list[Fraction]:
    """Coefficients of ``Tsel`` and an intercept (the last entry; 0 unless ``intercept``) that
    are fractions with denominator <= ``den``: the largest contribution is rounded first, the
    others refitted by least squares, and so on."""
    A = np.concatenate([Tsel, np.ones((Tsel.shape[0], 1))], axis=1)
    fixed: dict[int, Fraction] = {} if intercept else {Tsel.shape[1]: Fraction(0)}
    while len(fixed) < A.shape[1]:
        free = [j for j in range(A.shape[1]) if j not in fixed]
        rest = y - sum((float(c) * A[:, j] for j, c in fixed.items()), np.zeros_like(y))
        coef = np.linalg.lstsq(A[:, free], rest, rcond=None)[0]
        size = np.abs(coef) * np.abs(A[:, free]).mean(0)
        k = int(np.argmax(size))
        fixed[free[k]] = Fraction(float(coef[k])).limit_denominator(den)
    return [fixed[j] for j in range(A.shape[1])]


def _plain_trees(Tsel: np.ndarray, y: np.ndarray, terms: list[sympy.Expr], spec: TreeSpec,
                 symbols: Sequence[sympy.Symbol], max_nodes: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A fit's trees without constants (``constants=False``): the coefficients rounded to
    integers, and to fractions with denominator <= ``_PLAIN_DEN``, one at a time with the others
    refitted (:func:`_round_sequentially`), with and without an intercept (a constant costs
    neurons here); for each the smallest tree of the expanded, factored
    and Horner forms in which every neuron is plain (``convert.py``: ``2t = t + t``,
    ``1 = x/x``, ...)."""
    out, seen = [], set()
    for den, intercept in [(d, i) for d in sorted({1, _PLAIN_DEN}) for i in (True, False)]:
        rc = _round_sequentially(Tsel, y, den, intercept)
        expr = sum((sympy.Rational(c.numerator, c.denominator) * e for c, e in zip(rc, terms) if c != 0),
                   sympy.Rational(rc[-1].numerator, rc[-1].denominator))
        if expr in seen or not expr.free_symbols:
            continue
        seen.add(expr)
        forms = [expr]
        if expr.is_polynomial(*symbols):
            used = [s for s in symbols if s in expr.free_symbols]
            forms += [sympy.factor(expr), sympy.horner(expr, *used)]
        t = smallest_tree(spec, forms, symbols, max_nodes, plain=True)
        if t is not None:
            out.append((t[0], np.ones_like(t[1]), np.zeros_like(t[2])))
    return out
