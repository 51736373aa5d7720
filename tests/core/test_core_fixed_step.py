"""The shared fixed-step Heun loop: order, integral, hooks, batching."""
import math

import pytest
import torch

from neuroplex.errors import NeuroplexError
from neuroplex.fixed_step import heun


def test_heun_is_second_order_on_exponential_decay():
    errors = []
    for n in (20, 40):
        res = heun(lambda t, y: -y, torch.ones(3, dtype=torch.float64), 1.0 / n, n)
        errors.append(abs(float(res.y[0]) - math.exp(-1.0)))
    assert 3.5 < errors[0] / errors[1] < 4.5  # halving dt quarters the error
    assert res.t == pytest.approx(1.0)


def test_trapezoid_integral_and_time_dependence():
    # dy/dt = cos t, y(0) = 0: y = sin t, integral of y over [0, pi] = 2
    res = heun(lambda t, y: torch.cos(torch.tensor(t, dtype=y.dtype)) * torch.ones_like(y),
               torch.zeros(2, dtype=torch.float64), math.pi / 400, 400, integrand=lambda y: y)
    assert float(res.y[0]) == pytest.approx(0.0, abs=1e-4)
    assert float(res.integral[0]) == pytest.approx(2.0, abs=1e-4)


def test_stage_hook_clamps_and_step_hook_sees_every_step():
    seen = []
    res = heun(lambda t, y: torch.ones_like(y), torch.zeros(4), 0.1, 30,
               stage_hook=lambda y: y.clamp(max=1.0), step_hook=lambda k, t, y: seen.append((k, round(t, 6))))
    assert torch.all(res.y == 1.0)
    assert [k for k, _ in seen] == list(range(1, 31)) and seen[-1][1] == pytest.approx(3.0)


def test_batch_rows_are_independent():
    y0 = torch.rand(8, 5, dtype=torch.float64)
    f = lambda t, y: y - y ** 2  # noqa: E731
    whole = heun(f, y0, 0.1, 50, integrand=lambda y: y)
    for i in range(8):
        one = heun(f, y0[i:i + 1], 0.1, 50, integrand=lambda y: y)
        assert torch.allclose(one.y, whole.y[i:i + 1]) and torch.allclose(one.integral, whole.integral[i:i + 1])


def test_bad_step_is_rejected():
    with pytest.raises(NeuroplexError, match="dt must be"):
        heun(lambda t, y: y, torch.zeros(1), 0.0, 3)
