"""Lean iteration/damped loop: the residual is checked every ``check_every`` iterations, yet
early stop happens, counts are exact multiples of the check interval and the reported
residual is the exact residual of the returned state."""
from __future__ import annotations

import math

import pytest
import torch

import neuroplex
from neuroplex.dynamics import Dynamics
from neuroplex.errors import NeuroplexError
from neuroplex.solution import Status


class Scaled(Dynamics):
    """F(y) = s * y + (1 - s): fixed point 1, residual after k steps |1 - s| * |s|^k * |y0 - 1|."""

    state_names = ("y",)
    param_names = ("s",)
    name = "scaled"

    def __init__(self):
        self.calls = 0

    def fixed_point_map(self, y, p=None, u=None):
        self.calls += 1
        return p * y + (1 - p)

    def rhs(self, t, y, p=None, u=None):
        return self.fixed_point_map(y, p, u) - y


def first_converged(s: float, rate: float, tol: float) -> int:
    """Smallest k with |1 - s| rate^k < tol (y0 = 0; the error shrinks by ``rate`` a step)."""
    return next(k for k in range(10_000) if abs(1 - s) * rate ** k < tol)


@pytest.mark.parametrize("method", ["iteration", "damped"])
@pytest.mark.parametrize("every", [1, 3, 7])
def test_counts_residuals_and_early_stop(method: str, every: int) -> None:
    scales = [0.5, 0.8, 0.9]
    tol = 1e-6
    dyn = Scaled()
    p = torch.tensor(scales, dtype=torch.float64)[:, None]
    sol = neuroplex.equilibrate(dyn, torch.zeros(3, 1, dtype=torch.float64), method=method, params=p, tol=tol,
                                max_iter=1000, check_every=every, damping=0.5, accept="residual")
    assert (sol.status == Status.SUCCESS).all()
    for i, s in enumerate(scales):
        s_eff = s if method == "iteration" else 0.5 + 0.5 * s  # damped map y <- (1-a) y + a F(y)
        k = first_converged(s, s_eff, tol)
        expected = every * math.ceil(k / every)
        assert int(sol.stats["iterations"][i]) == expected
        exact = abs(1 - s) * abs(float(sol.ys[i, 0]) - 1)  # |F(y) - y| of the returned state
        assert float(sol.stats["residual"][i]) == pytest.approx(exact, rel=1e-9)
        assert float(sol.stats["residual"][i]) < tol
    # early stop: the loop ended at the last check (one map call per iteration, plus one; the
    # distance test, off here, adds its Jacobian's calls)
    assert dyn.calls == int(sol.stats["iterations"].max()) + 1


def test_frozen_samples_keep_their_state() -> None:
    dyn = Scaled()
    p = torch.tensor([[0.1], [0.95]], dtype=torch.float64)
    sol = neuroplex.equilibrate(dyn, torch.zeros(2, 1, dtype=torch.float64), method="iteration", params=p,
                                tol=1e-8, max_iter=2000, check_every=4)
    k0 = int(sol.stats["iterations"][0])
    assert k0 == 8 and int(sol.stats["iterations"][1]) > 100
    assert float(sol.ys[0, 0]) == pytest.approx(1 - 0.1 ** k0, rel=0, abs=1e-15)  # not iterated after freezing


def test_max_iter_not_multiple_of_check_every_reports_the_last_iteration() -> None:
    dyn = Scaled()
    p = torch.tensor([[0.99]], dtype=torch.float64)
    sol = neuroplex.equilibrate(dyn, torch.zeros(1, 1, dtype=torch.float64), method="iteration", params=p,
                                tol=1e-12, max_iter=23, check_every=5)
    assert int(sol.stats["iterations"][0]) == 23 and sol.status[0] == Status.NOT_CONVERGED
    assert float(sol.stats["residual"][0]) == pytest.approx(0.01 * 0.99 ** 23, rel=1e-12)


def test_check_every_must_be_positive() -> None:
    with pytest.raises(NeuroplexError, match="check_every"):
        neuroplex.equilibrate(Scaled(), torch.zeros(1, 1), method="iteration", params=torch.ones(1, 1),
                              check_every=0)
