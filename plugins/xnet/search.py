"""The outer loop: rounds of Alternating Backpropagation from fresh small trees and from the best
structures so far (restarts), L-BFGS refit and snapping of the best new structures, selection.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from .abp import ABPConfig, ABPSearch, Candidate
from .refit import lbfgs_refit, lm_refit, losses, snap
from .simplify import canonical_candidate
from . import tree as T
from .tree import TreeSpec


@dataclass
class SearchResult:
    best: Candidate
    rounds: int
    seconds: float
    front: list[Candidate] = field(default_factory=list)


#: common multiple of the denominators 1..12: a constant times this is an integer when simple
_LCM = 27720.0


def odd_constants(c: Candidate) -> int:
    """Constants (scales and biases of active neurons) that are not fractions with a
    denominator of at most 12."""
    act = c.ops >= 0
    v = np.concatenate([c.w[act], c.b[act]]) * _LCM
    return int((np.abs(v - np.round(v)) > 1e-6 * np.maximum(1.0, np.abs(v))).sum())


def score(c: Candidate, parsimony: float) -> float:
    """Selection score: loss (floored at 1e-20) times ``1 + parsimony * (nodes + odd)`` with
    ``odd`` the constants that are not simple fractions (:func:`odd_constants`): an exact fit
    beats any inexact one, and among fits of similar loss the smaller tree with simpler
    constants wins."""
    return (c.loss + 1e-20) * (1.0 + parsimony * (c.nodes + odd_constants(c)))


def _clean(spec: TreeSpec, x: torch.Tensor, loss_fn: Callable, residual_fn: Callable | None, c: Candidate,
           group: int, deadline: float | None = None) -> Candidate:
    """Near-exact candidate: exact rewrites (simplify.py), refit, snap constants to rationals."""
    can = canonical_candidate(spec, c, x)
    can.loss = float(losses(spec, x, loss_fn, group, can.ops.reshape(-1, spec.slots),
                            can.w.reshape(-1, spec.slots), can.b.reshape(-1, spec.slots))[0])
    if not can.loss <= c.loss * 10 + 1e-12:
        can = c
    if residual_fn is not None:
        can = lm_refit(spec, x, residual_fn, loss_fn, [can], iters=20, deadline=deadline)[0]
    out = snap(spec, x, loss_fn, can, group=group, residual_fn=residual_fn, deadline=deadline)
    final = canonical_candidate(spec, out, x)
    final.loss = float(losses(spec, x, loss_fn, group, final.ops.reshape(-1, spec.slots),
                              final.w.reshape(-1, spec.slots), final.b.reshape(-1, spec.slots))[0])
    return final if final.loss <= out.loss * (1 + 1e-6) + 1e-24 else out


def sane(spec: TreeSpec, c: Candidate, probe: torch.Tensor, y_span: float) -> bool:
    """Between the training points too the tree stays in every activation's domain and within
    ten times the span of the targets (section 4.5 (3): no unreasonable operations; ours: checked
    on ``probe``, random points of the training box), so poles and log/sqrt of negative values
    between the samples rule a candidate out."""
    ops = c.ops.reshape(-1, spec.slots)
    levels, ok = T.forward(spec, torch.as_tensor(ops), torch.as_tensor(c.w.reshape(ops.shape)),
                           torch.as_tensor(c.b.reshape(ops.shape)), probe, domain=True)
    out = levels[0][:, 0]
    return bool(ok.all()) and bool(torch.isfinite(out).all()) and float((out - out.mean()).abs().max()) <= 10 * y_span


def run_search(spec: TreeSpec, x: torch.Tensor, loss_fn: Callable, cfg: ABPConfig, rng: np.random.Generator,
               *, group: int = 1, max_rounds: int = 100, time_budget: float | None = 60.0,
               refit_per_round: int = 48, per_size: int = 8, parsimony: float = 0.01, snap_constants: bool = True,
               exact_loss: float = 1e-22, elite: float = 0.25, residual_fn: Callable | None = None,
               probe: torch.Tensor | None = None, y_span: float = 1.0,
               clean_below: float = 1e-6, proposals: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]] = (),
               progress: Callable[[int, Candidate], None] | None = None
               ) -> SearchResult:
    """Search until a near-exact fit (loss <= ``exact_loss``), ``max_rounds`` rounds or
    ``time_budget`` CPU seconds; returns the best candidate by :func:`score`. ``proposals``
    (trees ``(ops, w, b)`` from ``propose.py``, best first; ``[group, S]`` arrays for a group) are refitted and kept like the
    search's own structures before the first round, so they enter its populations as elites;
    the first alone, then the rest unless the first was an exact, sane fit (which ends the
    search at once) or the budget is spent. The budget is checked inside rounds too (every ABP
    step, refit iteration and snapping step), so a fit ends within about one step of it with the
    best candidate so far."""
    t0 = time.process_time()
    deadline = None if time_budget is None else t0 + time_budget
    abp = ABPSearch(spec, x, loss_fn, cfg, rng, group=group)
    refined: dict[bytes, Candidate] = {}
    penalty: dict[int, float] = {}
    best: Candidate | None = None

    def rank(c: Candidate) -> float:
        if probe is None:
            return score(c, parsimony)
        if id(c) not in penalty:
            penalty[id(c)] = 0.0 if sane(spec, c, probe, y_span) else 1.0  # as bad as a constant model
        return score(c, parsimony) + penalty[id(c)]

    def refit(cands: list[Candidate]) -> list[Candidate]:
        if not cfg.constants:  # nothing to fit
            return cands
        return (lm_refit(spec, x, residual_fn, loss_fn, cands, iters=15, deadline=deadline)
                if residual_fn is not None else lbfgs_refit(spec, x, loss_fn, cands, group=group, deadline=deadline))

    def out_of_time() -> bool:
        return time_budget is not None and time.process_time() - t0 >= time_budget

    def keep(fresh: list[Candidate], fitted: list[Candidate]) -> None:
        for c, f in zip(fresh, fitted):
            if snap_constants and cfg.constants and f.loss < clean_below and not out_of_time():
                f = _clean(spec, x, loss_fn, residual_fn, f, group, deadline)
            refined[c.key] = f
            if f.key != c.key:
                refined.setdefault(f.key, f)

    if proposals:
        n = len(proposals)
        ops, w, b = (np.stack([p[j] for p in proposals]).reshape(n * group, -1) for j in range(3))
        lo = losses(spec, x, loss_fn, group, ops, w, b).numpy()
        seeds = [Candidate(ops[i * group:(i + 1) * group], w[i * group:(i + 1) * group],
                           b[i * group:(i + 1) * group], float(lo[i])) for i in range(n)]
        seeds = [c for c in seeds if c.key not in refined and np.isfinite(c.loss)]
        for part in (seeds[:1], seeds[1:]):  # the first (an exact fit when there is one) alone
            if part and not (best is not None and best.loss <= exact_loss and rank(best) < 1.0) \
                    and (best is None or not out_of_time()):
                keep(part, refit(part))
                best = min(refined.values(), key=rank)
    r = 0
    if best is not None and ((best.loss <= exact_loss and rank(best) < 1.0) or out_of_time()):
        max_rounds = 0
    for r in range(1, max_rounds + 1):
        ops, w, b = abp.init_population()
        ranked = sorted(refined.values(), key=rank)
        n_elite = min(int(elite * cfg.population), len(ranked))
        for e in range(n_elite):
            s = slice(e * group, (e + 1) * group)
            ops[s], w[s], b[s] = ranked[e].ops, ranked[e].w, ranked[e].b
        abp.run_round((ops, w, b), deadline)
        fresh = abp.best_candidates(refit_per_round, exclude=set(refined), per_size=per_size)
        fitted = refit(fresh)
        keep(fresh, fitted)
        best = min(refined.values(), key=rank)
        if progress is not None:
            progress(r, best)
        if best.loss <= exact_loss and rank(best) < 1.0:
            break
        if time_budget is not None and time.process_time() - t0 >= time_budget:
            break
    assert best is not None
    front = sorted(refined.values(), key=rank)[:20]
    return SearchResult(best, r, time.process_time() - t0, front)
