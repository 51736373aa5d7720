"""Equilibrium methods: fixed-point ``iteration``, ``damped`` iteration, ``anderson``
acceleration, and ``ode`` (integrate ``dy/dt = rhs`` until the residual vanishes).

Every method works per sample: a sample whose residual falls below ``tol`` is frozen
(its state no longer changes) and the loop ends as soon as all samples have converged.
Nothing is detached, so gradients flow through the iterations (EqProp, DEQ-style use).
Residual: ``max_i |F(y)_i - y_i|`` for the map methods, ``max_i |rhs(y)_i|`` for ``ode``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from neuroplex.errors import SolverError
from neuroplex.solution import Status

from .loop import run_loop
from .methods import get_method, register_method


@dataclass
class EquilibriumProblem:
    """``fixed_point(y) -> F(y)`` (the map) and ``rhs(t, y) -> dy/dt`` of a batch."""

    fixed_point: Callable[[torch.Tensor], torch.Tensor]
    rhs: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class EquilibriumSettings:
    #: a number, or one per sample ``(B,)`` (the distance test's resumed runs)
    tol: float | torch.Tensor = 1e-6
    max_iter: int = 1000
    damping: float = 0.5
    anderson_m: int = 5
    ode_method: str = "dopri5"
    rtol: float = 1e-6
    atol: float = 1e-9
    dt: float | None = None
    dt_max: float | None = None
    max_steps: int = 100_000
    check_every: int = 5
    #: ``"distance"``: a sample is SUCCESS only when its Newton correction is within
    #: ``distance_atol + distance_rtol * |y|`` too (:mod:`.distance`); ``"residual"``: the residual alone
    accept: str = "distance"
    distance_rtol: float = 1e-3
    distance_atol: float = 1e-6


@dataclass
class EquilibriumResult:
    y: torch.Tensor
    iterations: torch.Tensor
    residual: torch.Tensor
    status: torch.Tensor


def below_tol(r: torch.Tensor, tol: float | torch.Tensor) -> torch.Tensor:
    """``r < tol`` per sample; a sample given ``tol = inf`` (one a resumed run leaves alone)
    counts as converged even at a NaN residual, so it never holds the loop."""
    return r < tol if not isinstance(tol, torch.Tensor) else (r < tol) | torch.isinf(tol)


def _finish(y: torch.Tensor, iters: torch.Tensor, res: torch.Tensor, done: torch.Tensor,
            all_done: bool = False) -> EquilibriumResult:
    if all_done:  # the common case costs one op
        return EquilibriumResult(y, iters, res, torch.full_like(iters, Status.SUCCESS))
    status = torch.where(done, torch.full_like(iters, Status.SUCCESS), torch.full_like(iters, Status.NOT_CONVERGED))
    status = torch.where(torch.isfinite(y).all(-1) | done, status, torch.full_like(iters, Status.NONFINITE))
    return EquilibriumResult(y, iters, res, status)


def _relax(problem: EquilibriumProblem, y0: torch.Tensor, s: EquilibriumSettings, a: float) -> EquilibriumResult:
    """``y <- (1 - a) y + a F(y)`` (``a = 1``: plain iteration), per sample until converged.

    Lean on purpose (inner loop of learning rules): between checks an iteration is the map
    plus, for ``a < 1``, one ``lerp``; the residual ``max_i |F(y)_i - y_i|`` is computed and
    synced to the host only at iterations ``0, c, 2c, ...`` and ``max_iter`` (``c =
    check_every``), so a sample's ``iterations`` is the first checked iteration where its
    residual was below ``tol`` and ``residual`` is the exact residual of the state returned.
    Converged samples are frozen (``torch.where``) only once some sample has converged.
    """
    fixed_point, tol, max_iter = problem.fixed_point, s.tol, s.max_iter
    every = max(1, int(s.check_every))
    y = y0
    b = y.shape[0]
    done = res = first = frozen = None  # set once some sample has converged
    n_done, k = 0, 0
    while True:
        fy = fixed_point(y)
        if k % every == 0 or k == max_iter:
            r = torch.linalg.vector_norm((fy - y).detach(), ord=math.inf, dim=-1)
            now = below_tol(r, tol)
            if done is not None:  # a frozen sample keeps its state, residual and count
                now, r = now | done, torch.where(done, res, r)
            n_now = int(now.sum())  # the one host sync of a check
            if n_now > n_done:
                first = torch.full((b,), k, dtype=torch.long, device=y.device) if first is None \
                    else torch.where(done, first, k)
                done, res, n_done, frozen = now, r, n_now, now.unsqueeze(-1)
            if n_now == b or k == max_iter:
                iters = torch.full((b,), k, dtype=torch.long, device=y.device) if first is None \
                    else torch.where(done, first, k)
                return _finish(y, iters, r, now, n_now == b)
        step = fy if a == 1.0 else torch.lerp(y, fy, a)
        y = step if frozen is None else torch.where(frozen, y, step)
        k += 1


def iteration(problem: EquilibriumProblem, y0: torch.Tensor, s: EquilibriumSettings) -> EquilibriumResult:
    """Plain fixed-point iteration ``y <- F(y)`` (converges for contractions, Banach)."""
    return _relax(problem, y0, s, 1.0)


def damped(problem: EquilibriumProblem, y0: torch.Tensor, s: EquilibriumSettings) -> EquilibriumResult:
    """Damped (Krasnoselskii-Mann) iteration ``y <- (1 - a) y + a F(y)``, ``a = damping``."""
    if not 0.0 < s.damping <= 1.0:
        raise SolverError(f"damping must be in (0, 1], got {s.damping}")
    return _relax(problem, y0, s, float(s.damping))


def anderson(problem: EquilibriumProblem, y0: torch.Tensor, s: EquilibriumSettings) -> EquilibriumResult:
    """Anderson acceleration (type II, Walker & Ni 2011, eq. 2.1-2.3) with history ``anderson_m``.

    With residuals ``g_i = F(x_i) - x_i`` of the last ``m`` iterates, the weights ``alpha``
    minimise ``|sum_i alpha_i g_i|`` subject to ``sum_i alpha_i = 1`` (solved per sample as
    ``alpha ~ (G G^T + lambda I)^-1 1``) and ``x <- sum_i alpha_i F(x_i)``.
    """
    m = max(1, int(s.anderson_m))
    x = y0
    b = x.shape[0]
    iters = torch.zeros(b, dtype=torch.long, device=x.device)
    done = torch.zeros(b, dtype=torch.bool, device=x.device)
    res = torch.full((b,), torch.inf, dtype=x.dtype, device=x.device)
    xs: list[torch.Tensor] = []
    fs: list[torch.Tensor] = []
    for k in range(s.max_iter + 1):
        fx = problem.fixed_point(x)
        r = (fx - x).abs().amax(-1)
        res = torch.where(done, res, r.detach())
        done = done | below_tol(r, s.tol)
        if k == s.max_iter or bool(done.all()):
            break
        xs.append(x)
        fs.append(fx)
        if len(xs) > m:
            xs.pop(0)
            fs.pop(0)
        if len(xs) == 1:
            x_new = fx
        else:
            fmat = torch.stack(fs, 1)                 # (B, k, n)
            g = fmat - torch.stack(xs, 1)
            gram = g @ g.transpose(1, 2)
            k_hist = gram.shape[-1]
            reg = 1e-10 * gram.diagonal(dim1=1, dim2=2).amax(-1).clamp_min(torch.finfo(x.dtype).tiny)
            gram = gram + reg[:, None, None] * torch.eye(k_hist, dtype=x.dtype, device=x.device)
            ones = torch.ones(b, k_hist, 1, dtype=x.dtype, device=x.device)
            w = torch.linalg.solve_ex(gram, ones)[0][..., 0]
            alpha = w / w.sum(-1, keepdim=True)
            x_new = (alpha[:, :, None] * fmat).sum(1)
            bad = ~torch.isfinite(x_new).all(-1)
            x_new = torch.where(bad[:, None], fx, x_new)
        x = torch.where(done[:, None], x, x_new)
        iters = iters + (~done).long()
    return _finish(x, iters, res, done)


def ode(problem: EquilibriumProblem, y0: torch.Tensor, s: EquilibriumSettings) -> EquilibriumResult:
    """Integrate ``dy/dt = rhs(t, y)`` with ``ode_method`` until ``max|rhs| < tol`` per sample
    (a steady-state event, diffrax ``steady_state_event``); ``iterations`` counts steps, at
    most ``max_steps``. The step error tolerances are capped at ``rtol <= tol`` and
    ``atol <= tol / 100``."""
    b = y0.shape[0]
    t0 = torch.zeros(b, dtype=y0.dtype, device=y0.device)
    r0 = problem.rhs(t0, y0).abs().amax(-1)
    at_rest = below_tol(r0, s.tol)
    t1 = torch.where(at_rest, t0, torch.full_like(t0, torch.inf))
    stepper = get_method(s.ode_method, "simulate").factory()
    # the local error must stay below the residual asked for, or steps hover at the
    # stability limit with a residual at the error-tolerance level
    tol = float(s.tol.min()) if isinstance(s.tol, torch.Tensor) else float(s.tol)
    rtol, atol = min(s.rtol, tol), min(s.atol, 0.01 * tol)
    out = run_loop(problem.rhs, stepper, t0, t1, y0, rtol=rtol, atol=atol, dt0=s.dt, dt_max=s.dt_max,
                   max_steps=s.max_steps, stop_fn=lambda t, y, f: below_tol(f.abs().amax(-1), s.tol))
    y = out.y_end
    res = problem.rhs(out.t_end, y).abs().amax(-1).detach()
    done = at_rest | (out.stopped & (out.status == Status.SUCCESS))
    result = _finish(y, out.n_steps, res, done)
    result.status = torch.where(done | (out.status != Status.NONFINITE), result.status, out.status)
    return result


register_method("iteration", iteration, kind="equilibrate", description="fixed-point iteration y <- F(y)")
register_method("damped", damped, kind="equilibrate", description="damped iteration y <- (1-a) y + a F(y)")
register_method("anderson", anderson, kind="equilibrate", description="Anderson acceleration, history anderson_m")
register_method("ode", ode, kind="equilibrate", description="integrate rhs with ode_method to steady state")
