"""The batched step loop shared by every simulation method, and the functional core
:func:`integrate`.

Every sample has its own time, step size, error control, event handling and status
(torchode's design): the loop runs until all samples are done, and updates of a sample are
element-wise, so a sample solved alone gives the same result as inside any batch (up to the last
bits of vectorised math functions, whose result can depend on an element's position).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from neuroplex.errors import SolverError
from neuroplex.solution import Status

from .methods import get_method

Rhs = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: step-size controller limits (Hairer's DOPRI5 defaults)
SAFETY, FAC_MIN, FAC_MAX = 0.9, 0.2, 10.0
#: most root-finding iterations spent locating one event inside a step
MAX_ROOT_ITER = 128
#: ensemble compaction: once at most this fraction of a working batch of at least
#: ``COMPACT_MIN`` samples is unfinished, the loop goes on with the unfinished ones only
COMPACT_FRACTION, COMPACT_MIN = 0.9, 64
#: ``stiff_stop``: a sample stops as stiff after this many accepted steps at the method's
#: stability boundary, unless ``STIFF_CALM`` steps in a row inside it reset the count
#: (DOPRI5's own test, Hairer & Wanner, Solving ODEs II, sec. IV.2), and only if at its pace so
#: far (steps per unit of its span covered) it would not finish within ``max_steps``: a mildly
#: stiff sample that the explicit method still finishes in budget is cheaper to finish than to rerun
STIFF_STEPS, STIFF_CALM = 15, 6


@dataclass
class EventSpec:
    """Events as the loop sees them.

    ``g(t, y) -> (B, k)``: an event fires where a column crosses from ``< 0`` to ``>= 0``
    inside a step. ``bisect``: ``(k,)`` bool, columns that are only a sign (boolean
    triggers as +-1) and are located by bisection; the others by the Illinois method.
    ``terminal``: ``(k,)`` bool. ``apply(t, y, fired) -> y`` changes the state of the
    samples where ``fired`` (``(B, k)`` bool) is set (None: no state change).
    """

    g: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    bisect: torch.Tensor
    terminal: torch.Tensor
    apply: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None


@dataclass
class LoopResult:
    """What the step loop hands back (see :class:`IntegrationResult` for the public form)."""

    ys: torch.Tensor | None
    t_end: torch.Tensor
    y_end: torch.Tensor
    status: torch.Tensor
    n_steps: torch.Tensor
    n_rhs: torch.Tensor
    event_index: torch.Tensor
    event_stop: torch.Tensor
    event_log: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = field(default_factory=list)
    stopped: torch.Tensor | None = None


@dataclass
class IntegrationResult:
    """Result of :func:`integrate`.

    ``ts (n_t,)`` output times; ``ys (B, n_t, n)`` states there (NaN after a sample stopped);
    ``t_end``/``y_end`` where each sample stopped (``t1`` or its event time); ``status``
    (:class:`~neuroplex.solution.Status` codes); ``event_index`` (column of ``event_fn`` that
    stopped the sample, -1 if none); ``n_steps`` (attempted steps) and ``n_rhs`` per sample.
    """

    ts: torch.Tensor | None
    ys: torch.Tensor | None
    t_end: torch.Tensor
    y_end: torch.Tensor
    status: torch.Tensor
    event_index: torch.Tensor
    n_steps: torch.Tensor
    n_rhs: torch.Tensor

    @property
    def ok(self) -> bool:
        return bool((self.status == Status.SUCCESS).all())


def _rms_norm(x: torch.Tensor) -> torch.Tensor:
    return torch.sqrt((x * x).mean(-1)) if x.shape[-1] else x.new_zeros(x.shape[:-1])


def error_ratio(y: torch.Tensor, y1: torch.Tensor, err: torch.Tensor, rtol: float,
                atol: float | torch.Tensor) -> torch.Tensor:
    """Per sample, the RMS norm of ``err / (atol + rtol * max(|y|, |y1|))`` (Hairer, Norsett &
    Wanner, *Solving ODEs I*, eq. II.4.11): a step is accepted where it is at most 1."""
    return _rms_norm(err / (atol + rtol * torch.maximum(y.abs(), y1.abs())))


def initial_step(f: Rhs, t0: torch.Tensor, y0: torch.Tensor, f0: torch.Tensor, t1: torch.Tensor, order: int,
                 rtol: float, atol: float | torch.Tensor) -> torch.Tensor:
    """Hairer's starting step-size heuristic (*Solving ODEs I*, sec. II.4), per sample."""
    scale = atol + rtol * y0.abs()
    d0 = _rms_norm(y0 / scale)
    d1 = _rms_norm(f0 / scale)
    h0 = torch.where((d0 < 1e-5) | (d1 < 1e-5), torch.full_like(d0, 1e-6), 0.01 * d0 / d1)
    span = (t1 - t0).abs()
    h0 = torch.minimum(h0, span)
    h0 = torch.where(torch.isfinite(h0) & (h0 > 0), h0, torch.full_like(h0, 1e-6))
    f1 = f(t0 + h0, y0 + h0[:, None] * f0)
    d2 = _rms_norm((f1 - f0) / scale) / h0
    dmax = torch.maximum(d1, d2)
    h1 = torch.where(dmax <= 1e-15, torch.maximum(torch.full_like(h0, 1e-6), h0 * 1e-3),
                     (0.01 / dmax) ** (1.0 / order))
    h = torch.minimum(100 * h0, h1)
    h = torch.where(torch.isfinite(h) & (h > 0), h, torch.full_like(h, 1e-6))
    return torch.minimum(h, span).clamp_min(torch.finfo(y0.dtype).tiny)


def _masked_max(g: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    return torch.where(cols, g, torch.full_like(g, -math.inf)).amax(-1)


#: interior points scanned in a step after a reset that left an event function at >= 0
SCAN = (0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0)


def detect_crossings(events: EventSpec, dense: Callable[[torch.Tensor], torch.Tensor], t: torch.Tensor,
                     h: torch.Tensor, g0: torch.Tensor, g1: torch.Tensor, pending: torch.Tensor,
                     accept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Brackets ``[lo, hi]`` (in units of the step) holding the first crossing of each sample.

    A column crosses where it goes from ``< 0`` to ``>= 0``. ``pending`` columns were left at
    ``>= 0`` by a reset (a bouncing ball at height 0): the step may carry them below zero and
    back, so such steps are scanned at interior points of the dense output. Returns
    ``(lo, hi, g_lo, g_hi, crossed)`` with ``crossed`` the columns crossing inside the bracket.
    """
    lo, hi = torch.zeros_like(t), torch.ones_like(t)
    crossed = accept[:, None] & (g0 < 0) & (g1 >= 0)
    g_lo, g_hi = g0, g1
    need = (accept[:, None] & pending & (g1 >= 0)).any(-1)
    if bool(need.any()):
        g_prev = torch.where(pending, torch.full_like(g0, math.inf), g0)
        th_prev = torch.zeros_like(t)
        found = torch.zeros_like(need)
        crossed = crossed & ~need[:, None]
        for th in SCAN:
            g_th = g1 if th == 1.0 else events.g(t + th * h, dense(torch.full_like(t, th)))
            cr = need[:, None] & ~found[:, None] & (g_prev < 0) & (g_th >= 0)
            hit = cr.any(-1)
            lo = torch.where(hit, th_prev, lo)
            hi = torch.where(hit, torch.full_like(hi, th), hi)
            g_lo = torch.where(hit[:, None], g_prev, g_lo)
            g_hi = torch.where(hit[:, None], g_th, g_hi)
            crossed = torch.where(hit[:, None], cr, crossed)
            found = found | hit
            g_prev, th_prev = g_th, torch.full_like(t, th)
    return lo, hi, g_lo, g_hi, crossed


def locate_events(events: EventSpec, dense: Callable[[torch.Tensor], torch.Tensor], t: torch.Tensor,
                  h: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, g0: torch.Tensor, g1: torch.Tensor,
                  crossed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First crossing inside the bracket ``[lo, hi]`` of the samples with a crossed column.

    Root finding on ``H(theta) = max_c g_c(t + theta h, dense(theta))`` over the crossed
    columns: Illinois (regula falsi with halving), or bisection where a crossed column is a
    boolean trigger. Samples converge on their own and are then frozen. Returns ``theta``
    (at or just after the crossing, where H >= 0) and ``g`` there (``(B, k)``).
    """
    has = crossed.any(-1)
    f_lo = _masked_max(g0, crossed)
    f_hi = _masked_max(g1, crossed)
    g_hi = g1
    use_bisect = (crossed & events.bisect).any(-1)
    side = torch.zeros_like(t)
    eps = torch.finfo(t.dtype).eps
    rel = 100 * eps
    width_tol = rel * (t.abs() + h.abs()) / h.abs().clamp_min(torch.finfo(t.dtype).tiny)
    done = ~has | (hi - lo <= width_tol)
    for _ in range(MAX_ROOT_ITER):
        if bool(done.all()):
            break
        denom = f_hi - f_lo
        rf = (lo * f_hi - hi * f_lo) / torch.where(denom == 0, torch.ones_like(denom), denom)
        mid = 0.5 * (lo + hi)
        ok = ~use_bisect & torch.isfinite(rf) & (rf > lo) & (rf < hi) & (denom != 0)
        x = torch.where(ok, rf, mid)
        gx = events.g(t + x * h, dense(x))
        fx = _masked_max(gx, crossed)
        upd = ~done
        right = upd & (fx >= 0)
        left = upd & ~right
        # Illinois: halve the retained end's value when the same end moved twice in a row
        f_lo = torch.where(right & (side > 0), 0.5 * f_lo, f_lo)
        f_hi = torch.where(left & (side < 0), 0.5 * f_hi, f_hi)
        hi = torch.where(right, x, hi)
        f_hi = torch.where(right, fx, f_hi)
        g_hi = torch.where(right[:, None], gx, g_hi)
        lo = torch.where(left, x, lo)
        f_lo = torch.where(left, fx, f_lo)
        side = torch.where(right, torch.ones_like(side), torch.where(left, -torch.ones_like(side), side))
        done = done | (hi - lo <= width_tol) | (right & (fx == 0))
    return hi, g_hi


class _Outputs:
    """Dense output at the requested times: each step fills the points it covers. The rows of
    sample ``i`` are ``i * n_t ...``; one scratch row after all of them absorbs the writes of
    samples with nothing to write (all to the same row, so they stay in one cache line), so a
    write is one ``index_copy_`` without host-side masking."""

    def __init__(self, t_eval: torch.Tensor, t0: torch.Tensor, y0: torch.Tensor):
        b, n = y0.shape
        self.t_eval = t_eval
        self.n_t = int(t_eval.numel())
        self.n_samples = b
        # +inf guard: a sample whose points are all written is never "due"
        self.t_pad = torch.cat([t_eval, t_eval.new_full((1,), math.inf)])
        self.buf = torch.full((b * self.n_t + 1, n), math.nan, dtype=y0.dtype, device=y0.device)
        self.base = torch.arange(b, device=y0.device) * self.n_t
        self.scratch = torch.tensor(b * self.n_t, device=y0.device)
        self.next = torch.searchsorted(t_eval, t0.contiguous(), right=False)
        at0 = self.t_pad[self.next] == t0
        self._write(at0, y0)

    @property
    def ys(self) -> torch.Tensor:
        return self.buf[:self.n_samples * self.n_t].view(self.n_samples, self.n_t, self.buf.shape[-1])

    def select(self, keep: torch.Tensor) -> None:
        """Go on with the working-batch rows ``keep`` only (their blocks stay where they are)."""
        self.base, self.next = self.base[keep], self.next[keep]

    def _write(self, due: torch.Tensor, values: torch.Tensor) -> None:
        self.buf.index_copy_(0, torch.where(due, self.base + self.next, self.scratch), values)
        self.next = self.next + due.long()

    def record(self, mask: torch.Tensor, t: torch.Tensor, h: torch.Tensor, t_hi: torch.Tensor,
               y_hi: torch.Tensor, dense: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Fill the points in ``(t, t_hi]`` of the samples in ``mask`` (one (B, n) dense
        evaluation per point, no broadcasting over points)."""
        if self.n_t == 0:
            return
        h_safe = None
        while True:
            te = self.t_pad[self.next]
            due = mask & (te <= t_hi)
            if not bool(due.any()):
                return
            if h_safe is None:
                h_safe = torch.where(h == 0, torch.ones_like(h), h)
            at_end = te == t_hi
            if bool((at_end | ~due).all()):
                vals = y_hi  # the step's end itself
            else:
                # samples with nothing due evaluate at theta = 0 (finite, so no NaN gradients)
                vals = dense(torch.where(due, te - t, torch.zeros_like(t)) / h_safe)
                if bool((at_end & due).any()):
                    vals = torch.where(at_end[:, None], y_hi, vals)
            self._write(due, vals)


@dataclass(frozen=True)
class Controller:
    """The PI step-size controller's constants for one method (Hairer's DOPRI5 defaults;
    *Solving ODEs I*, sec. II.4, eq. 4.13, with the PI term of sec. IV.2): the next step is
    ``h * SAFETY * e**-alpha * e_prev**beta``, its factor kept within ``[FAC_MIN, fac_max]``."""

    alpha: float
    beta: float
    fac_max: float
    dt_max: float | None

    @staticmethod
    def of(stepper: Any, dt_max: float | None) -> "Controller":
        q = float(getattr(stepper, "order", 5))
        beta = float(getattr(stepper, "controller_beta", 0.0))
        return Controller(1.0 / q - 0.75 * beta, beta, float(getattr(stepper, "fac_max", FAC_MAX)), dt_max)


def control(ctrl: Controller, e: torch.Tensor, finite: torch.Tensor, active: torch.Tensor, last: torch.Tensor,
            h: torch.Tensor, dt: torch.Tensor, err_prev: torch.Tensor, rejected_prev: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Accept or reject each sample's step from its error ratio ``e`` and choose the next step
    size: ``(accept, dt, err_prev, rejected_prev)``. After a rejection the step may not grow;
    a step that was clipped to land on ``t1`` does not shrink the size kept for later."""
    accept = active & finite & (e <= 1.0)
    e_safe = torch.where(finite, e, torch.ones_like(e)).clamp_min(1e-10)
    factor = SAFETY * e_safe.pow(-ctrl.alpha) * err_prev.pow(ctrl.beta)
    factor = factor.clamp(FAC_MIN, ctrl.fac_max)
    factor = torch.where(rejected_prev | ~accept, factor.clamp(max=1.0), factor)
    factor = torch.where(finite, factor, torch.full_like(factor, FAC_MIN))
    dt_next = h * factor
    if ctrl.dt_max is not None:
        dt_next = dt_next.clamp(max=ctrl.dt_max)
    dt_next = torch.where(accept & last, torch.maximum(dt_next, dt), dt_next)
    return (accept, torch.where(active, dt_next, dt), torch.where(accept, e_safe.clamp_min(1e-4), err_prev),
            torch.where(active, ~accept, rejected_prev))


def count_stiff_steps(accept: torch.Tensor, at_edge: torch.Tensor, n_stiff: torch.Tensor,
                      n_calm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The stiffness test's counters (``STIFF_STEPS``, ``STIFF_CALM``) after a step whose
    ``|h lambda|`` was at the method's stability boundary where ``at_edge``."""
    at_edge = accept & at_edge
    n_stiff = n_stiff + at_edge.long()
    n_calm = torch.where(at_edge, torch.zeros_like(n_calm), n_calm + (accept & ~at_edge).long())
    return torch.where(n_calm >= STIFF_CALM, torch.zeros_like(n_stiff), n_stiff), n_calm


@dataclass(frozen=True)
class Limits:
    """When a sample fails: ``max_steps`` attempted steps, a step below ``dt_floor`` (or
    ``tiny`` relative to ``t``), and, with the stiffness test, ``STIFF_STEPS`` steps at the
    stability boundary while not on pace to finish within ``budget`` steps."""

    adaptive: bool
    max_steps: int
    budget: int
    tiny: float
    dt_floor: float

    @staticmethod
    def of(dtype: torch.dtype, adaptive: bool, max_steps: int, dt_min: float, stiff_budget: int | None) -> "Limits":
        info = torch.finfo(dtype)
        return Limits(adaptive, max_steps, max_steps if stiff_budget is None else min(stiff_budget, max_steps),
                      10 * info.eps, max(dt_min, info.tiny))


def failures(limits: Limits, done: torch.Tensor, finite: torch.Tensor, n_steps: torch.Tensor, dt: torch.Tensor,
             t: torch.Tensor, t1: torch.Tensor, t_start: torch.Tensor, n_stiff: torch.Tensor | None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(broken, too_many, stiff)``: the unfinished samples that fail after this step, those
    out of steps, and (``n_stiff`` given) those stopped as stiff."""
    too_many = n_steps >= limits.max_steps
    if limits.adaptive:
        broken = too_many | (dt < (limits.tiny * t.abs()).clamp_min(limits.dt_floor))
    else:
        broken = too_many | ~finite
    broken = broken & ~done
    stiff = None
    if n_stiff is not None:
        covered = (t - t_start) / (t1 - t_start).clamp_min(limits.tiny)
        stiff = (n_stiff >= STIFF_STEPS) & ~done & (n_steps > limits.budget * covered)  # not on pace
        broken = broken | stiff
    return broken, too_many, stiff


def failure_status(status: torch.Tensor, broken: torch.Tensor, finite: torch.Tensor, too_many: torch.Tensor,
                   stiff: torch.Tensor | None) -> torch.Tensor:
    """``status`` with the failure code of each ``broken`` sample."""
    code = torch.where(finite, torch.full_like(status, Status.DT_MIN), torch.full_like(status, Status.NONFINITE))
    code = torch.where(too_many, torch.full_like(status, Status.MAX_STEPS), code)
    if stiff is not None:
        code = torch.where(stiff, torch.full_like(status, Status.STIFF), code)
    return torch.where(broken, code, status)


def run_loop(f: Rhs, stepper: Any, t0: torch.Tensor, t1: torch.Tensor, y0: torch.Tensor, *,
             rtol: float = 1e-6, atol: float | torch.Tensor = 1e-9, dt0: float | torch.Tensor | None = None,
             dt_min: float = 0.0, dt_max: float | None = None, max_steps: int = 100_000,
             t_eval: torch.Tensor | None = None, events: EventSpec | None = None,
             stop_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
             adaptive: bool | None = None, progress: bool = False, stiff_stop: bool = False,
             stiff_budget: int | None = None, fused: bool = False) -> LoopResult:
    """Integrate ``y' = f(t, y)`` for a batch, each sample on its own span ``[t0, t1]``.

    ``stop_fn(t, y, f)`` (optional) ends a sample successfully after an accepted step
    (e.g. a steady-state test). Fixed-step methods need ``dt0``; ``adaptive=False`` runs an
    adaptive method with the fixed step ``dt0`` (error estimate ignored). A right-hand side with
    ``f.select(sample ids) -> Rhs`` lets the loop drop finished samples from its working batch
    (an ensemble whose samples need different numbers of steps then costs about the sum of
    their steps, not the slowest one's times the batch); results are the same. ``stiff_stop``:
    a method with a stiffness test (dopri5) stops samples that turn out stiff, and at their pace
    would not finish within ``stiff_budget`` steps (default ``max_steps``), with status ``STIFF``
    (for a caller that reruns them with a stiff method). ``fused``: a method with a fused step
    (``stepper.fuse()``: dopri5, dop853) runs each step as one ``torch.compile`` kernel where the
    right-hand side is traceable (:mod:`.fused`), and without events or a stop test the loop's
    whole step as one kernel compiled ahead of time (:mod:`.fused_loop`); others ignore it.
    """
    b, n = y0.shape
    dev, dtype = y0.device, y0.dtype
    if adaptive is None:
        adaptive = bool(getattr(stepper, "adaptive", False))
    elif adaptive and not getattr(stepper, "adaptive", False):
        raise SolverError(f"method {getattr(stepper, 'name', '?')!r} has no error estimate: it runs with fixed steps only")
    t = t0.clone()
    t_start = t0.clone()
    y = y0
    fcur = f(t, y)
    n_rhs = torch.ones(b, dtype=torch.long, device=dev)
    n_steps = torch.zeros(b, dtype=torch.long, device=dev)
    status = torch.zeros(b, dtype=torch.long, device=dev)
    event_index = torch.full((b,), -1, dtype=torch.long, device=dev)
    event_stop = torch.zeros(b, dtype=torch.bool, device=dev)
    stopped = torch.zeros(b, dtype=torch.bool, device=dev)
    if dt0 is None:
        if not adaptive:
            raise SolverError(f"method {getattr(stepper, 'name', '?')!r} is fixed-step: give a step size dt")
        with torch.no_grad():
            dt = initial_step(f, t0, y.detach(), fcur.detach(), t1, stepper.order, rtol, atol)
        n_rhs += 1
    else:
        dt = torch.as_tensor(dt0, dtype=dtype, device=dev).expand(b).clone()
        if bool((dt <= 0).any()):
            raise SolverError(f"step size must be positive, got {dt0}")
    if dt_max is not None:
        dt = dt.clamp(max=dt_max)
    out = _Outputs(t_eval, t0, y0) if t_eval is not None else None
    done = t >= t1
    err_prev = torch.full((b,), 1e-4, dtype=dtype, device=dev)
    rejected_prev = torch.zeros(b, dtype=torch.bool, device=dev)
    ctrl = Controller.of(stepper, dt_max)
    eps = torch.finfo(dtype).eps
    g_prev = events.g(t, y) if events is not None else None
    pending = torch.zeros_like(g_prev, dtype=torch.bool) if g_prev is not None else None
    log: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    bar = _progress_bar(t0, t1) if progress else None
    stiff_test = stiff_stop and hasattr(stepper, "stiffness_test")
    if stiff_test:
        stepper.stiffness_test = True
    if hasattr(stepper, "tolerances"):  # a method that computes its own error ratio, or a fused step
        stepper.tolerances = (rtol, atol)
    if fused and hasattr(stepper, "fuse"):
        stepper.fuse()
    limits = Limits.of(dtype, adaptive, max_steps, dt_min, stiff_budget)
    n_stiff = torch.zeros(b, dtype=torch.long, device=dev)
    n_calm = torch.zeros(b, dtype=torch.long, device=dev)
    rhs_full = f
    compact = _can_compact(f, events, stop_fn, y0, fcur)
    from . import fused_loop  # it builds on this module

    if fused_loop.applies(f, stepper, fused=fused, adaptive=adaptive, events=events, stop_fn=stop_fn, y0=y0, f0=fcur):
        state = fused_loop.LoopState(t, y, fcur, dt, done, err_prev, rejected_prev, status, n_steps, n_rhs,
                                     n_stiff, n_calm, out.next if out is not None else n_steps.clone())
        rows = fused_loop.RowConstants(t1, t_start, *((out.base, out.scratch) if out is not None else (None, None)))
        return fused_loop.run(f, stepper, state, rows, rtol=rtol, atol=atol, ctrl=ctrl, limits=limits,
                              stiff_test=stiff_test, compact=compact, out=out, bar=bar)
    ids = torch.arange(b, device=dev)  # working row -> sample
    parked: list[tuple[torch.Tensor, ...]] = []  # (sample ids, *results) of rows taken out
    try:
        while True:
            active = ~done
            n_active = int(active.sum())
            if n_active == 0:
                break
            if compact and n_active <= COMPACT_FRACTION * active.numel() and active.numel() >= COMPACT_MIN:
                fin, keep = torch.nonzero(done).flatten(), torch.nonzero(active).flatten()
                parked.append((ids[fin], t[fin], y[fin], status[fin], n_steps[fin], n_rhs[fin],
                               event_index[fin], event_stop[fin], stopped[fin]))
                atol = atol_of_rows(atol, keep, active.numel())
                if hasattr(stepper, "tolerances"):
                    stepper.tolerances = (rtol, atol)
                ids = ids[keep]
                (t, y, fcur, t1, dt, done, err_prev, rejected_prev, status, n_steps, n_rhs, event_index,
                 event_stop, stopped, n_stiff, n_calm, t_start) = (
                    x[keep] for x in (t, y, fcur, t1, dt, done, err_prev, rejected_prev, status, n_steps, n_rhs,
                                      event_index, event_stop, stopped, n_stiff, n_calm, t_start))
                f = rhs_full.select(ids)
                if out is not None:
                    out.select(keep)
                active = ~done
            remaining = t1 - t
            last = dt * (1 + 64 * eps) >= remaining  # no sliver step left by rounding
            h = torch.where(last, remaining, dt)
            h = torch.where(active, h, torch.zeros_like(h))
            t_new = torch.where(last, t1, t + h)
            y1, err, f1, dense = stepper.step(f, t, y, h, t_new, fcur)
            n_rhs += stepper.rhs_per_step * active
            n_steps += active
            finite = torch.isfinite(y1).all(-1)
            if adaptive:
                # step-size control is not differentiated: the steps are constants of the solve
                e = getattr(stepper, "error_ratio", None)  # the method's own, or a fused step's
                if e is None:
                    e = error_ratio(y.detach(), y1.detach(), err.detach(), rtol, atol)
                finite = finite & torch.isfinite(e)
                accept, dt, err_prev, rejected_prev = control(ctrl, e, finite, active, last, h, dt, err_prev,
                                                              rejected_prev)
            else:
                accept = active & finite
            if stiff_test:
                n_stiff, n_calm = count_stiff_steps(accept, stepper.h_lambda > stepper.stiff_h_lambda, n_stiff, n_calm)
            finish = accept & last
            if events is not None:
                g1 = events.g(t_new, y1)
                lo, hi, g_lo, g_hi, crossed = detect_crossings(events, dense, t, h, g_prev, g1, pending, accept)
                has = crossed.any(-1)
                if bool(has.any()):
                    with torch.no_grad():
                        theta, g_ev = locate_events(events, dense, t, h, lo, hi, g_lo, g_hi, crossed)
                    t_ev = torch.where(theta >= 1.0, t_new, t + theta * h)
                    y_ev = torch.where((theta >= 1.0)[:, None], y1, dense(theta))
                    fired = crossed & (g_ev >= 0)
                    t_new = torch.where(has, t_ev, t_new)
                    y1 = torch.where(has[:, None], y_ev, y1)
                    if out is not None:
                        out.record(accept, t, h, t_new, y1, dense)
                    smp, col = torch.nonzero(fired, as_tuple=True)
                    log.append((smp, col, t_new[smp]))
                    term = (fired & events.terminal).any(-1)
                    first = torch.where(fired, torch.arange(fired.shape[1], device=dev), fired.shape[1]).amin(-1)
                    event_index = torch.where(has & (event_index < 0), first, event_index)
                    if events.apply is not None:
                        y_after = events.apply(t_new, y1, fired & ~events.terminal[None, :])
                        y1 = torch.where((has & ~term)[:, None], y_after, y1)
                    recompute = has & ~term
                    if bool(recompute.any()):
                        f_after = f(t_new, y1)
                        n_rhs += recompute
                        f1 = torch.where(recompute[:, None], f_after, f1)
                        g_post = events.g(t_new, y1)
                        g1 = torch.where(recompute[:, None], g_post, g1)
                        # reset left the function at >= 0: it may dip and return within a step
                        pending = pending | (recompute[:, None] & fired & (g_post >= 0))
                    else:
                        g1 = torch.where(has[:, None], g_ev, g1)
                    event_stop = event_stop | term
                    finish = (finish & ~has) | term | (has & (t_new >= t1))
                elif out is not None:
                    out.record(accept, t, h, t_new, y1, dense)
                pending = pending & ~(accept[:, None] & (g1 < 0))
                g_prev = torch.where(accept[:, None], g1, g_prev)
            elif out is not None:
                out.record(accept, t, h, t_new, y1, dense)
            t = torch.where(accept, t_new, t)
            y = torch.where(accept[:, None], y1, y)
            fcur = torch.where(accept[:, None], f1, fcur)
            if stop_fn is not None:
                hit = accept & ~finish & stop_fn(t, y, fcur)
                stopped = stopped | hit
                finish = finish | hit
            done = done | finish
            # failures (status codes are only built when some sample failed)
            broken, too_many, stiff = failures(limits, done, finite, n_steps, dt, t, t1, t_start,
                                               n_stiff if stiff_test else None)
            if bool(broken.any()):
                status = failure_status(status, broken, finite, too_many, stiff)
                done = done | broken
            if bar is not None:
                bar.update_to(t, done)
    finally:
        if bar is not None:
            bar.close()
    if parked:
        parked.append((ids, t, y, status, n_steps, n_rhs, event_index, event_stop, stopped))
        t, y, status, n_steps, n_rhs, event_index, event_stop, stopped = _unpark(parked, b)
    return LoopResult(out.ys if out is not None else None, t, y, status, n_steps, n_rhs, event_index,
                      event_stop, log, stopped)


def atol_of_rows(atol: float | torch.Tensor, keep: torch.Tensor, n_rows: int) -> float | torch.Tensor:
    """``atol`` for the working-batch rows ``keep`` of ``n_rows``: a per-sample ``(B, n)``
    tolerance is narrowed, a scalar or per-state one is kept."""
    if isinstance(atol, torch.Tensor) and atol.dim() == 2 and atol.shape[0] == n_rows > 1:
        return atol[keep]
    return atol


def _can_compact(f: Rhs, events: EventSpec | None, stop_fn: Any, y0: torch.Tensor, f0: torch.Tensor) -> bool:
    """Ensemble compaction needs ``f.select(sample ids) -> Rhs`` (the right-hand side of those
    samples only), no events or stop test (their state is per sample too), and no autograd
    graph through the solve."""
    return (callable(getattr(f, "select", None)) and events is None and stop_fn is None
            and y0.shape[0] >= COMPACT_MIN and not (y0.requires_grad or f0.requires_grad))


def _unpark(parked: list[tuple[torch.Tensor, ...]], b: int) -> list[torch.Tensor]:
    """Per-sample results in sample order from the ``(ids, *results)`` pieces of a compacted run."""
    full = []
    for j in range(1, len(parked[0])):
        like = parked[0][j]
        out = like.new_empty((b, *like.shape[1:]))
        for piece in parked:
            out.index_copy_(0, piece[0], piece[j])
        full.append(out)
    return full


class _progress_bar:
    """tqdm over simulated time (the slowest unfinished sample sets the position)."""

    def __init__(self, t0: torch.Tensor, t1: torch.Tensor):
        from tqdm.auto import tqdm

        self.t0 = float(t0.min())
        finite_t1 = t1[torch.isfinite(t1)]
        total = float(finite_t1.max()) - self.t0 if finite_t1.numel() else 1.0
        self.bar = tqdm(total=total, unit="t", unit_scale=True, leave=False, desc="simulate")
        self.last = 0.0

    def update_to(self, t: torch.Tensor, done: torch.Tensor) -> None:
        pending = t[~done]
        now = (float(pending.min()) if pending.numel() else float(t.max())) - self.t0
        now = min(now, self.bar.total)
        if now > self.last:
            self.bar.update(now - self.last)
            self.last = now

    def close(self) -> None:
        self.bar.close()


def _as_batch_times(v: float | torch.Tensor, b: int, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(v, dtype=like.dtype, device=like.device).expand(b).clone()


def integrate(f: Rhs, t0: float | torch.Tensor, t1: float | torch.Tensor, y0: torch.Tensor, *,
              method: str = "dopri5", rtol: float = 1e-6, atol: float | torch.Tensor = 1e-9,
              dt0: float | torch.Tensor | None = None, dt_min: float = 0.0, dt_max: float | None = None,
              t_eval: torch.Tensor | Sequence[float] | None = None,
              event_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
              max_steps: int = 100_000, adaptive: bool | None = None,
              progress: bool = False, stiff_stop: bool = False, stiff_budget: int | None = None,
              fused: bool = False) -> IntegrationResult:
    """Integrate a batch of ODEs ``y' = f(t, y)``: the functional core of the torch solver.

    ``f(t, y) -> dy``: ``y`` is ``(B, n)``, ``t`` a ``(B,)`` tensor (every sample has its own
    time). ``t0``/``t1``: floats or ``(B,)`` tensors. ``y0``: ``(B, n)`` (or ``(n,)``, run as
    ``B = 1``). ``method``: a simulate method of the table (``euler``, ``heun``, ``rk4``
    (fixed step ``dt0``, default span/1000), ``dopri5``, ``rosenbrock`` (adaptive; ``dt0`` is
    the first step)).
    ``rtol``/``atol``: per-sample error control, RMS norm of
    ``err / (atol + rtol * max(|y0|, |y1|))``; ``atol`` may be a tensor broadcasting to ``(B, n)``
    (per-state tolerances). ``t_eval``: increasing ``(n_t,)`` output times,
    filled by the method's dense output. ``event_fn(t, y) -> (B, k)``: sample ``b`` stops at
    the first time a column crosses from ``< 0`` to ``>= 0`` (located inside the step by root
    finding on the dense output, to about 1e-13 relative); columns already ``>= 0`` at the start
    arm once they go negative. Outputs after a stop are NaN; ``event_index`` names the column.
    ``adaptive=False`` runs an adaptive method on the fixed step ``dt0``. ``stiff_stop``: dopri5
    stops samples its stiffness test finds stiff (status ``STIFF``) unless at their pace so far
    they finish within ``stiff_budget`` steps (default ``max_steps``), so a caller can rerun them
    with ``rosenbrock`` instead of spending its step budget; samples the test does not find stiff
    go on up to ``max_steps``. ``fused=True``: dopri5 and dop853 run each step as one compiled
    kernel where ``f`` is traceable (``f.traceable = (fn, args)``, see
    :mod:`neuroplex.plugins.torch_solver.fused` and :mod:`.fused_loop`): worth its compile time
    (seconds to minutes, cached on disk) on large batches.
    Returns an :class:`IntegrationResult`; failed samples carry their status
    (``MAX_STEPS``, ``DT_MIN``, ``NONFINITE``, ``STIFF``) and never raise.
    """
    squeeze = y0.dim() == 1
    y0b = y0[None] if squeeze else y0
    if y0b.dim() != 2:
        raise SolverError(f"integrate: y0 must be (B, n) or (n,), got shape {tuple(y0.shape)}")
    if not y0b.is_floating_point():
        y0b = y0b.to(torch.get_default_dtype())
    b = y0b.shape[0]
    t0b = _as_batch_times(t0, b, y0b)
    t1b = _as_batch_times(t1, b, y0b)
    if not bool((t1b >= t0b).all()):
        bad = torch.nonzero(~(t1b >= t0b)).flatten().tolist()
        raise SolverError(f"integrate: need t1 >= t0 (forward in time); sample(s) {bad[:10]} have "
                          f"t0={t0b[bad[0]].item()}, t1={t1b[bad[0]].item()} (first shown)")
    te = None
    if t_eval is not None:
        te = torch.as_tensor(t_eval, dtype=y0b.dtype, device=y0b.device).flatten().contiguous()
        if te.numel() > 1 and bool((te[1:] < te[:-1]).any()):
            raise SolverError("integrate: t_eval must be increasing")
    events = None
    if event_fn is not None:
        k = int(event_fn(t0b, y0b).shape[-1])
        events = EventSpec(event_fn, torch.zeros(k, dtype=torch.bool, device=y0b.device),
                           torch.ones(k, dtype=torch.bool, device=y0b.device))
    stepper = get_method(method, "simulate").factory()
    if dt0 is None and not getattr(stepper, "adaptive", False) and bool(torch.isfinite(t1b - t0b).all()):
        dt0 = ((t1b - t0b) / 1000).clamp_min(torch.finfo(y0b.dtype).tiny)
    res = run_loop(f, stepper, t0b, t1b, y0b, rtol=rtol, atol=atol, dt0=dt0, dt_min=dt_min, dt_max=dt_max,
                   max_steps=max_steps, t_eval=te, events=events, adaptive=adaptive,
                   progress=progress, stiff_stop=stiff_stop, stiff_budget=stiff_budget, fused=fused)
    return IntegrationResult(te, res.ys, res.t_end, res.y_end, res.status, res.event_index, res.n_steps, res.n_rhs)
