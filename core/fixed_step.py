"""A fixed-step clock loop: improved Euler (Heun) over a batch of small dynamical systems.

Some plugins integrate many small systems at once (a whole network of tiny neurons, a batch
of samples) with a fixed step, need a hook after every stage (a clamp, a projection) and the
time integral of some function of the state, but no trajectory. :func:`heun` is that loop:

``y_p = h(y + dt f(t, y))``, ``y <- h(y + dt/2 (f(t, y) + f(t + dt, y_p)))`` (improved Euler,
Heun's method, second order), with ``h`` the optional ``stage_hook``. The optional
``integrand`` ``g(y)`` is integrated with the trapezoidal rule over the same grid, so memory
stays ``O(size of y)`` whatever the number of steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .errors import NeuroplexError

Rhs = Callable[[float, torch.Tensor], torch.Tensor]


@dataclass
class FixedStepResult:
    """``y``: the state after the last step; ``integral``: the trapezoidal time integral of
    ``integrand(y)`` over ``[t0, t0 + n_steps dt]`` (None without an integrand); ``t``: the end time."""

    y: torch.Tensor
    integral: torch.Tensor | None
    t: float


def heun(
    f: Rhs,
    y0: torch.Tensor,
    dt: float,
    n_steps: int,
    *,
    t0: float = 0.0,
    stage_hook: Callable[[torch.Tensor], torch.Tensor] | None = None,
    step_hook: Callable[[int, float, torch.Tensor], None] | None = None,
    integrand: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> FixedStepResult:
    """Integrate ``dy/dt = f(t, y)`` with ``n_steps`` Heun steps of size ``dt`` from ``y0``.

    :param f: right-hand side ``f(t, y)``, any tensor shape (batch dimensions included).
    :param stage_hook: applied to the predictor and to each new state (e.g. a clamp).
    :param step_hook: called as ``step_hook(k, t, y)`` after step ``k`` (1-based), e.g. to record.
    :param integrand: ``g(y)``; its trapezoidal integral over time is returned.
    """
    if dt <= 0 or n_steps < 0:
        raise NeuroplexError(f"heun: dt must be > 0 and n_steps >= 0 (got dt={dt}, n_steps={n_steps})")
    y = y0
    t = float(t0)
    g_prev = integrand(y) if integrand is not None else None
    acc = torch.zeros_like(g_prev) if g_prev is not None else None
    half = 0.5 * dt
    for k in range(1, n_steps + 1):
        k1 = f(t, y)
        y_p = torch.add(y, k1, alpha=dt)
        if stage_hook is not None:
            y_p = stage_hook(y_p)
        k2 = f(t + dt, y_p)
        y = torch.add(y, torch.add(k1, k2), alpha=half)
        if stage_hook is not None:
            y = stage_hook(y)
        t = t0 + k * dt
        if integrand is not None:
            g = integrand(y)
            acc.add_(torch.add(g_prev, g), alpha=half)
            g_prev = g
        if step_hook is not None:
            step_hook(k, t, y)
    return FixedStepResult(y, acc, t)
