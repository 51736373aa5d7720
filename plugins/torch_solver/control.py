"""Step-size control and failure rules of the step loop: the error norm, the starting step,
the PI controller, the stiffness test's counters and when a sample fails (shared by the eager
loop, :mod:`.loop`, and the fused one, :mod:`.fused_loop`)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from neuroplex.solution import Status

from .stepper import FAC_MAX, MethodInfo, Rhs

#: step-size controller limits (Hairer's DOPRI5 defaults)
SAFETY, FAC_MIN = 0.9, 0.2
__all__ = ["FAC_MAX", "FAC_MIN", "SAFETY", "STIFF_CALM", "STIFF_STEPS", "Controller", "Limits", "control",
           "count_stiff_steps", "error_ratio", "failure_status", "failures", "initial_step", "rms_norm"]


#: ``stiff_stop``: a sample stops as stiff after this many accepted steps at the method's
#: stability boundary, unless ``STIFF_CALM`` steps in a row inside it reset the count
#: (DOPRI5's own test, Hairer & Wanner, Solving ODEs II, sec. IV.2), and only if at its pace so
#: far (steps per unit of its span covered) it would not finish within ``max_steps``: a mildly
#: stiff sample that the explicit method still finishes in budget is cheaper to finish than to rerun
STIFF_STEPS, STIFF_CALM = 15, 6


def rms_norm(x: torch.Tensor) -> torch.Tensor:
    return torch.sqrt((x * x).mean(-1)) if x.shape[-1] else x.new_zeros(x.shape[:-1])


def error_ratio(y: torch.Tensor, y1: torch.Tensor, err: torch.Tensor, rtol: float,
                atol: float | torch.Tensor) -> torch.Tensor:
    """Per sample, the RMS norm of ``err / (atol + rtol * max(|y|, |y1|))`` (Hairer, Norsett &
    Wanner, *Solving ODEs I*, eq. II.4.11): a step is accepted where it is at most 1."""
    return rms_norm(err / (atol + rtol * torch.maximum(y.abs(), y1.abs())))


def initial_step(f: Rhs, t0: torch.Tensor, y0: torch.Tensor, f0: torch.Tensor, t1: torch.Tensor, order: int,
                 rtol: float, atol: float | torch.Tensor) -> torch.Tensor:
    """Hairer's starting step-size heuristic (*Solving ODEs I*, sec. II.4), per sample."""
    scale = atol + rtol * y0.abs()
    d0 = rms_norm(y0 / scale)
    d1 = rms_norm(f0 / scale)
    h0 = torch.where((d0 < 1e-5) | (d1 < 1e-5), torch.full_like(d0, 1e-6), 0.01 * d0 / d1)
    span = (t1 - t0).abs()
    h0 = torch.minimum(h0, span)
    h0 = torch.where(torch.isfinite(h0) & (h0 > 0), h0, torch.full_like(h0, 1e-6))
    f1 = f(t0 + h0, y0 + h0[:, None] * f0)
    d2 = rms_norm((f1 - f0) / scale) / h0
    dmax = torch.maximum(d1, d2)
    h1 = torch.where(dmax <= 1e-15, torch.maximum(torch.full_like(h0, 1e-6), h0 * 1e-3),
                     (0.01 / dmax) ** (1.0 / order))
    h = torch.minimum(100 * h0, h1)
    h = torch.where(torch.isfinite(h) & (h > 0), h, torch.full_like(h, 1e-6))
    return torch.minimum(h, span).clamp_min(torch.finfo(y0.dtype).tiny)


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
    def of(info: MethodInfo, dt_max: float | None) -> "Controller":
        q, beta = float(info.order), float(info.controller_beta)
        return Controller(1.0 / q - 0.75 * beta, beta, float(info.fac_max), dt_max)


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
