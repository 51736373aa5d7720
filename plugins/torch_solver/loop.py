"""The batched step loop shared by every simulation method (:func:`run_loop`).

Every sample has its own time, step size, error control, event handling and status
(torchode's design): the loop runs until all samples are done, and updates of a sample are
element-wise, so a sample solved alone gives the same result as inside any batch (up to the last
bits of vectorised math functions, whose result can depend on an element's position). The
method is a :class:`~.stepper.Stepper`: the loop reads its :class:`~.stepper.MethodInfo`, hands
it the tolerances and gets each step back as a :class:`~.stepper.StepResult`.
"""
from __future__ import annotations

from typing import Callable

import torch

from neuroplex.errors import SolverError

from . import fused_loop
from .control import Controller, Limits, control, count_stiff_steps, error_ratio, failure_status, failures, initial_step
from .events import EventSpec, detect_crossings, locate_events
from .outputs import Outputs, ProgressBar
from .state import (COMPACT_FRACTION, COMPACT_MIN, LoopResult, LoopState, RowConstants, atol_of_rows, can_compact,
                    unpark)
from .stepper import FusableStepper, Rhs, Stepper, Tolerances

StopFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def run_loop(f: Rhs, stepper: Stepper, t0: torch.Tensor, t1: torch.Tensor, y0: torch.Tensor, *,
             rtol: float = 1e-6, atol: float | torch.Tensor = 1e-9, dt0: float | torch.Tensor | None = None,
             dt_min: float = 0.0, dt_max: float | None = None, max_steps: int = 100_000,
             t_eval: torch.Tensor | None = None, events: EventSpec | None = None, stop_fn: StopFn | None = None,
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
    (``info.fusable``: dopri5, dop853) runs each step as one ``torch.compile`` kernel where the
    right-hand side is traceable (:mod:`.fused`), and without events or a stop test the loop's
    whole step as one kernel compiled ahead of time (:mod:`.fused_loop`); others ignore it.
    """
    info = stepper.info
    b, n = y0.shape
    dev, dtype = y0.device, y0.dtype
    if adaptive is None:
        adaptive = info.adaptive
    elif adaptive and not info.adaptive:
        raise SolverError(f"method {info.name!r} has no error estimate: it runs with fixed steps only")
    t = t0.clone()
    y = y0
    fcur = f(t, y)
    n_rhs = torch.ones(b, dtype=torch.long, device=dev)
    if dt0 is None:
        if not adaptive:
            raise SolverError(f"method {info.name!r} is fixed-step: give a step size dt")
        with torch.no_grad():
            dt = initial_step(f, t0, y.detach(), fcur.detach(), t1, info.order, rtol, atol)
        n_rhs += 1
    else:
        dt = torch.as_tensor(dt0, dtype=dtype, device=dev).expand(b).clone()
        if bool((dt <= 0).any()):
            raise SolverError(f"step size must be positive, got {dt0}")
    if dt_max is not None:
        dt = dt.clamp(max=dt_max)
    out = Outputs(t_eval, t0, y0) if t_eval is not None else None
    zeros = torch.zeros(b, dtype=torch.long, device=dev)
    s = LoopState(t, y, fcur, dt, t >= t1, torch.full((b,), 1e-4, dtype=dtype, device=dev),
                  torch.zeros(b, dtype=torch.bool, device=dev), zeros.clone(), zeros.clone(), n_rhs, zeros.clone(),
                  zeros.clone(), out.next if out is not None else zeros.clone())
    rows = RowConstants(t1, t0.clone(), *((out.base, out.scratch) if out is not None else (None, None)))
    ctrl = Controller.of(info, dt_max)
    limits = Limits.of(dtype, adaptive, max_steps, dt_min, stiff_budget)
    stiff_test = stiff_stop and info.stiff_h_lambda is not None
    if fused and info.fusable:
        fusable: FusableStepper = stepper  # type: ignore[assignment]
        fusable.fuse()
    bar = ProgressBar(t0, t1) if progress else None
    compact = can_compact(f, events, stop_fn, y0, fcur)
    if fused_loop.applies(f, stepper, fused=fused, adaptive=adaptive, events=events, stop_fn=stop_fn, y0=y0, f0=fcur):
        return fused_loop.run(f, stepper, s, rows, rtol=rtol, atol=atol, ctrl=ctrl, limits=limits,
                              stiff_test=stiff_test, compact=compact, out=out, bar=bar)
    return _eager(f, stepper, s, rows, Tolerances(rtol, atol), ctrl=ctrl, limits=limits, adaptive=adaptive,
                  stiff_test=stiff_test, compact=compact, events=events, stop_fn=stop_fn, out=out, bar=bar)


def _eager(f: Rhs, stepper: Stepper, s: LoopState, rows: RowConstants, tol: Tolerances, *, ctrl: Controller,
           limits: Limits, adaptive: bool, stiff_test: bool, compact: bool, events: EventSpec | None,
           stop_fn: StopFn | None, out: Outputs | None, bar: ProgressBar | None) -> LoopResult:
    """The loop, one eager step at a time (with events and stop tests)."""
    info = stepper.info
    b = s.t.shape[0]
    dev = s.t.device
    eps = torch.finfo(s.y.dtype).eps
    event_index = torch.full((b,), -1, dtype=torch.long, device=dev)
    event_stop = torch.zeros(b, dtype=torch.bool, device=dev)
    stopped = torch.zeros(b, dtype=torch.bool, device=dev)
    g_prev = events.g(s.t, s.y) if events is not None else None
    pending = torch.zeros_like(g_prev, dtype=torch.bool) if g_prev is not None else None
    log: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    n_jac = 0
    rhs_full = f
    ids = torch.arange(b, device=dev)  # working row -> sample
    parked: list[tuple[torch.Tensor, ...]] = []  # (sample ids, *results) of rows taken out
    try:
        while True:
            active = ~s.done
            n_active = int(active.sum())
            if n_active == 0:
                break
            if compact and n_active <= COMPACT_FRACTION * active.numel() and active.numel() >= COMPACT_MIN:
                fin, keep = torch.nonzero(s.done).flatten(), torch.nonzero(active).flatten()
                parked.append((ids[fin], s.t[fin], s.y[fin], s.status[fin], s.n_steps[fin], s.n_rhs[fin],
                               event_index[fin], event_stop[fin], stopped[fin]))
                tol = Tolerances(tol.rtol, atol_of_rows(tol.atol, keep, active.numel()))
                ids = ids[keep]
                s = s.select(keep)
                event_index, event_stop, stopped = event_index[keep], event_stop[keep], stopped[keep]
                f = rhs_full.select(ids)  # type: ignore[attr-defined]
                if out is not None:
                    out.select(keep)
                rows = RowConstants(rows.t1[keep], rows.t_start[keep],
                                    *((out.base, out.scratch) if out is not None else (None, None)))
                active = ~s.done
            t, y, fcur, dt, done = s.t, s.y, s.fcur, s.dt, s.done
            err_prev, rejected_prev, status, n_steps, n_rhs = s.err_prev, s.rejected_prev, s.status, s.n_steps, s.n_rhs
            n_stiff, n_calm = s.n_stiff, s.n_calm
            t1 = rows.t1
            remaining = t1 - t
            last = dt * (1 + 64 * eps) >= remaining  # no sliver step left by rounding
            h = torch.where(last, remaining, dt)
            h = torch.where(active, h, torch.zeros_like(h))
            t_new = torch.where(last, t1, t + h)
            res = stepper.step(f, t, y, h, t_new, fcur, tol, stiff_test)
            y1, f1, dense = res.y1, res.f1, res.dense
            n_jac += info.jac_per_step
            n_rhs = n_rhs + info.rhs_per_step * active
            n_steps = n_steps + active
            finite = torch.isfinite(y1).all(-1)
            if adaptive:
                # step-size control is not differentiated: the steps are constants of the solve
                e = res.error_ratio  # the method's own, or a fused step's
                if e is None:
                    if res.err is None:
                        raise SolverError(f"adaptive method {info.name!r} returned no error estimate")
                    e = error_ratio(y.detach(), y1.detach(), res.err.detach(), tol.rtol, tol.atol)
                finite = finite & torch.isfinite(e)
                accept, dt, err_prev, rejected_prev = control(ctrl, e, finite, active, last, h, dt, err_prev,
                                                              rejected_prev)
            else:
                accept = active & finite
            if stiff_test:
                if res.h_lambda is None or info.stiff_h_lambda is None:
                    raise SolverError(f"method {info.name!r} declares a stiffness test but its step ran none")
                n_stiff, n_calm = count_stiff_steps(accept, res.h_lambda > info.stiff_h_lambda, n_stiff, n_calm)
            finish = accept & last
            if events is not None and g_prev is not None and pending is not None:
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
                        n_rhs = n_rhs + recompute
                        f1 = torch.where(recompute[:, None], f_after, f1)
                        g_post = events.g(t_new, y1)
                        g1 = torch.where(recompute[:, None], g_post, g1)
                        # reset left the function at >= 0: it may dip and return within a step
                        pending = pending | (recompute[:, None] & fired & (g_post >= 0))
                        if adaptive:
                            # the event is a discontinuity: restart step-size control there as at
                            # the start, rather than carry a step size grown on the smooth solution
                            # before it across a transient its error estimate only sees the end of
                            with torch.no_grad():
                                dt_restart = initial_step(f, t_new, y1.detach(), f_after.detach(), t1,
                                                          info.order, tol.rtol, tol.atol)
                            if ctrl.dt_max is not None:
                                dt_restart = dt_restart.clamp(max=ctrl.dt_max)
                            n_rhs = n_rhs + recompute
                            dt = torch.where(recompute, dt_restart, dt)
                            err_prev = torch.where(recompute, torch.full_like(err_prev, 1e-4), err_prev)
                            rejected_prev = rejected_prev & ~recompute
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
            broken, too_many, stiff = failures(limits, done, finite, n_steps, dt, t, t1, rows.t_start,
                                               n_stiff if stiff_test else None)
            if bool(broken.any()):
                status = failure_status(status, broken, finite, too_many, stiff)
                done = done | broken
            s = LoopState(t, y, fcur, dt, done, err_prev, rejected_prev, status, n_steps, n_rhs, n_stiff, n_calm,
                          out.next if out is not None else s.next_out)
            if bar is not None:
                bar.update_to(t, done)
    finally:
        if bar is not None:
            bar.close()
    t, y, status, n_steps, n_rhs = s.t, s.y, s.status, s.n_steps, s.n_rhs
    if parked:
        parked.append((ids, t, y, status, n_steps, n_rhs, event_index, event_stop, stopped))
        t, y, status, n_steps, n_rhs, event_index, event_stop, stopped = unpark(parked, b)
    return LoopResult(out.ys if out is not None else None, t, y, status, n_steps, n_rhs, event_index,
                      event_stop, log, stopped, n_jac)
