"""Exact rewrites of a tree that keep its function (ours, before snapping constants):

* constant folding: a subtree without a variable (or under a node with ``w == 0``) becomes a
  constant leaf (``w = 0``, ``b`` = its value);
* a ``+ - * /`` node with a constant child is replaced by its other child, the constant moving
  into that child's scale and bias;
* scales move up through ``*`` and ``/`` and biases up through ``+`` and ``-``, so the
  remaining constants are not redundant and can snap to simple rationals.
"""
from __future__ import annotations

import numpy as np
import torch

from . import tree as T
from .abp import Candidate
from .tree import EMPTY, TreeSpec

#: a scale below this makes a node constant
ZERO = 1e-9


def _has_var(spec: TreeSpec, ops, w, i: int) -> bool:
    c = int(ops[i])
    if abs(w[i]) < ZERO:
        return False
    a = spec.arity(c)
    if a == 0:
        return True
    return _has_var(spec, ops, w, 2 * i + 1) or (a == 2 and _has_var(spec, ops, w, 2 * i + 2))


def _node_values(spec: TreeSpec, ops, w, b, x: torch.Tensor) -> np.ndarray:
    levels, _ = T.forward(spec, torch.as_tensor(ops[None]), torch.as_tensor(w[None]), torch.as_tensor(b[None]), x)
    return np.concatenate([lv[0].mean(-1).numpy() for lv in levels])


def _move_up(spec: TreeSpec, ops, w, b, src: int, dst: int) -> None:
    """Replace the subtree at ``dst`` by the subtree at ``src`` (a descendant of ``dst``)."""
    parts = [(ops[s].copy(), w[s].copy(), b[s].copy()) for s in T.subtree_slices(spec, src)]
    T.clear_subtree(spec, ops, w, b, dst)
    for (o, ww, bb), t in zip(parts, T.subtree_slices(spec, dst)):
        ops[t], w[t], b[t] = o, ww, bb


def _is_const(spec: TreeSpec, ops, w, i: int) -> bool:
    return spec.arity(int(ops[i])) == 0 and abs(w[i]) < ZERO


def canonical(spec: TreeSpec, ops: np.ndarray, w: np.ndarray, b: np.ndarray, x: torch.Tensor):
    """The rewrites above on one tree (arrays of one tree, copied)."""
    ops, w, b = ops.copy(), w.copy(), b.copy()
    vals = _node_values(spec, ops, w, b, x)
    stack = [0]
    while stack:  # constant folding, top-down
        i = stack.pop()
        a = spec.arity(int(ops[i]))
        if a > 0 and not _has_var(spec, ops, w, i):
            T.clear_subtree(spec, ops, w, b, 2 * i + 1)
            T.clear_subtree(spec, ops, w, b, 2 * i + 2)
            ops[i], w[i], b[i] = 0, 0.0, float(vals[i])
        elif a > 0:
            stack += [2 * i + 1] + ([2 * i + 2] if a == 2 else [])
        elif abs(w[i]) < ZERO:
            ops[i], w[i] = 0, 0.0
    names = {int(c): spec.activation(int(c)).name for c in range(spec.first_binary, spec.n_ops)}
    changed = True
    while changed:  # binary nodes with a constant child
        changed = False
        for i in range(spec.slots):
            name = names.get(int(ops[i]))
            if name not in ("+", "-", "*", "/") or spec.arity(int(ops[i])) != 2:
                continue
            li, ri = 2 * i + 1, 2 * i + 2
            lc, rc = _is_const(spec, ops, w, li), _is_const(spec, ops, w, ri)
            if not (lc or rc) or (lc and rc):
                continue
            other, c = (ri, b[li]) if lc else (li, b[ri])
            wi, bi, wo, bo = w[i], b[i], w[other], b[other]
            if name == "+":
                nw, nb = wi * wo, wi * (bo + c) + bi
            elif name == "-":
                nw, nb = (-wi * wo, wi * (c - bo) + bi) if lc else (wi * wo, wi * (bo - c) + bi)
            elif name == "*":
                nw, nb = wi * c * wo, wi * c * bo + bi
            elif rc and c != 0.0:
                nw, nb = wi * wo / c, wi * bo / c + bi
            else:
                continue
            _move_up(spec, ops, w, b, other, i)
            w[i], b[i] = nw, nb
            changed = True
    for i in reversed(range(spec.slots)):  # push scales / biases up, bottom-up
        if ops[i] == EMPTY or spec.arity(int(ops[i])) != 2:
            continue
        name = names[int(ops[i])]
        li, ri = 2 * i + 1, 2 * i + 2
        if name in ("*", "/"):
            for ch, sign in ((li, 1), (ri, 1 if name == "*" else -1)):
                if w[ch] != 0.0:
                    b[ch] /= w[ch]
                    w[i] *= w[ch] ** sign
                    w[ch] = 1.0
        elif name in ("+", "-"):
            b[i] += w[i] * (b[li] + (b[ri] if name == "+" else -b[ri]))
            b[li] = b[ri] = 0.0
    return ops, w, b


def canonical_candidate(spec: TreeSpec, c: Candidate, x: torch.Tensor) -> Candidate:
    parts = [canonical(spec, c.ops[g], c.w[g], c.b[g], x) for g in range(c.ops.shape[0])]
    return Candidate(np.stack([p[0] for p in parts]), np.stack([p[1] for p in parts]),
                     np.stack([p[2] for p in parts]), c.loss)
