"""Equilibrium methods: convergence on contractions, per-sample early stop, failures."""
from __future__ import annotations

import pytest
import torch

import neuroplex
from neuroplex.dynamics import Dynamics
from neuroplex.errors import SolverError
from neuroplex.solution import Status


class AffineMap(Dynamics):
    """F(y) = A y + c with a per-sample scale: a contraction for |scale| * ||A|| < 1.
    Fixed point y* = (I - A)^-1 c; rhs = F(y) - y (so the ODE's steady state is y* too)."""

    state_names = ("a", "b")
    param_names = ("scale",)
    name = "affine"

    def __init__(self):
        self.a = torch.tensor([[0.5, 0.3], [-0.2, 0.4]], dtype=torch.float64)
        self.c = torch.tensor([1.0, -2.0], dtype=torch.float64)

    def fixed_point_map(self, y, p=None, u=None):
        s = p[..., :1] if p is not None else 1.0
        return s * (y @ self.a.T) + self.c

    def rhs(self, t, y, p=None, u=None):
        return self.fixed_point_map(y, p, u) - y

    def default_params(self, batch=None, *, dtype=None, device=None):
        return torch.ones(1, dtype=dtype or torch.float64)

    def fixed_point(self, scale: float) -> torch.Tensor:
        return torch.linalg.solve(torch.eye(2, dtype=torch.float64) - scale * self.a, self.c)


@pytest.mark.parametrize("method", ["iteration", "damped", "anderson", "ode"])
def test_contraction_converges_to_known_fixed_point(method: str) -> None:
    dyn = AffineMap()
    scales = torch.tensor([[0.2], [1.0], [1.4]], dtype=torch.float64)
    y0 = torch.zeros(3, 2, dtype=torch.float64)
    sol = neuroplex.equilibrate(dyn, y0, method=method, params=scales, tol=1e-10, max_iter=2000, throw=True)
    assert sol.ys.shape == (3, 2) and sol.ts is None
    for b, s in enumerate(scales[:, 0].tolist()):
        torch.testing.assert_close(sol.ys[b], dyn.fixed_point(s), rtol=1e-8, atol=1e-8)
    assert (sol.stats["residual"] < 1e-10).all()
    # per-sample stop: the strongest contraction needs the fewest iterations (Anderson solves
    # a 2-d affine map in about 3 steps whatever the scale)
    it = sol.stats["iterations"]
    assert int(it[0]) <= int(it[2]) if method == "anderson" else int(it[0]) < int(it[2])
    assert sol.method == method


def test_anderson_beats_plain_iteration() -> None:
    dyn = AffineMap()
    p = torch.tensor([[1.4]], dtype=torch.float64)
    y0 = torch.zeros(1, 2, dtype=torch.float64)
    plain = neuroplex.equilibrate(dyn, y0, method="iteration", params=p, tol=1e-10)
    acc = neuroplex.equilibrate(dyn, y0, method="anderson", params=p, tol=1e-10)
    assert int(acc.stats["iterations"][0]) < int(plain.stats["iterations"][0]) // 3


def test_converged_samples_are_frozen_and_loop_stops_early() -> None:
    calls = []

    class Counting(AffineMap):
        def fixed_point_map(self, y, p=None, u=None):
            calls.append(1)
            return super().fixed_point_map(y, p, u)

    dyn = Counting()
    y_star = dyn.fixed_point(1.0)
    y0 = torch.stack([y_star, torch.zeros(2, dtype=torch.float64)])  # sample 0 starts converged
    sol = neuroplex.equilibrate(dyn, y0, method="iteration", params=torch.ones(1, dtype=torch.float64), tol=1e-9,
                                max_iter=10_000, accept="residual")  # the distance test adds its own calls
    assert int(sol.stats["iterations"][0]) == 0
    assert torch.equal(sol.ys[0], y_star)
    assert len(calls) == int(sol.stats["iterations"][1]) + 1 < 200


def test_non_convergent_map_reports_not_converged_and_throw_names_samples() -> None:
    dyn = AffineMap()
    scales = torch.tensor([[0.5], [3.0]], dtype=torch.float64)  # 3 * A is expanding
    y0 = torch.zeros(2, 2, dtype=torch.float64)
    sol = neuroplex.equilibrate(dyn, y0, method="iteration", params=scales, max_iter=50)
    assert sol.status[0] == Status.SUCCESS
    assert sol.status[1] in (Status.NOT_CONVERGED, Status.NONFINITE)
    assert int(sol.stats["iterations"][1]) == 50
    with pytest.raises(SolverError, match=r"1 of 2 sample\(s\) failed: 1 \(not converged\)"):
        neuroplex.equilibrate(dyn, y0, method="iteration", params=scales, max_iter=50, throw=True)


def test_equilibrate_keeps_gradients() -> None:
    dyn = AffineMap()
    scale = torch.tensor([[0.3]], dtype=torch.float64, requires_grad=True)
    sol = neuroplex.equilibrate(dyn, torch.zeros(1, 2, dtype=torch.float64), method="iteration", params=scale,
                                tol=1e-12)
    sol.ys.sum().backward()
    # d/ds of sum((I - sA)^-1 c), by finite differences
    h = 1e-6
    fd = (dyn.fixed_point(0.3 + h).sum() - dyn.fixed_point(0.3 - h).sum()) / (2 * h)
    assert abs(float(scale.grad) - float(fd)) < 1e-6


def test_float32_equilibrium_follows_input_dtype() -> None:
    class F32(AffineMap):
        def __init__(self):
            super().__init__()
            self.a, self.c = self.a.float(), self.c.float()

    sol = neuroplex.equilibrate(F32(), torch.zeros(4, 2), method="anderson", params=torch.ones(1), tol=1e-5)
    assert sol.ys.dtype == torch.float32 and sol.ok


def test_simulate_method_name_runs_ode_to_steady_state() -> None:
    dyn = AffineMap()
    sol = neuroplex.equilibrate(dyn, torch.zeros(1, 2, dtype=torch.float64), method="rk4", dt=0.1,
                                params=torch.ones(1, dtype=torch.float64), tol=1e-9)
    assert sol.ok and sol.method == "ode"
    torch.testing.assert_close(sol.ys[0], dyn.fixed_point(1.0), rtol=1e-7, atol=1e-7)
