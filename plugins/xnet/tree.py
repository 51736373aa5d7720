"""X-Net trees as arrays: a population of binary trees in heap layout, evaluated as one torch batch.

Node ``i`` has children ``2i+1`` (left) and ``2i+2`` (right); a tree of depth ``D`` has
``2**D - 1`` slots. Per slot: an op code (``-1`` empty, ``0..k-1`` the variable ``x_j``,
then the binary activations, then the unary ones; a unary node uses its left child), a scale
``w`` and a bias ``b``, so a node's output is ``o = w * f(children) + b`` (paper section 4.1,
Fig. 3c). The whole population is evaluated level by level from the leaves up; every level
computes all library functions of its children at once, which is also what the type selection
of section 4.3 needs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import sympy
import torch

from neuroplex.errors import NeuroplexError

from .library import OUTPUT_LIMIT, Activation, resolve

EMPTY = -1


@dataclass
class TreeSpec:
    """The op coding of a library for ``n_vars`` inputs and trees of depth ``depth``."""

    n_vars: int
    library: Sequence[str]
    depth: int = 6
    binary: list[Activation] = field(init=False)
    unary: list[Activation] = field(init=False)

    def __post_init__(self) -> None:
        if self.n_vars < 1:
            raise NeuroplexError("X-Net needs at least one input variable")
        if not 1 <= self.depth <= 10:
            raise NeuroplexError(f"tree depth must be in 1..10, got {self.depth}")
        self.binary, self.unary = resolve(self.library)

    @property
    def slots(self) -> int:
        return 2**self.depth - 1

    @property
    def n_ops(self) -> int:
        return self.n_vars + len(self.binary) + len(self.unary)

    @property
    def first_binary(self) -> int:
        return self.n_vars

    @property
    def first_unary(self) -> int:
        return self.n_vars + len(self.binary)

    def arity(self, code: int) -> int:
        """0 for a variable leaf, 1 or 2 for an activation, -1 for an empty slot."""
        if code < 0:
            return -1
        if code < self.n_vars:
            return 0
        return 2 if code < self.first_unary else 1

    def activation(self, code: int) -> Activation:
        return self.binary[code - self.n_vars] if code < self.first_unary else self.unary[code - self.first_unary]

    def op_name(self, code: int) -> str:
        if code < 0:
            return "."
        return f"x{code + 1}" if code < self.n_vars else self.activation(code).name

    def codes_of_arity(self, arity: int) -> np.ndarray:
        if arity == 0:
            return np.arange(self.n_vars)
        if arity == 2:
            return np.arange(self.first_binary, self.first_unary)
        return np.arange(self.first_unary, self.n_ops)


def depth_of(i: int) -> int:
    return int(np.floor(np.log2(i + 1)))


# ------------------------------------------------------------------ evaluation
def apply_op(act: Activation, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    return act.torch_fn(left, right) if act.arity == 2 else act.torch_fn(left)


def _domain_of(act: Activation, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    if act.domain is None:
        return torch.ones_like(left, dtype=torch.bool)
    return act.domain(left, right) if act.arity == 2 else act.domain(left)


def level_slice(d: int) -> slice:
    return slice(2**d - 1, 2 ** (d + 1) - 1)


def forward(spec: TreeSpec, ops: torch.Tensor, w: torch.Tensor, b: torch.Tensor, x: torch.Tensor,
            domain: bool = False) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """Outputs of every node, one tensor [P, 2**d, N] per level ``d`` (section 4.1, Fig. 3c).

    Only active nodes are computed, one batched call per activation present on a level.
    With ``domain=True`` also a [P, N] mask of samples on which no protection was active
    (every activation inside its domain, no output truncated), where the export is exact.
    """
    p, m = ops.shape[0], x.shape[0]
    levels: list[torch.Tensor] = [None]  # type: ignore[list-item]
    levels = levels * spec.depth
    ok = torch.ones(p * 1, m, dtype=torch.bool) if domain else None
    child = None
    for d in reversed(range(spec.depth)):
        sl = level_slice(d)
        n = 2**d
        op = ops[:, sl].reshape(-1)
        act = (op >= 0).nonzero().squeeze(1)
        out = torch.zeros(p * n, m, dtype=x.dtype)
        if act.numel():
            opa = op[act]
            if child is None:
                left = right = torch.zeros(act.numel(), m, dtype=x.dtype)
            else:
                pair = child.reshape(p * n, 2, m)
                left, right = pair[act, 0], pair[act, 1]
            f = torch.zeros(act.numel(), m, dtype=x.dtype)
            dom = torch.ones(act.numel(), m, dtype=torch.bool) if ok is not None else None
            for code in opa.unique().tolist():
                sel = (opa == code).nonzero().squeeze(1)
                if code < spec.n_vars:
                    val = x[:, code].expand(sel.numel(), m)
                else:
                    a = spec.activation(code)
                    val = apply_op(a, left[sel], right[sel])
                    if dom is not None:
                        dom = dom.index_put((sel,), _domain_of(a, left[sel], right[sel]))
                f = f.index_put((sel,), val)
            raw = w[:, sl].reshape(-1)[act, None] * f + b[:, sl].reshape(-1)[act, None]
            out = out.index_put((act,), raw.clamp(-OUTPUT_LIMIT, OUTPUT_LIMIT))
            if ok is not None:
                bad = ~(dom & (raw.abs() < OUTPUT_LIMIT))
                ok &= ~torch.zeros(p * n, m, dtype=torch.bool).index_put((act,), bad).reshape(p, n, m).any(1)
        out = out.reshape(p, n, m)
        levels[d] = out
        child = out
    return levels, ok


def root_output(spec: TreeSpec, ops, w, b, x) -> torch.Tensor:
    levels, _ = forward(spec, ops, w, b, x)
    return levels[0][:, 0]


# ------------------------------------------------------------------ structure
def n_nodes(ops: np.ndarray) -> np.ndarray:
    """Active nodes per tree (or of one tree)."""
    return (np.asarray(ops) >= 0).sum(axis=-1)


def is_valid(spec: TreeSpec, ops: np.ndarray) -> bool:
    """A tree forward-propagates: root present, each node has exactly the children its arity needs."""
    if ops[0] < 0:
        return False
    for i, c in enumerate(ops):
        a = spec.arity(int(c))
        li, ri = 2 * i + 1, 2 * i + 2
        lc = ops[li] if li < len(ops) else EMPTY
        rc = ops[ri] if ri < len(ops) else EMPTY
        need_l, need_r = (a >= 1), (a == 2)
        if (lc >= 0) != need_l or (rc >= 0) != need_r:
            return False
    return True


def subtree_slices(spec: TreeSpec, i: int):
    """Per depth below ``i`` the contiguous slot range of its subtree."""
    for k in range(spec.depth - depth_of(i)):
        start = (i + 1) * 2**k - 1
        yield slice(start, start + 2**k)


def clear_subtree(spec: TreeSpec, ops, w, b, i: int) -> None:
    for sl in subtree_slices(spec, i):
        ops[sl] = EMPTY
        w[sl] = 1.0
        b[sl] = 0.0


def move_subtree(spec: TreeSpec, ops, w, b, src: int, dst: int) -> None:
    """Copy the subtree at ``src`` onto ``dst`` (same depth) and clear ``src``."""
    assert depth_of(src) == depth_of(dst)
    clear_subtree(spec, ops, w, b, dst)
    for s, t in zip(subtree_slices(spec, src), subtree_slices(spec, dst)):
        ops[t], w[t], b[t] = ops[s], w[s], b[s]
    clear_subtree(spec, ops, w, b, src)


def random_tree(spec: TreeSpec, size: int, rng: np.random.Generator):
    """A random valid tree grown from a leaf until it has about ``size`` nodes (section 4.1)."""
    s = spec.slots
    ops = np.full(s, EMPTY, dtype=np.int64)
    w, b = np.ones(s), np.zeros(s)
    ops[0] = rng.integers(spec.n_vars)
    has_un, has_bin = len(spec.unary) > 0, len(spec.binary) > 0
    while n_nodes(ops) < size:
        leaves = [i for i in range(s) if ops[i] >= 0 and spec.arity(int(ops[i])) == 0 and 2 * i + 2 < s]
        if not leaves:
            break
        i = int(rng.choice(leaves))
        room = size - n_nodes(ops)
        binary = has_bin and (room >= 2 or not has_un) and (not has_un or rng.random() < 0.6)
        old = int(ops[i])
        if binary:
            ops[i] = rng.choice(spec.codes_of_arity(2))
            ops[2 * i + 1], ops[2 * i + 2] = old, rng.integers(spec.n_vars)
        else:
            ops[i] = rng.choice(spec.codes_of_arity(1))
            ops[2 * i + 1] = old
    return ops, w, b


# ------------------------------------------------------------------ export
def to_sympy(spec: TreeSpec, ops: Sequence[int], w: Sequence[float], b: Sequence[float],
             symbols: Sequence[sympy.Symbol], rational: bool = False) -> sympy.Expr:
    """The formula of one tree: each node ``w * f(children) + b`` with the plain functions."""

    def num(v: float) -> sympy.Expr:
        v = float(v)
        return sympy.nsimplify(v, rational=True) if rational else sympy.Float(v) if v != int(v) else sympy.Integer(int(v))

    def protected(act, args: list[sympy.Expr]) -> sympy.Expr:
        """``act`` on its children's formulas; where an argument is a constant (after sympy's
        automatic simplification, e.g. ``x - x``) the protected torch function decides, as in the
        forward pass: all-constant arguments are evaluated by it, and a constant right operand
        outside the domain (``a / 0``) is replaced by the one the protection uses."""
        const = [not e.free_symbols for e in args]
        if all(const):
            vals = [torch.tensor(float(e), dtype=torch.float64) for e in args]
            return sympy.Float(float(act.torch_fn(*vals)))
        if act.arity == 2 and const[1] and act.guard_const is not None:
            c = float(args[1])
            ok = act.domain is None or bool(act.domain(torch.zeros(1, dtype=torch.float64),
                                                      torch.tensor([c], dtype=torch.float64))[0])
            if not ok:
                args = [args[0], sympy.Float(act.guard_const(c))]
        return act.sympy_fn(*args)

    def rec(i: int) -> sympy.Expr:
        c = int(ops[i])
        a = spec.arity(c)
        if a == 0:
            f = symbols[c]
        else:
            f = protected(spec.activation(c), [rec(2 * i + 1 + k) for k in range(a)])
        wi, bi = float(w[i]), float(b[i])
        if wi == 0.0:
            return num(bi)
        out = (f if wi == 1.0 else num(wi) * f) + (num(bi) if bi != 0.0 else 0)
        if not out.free_symbols and abs(float(out)) > OUTPUT_LIMIT:  # the forward pass's clamp
            return sympy.Float(float(np.clip(float(out), -OUTPUT_LIMIT, OUTPUT_LIMIT)))
        return out

    if int(ops[0]) < 0:
        raise NeuroplexError("empty tree")
    return rec(0)


def describe(spec: TreeSpec, ops: Sequence[int]) -> str:
    """Preorder token string (for logs and tests)."""
    out: list[str] = []

    def rec(i: int) -> None:
        out.append(spec.op_name(int(ops[i])))
        a = spec.arity(int(ops[i]))
        if a >= 1:
            rec(2 * i + 1)
        if a == 2:
            rec(2 * i + 2)

    rec(0)
    return " ".join(out)
