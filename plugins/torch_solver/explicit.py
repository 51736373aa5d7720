"""Explicit fixed-step Runge-Kutta methods: euler, heun (improved Euler), rk4.

Each is a Butcher tableau run by :class:`FixedStepper`. The right-hand side at the step's
end is evaluated once per step and reused as the next step's first stage, so dense output
between steps is cubic Hermite interpolation at no extra cost.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .methods import register_method
from .stepper import MethodInfo, Rhs, StepResult, Tolerances


def weighted_sum(coeffs: Sequence[float], ks: Sequence[torch.Tensor]) -> torch.Tensor | None:
    """``sum_j coeffs[j] * ks[j]`` (zero coefficients skipped; None where all are zero)."""
    acc = None
    for c, k in zip(coeffs, ks):
        if c == 0.0:
            continue
        acc = k * c if acc is None else acc.add_(k, alpha=c)  # acc is a fresh tensor here
    return acc


def combine(y: torch.Tensor, h: torch.Tensor, coeffs: Sequence[float], ks: Sequence[torch.Tensor]) -> torch.Tensor:
    """``y + h * sum_j coeffs[j] * ks[j]`` (zero coefficients skipped; element-wise, so a
    sample's result does not depend on the rest of the batch)."""
    acc = weighted_sum(coeffs, ks)
    return y if acc is None else torch.addcmul(y, h[:, None], acc)


class HermiteDense:
    """Cubic Hermite interpolant between ``(y0, f0)`` and ``(y1, f1)`` over a step of size ``h``."""

    def __init__(self, y0: torch.Tensor, y1: torch.Tensor, f0: torch.Tensor, f1: torch.Tensor, h: torch.Tensor):
        self.y0, self.y1, self.f0, self.f1, self.h = y0, y1, f0, f1, h

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        """State at ``t + theta * h``; ``theta`` is ``(B,)`` or ``(B, K)``."""
        extra = theta.dim() - 1
        th = theta[..., None]
        y0, y1, f0, f1, h = self.y0, self.y1, self.f0, self.f1, self.h
        for _ in range(extra):
            y0, y1, f0, f1 = y0[:, None], y1[:, None], f0[:, None], f1[:, None]
        hh = h.reshape(h.shape + (1,) * (extra + 1))
        th2 = th * th
        th3 = th2 * th
        h00 = 2 * th3 - 3 * th2 + 1
        h10 = th3 - 2 * th2 + th
        h01 = -2 * th3 + 3 * th2
        h11 = th3 - th2
        return h00 * y0 + h01 * y1 + hh * (h10 * f0 + h11 * f1)


class FixedStepper:
    """A fixed-step explicit Runge-Kutta method given by its Butcher tableau."""

    def __init__(self, name: str, a: Sequence[Sequence[float]], b: Sequence[float], c: Sequence[float], order: int):
        self.a = [list(row) for row in a]
        self.b = list(b)
        self.c = list(c)
        # stages after the reused first one, plus f at the end
        self.info = MethodInfo(name, order, adaptive=False, rhs_per_step=len(b))

    def step(self, f: Rhs, t: torch.Tensor, y: torch.Tensor, h: torch.Tensor, t_new: torch.Tensor,
             f0: torch.Tensor, tol: Tolerances, stiffness_test: bool = False) -> StepResult:
        ks = [f0]
        for i in range(1, len(self.b)):
            ks.append(f(t + self.c[i] * h, combine(y, h, self.a[i], ks)))
        y1 = combine(y, h, self.b, ks)
        f1 = f(t_new, y1)
        return StepResult(y1, f1, HermiteDense(y, y1, f0, f1, h))


def euler() -> FixedStepper:
    """Forward Euler, order 1."""
    return FixedStepper("euler", [[]], [1.0], [0.0], 1)


def heun() -> FixedStepper:
    """Heun's method (improved Euler, explicit trapezoid), order 2."""
    return FixedStepper("heun", [[], [1.0]], [0.5, 0.5], [0.0, 1.0], 2)


def rk4() -> FixedStepper:
    """The classical fourth-order Runge-Kutta method."""
    return FixedStepper("rk4", [[], [0.5], [0.0, 0.5], [0.0, 0.0, 1.0]],
                        [1 / 6, 1 / 3, 1 / 3, 1 / 6], [0.0, 0.5, 0.5, 1.0], 4)


register_method("euler", euler, description="forward Euler, fixed step, order 1")
register_method("heun", heun, description="Heun / improved Euler, fixed step, order 2")
register_method("rk4", rk4, description="classical Runge-Kutta, fixed step, order 4")
