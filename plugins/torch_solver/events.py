"""Events inside a step: crossings of the event functions detected on a step and located on
its dense output (Illinois / bisection), for :mod:`.loop`."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .stepper import Dense

#: most root-finding iterations spent locating one event inside a step
MAX_ROOT_ITER = 128


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


def _masked_max(g: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    return torch.where(cols, g, torch.full_like(g, -math.inf)).amax(-1)


#: interior points scanned in a step after a reset that left an event function at >= 0
SCAN = (0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0)


def detect_crossings(events: EventSpec, dense: Dense, t: torch.Tensor,
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


def locate_events(events: EventSpec, dense: Dense, t: torch.Tensor,
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
