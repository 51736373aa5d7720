"""Stiff method ``rosenbrock``: RODAS4, a 6-stage L-stable, stiffly accurate Rosenbrock
method of order 4 with an embedded order-3 error estimate.

Coefficients: Hairer & Wanner, *Solving ODEs II*, sec. VI.4 (code ``RODAS``),
in the transformed form of Sandu et al. (1997, KPP):

    G = I / (h gamma) - J,    G K_i = f(t + alpha_i h, y + sum_j a_ij K_j)
                                      + sum_j (c_ij / h) K_j + gamma_i h f_t
    y1 = y + sum_i m_i K_i,    err = K_6.

The Jacobian ``J = df/dy`` and ``f_t = df/dt`` come from autograd, batched over the
samples (each sample's rows depend only on its own state); the linear systems are solved
by batched LU (``torch.linalg.lu_factor_ex`` / ``lu_solve``).

Dense output is RODAS's own third-order interpolant built from the stages (Hairer & Wanner,
sec. VI.4; the ``d_ij`` of ``rodas.f``):

    y(t + theta h) = (1 - theta) y + theta (y1 + (1 - theta) (q2 + theta q3)),
    q2 = sum_i d2i K_i,    q3 = sum_i d3i K_i,

which stays accurate inside a step across a stiff transient (a fast relaxation after an event
reset), where a cubic Hermite interpolant on the end-point derivatives does not: a step that
jumps a boundary layer has ``f(t)`` of the layer at its start, far from the solution's slope.
"""
from __future__ import annotations

import torch

from .methods import register_method
from .stepper import MethodInfo, Rhs, StepResult, Tolerances

GAMMA = 0.25
ALPHA = [0.0, 0.386, 0.21, 0.63, 1.0, 1.0]
GAMMAS = [0.25, -0.1043, 0.1035, -0.3620000000000023e-01, 0.0, 0.0]
_A = [1.544, 0.9466785280815826, 0.2557011698983284, 3.314825187068521, 2.896124015972201,
      0.9986419139977817, 1.221224509226641, 6.019134481288629, 12.53708332932087, -0.687886036105895]
_C = [-5.6688, -2.430093356833875, -0.2063599157091915, -0.1073529058151375, -9.594562251023355,
      -20.47028614809616, 7.496443313967647, -10.24680431464352, -33.99990352819905, 11.7089089320616,
      8.083246795921522, -7.981132988064893, -31.52159432874371, 16.31930543123136, -6.058818238834054]


def _lower(values: list[float], stages: int) -> list[list[float]]:
    rows, k = [[] for _ in range(stages)], 0
    for i in range(1, stages):
        rows[i] = values[k:k + i]
        k += i
    return rows


A = _lower(_A + _A[6:10] + [1.0], 6)
C = _lower(_C, 6)
M = [_A[6], _A[7], _A[8], _A[9], 1.0, 1.0]
#: dense output coefficients (``rodas.f``: D21..D25, D31..D35; K_6 has none)
D2 = [10.12623508344586, -7.487995877610167, -34.80091861555747, -7.992771707568823, 1.025137723295662]
D3 = [-0.6762803392801253, 6.087714651680015, 16.43084320892478, 24.76722511418386, -6.594389125716872]


def batched_jacobian(f: Rhs, t: torch.Tensor, y: torch.Tensor, mode: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(J, f_t)``: ``J[b] = d f_b / d y_b`` ``(B, n, n)`` and ``f_t`` ``(B, n)`` by reverse-mode
    autograd. ``mode`` is a one-item cache: ``"batched"`` (one vmapped backward) or ``"loop"``
    (one backward per output), chosen on first use. A right-hand side that carries its own
    ``f.jacobian(t, y) -> (J, f_t)`` (generated symbolic derivatives, e.g. SBML models) is
    asked first; it may return None to fall back to autograd."""
    b, n = y.shape
    own = getattr(f, "jacobian", None)
    if own is not None:
        got = own(t, y)
        if got is not None:
            return got
    with torch.enable_grad():
        yv = y.detach().requires_grad_(True)
        tv = t.detach().requires_grad_(True)
        out = f(tv, yv)
        if not out.requires_grad:
            return y.new_zeros(b, n, n), y.new_zeros(b, n)
        if mode[0] == "batched":
            try:
                eye = torch.eye(n, dtype=y.dtype, device=y.device)[:, None, :].expand(n, b, n)
                gy, gt = torch.autograd.grad(out, (yv, tv), grad_outputs=eye, is_grads_batched=True,
                                             allow_unused=True, retain_graph=True)
                gy = y.new_zeros(b, n, n) if gy is None else gy.permute(1, 0, 2)
                gt = y.new_zeros(b, n) if gt is None else gt.permute(1, 0)
                return gy, gt
            except (RuntimeError, NotImplementedError):
                mode[0] = "loop"
        rows_y, rows_t = [], []
        for i in range(n):
            gy, gt = torch.autograd.grad(out[:, i].sum(), (yv, tv), retain_graph=i < n - 1,
                                         allow_unused=True, materialize_grads=True)
            rows_y.append(gy)
            rows_t.append(gt)
        return torch.stack(rows_y, 1), torch.stack(rows_t, 1)


def _stage_sum(coeffs: list[float], ks: list[torch.Tensor]) -> torch.Tensor:
    """``sum_i coeffs[i] * ks[i]``."""
    acc = ks[0] * coeffs[0]
    for c, k in zip(coeffs[1:], ks[1:]):
        acc = acc.add(k, alpha=c)
    return acc


class RodasDense:
    """RODAS's dense output over one step: ``(1 - theta) y0 + theta (y1 + (1 - theta) (q2 + theta q3))``."""

    def __init__(self, y0: torch.Tensor, y1: torch.Tensor, ks: list[torch.Tensor]):
        self.y0, self.y1 = y0, y1
        self.q2, self.q3 = _stage_sum(D2, ks), _stage_sum(D3, ks)

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        """State at ``t + theta * h``; ``theta`` is ``(B,)`` or ``(B, K)`` (gives ``(B, K, n)``)."""
        extra = theta.dim() - 1
        th = theta[..., None]
        y0, y1, q2, q3 = self.y0, self.y1, self.q2, self.q3
        for _ in range(extra):
            y0, y1, q2, q3 = y0[:, None], y1[:, None], q2[:, None], q3[:, None]
        s1 = 1 - th
        return s1 * y0 + th * (y1 + s1 * (q2 + th * q3))


class RodasStepper:
    """RODAS4 with per-sample step control (integral controller on the order-4 estimate)."""

    # five stage evaluations plus f at the new point; one Jacobian
    info = MethodInfo("rosenbrock", 4, adaptive=True, rhs_per_step=6, jac_per_step=1, fac_max=6.0)

    def __init__(self) -> None:
        self._mode = ["batched"]  # how Jacobians are taken (switches to a loop where batching fails)

    def step(self, f: Rhs, t: torch.Tensor, y: torch.Tensor, h: torch.Tensor, t_new: torch.Tensor,
             f0: torch.Tensor, tol: Tolerances, stiffness_test: bool = False) -> StepResult:
        b, n = y.shape
        jac, ft = batched_jacobian(f, t, y, self._mode)
        hs = torch.where(h == 0, torch.ones_like(h), h)  # finished samples: any regular matrix
        eye = torch.eye(n, dtype=y.dtype, device=y.device)
        g = eye / (hs * GAMMA)[:, None, None] - jac
        lu, piv, _ = torch.linalg.lu_factor_ex(g)
        hc = hs[:, None]
        inv_h = 1.0 / hc
        ks: list[torch.Tensor] = []
        for i in range(6):
            if i == 0:
                fi = f0
            else:
                yi = y
                for j, a in enumerate(A[i]):
                    if a != 0.0:
                        yi = yi.add(ks[j], alpha=a)
                fi = f(t + ALPHA[i] * h, yi)
            acc = None
            for j, c in enumerate(C[i]):
                acc = ks[j] * c if acc is None else acc.add(ks[j], alpha=c)
            rhs = fi if acc is None else torch.addcmul(fi, inv_h, acc)
            if GAMMAS[i] != 0.0:
                rhs = torch.addcmul(rhs, hc, ft, value=GAMMAS[i])
            ks.append(torch.linalg.lu_solve(lu, piv, rhs[..., None])[..., 0])
        y1 = y
        for m, k in zip(M, ks):
            y1 = y1.add(k, alpha=m)
        f1 = f(t_new, y1)
        return StepResult(y1, f1, RodasDense(y, y1, ks), err=ks[5])


register_method("rosenbrock", RodasStepper,
                description="RODAS4 Rosenbrock 4(3), stiff, autograd Jacobian, batched LU, adaptive")
