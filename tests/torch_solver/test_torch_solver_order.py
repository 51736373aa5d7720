"""Convergence order of the explicit methods and dopri5, and dense output accuracy."""
from __future__ import annotations

import math

import pytest
import torch

from neuroplex.plugins.torch_solver import integrate


def _rhs(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # y1' = y2, y2' = -y1 + cos(t) ... non-autonomous forced oscillator; exact solution below
    return torch.stack([y[:, 1], -y[:, 0] + torch.cos(2 * t)], -1)


def _exact(t: float) -> torch.Tensor:
    # y(0) = (1, 0): y = (cos t + (cos t - cos 2t)/3, derivative)
    y1 = math.cos(t) + (math.cos(t) - math.cos(2 * t)) / 3
    y2 = -math.sin(t) + (-math.sin(t) + 2 * math.sin(2 * t)) / 3
    return torch.tensor([y1, y2], dtype=torch.float64)


def _error(method: str, n: int, t1: float = 2.0) -> float:
    y0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    res = integrate(_rhs, 0.0, t1, y0, method=method, dt0=t1 / n, adaptive=False)
    assert res.ok
    assert int(res.n_steps[0]) == n
    return float((res.y_end[0] - _exact(t1)).abs().max())


@pytest.mark.parametrize("method,order,ns", [
    ("euler", 1, (50, 100, 200)),
    ("heun", 2, (25, 50, 100)),
    ("rk4", 4, (10, 20, 40)),
    ("dopri5", 5, (8, 16, 32)),
    ("dop853", 8, (4, 8, 16)),
])
def test_fixed_step_convergence_order(method: str, order: int, ns: tuple[int, ...]) -> None:
    errs = [_error(method, n) for n in ns]
    rates = [math.log2(errs[i] / errs[i + 1]) for i in range(len(errs) - 1)]
    assert all(abs(r - order) < 0.3 for r in rates), (method, errs, rates)


def test_dopri5_tolerance_sweep_converges() -> None:
    y0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    errs = []
    for rtol in (1e-4, 1e-6, 1e-8, 1e-10):
        res = integrate(_rhs, 0.0, 5.0, y0, rtol=rtol, atol=rtol * 1e-2)
        errs.append(float((res.y_end[0] - _exact(5.0)).abs().max()))
    assert errs[-1] < 1e-8
    assert all(e2 < e1 for e1, e2 in zip(errs, errs[1:]))


@pytest.mark.parametrize("method,tol", [("dopri5", 1e-7), ("dop853", 1e-7), ("rk4", 1e-6), ("rosenbrock", 1e-5)])
def test_dense_output_matches_exact_solution(method: str, tol: float) -> None:
    y0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    te = torch.linspace(0.0, 5.0, 101, dtype=torch.float64)
    res = integrate(_rhs, 0.0, 5.0, y0, method=method, rtol=1e-9, atol=1e-12, dt0=0.01, t_eval=te)
    exact = torch.stack([_exact(float(t)) for t in te])
    assert float((res.ys[0] - exact).abs().max()) < tol
    assert torch.equal(res.ts, te)


def test_rosenbrock_order_on_smooth_problem() -> None:
    y0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    errs = []
    for n in (10, 20, 40):
        res = integrate(_rhs, 0.0, 2.0, y0, method="rosenbrock", dt0=2.0 / n, adaptive=False)
        errs.append(float((res.y_end[0] - _exact(2.0)).abs().max()))
    rates = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert all(r > 3.5 for r in rates), (errs, rates)


def test_dop853_dense_output_is_seventh_order() -> None:
    """Between the steps of a fixed-step run, the continuous extension's error falls like h^7 or faster."""
    y0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    errs = []
    for n in (4, 8, 16):
        te = torch.linspace(0.0, 2.0, 4 * n + 1, dtype=torch.float64)[1::2]  # between the steps
        res = integrate(_rhs, 0.0, 2.0, y0, method="dop853", dt0=2.0 / n, adaptive=False, t_eval=te)
        exact = torch.stack([_exact(float(t)) for t in te])
        errs.append(float((res.ys[0] - exact).abs().max()))
    rates = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert all(r > 6.5 for r in rates), (errs, rates)


def test_dop853_agrees_with_scipy_and_takes_fewer_steps_than_dopri5() -> None:
    scipy_integrate = pytest.importorskip("scipy.integrate")
    mu = 2.0

    def vdp(t, y):
        return torch.stack([y[:, 1], mu * (1 - y[:, 0] ** 2) * y[:, 1] - y[:, 0]], -1)

    te = torch.linspace(0.0, 10.0, 21, dtype=torch.float64)
    y0 = torch.tensor([[2.0, 0.0]], dtype=torch.float64)
    ours = integrate(vdp, 0.0, 10.0, y0, method="dop853", rtol=1e-10, atol=1e-12, t_eval=te)
    ref = scipy_integrate.solve_ivp(lambda t, y: [y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]], (0.0, 10.0), [2.0, 0.0],
                                    method="DOP853", rtol=1e-12, atol=1e-14, t_eval=te.numpy())
    assert ours.ok and ref.success
    assert float((ours.ys[0] - torch.from_numpy(ref.y.T)).abs().max()) < 1e-8
    dopri5 = integrate(vdp, 0.0, 10.0, y0, method="dopri5", rtol=1e-10, atol=1e-12)
    assert int(ours.n_steps[0]) * 3 < int(dopri5.n_steps[0])
