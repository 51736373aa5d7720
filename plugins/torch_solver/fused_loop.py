"""The fused step loop: a whole step of the loop (the method's stages, the error ratio, the
step-size controller, the first output point, the done and failure flags) as one compiled function.

With ``fused=True`` the fused steps of :mod:`.fused` compile only the method's stages; the loop's
own bookkeeping around them (step-size control, output writes, done and failure tests) then
still costs a few dozen eager passes over the batch per step, which is most of the time of an
ensemble of a small model that needs many steps (a spiking Hodgkin-Huxley ensemble: 1600 steps).
Where the loop has nothing that needs the host between steps (no events, no stop test, an
adaptive method with ``stepper.loop_stages``, a traceable right-hand side, no gradients), the
whole step is the pure function :func:`loop_step`, with the step's first output point written in
place (:func:`compiled_step`), compiled ahead of time once per right-hand side, method, run
constants and input signature (:mod:`.aot_step`: its call costs a quarter of a
``torch.compile``d function's); the host only reads how many samples are left, compacts the
batch, and writes the further output points of a step longer than the output spacing. The
results are those of :func:`~.loop.run_loop`'s eager steps: the same controller, failure rules
(:func:`~.control.control`, :func:`~.control.failures`) and dense output, up to the kernel's rounding
(the error estimate of a tiny step is rounding noise, so step sizes agree to the controller's
resolution, not to the last bit).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import torch
import torch.utils._pytree as pytree

from . import aot_step
from . import fused as fused_steps
from .control import Controller, Limits, control, count_stiff_steps, failure_status, failures
from .outputs import Outputs, ProgressBar
from .state import COMPACT_FRACTION, COMPACT_MIN, LoopResult, LoopState, RowConstants, atol_of_rows, unpark
from .stepper import FusableStepper, Stepper


@dataclass(frozen=True)
class LoopPlan:
    """The constants of one run (compiled into the step)."""

    ctrl: Controller
    limits: Limits
    rtol: float
    eps: float
    rhs_per_step: int
    stiff_test: bool
    stiff_h_lambda: float


class StepOutput(NamedTuple):
    """What the host needs of a step besides the new state: the first output point's write
    (``index`` into the output buffer, ``values``), whether some sample has more points due in
    this step (``more``), and the step itself for writing those."""

    index: torch.Tensor | None
    values: torch.Tensor | None
    more: torch.Tensor | None
    accept: torch.Tensor
    t: torch.Tensor
    h: torch.Tensor
    t_new: torch.Tensor
    y: torch.Tensor
    y1: torch.Tensor
    coeffs: Any


def loop_step(stages: Callable[..., Any], dense_at: Callable[..., torch.Tensor], f: Callable[..., torch.Tensor],
              plan: LoopPlan, atol: float | torch.Tensor, s: LoopState, rows: RowConstants,
              t_pad: torch.Tensor | None) -> tuple[LoopState, StepOutput]:
    """One step of every unfinished row: :func:`~.loop.run_loop`'s step, without events and stop
    tests, as tensor arithmetic only. ``t_pad``: the output times with a trailing ``+inf`` (None:
    no outputs)."""
    active = ~s.done
    remaining = rows.t1 - s.t
    last = s.dt * (1 + 64 * plan.eps) >= remaining  # no sliver step left by rounding
    h = torch.where(active, torch.where(last, remaining, s.dt), torch.zeros_like(s.dt))
    t_new = torch.where(last, rows.t1, s.t + h)
    y1, f1, e, h_lambda, coeffs = stages(f, s.t, s.y, h, t_new, s.fcur, plan.stiff_test, plan.rtol, atol)
    n_rhs = s.n_rhs + plan.rhs_per_step * active
    n_steps = s.n_steps + active
    finite = torch.isfinite(y1).all(-1) & torch.isfinite(e)
    accept, dt, err_prev, rejected_prev = control(plan.ctrl, e, finite, active, last, h, s.dt, s.err_prev,
                                                  s.rejected_prev)
    n_stiff, n_calm = s.n_stiff, s.n_calm
    if plan.stiff_test:
        n_stiff, n_calm = count_stiff_steps(accept, h_lambda > plan.stiff_h_lambda, n_stiff, n_calm)
    next_out, index, values, more = s.next_out, None, None, None
    if t_pad is not None:
        te = t_pad[next_out]
        due = accept & (te <= t_new)
        h_safe = torch.where(h == 0, torch.ones_like(h), h)
        values = dense_at(s.y, coeffs, torch.where(due, te - s.t, torch.zeros_like(h)) / h_safe)
        values = torch.where((te == t_new)[:, None], y1, values)  # the step's end itself
        index = torch.where(due, rows.base + next_out, rows.scratch)
        next_out = next_out + due.long()
        more = (accept & (t_pad[next_out] <= t_new)).any()
    t = torch.where(accept, t_new, s.t)
    y = torch.where(accept[:, None], y1, s.y)
    fcur = torch.where(accept[:, None], f1, s.fcur)
    done = s.done | (accept & last)
    broken, too_many, stiff = failures(plan.limits, done, finite, n_steps, dt, t, rows.t1, rows.t_start,
                                       n_stiff if plan.stiff_test else None)
    status = failure_status(s.status, broken, finite, too_many, stiff)
    new = LoopState(t, y, fcur, dt, done | broken, err_prev, rejected_prev, status, n_steps, n_rhs, n_stiff, n_calm,
                    next_out)
    return new, StepOutput(index, values, more, accept, s.t, h, t_new, s.y, y1, coeffs)


def compiled_step(stages: Callable[..., Any], dense_at: Callable[..., torch.Tensor], fn: Callable[..., torch.Tensor],
                  args: Any, plan: LoopPlan, atol: float | torch.Tensor, s: LoopState, rows: RowConstants,
                  t_pad: torch.Tensor | None, buf: torch.Tensor | None
                  ) -> tuple[LoopState, torch.Tensor, StepOutput]:
    """What is compiled: :func:`loop_step` with its first output point written into the output
    buffer ``buf`` (in place); the new state, how many rows are unfinished, and the step (its
    ``more`` says whether some row has more output points due in it, for the host to write)."""
    def f(tt: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
        # the right-hand side reads state columns: give it columns (else inductor may lay a
        # stage's state out row by row and read it with strided, unvectorised loads)
        cols = torch.empty_strided(yy.shape, (1, yy.shape[0]), dtype=yy.dtype, device=yy.device).copy_(yy)
        return fn(tt, cols, *args)

    new, step = loop_step(stages, dense_at, f, plan, atol, s, rows, t_pad)
    if buf is not None:
        buf.index_copy_(0, step.index, step.values)
    # the host has the step's start (t, y) already: not passed back (fewer outputs, less overhead)
    return new, (~new.done).sum(), step._replace(index=None, values=None, t=None, y=None)


def applies(f: Any, stepper: Stepper, *, fused: bool, adaptive: bool, events: Any, stop_fn: Any, y0: torch.Tensor,
            f0: torch.Tensor) -> bool:
    """Whether :func:`run` can take a loop: fused steps asked for, an adaptive method with a fused
    loop step, a traceable right-hand side, no events or stop test, a batch, no gradients."""
    parts = getattr(f, "traceable", None)
    return (fused and adaptive and events is None and stop_fn is None and parts is not None
            and stepper.info.fusable and y0.shape[0] >= fused_steps.MIN_BATCH
            and not fused_steps.needs_grad(y0, f0, *parts[1]))


#: inductor settings while a step is built. On a cold cache (BIOMD0000000012, one core) most of
#: a build is the C++ compiler's: precompiled headers (a 150 MB image, built once per machine,
#: loaded by each compile) for the only two files of a step, and a compile-and-load probe per
#: vector instruction set (a tenth) where the CPU's own flags say the same; -g1 line tables
#: only serve profilers. Without them a cold build took a third less (precompiled headers
#: already built). See docs/torch-solver.md, *Compile time*.
BUILD_OPTIONS: dict[str, object] = {"aot_inductor.precompile_headers": False, "cpp_cache_precompile_headers": False,
                                    "cpp.vec_isa_ok": True, "aot_inductor.enable_line_tables": False}


def build_options() -> contextlib.AbstractContextManager[None]:
    """:data:`BUILD_OPTIONS` applied for the duration (inductor's configuration, patched)."""
    import torch._inductor.config as inductor_config  # noqa: PLC0415 - seconds to import: only when building

    return inductor_config.patch(BUILD_OPTIONS)


def _step_for(stepper: FusableStepper, fn: Callable[..., Any], plan: LoopPlan, tree: tuple[Any, ...]
              ) -> aot_step.AOTStep | None:
    """The ahead-of-time compiled :func:`compiled_step` for ``fn``, the method and the run's
    constants ``plan``, on inputs like ``tree = (args, atol, state, rows, t_pad, buf)`` (built on
    first use; the rows, output times and buffer rows are its dynamic sizes). None where the
    eager step must run instead: a batch of one (no compiled variant for it) and, with one
    warning, everything after a failure to compile."""
    if stepper.fused.failed is not None or tree[2].t.shape[0] < fused_steps.MIN_BATCH:
        return None
    stages, dense_at = stepper.loop_stages, stepper.dense_at

    def step(args: Any, atol: Any, s: LoopState, rows: RowConstants, t_pad: torch.Tensor | None,
             buf: torch.Tensor | None) -> Any:
        return compiled_step(stages, dense_at, fn, args, plan, atol, s, rows, t_pad, buf)

    dynamic = [False] * len(pytree.tree_leaves(tree[:4])) + [True] * len(pytree.tree_leaves(tree[4:]))
    try:
        with build_options():
            return aot_step.step_for(fn, step, tree, tree[2].t.shape[0], dynamic, key=(stages, dense_at, plan))
    except Exception as exc:  # noqa: BLE001 - no compiler, an unsupported construct: run eager
        stepper.fused.give_up("compiling the loop step", exc)
        return None


def _inputs(args: Any, atol: Any, s: LoopState, rows: RowConstants, out: Outputs | None) -> tuple[Any, ...]:
    """The compiled step's inputs: the state's ``(B, n)`` tensors as contiguous columns."""
    s = s._replace(y=fused_steps.columns(s.y), fcur=fused_steps.columns(s.fcur))
    return (args, atol, s, rows, *((out.t_pad, out.buf) if out is not None else (None, None)))


def _compiled_step(stepper: FusableStepper, step: aot_step.AOTStep, tree: tuple[Any, ...], out: Outputs | None
                   ) -> tuple[LoopState, int]:
    """One compiled step on inputs ``tree`` (:func:`_inputs`) with every output point written, and
    how many rows are unfinished."""
    new, n_left, stepped = step(*tree)
    if out is not None:
        new = _write_the_rest(stepper, out, new, stepped._replace(t=tree[2].t, y=tree[2].y))
    return new, int(n_left)


def _write_the_rest(stepper: FusableStepper, out: Outputs, s: LoopState, step: StepOutput) -> LoopState:
    """Write the output points of a step after its first (a step longer than the spacing of the
    output times), on the host."""
    if not bool(step.more):
        return s
    out.next = s.next_out
    out.record(step.accept, step.t, step.h, step.t_new, step.y1,
               lambda theta: stepper.dense_at(step.y, step.coeffs, theta))
    return s._replace(next_out=out.next)


def _eager_step(stepper: FusableStepper, f: Callable[..., Any], plan: LoopPlan, atol: Any, s: LoopState, rows: RowConstants,
                out: Outputs | None) -> tuple[LoopState, int]:
    """One eager step with every output point written, and how many rows are unfinished."""
    s, step = loop_step(stepper.loop_stages, stepper.dense_at, f, plan, atol, s, rows,
                        out.t_pad if out is not None else None)
    if out is not None:
        out.buf.index_copy_(0, step.index, step.values)
        s = _write_the_rest(stepper, out, s, step)
    return s, int((~s.done).sum())


def run(f: Any, stepper: Stepper, s: LoopState, rows: RowConstants, *, rtol: float, atol: float | torch.Tensor,
        ctrl: Controller, limits: Limits, stiff_test: bool, compact: bool, out: Outputs | None,
        bar: ProgressBar | None) -> LoopResult:
    """Run the loop from state ``s`` to the end with :func:`loop_step` (see :func:`applies`);
    :func:`~.loop.run_loop`'s result."""
    fusable: FusableStepper = stepper  # type: ignore[assignment]  # applies() checked info.fusable
    b = s.t.shape[0]
    info = stepper.info
    plan = LoopPlan(ctrl, limits, rtol, torch.finfo(s.y.dtype).eps, int(info.rhs_per_step), stiff_test,
                    float(info.stiff_h_lambda or 0.0))
    rhs_full, rhs = f, f
    ids = torch.arange(b, device=s.t.device)  # working row -> sample
    parked: list[tuple[torch.Tensor, ...]] = []  # (sample ids, *results) of rows taken out
    n_rows, n_left = b, int((~s.done).sum())
    step, looked_up = None, False  # the compiled step, looked up for each working batch
    try:
        while n_left:
            if compact and n_left <= COMPACT_FRACTION * n_rows and n_rows >= COMPACT_MIN:
                fin, keep = torch.nonzero(s.done).flatten(), torch.nonzero(~s.done).flatten()
                parked.append((ids[fin], s.t[fin], s.y[fin], s.status[fin], s.n_steps[fin], s.n_rhs[fin]))
                atol = atol_of_rows(atol, keep, n_rows)
                if out is not None:
                    out.select(keep)
                ids, n_rows = ids[keep], n_left
                s = s.select(keep)
                rows = RowConstants(rows.t1[keep], rows.t_start[keep], *((out.base, out.scratch) if out else (None, None)))
                rhs = rhs_full.select(ids)
                looked_up = False
            fn, args = rhs.traceable
            tree = _inputs(args, atol, s, rows, out)
            if not looked_up:
                step, looked_up = _step_for(fusable, fn, plan, tree), True
            if step is not None:
                s, n_left = _compiled_step(fusable, step, tree, out)
            else:
                s, n_left = _eager_step(fusable, rhs, plan, atol, s, rows, out)
            if bar is not None:
                bar.update_to(s.t, s.done)
    finally:
        if bar is not None:
            bar.close()
    t, y, status, n_steps, n_rhs = s.t, s.y, s.status, s.n_steps, s.n_rhs
    if parked:
        parked.append((ids, t, y, status, n_steps, n_rhs))
        t, y, status, n_steps, n_rhs = unpark(parked, b)
    none = torch.full((b,), -1, dtype=torch.long, device=t.device)
    no = torch.zeros(b, dtype=torch.bool, device=t.device)
    return LoopResult(out.ys if out is not None else None, t, y, status, n_steps, n_rhs, none, no, [], no.clone())
