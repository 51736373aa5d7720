"""Dormand & Prince's 8(5,3) method (Hairer's DOP853): 12 stages with FSAL, error control from
the combined 5th- and 3rd-order estimates, and a 7th-order continuous extension from three more
stages.

Hairer, Norsett & Wanner, *Solving ODEs I*, sec. II.10 (DOP853); the error estimate, the dense
output and the coefficients as in Hairer's ``dop853.f``, transcribed from scipy's
``dop853_coefficients`` (BSD). At tolerances of 1e-6 and below it takes 2-3x fewer steps
than dopri5 at about the same number of right-hand side calls, which pays where each step carries
a fixed cost (large batched ensembles, whose per-step bookkeeping dominates).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from .explicit import combine, weighted_sum
from .fused import FusedSteps
from .methods import register_method
from .stepper import MethodInfo, Rhs, StepResult, Tolerances

# ---- coefficients (stage i uses A[i]; stage 12 is f(t + h, y1), the next step's first stage)
C = [0.0, 0.05260015195876773, 0.0789002279381516, 0.1183503419072274, 0.2816496580927726, 0.3333333333333333, 0.25, 0.3076923076923077, 0.6512820512820513, 0.6, 0.8571428571428571, 1.0]
A = [
    [],
    [0.05260015195876773],
    [0.0197250569845379, 0.0591751709536137],
    [0.02958758547680685, 0.0, 0.08876275643042054],
    [0.2413651341592667, 0.0, -0.8845494793282861, 0.924834003261792],
    [0.037037037037037035, 0.0, 0.0, 0.17082860872947386, 0.12546768756682242],
    [0.037109375, 0.0, 0.0, 0.17025221101954405, 0.06021653898045596, -0.017578125],
    [0.03709200011850479, 0.0, 0.0, 0.17038392571223998, 0.10726203044637328, -0.015319437748624402, 0.008273789163814023],
    [0.6241109587160757, 0.0, 0.0, -3.3608926294469414, -0.868219346841726, 27.59209969944671, 20.154067550477894, -43.48988418106996],
    [0.47766253643826434, 0.0, 0.0, -2.4881146199716677, -0.590290826836843, 21.230051448181193, 15.279233632882423, -33.28821096898486, -0.020331201708508627],
    [-0.9371424300859873, 0.0, 0.0, 5.186372428844064, 1.0914373489967295, -8.149787010746927, -18.52006565999696, 22.739487099350505, 2.4936055526796523, -3.0467644718982196],
    [2.273310147516538, 0.0, 0.0, -10.53449546673725, -2.0008720582248625, -17.9589318631188, 27.94888452941996, -2.8589982771350235, -8.87285693353063, 12.360567175794303, 0.6433927460157636],
]
B = [0.054293734116568765, 0.0, 0.0, 0.0, 0.0, 4.450312892752409, 1.8915178993145003, -5.801203960010585, 0.3111643669578199, -0.1521609496625161, 0.20136540080403034, 0.04471061572777259]
E3 = [-0.18980075407240762, 0.0, 0.0, 0.0, 0.0, 4.450312892752409, 1.8915178993145003, -5.801203960010585, -0.4226823213237919, -0.1521609496625161, 0.20136540080403034, 0.02265179219836082, 0.0]
E5 = [0.01312004499419488, 0.0, 0.0, 0.0, 0.0, -1.2251564463762044, -0.4957589496572502, 1.6643771824549864, -0.35032884874997366, 0.3341791187130175, 0.08192320648511571, -0.022355307863886294, 0.0]
C_EXTRA = [0.1, 0.2, 0.7777777777777778]
A_EXTRA = [
    [0.056167502283047954, 0.0, 0.0, 0.0, 0.0, 0.0, 0.25350021021662483, -0.2462390374708025, -0.12419142326381637, 0.15329179827876568, 0.00820105229563469, 0.007567897660545699, -0.008298],
    [0.03183464816350214, 0.0, 0.0, 0.0, 0.0, 0.028300909672366776, 0.053541988307438566, -0.05492374857139099, 0.0, 0.0, -0.00010834732869724932, 0.0003825710908356584, -0.00034046500868740456, 0.1413124436746325],
    [-0.42889630158379194, 0.0, 0.0, 0.0, 0.0, -4.697621415361164, 7.683421196062599, 4.06898981839711, 0.3567271874552811, 0.0, 0.0, 0.0, -0.0013990241651590145, 2.9475147891527724, -9.15095847217987],
]
D = [
    [-8.428938276109013, 0.0, 0.0, 0.0, 0.0, 0.5667149535193777, -3.0689499459498917, 2.38466765651207, 2.117034582445028, -0.871391583777973, 2.2404374302607883, 0.6315787787694688, -0.08899033645133331, 18.148505520854727, -9.194632392478356, -4.436036387594894],
    [10.427508642579134, 0.0, 0.0, 0.0, 0.0, 242.28349177525817, 165.20045171727028, -374.5467547226902, -22.113666853125306, 7.733432668472264, -30.674084731089398, -9.332130526430229, 15.697238121770845, -31.139403219565178, -9.35292435884448, 35.81684148639408],
    [19.985053242002433, 0.0, 0.0, 0.0, 0.0, -387.0373087493518, -189.17813819516758, 527.8081592054236, -11.57390253995963, 6.8812326946963, -1.0006050966910838, 0.7777137798053443, -2.778205752353508, -60.19669523126412, 84.32040550667716, 11.99229113618279],
    [-25.69393346270375, 0.0, 0.0, 0.0, 0.0, -154.18974869023643, -231.5293791760455, 357.6391179106141, 93.40532418362432, -37.45832313645163, 104.0996495089623, 29.8402934266605, -43.53345659001114, 96.32455395918828, -39.17726167561544, -149.72683625798564],
]


def _linear(weights: Sequence[float], ks: Sequence[torch.Tensor]) -> torch.Tensor:
    """``sum_j weights[j] * ks[j]`` (every row of the tableau here has a non-zero weight)."""
    acc = weighted_sum(weights, ks)
    assert acc is not None
    return acc


def dop853_stages(f: Rhs, t: torch.Tensor, y: torch.Tensor, h: torch.Tensor, t_new: torch.Tensor,
                  f0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """One step from ``(t, y)`` with ``f0 = f(t, y)``: the new state, the 5th-order error estimate
    (times ``h``) and the 13 stages (the last one ``f(t_new, y1)``)."""
    ks = [f0]
    for i in range(1, len(A)):
        ks.append(f(t + C[i] * h, combine(y, h, A[i], ks)))
    y1 = combine(y, h, B, ks)
    ks.append(f(t_new, y1))
    return y1, h[:, None] * _linear(E5, ks), ks


def dop853_error_ratio(y: torch.Tensor, y1: torch.Tensor, err: torch.Tensor, ks: Sequence[torch.Tensor],
                       h: torch.Tensor, rtol: float, atol: float | torch.Tensor) -> torch.Tensor:
    """Hairer's DOP853 error norm, per sample: ``|h| e5^2 / sqrt(n (e5^2 + 0.01 e3^2))`` with
    ``e5``, ``e3`` the scaled norms of the 5th- and 3rd-order estimates (Hairer's ``dop853.f``),
    computed from ``err = h * (5th-order estimate)`` as ``E / sqrt(n (E + 0.01 h^2 e3^2))``,
    ``E = h^2 e5^2``; a step is accepted where it is at most 1."""
    scale = atol + rtol * torch.maximum(y.abs(), y1.abs())
    e5 = (err / scale).square().sum(-1)
    e3 = (h[:, None] * _linear(E3, ks) / scale).square().sum(-1)
    denom = e5 + 0.01 * e3
    ratio = e5 / torch.sqrt(torch.where(denom > 0, denom, torch.ones_like(denom)) * y.shape[-1])
    return torch.where(denom > 0, ratio, torch.zeros_like(ratio))


def dop853_dense_coefficients(f: Rhs, t: torch.Tensor, y0: torch.Tensor, y1: torch.Tensor, ks: list[torch.Tensor],
                              h: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The seven coefficient vectors of the 7th-order continuous extension (three more stages)."""
    kx = list(ks)
    for a, c in zip(A_EXTRA, C_EXTRA):
        kx.append(f(t + c * h, combine(y0, h, a, kx)))
    hc = h[:, None]
    dy = y1 - y0
    return (dy, hc * ks[0] - dy, 2 * dy - hc * (ks[-1] + ks[0]),
            *(hc * _linear(d, kx) for d in D))


class Dop853Dense:
    """DOP853's continuous extension, built on first use unless a fused step computed it."""

    def __init__(self, y0: torch.Tensor, coeffs: Callable[[], tuple[torch.Tensor, ...]] | tuple[torch.Tensor, ...]):
        self.y0 = y0
        self._coeffs = coeffs

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        if callable(self._coeffs):
            self._coeffs = self._coeffs()
        return dense_at(self.y0, self._coeffs, theta)


def dense_at(y0: torch.Tensor, coeffs: tuple[torch.Tensor, ...], theta: torch.Tensor) -> torch.Tensor:
    """The 7th-order continuous extension at ``t + theta h`` (``coeffs`` from
    :func:`dop853_dense_coefficients`): ``theta (B,)`` gives ``(B, n)``, ``(B, m)`` gives ``(B, m, n)``."""
    fs = coeffs
    if theta.dim() == 2:
        y0, fs = y0[:, None], tuple(c[:, None] for c in fs)
    x = theta[..., None]
    acc = fs[-1] * x
    for i, c in enumerate(reversed(fs[:-1]), start=1):
        acc = (acc + c) * (x if i % 2 == 0 else 1.0 - x)
    return y0 + acc


def dop853_fused_stages(f: Rhs, t: torch.Tensor, y: torch.Tensor, h: torch.Tensor, t_new: torch.Tensor,
                        f0: torch.Tensor, rtol: float, atol: float | torch.Tensor) -> tuple[Any, ...]:
    """:func:`dop853_stages` with the error ratio and the dense coefficients, for one compiled kernel."""
    y1, err, ks = dop853_stages(f, t, y, h, t_new, f0)
    return (y1, err, ks, dop853_error_ratio(y, y1, err, ks, h, rtol, atol),
            dop853_dense_coefficients(f, t, y, y1, ks, h))


def dop853_loop_stages(f: Rhs, t: torch.Tensor, y: torch.Tensor, h: torch.Tensor, t_new: torch.Tensor,
                       f0: torch.Tensor, stiffness_test: bool, rtol: float, atol: float | torch.Tensor
                       ) -> tuple[Any, ...]:
    """The fused step loop's view of a step (:mod:`.fused_loop`): ``(y1, f(t_new, y1), error
    ratio, None (no stiffness test), dense coefficients)``."""
    y1, _, ks, e, coeffs = dop853_fused_stages(f, t, y, h, t_new, f0, rtol, atol)
    return y1, ks[-1], e, None, coeffs


class Dop853Stepper:
    """Adaptive DOP853; hands the step loop its own error ratio (``StepResult.error_ratio``)."""

    # the error ratio behaves like h^8; Hairer's DOP853 defaults: no PI stabilisation, growth
    # at most 6x; 12 evaluations per step (FSAL; a step whose dense output is used takes 3 more)
    info = MethodInfo("dop853", 8, adaptive=True, rhs_per_step=12, fac_max=6.0, fusable=True)

    def __init__(self) -> None:
        self.fused: FusedSteps | None = None

    def fuse(self) -> None:
        """Run each step as one compiled kernel where the right-hand side allows it."""
        self.fused = self.fused or FusedSteps(dop853_fused_stages)

    #: the fused step loop's view of a step (:mod:`.fused_loop`)
    loop_stages = staticmethod(dop853_loop_stages)
    dense_at = staticmethod(dense_at)

    def step(self, f: Rhs, t: torch.Tensor, y: torch.Tensor, h: torch.Tensor, t_new: torch.Tensor,
             f0: torch.Tensor, tol: Tolerances, stiffness_test: bool = False) -> StepResult:
        rtol, atol = tol.rtol, tol.atol
        out = self.fused(f, t, y, h, t_new, f0, rtol, atol) if self.fused is not None else None
        if out is not None:
            y1, err, ks, e, coeffs = out
            return StepResult(y1, ks[-1], Dop853Dense(y, coeffs), err=err, error_ratio=e)
        y1, err, ks = dop853_stages(f, t, y, h, t_new, f0)
        e = dop853_error_ratio(y.detach(), y1.detach(), err.detach(), [k.detach() for k in ks], h.detach(), rtol, atol)
        return StepResult(y1, ks[-1], Dop853Dense(y, lambda: dop853_dense_coefficients(f, t, y, y1, ks, h)),
                          err=err, error_ratio=e)


register_method("dop853", Dop853Stepper,
                description="Dormand-Prince 8(5,3) (Hairer's DOP853), adaptive, 7th-order dense output")
