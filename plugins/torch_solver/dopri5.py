"""Dormand-Prince 5(4) with FSAL, Hairer's 4th-order dense output and a PI step controller.

Tableau and dense output coefficients: Dormand & Prince (1980); Hairer, Norsett & Wanner,
*Solving ODEs I*, sec. II.5 (Table 5.2) and II.6 (dense output, eq. 6.12 with the
``DOPRI5`` code's ``d`` coefficients).
"""
from __future__ import annotations

from typing import Any

import torch

from .control import error_ratio
from .explicit import combine
from .fused import FusedSteps
from .methods import register_method
from .stepper import MethodInfo, Rhs, StepResult, Tolerances

C = [0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0]
A = [
    [],
    [1 / 5],
    [3 / 40, 9 / 40],
    [44 / 45, -56 / 15, 32 / 9],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
    [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
]
#: error weights: 5th-order minus embedded 4th-order weights (k1..k7)
E = [71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40]
#: dense output coefficients (Hairer's DOPRI5, d1..d7)
D = [-12715105075 / 11282082432, 0.0, 87487479700 / 32700410799, -10690763975 / 1880347072,
     701980252875 / 199316789632, -1453857185 / 822651844, 69997945 / 29380423]


def dense_coefficients(y0: torch.Tensor, y1: torch.Tensor, ks: list[torch.Tensor],
                       h: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The five coefficient vectors of Hairer's continuous extension of a step."""
    hc = h[:, None]
    ydiff = y1 - y0
    bspl = torch.addcmul(-ydiff, hc, ks[0])
    r4 = torch.addcmul(ydiff - bspl, hc, ks[6], value=-1.0)
    return y0, ydiff, bspl, r4, combine(torch.zeros_like(y0), h, D, ks)


class Dopri5Dense:
    """Hairer's continuous extension of DOPRI5 (4th order); its coefficients are built on first use
    unless a fused step computed them."""

    def __init__(self, y0: torch.Tensor, y1: torch.Tensor, ks: list[torch.Tensor], h: torch.Tensor,
                 coeffs: tuple[torch.Tensor, ...] | None = None):
        self.y0, self.y1, self.ks, self.h = y0, y1, ks, h
        self._r = coeffs

    def _coeffs(self) -> tuple[torch.Tensor, ...]:
        if self._r is None:
            self._r = dense_coefficients(self.y0, self.y1, self.ks, self.h)
        return self._r

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        return dense_at(self.y0, self._coeffs(), theta)


def dense_at(y0: torch.Tensor, coeffs: tuple[torch.Tensor, ...], theta: torch.Tensor) -> torch.Tensor:
    """The continuous extension at ``t + theta h``: ``theta (B,)`` gives ``(B, n)``, ``theta (B, m)``
    gives ``(B, m, n)`` (``coeffs`` from :func:`dense_coefficients`, whose first is ``y0``)."""
    r1, r2, r3, r4, r5 = coeffs
    if theta.dim() == 2:
        r1, r2, r3, r4, r5 = (r[:, None] for r in (r1, r2, r3, r4, r5))
    th = theta[..., None]
    th1 = 1.0 - th
    acc = torch.addcmul(r4, th1, r5)
    acc = torch.addcmul(r3, th, acc)
    acc = torch.addcmul(r2, th1, acc)
    return torch.addcmul(r1, th, acc)


def dopri5_stages(f: Rhs, t: torch.Tensor, y: torch.Tensor, h: torch.Tensor, t_new: torch.Tensor,
                  f0: torch.Tensor, stiffness_test: bool = False
                  ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], torch.Tensor | None]:
    """One Dormand-Prince 5(4) step from ``(t, y)`` with ``f0 = f(t, y)`` (FSAL): the new state,
    the error estimate, the seven stages and (``stiffness_test``) ``|h lambda|``, the step times
    the dominant eigenvalue's modulus estimated by Hairer & Wanner's test (*Solving ODEs II*,
    sec. IV.2: stages 6 and 7 both sit at ``t + h``, so ``|f7 - f6| / |y1 - y6|``).

    Only tensor arithmetic, so ``torch.compile`` can fuse a whole step into one kernel
    (:mod:`.fused`)."""
    ks = [f0]
    y_stage = y
    for i in range(1, 6):
        y_stage = combine(y, h, A[i], ks)
        ks.append(f(t + C[i] * h, y_stage))
    y1 = combine(y, h, A[6], ks)
    ks.append(f(t_new, y1))
    err = combine(torch.zeros_like(y), h, E, ks)
    h_lambda = None
    if stiffness_test:
        num = (ks[6] - ks[5]).square().sum(-1)
        den = (y1 - y_stage).square().sum(-1)
        h_lambda = torch.where(den > 0, h.abs() * torch.sqrt(num / den.clamp_min(1e-300)), torch.zeros_like(h))
    return y1, err, ks, h_lambda


def dopri5_fused_stages(f: Rhs, t: torch.Tensor, y: torch.Tensor, h: torch.Tensor, t_new: torch.Tensor,
                        f0: torch.Tensor, stiffness_test: bool, rtol: float, atol: float | torch.Tensor
                        ) -> tuple[Any, ...]:
    """:func:`dopri5_stages` plus what the step loop would otherwise compute pass by pass: the
    error ratio the controller tests (:func:`~.control.error_ratio`) and the dense output's
    coefficients, all in the one compiled kernel."""
    y1, err, ks, h_lambda = dopri5_stages(f, t, y, h, t_new, f0, stiffness_test)
    return y1, err, ks, h_lambda, error_ratio(y, y1, err, rtol, atol), dense_coefficients(y, y1, ks, h)


def dopri5_loop_stages(f: Rhs, t: torch.Tensor, y: torch.Tensor, h: torch.Tensor, t_new: torch.Tensor,
                       f0: torch.Tensor, stiffness_test: bool, rtol: float, atol: float | torch.Tensor
                       ) -> tuple[Any, ...]:
    """What the fused step loop (:mod:`.fused_loop`) needs of a step: ``(y1, f(t_new, y1), error
    ratio, |h lambda| or None, dense coefficients)``."""
    y1, _, ks, h_lambda, e, coeffs = dopri5_fused_stages(f, t, y, h, t_new, f0, stiffness_test, rtol, atol)
    return y1, ks[6], e, h_lambda, coeffs


class Dopri5Stepper:
    """Adaptive Dormand-Prince 5(4); ``step`` returns the error estimate for the controller."""

    # the error estimate behaves like h^5 (embedded order 4 + 1); Hairer's PI stabilisation
    # (beta 0.04); DOPRI5's stability boundary on the negative real axis is about 3.3
    info = MethodInfo("dopri5", 5, adaptive=True, rhs_per_step=6, controller_beta=0.04, stiff_h_lambda=3.25,
                      fusable=True)

    def __init__(self) -> None:
        #: set by :meth:`fuse` (``fused=True``): each step as one compiled kernel where the
        #: right-hand side allows it (see :mod:`.fused`)
        self.fused: FusedSteps | None = None

    def fuse(self) -> None:
        """Run each step as one compiled kernel where the right-hand side allows it."""
        self.fused = self.fused or FusedSteps(dopri5_fused_stages)

    #: the fused step loop's view of a step (:mod:`.fused_loop`)
    loop_stages = staticmethod(dopri5_loop_stages)
    dense_at = staticmethod(dense_at)

    def step(self, f: Rhs, t: torch.Tensor, y: torch.Tensor, h: torch.Tensor, t_new: torch.Tensor,
             f0: torch.Tensor, tol: Tolerances, stiffness_test: bool = False) -> StepResult:
        out = None
        if self.fused is not None:
            out = self.fused(f, t, y, h, t_new, f0, stiffness_test, tol.rtol, tol.atol)
        if out is not None:
            y1, err, ks, h_lambda, e, coeffs = out
            return StepResult(y1, ks[6], Dopri5Dense(y, y1, ks, h, coeffs), err=err, error_ratio=e, h_lambda=h_lambda)
        y1, err, ks, h_lambda = dopri5_stages(f, t, y, h, t_new, f0, stiffness_test)
        return StepResult(y1, ks[6], Dopri5Dense(y, y1, ks, h), err=err, h_lambda=h_lambda)


register_method("dopri5", Dopri5Stepper, description="Dormand-Prince 5(4), adaptive (PI control), 4th-order dense output")
