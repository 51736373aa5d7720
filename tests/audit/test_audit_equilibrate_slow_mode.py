"""``equilibrate`` on the torch solver does not call a slowly moving state a fixed point.

Before: a sample was SUCCESS as soon as its residual ``max_i |f(y)_i|`` fell below ``tol``.
``y' = -diag(1, eps) (y - c)`` with ``eps = 1e-8``, ``c = (1, 5)`` from ``y = 0`` has
residual ``5e-8 < 1e-6`` once the fast mode has settled, so ``iteration`` returned
``y = (1, 0)`` as the equilibrium, 5 away from the fixed point ``(1, 5)``. Now
(``accept="distance"``, the default) the Newton correction must be within
``distance_atol + distance_rtol * |y|``: a sample too far is resumed with a smaller tolerance
and reaches the fixed point, or ends NOT_CONVERGED with the distance in ``meta["reasons"]``.
``accept="residual"`` keeps the residual test alone."""
from __future__ import annotations

import pytest
import torch

import neuroplex as nx
from neuroplex.dynamics import Dynamics
from neuroplex.errors import SolverError
from neuroplex.solution import Status

C = torch.tensor([1.0, 5.0], dtype=torch.float64)


class SlowRelax(Dynamics):
    """``y' = -diag(1, eps) (y - c)``: a fast mode and one of rate ``eps`` (a parameter per
    sample); fixed point ``c``."""

    state_names = ("fast", "slow")
    param_names = ("eps",)
    name = "slow_relax"

    def rhs(self, t, y, p=None, u=None):
        rates = torch.cat([torch.ones_like(p[..., :1]), p[..., :1]], -1)
        return -rates * (y - C)

    def default_params(self, batch=None, *, dtype=None, device=None):
        return torch.ones(1, dtype=dtype or torch.float64)


class BoundTargets(SlowRelax):
    """:class:`SlowRelax` towards a target per sample bound to the model (as EqProp binds its
    input batch): it only works when every call sees the whole batch."""

    def __init__(self, targets: torch.Tensor):
        self.targets = targets

    def rhs(self, t, y, p=None, u=None):
        rates = torch.cat([torch.ones_like(p[..., :1]), p[..., :1]], -1)
        return -rates * (y - self.targets)


def _eps(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)[:, None]


@pytest.mark.parametrize("method", ["iteration", "damped"])
def test_a_slow_mode_below_tol_is_not_a_fixed_point(method):
    y0 = torch.zeros(1, 2, dtype=torch.float64)
    sol = nx.equilibrate(SlowRelax(), y0, params=_eps(1e-8), method=method, tol=1e-6, max_iter=1000)
    assert float(sol.stats["residual"][0]) < 1e-6  # the residual test alone would accept it
    assert sol.status.tolist() == [Status.NOT_CONVERGED]
    reason = sol.meta["reasons"][0]
    assert "below tol" in reason and "slow mode" in reason and "max_iter" in reason
    with pytest.raises(SolverError, match="not converged"):
        nx.equilibrate(SlowRelax(), y0, params=_eps(1e-8), method=method, tol=1e-6, max_iter=1000, throw=True)


def test_accept_residual_keeps_the_residual_test_alone():
    y0 = torch.zeros(1, 2, dtype=torch.float64)
    sol = nx.equilibrate(SlowRelax(), y0, params=_eps(1e-8), method="iteration", tol=1e-6, accept="residual")
    assert sol.status.tolist() == [Status.SUCCESS]
    assert abs(float(sol.ys[0, 1]) - 5.0) > 4.9  # the state the default rejects
    with pytest.raises(Exception, match="accept must be one of distance, residual"):
        nx.equilibrate(SlowRelax(), y0, params=_eps(1e-8), accept="nearby")


@pytest.mark.parametrize("method", ["anderson", "ode"])
def test_a_resumed_slow_sample_reaches_the_fixed_point(method):
    # residual 0.05 * ... below tol 0.1 at the start: the old test stopped at y = 0
    y0 = torch.zeros(1, 2, dtype=torch.float64)
    sol = nx.equilibrate(SlowRelax(), y0, params=_eps(1e-2), method=method, tol=0.1, throw=True)
    torch.testing.assert_close(sol.ys[0], C, rtol=1e-3, atol=1e-5)
    old = nx.equilibrate(SlowRelax(), y0, params=_eps(1e-2), method=method, tol=0.1, accept="residual")
    assert float((old.ys[0] - C).abs().max()) > 1.0


def test_a_mixed_batch_keeps_each_samples_verdict():
    y0 = torch.zeros(3, 2, dtype=torch.float64)
    sol = nx.equilibrate(SlowRelax(), y0, params=_eps(1.0, 1e-8, 1e-2), method="iteration", tol=1e-6,
                         max_iter=2000)
    assert sol.status.tolist() == [Status.SUCCESS, Status.NOT_CONVERGED, Status.SUCCESS]
    assert sorted(sol.meta["reasons"]) == [1]
    torch.testing.assert_close(sol.ys[[0, 2]], C.expand(2, 2), rtol=0, atol=1e-3)
    torch.testing.assert_close(sol.ys[1, 0], C[0], rtol=0, atol=1e-6)


def test_a_model_with_per_sample_data_is_resumed_whole():
    targets = torch.tensor([[1.0, 5.0], [-2.0, 3.0], [0.5, -4.0]], dtype=torch.float64)
    y0 = torch.zeros(3, 2, dtype=torch.float64)
    # sample 1 is slow (resumed), the others settle at once: the resumed run must see all rows
    sol = nx.equilibrate(BoundTargets(targets), y0, params=_eps(1.0, 1e-2, 1.0), method="anderson", tol=0.1,
                         throw=True)
    torch.testing.assert_close(sol.ys, targets, rtol=1e-3, atol=1e-5)
    assert int(sol.stats["iterations"][1]) > int(sol.stats["iterations"][0])


def test_a_drift_without_fixed_point_is_not_converged():
    class Drift(SlowRelax):
        def rhs(self, t, y, p=None, u=None):  # y_slow' = -1e-9: no fixed point, tiny residual
            return torch.stack([-(y[..., 0] - 1.0), torch.full_like(y[..., 1], -1e-9)], -1)

    sol = nx.equilibrate(Drift(), torch.zeros(1, 2, dtype=torch.float64), method="iteration", tol=1e-6)
    assert sol.status.tolist() == [Status.NOT_CONVERGED]
    assert "no fixed point near" in sol.meta["reasons"][0]


def test_a_conservation_law_is_still_a_fixed_point():
    class Exchange(SlowRelax):
        def rhs(self, t, y, p=None, u=None):  # a <-> b at equal rates: a + b conserved, J singular
            flux = y[..., 0] - y[..., 1]
            return torch.stack([-flux, flux], -1)

    y0 = torch.tensor([[3.0, 1.0]], dtype=torch.float64)
    sol = nx.equilibrate(Exchange(), y0, method="damped", tol=1e-9, throw=True)
    torch.testing.assert_close(sol.ys[0], torch.tensor([2.0, 2.0], dtype=torch.float64), rtol=0, atol=1e-8)


def test_the_distance_is_the_newton_correction_on_either_path():
    from neuroplex.plugins.torch_solver.distance import newton_distance

    gen = torch.Generator().manual_seed(0)
    a = torch.randn(4, 4, dtype=torch.float64, generator=gen) + 4 * torch.eye(4, dtype=torch.float64)
    c = torch.randn(4, dtype=torch.float64, generator=gen)
    offsets = torch.tensor([1e-9, 0.1, 2.0], dtype=torch.float64)  # within bounds (LU), beyond (SVD) x2
    y = c + offsets[:, None] * torch.randn(3, 4, dtype=torch.float64, generator=gen)
    rows = torch.tensor([True, True, False])
    ratio, dist = newton_distance(lambda t, yy: (yy - c) @ a.T, y, rows, 1e-3, 1e-6, ["batched"])
    exact = (y - c).abs()  # a linear g: the fixed point is c
    torch.testing.assert_close(dist[:2], exact[:2].amax(-1), rtol=1e-9, atol=1e-15)
    torch.testing.assert_close(ratio[:2], (exact[:2] / (1e-6 + 1e-3 * y[:2].abs())).amax(-1), rtol=1e-9, atol=0)
    assert float(ratio[0]) <= 1 < float(ratio[1])
    assert torch.isnan(dist[2]) and torch.isnan(ratio[2])  # not asked for
