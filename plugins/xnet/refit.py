"""Constant refit (L-BFGS) of candidate trees, snapping of constants to simple rationals, and
pruning of constant subtrees (our additions to the paper's method; see docs/xnet.md).
"""
from __future__ import annotations

import time
from fractions import Fraction
from typing import Callable

import numpy as np
import torch

from . import tree as T
from .abp import Candidate
from .tree import TreeSpec

LossFn = Callable[[torch.Tensor], torch.Tensor]


def losses(spec: TreeSpec, x: torch.Tensor, loss_fn: LossFn, group: int, ops, w, b) -> torch.Tensor:
    """Loss of each individual (``group`` trees each) for stacked [M*group, S] arrays."""
    opt = torch.as_tensor(ops)
    roots = T.root_output(spec, opt, torch.as_tensor(w), torch.as_tensor(b), x)
    return torch.nan_to_num(loss_fn(roots.reshape(-1, group, x.shape[0])), nan=float("inf"))


class _OutOfTime(Exception):
    """Raised inside an optimiser's closure past the deadline (the refit stops there)."""


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.process_time() >= deadline


def lbfgs_refit(spec: TreeSpec, x: torch.Tensor, loss_fn: LossFn, cands: list[Candidate], group: int = 1,
                max_iter: int = 60, deadline: float | None = None) -> list[Candidate]:
    """Refit all constants of every candidate at once by L-BFGS on the summed losses; a candidate
    keeps its old constants when the refit made it worse. The refit stops where it is once
    ``time.process_time()`` passes ``deadline``."""
    if not cands or _past(deadline):
        return list(cands)
    ops = np.concatenate([c.ops for c in cands])
    w0 = torch.as_tensor(np.concatenate([c.w for c in cands]))
    b0 = torch.as_tensor(np.concatenate([c.b for c in cands]))
    mask = torch.as_tensor(ops >= 0, dtype=w0.dtype)
    w = w0.clone().requires_grad_(True)
    b = b0.clone().requires_grad_(True)
    opt_t = torch.as_tensor(ops)
    optim = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                              tolerance_grad=1e-14, tolerance_change=1e-16, history_size=20)

    def closure():
        if _past(deadline):
            raise _OutOfTime
        optim.zero_grad()
        roots = T.root_output(spec, opt_t, w * mask + (1 - mask), b * mask, x)
        lo = loss_fn(roots.reshape(-1, group, x.shape[0]))
        tot = torch.where(torch.isfinite(lo), lo, torch.zeros_like(lo)).sum()
        tot.backward()
        for p_ in (w, b):
            if p_.grad is not None:
                p_.grad = torch.nan_to_num(p_.grad, nan=0.0, posinf=0.0, neginf=0.0)
        return tot

    try:
        optim.step(closure)
    except (RuntimeError, _OutOfTime):
        pass
    w1, b1 = w.detach().numpy(), b.detach().numpy()
    new = losses(spec, x, loss_fn, group, ops, w1, b1).numpy()
    out = []
    for i, c in enumerate(cands):
        s = slice(i * group, (i + 1) * group)
        if np.isfinite(new[i]) and new[i] <= c.loss and np.all(np.isfinite(w1[s])) and np.all(np.isfinite(b1[s])):
            out.append(Candidate(c.ops.copy(), w1[s].copy(), b1[s].copy(), float(new[i])))
        else:
            out.append(c)
    return out


def simple_rational(v: float, max_den: int = 12) -> float:
    """The nearest fraction with denominator at most ``max_den``."""
    if not np.isfinite(v):
        return v
    return float(Fraction(float(v)).limit_denominator(max_den))


def prune_constants(spec: TreeSpec, c: Candidate) -> Candidate:
    """A node with ``w == 0`` outputs its bias: its subtree is replaced by a constant leaf."""
    ops, w, b = c.ops.copy(), c.w.copy(), c.b.copy()
    for g in range(ops.shape[0]):
        for i in range(spec.slots):
            if ops[g, i] >= 0 and w[g, i] == 0.0 and spec.arity(int(ops[g, i])) > 0:
                T.clear_subtree(spec, ops[g], w[g], b[g], 2 * i + 1)
                if 2 * i + 2 < spec.slots:
                    T.clear_subtree(spec, ops[g], w[g], b[g], 2 * i + 2)
                ops[g, i] = 0
    return Candidate(ops, w, b, c.loss)


def snap(spec: TreeSpec, x: torch.Tensor, loss_fn: LossFn, c: Candidate, group: int = 1,
         residual_fn: Callable | None = None, rel_tol: float = 1e-6, abs_tol: float = 1e-24,
         max_den: int = 12, one_by_one_below: float = 1e-16, deadline: float | None = None) -> Candidate:
    """Snap constants to simple rationals while the loss stays within ``c.loss * (1 + rel_tol) +
    abs_tol``: all at once if that holds, else (only for a fit with loss below
    ``one_by_one_below``, where exact constants are to be found) one at a time, closest to a
    rational first, the others refitted (Levenberg-Marquardt, squared losses) after each; then
    prune constant subtrees. The one-at-a-time pass stops past ``deadline``."""
    lim = c.loss * (1 + rel_tol) + abs_tol
    ops, s = c.ops.reshape(-1, spec.slots), spec.slots
    active = np.concatenate([ops >= 0, ops >= 0], axis=1)[0] if group == 1 else None

    def loss_of(theta: np.ndarray) -> float:
        return float(losses(spec, x, loss_fn, group, ops, theta[None, :s] if group == 1 else theta[0],
                            theta[None, s:] if group == 1 else theta[1])[0])

    def snapped(v: np.ndarray) -> np.ndarray:
        return np.array([simple_rational(float(t), max_den) for t in v])

    if group != 1:  # classification: all at once or nothing
        ws, bs = np.vectorize(lambda t: simple_rational(float(t), max_den))(c.w), None
        bs = np.vectorize(lambda t: simple_rational(float(t), max_den))(c.b)
        lo = float(losses(spec, x, loss_fn, group, ops, ws.reshape(-1, s), bs.reshape(-1, s))[0])
        return prune_constants(spec, Candidate(c.ops.copy(), ws, bs, lo)) if lo <= lim else c
    theta = np.concatenate([c.w[0], c.b[0]])
    trial = np.where(active, snapped(theta), theta)
    lo = loss_of(trial)
    if lo <= lim:
        return prune_constants(spec, Candidate(c.ops.copy(), trial[None, :s], trial[None, s:], lo))
    if residual_fn is None or c.loss >= one_by_one_below:
        return c
    frozen = ~active
    cur, cur_loss = theta.copy(), c.loss
    todo = [int(i) for i in np.nonzero(active)[0]]
    while todo and not _past(deadline):
        sv = snapped(cur[todo])
        dist = np.abs(sv - cur[todo]) / np.maximum(1.0, np.abs(cur[todo]))
        j = int(np.argmin(dist))
        p = todo.pop(j)
        if sv[j] == cur[p]:
            frozen[p] = True
            continue
        tr = cur.copy()
        tr[p] = sv[j]
        fz = frozen.copy()
        fz[p] = True
        cand = Candidate(c.ops.copy(), tr[None, :s], tr[None, s:], loss_of(tr))
        cand.loss = min(cand.loss, float("inf"))
        got = lm_refit(spec, x, residual_fn, loss_fn, [cand], iters=12, frozen=torch.as_tensor(fz[None]),
                       deadline=deadline)[0]
        if got.loss <= lim:
            cur, cur_loss, frozen = np.concatenate([got.w[0], got.b[0]]), got.loss, fz
            trial = np.where(active & ~frozen, snapped(cur), cur)
            lo = loss_of(trial)
            if lo <= lim:
                cur, cur_loss = trial, lo
                break
    return prune_constants(spec, Candidate(c.ops.copy(), cur[None, :s].copy(), cur[None, s:].copy(), cur_loss))


def lm_refit(spec: TreeSpec, x: torch.Tensor, residual_fn: Callable[[torch.Tensor], torch.Tensor],
             loss_fn: LossFn, cands: list[Candidate], iters: int = 40,
             frozen: torch.Tensor | None = None, deadline: float | None = None, chunk: int = 4) -> list[Candidate]:
    """Levenberg-Marquardt refit of every candidate's constants for a squared loss, batched over
    candidates (each with its own damping); ``residual_fn`` maps roots [M, N] to residuals [M, N]
    whose mean square is the loss; ``frozen`` [M, 2S] marks constants kept as they are; no
    iteration starts past ``deadline`` (``time.process_time()``). With a deadline the candidates
    go in batches of ``chunk`` (one Jacobian of many candidates can cost more than a whole
    budget), and those not started by the deadline keep their constants."""
    if not cands:
        return []
    if deadline is not None and len(cands) > chunk:
        out: list[Candidate] = []
        for i in range(0, len(cands), chunk):
            part = cands[i:i + chunk]
            out += list(part) if _past(deadline) else lm_refit(
                spec, x, residual_fn, loss_fn, part, iters, None if frozen is None else frozen[i:i + chunk],
                deadline, chunk)
        return out
    ops = torch.as_tensor(np.concatenate([c.ops for c in cands]))
    m, s = ops.shape
    n = x.shape[0]
    active = torch.cat([ops >= 0, ops >= 0], dim=1)
    if frozen is not None:
        active = active & ~frozen
    theta = torch.cat([torch.as_tensor(np.concatenate([c.w for c in cands])),
                       torch.as_tensor(np.concatenate([c.b for c in cands]))], dim=1)
    lam = torch.full((m,), 1e-3, dtype=theta.dtype)
    eye = torch.eye(2 * s, dtype=theta.dtype)

    def resid(th: torch.Tensor) -> torch.Tensor:
        return residual_fn(T.root_output(spec, ops, th[:, :s], th[:, s:], x))

    def sse(r: torch.Tensor) -> torch.Tensor:
        return torch.nan_to_num((r * r).sum(1), nan=float("inf"))

    cur = sse(resid(theta))
    for _ in range(iters):
        if _past(deadline):
            break
        th = theta.clone().requires_grad_(True)
        r = resid(th)
        probe = torch.eye(n, dtype=r.dtype)[:, None, :].expand(n, m, n)
        jac = torch.autograd.grad(r, th, grad_outputs=probe, is_grads_batched=True)[0].transpose(0, 1)
        jac = torch.nan_to_num(jac) * active[:, None, :]
        rd = torch.nan_to_num(r.detach())
        jtj = jac.transpose(1, 2) @ jac
        g = (jac.transpose(1, 2) @ rd[..., None]).squeeze(-1)
        diag = torch.diagonal(jtj, dim1=1, dim2=2)
        a = jtj + lam[:, None, None] * torch.diag_embed(diag + 1e-9) + eye * (~active)[:, None, :]
        try:
            step = torch.linalg.solve(a, -g[..., None]).squeeze(-1)
        except RuntimeError:
            step = -g / (diag + lam[:, None] + 1e-9)
        step = torch.nan_to_num(step) * active
        trial = theta + step
        new = sse(resid(trial).detach())
        better = new < cur
        gain = torch.where(better, (cur - new) / (cur + 1e-300), torch.zeros_like(cur))
        theta = torch.where(better[:, None], trial, theta)
        cur = torch.where(better, new, cur)
        lam = torch.where(better, lam / 3, lam * 4).clamp(1e-12, 1e12)
        if bool((cur / n < 1e-30).all()) or (bool((gain < 1e-9).all()) and bool((lam < 1e-6).all())):
            break
    th = theta.numpy()
    lo = losses(spec, x, loss_fn, 1, ops.numpy(), th[:, :s], th[:, s:]).numpy()
    out = []
    for i, c in enumerate(cands):
        if np.isfinite(lo[i]) and lo[i] <= c.loss:
            out.append(Candidate(c.ops.copy(), th[i:i + 1, :s].copy(), th[i:i + 1, s:].copy(), float(lo[i])))
        else:
            out.append(c)
    return out
