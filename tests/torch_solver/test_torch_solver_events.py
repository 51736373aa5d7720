"""Events: crossing times located inside the step, against analytic times."""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch

import neuroplex
from neuroplex.ir import Event, ModelIR, Parameter, State
from neuroplex.plugins.torch_solver import integrate

v, I, tau, h, w, g = sp.symbols("v I tau h w g")


def lif(events: list[Event] | None = None) -> ModelIR:
    return ModelIR("lif", states=[State("v", 0.0)], parameters=[Parameter("I", 2.0), Parameter("tau", 1.0)],
                   derivatives={"v": (I - v) / tau},
                   events=events if events is not None else [Event("spike", v > 1, {"v": 0})])


@pytest.mark.parametrize("method,t_end", [("dopri5", 6.0), ("rosenbrock", 3.0)])
def test_lif_threshold_reset_times(method: str, t_end: float) -> None:
    params = torch.tensor([[2.0, 1.0], [3.0, 0.5], [1.5, 2.0]], dtype=torch.float64)
    sol = neuroplex.simulate(lif(), (0.0, t_end), params=params, method=method, rtol=1e-9, atol=1e-12)
    assert sol.ok
    for b, (i_in, tau_b) in enumerate(params.tolist()):
        period = tau_b * math.log(i_in / (i_in - 1.0))  # v: 0 -> 1 under v' = (I - v)/tau
        idx, times = sol.spikes.for_sample(b)
        expected = period * np.arange(1, int(t_end / period) + 1)
        assert len(times) == len(expected)
        assert np.abs(times - expected).max() < 1e-6
        assert (idx == 0).all()
    assert sol.spikes.names == ["spike"]


def test_boolean_trigger_located_by_bisection() -> None:
    model = lif([Event("spike", sp.And(v > 1, sp.Symbol("t") > 0.1), {"v": 0})])
    sol = neuroplex.simulate(model, (0.0, 3.0), rtol=1e-10, atol=1e-12)
    _, times = sol.spikes.for_sample(0)
    expected = math.log(2.0) * np.arange(1, 5)
    assert np.abs(times - expected).max() < 1e-6


def test_bouncing_ball_with_restitution() -> None:
    e, g0, h0 = 0.8, 9.81, 1.0
    model = ModelIR("ball", states=[State("h", h0), State("w", 0.0)], parameters=[Parameter("g", g0)],
                    derivatives={"h": w, "w": -g}, events=[Event("bounce", h < 0, {"w": -e * w})])
    sol = neuroplex.simulate(model, (0.0, 3.0), rtol=1e-10, atol=1e-12, n_points=31)
    t_first = math.sqrt(2 * h0 / g0)
    v1 = g0 * t_first
    expected = [t_first]
    while True:
        nxt = expected[-1] + 2 * v1 * e ** len(expected) / g0
        if nxt > 3.0:
            break
        expected.append(nxt)
    _, times = sol.spikes.for_sample(0)
    assert len(times) == len(expected)
    assert np.abs(times - np.array(expected)).max() < 1e-6
    assert float(sol["h"].min()) > -1e-6


def test_terminal_event_stops_sample_and_outputs_nan_after() -> None:
    model = lif([Event("stop", v > 1, {}, terminal=True)])
    params = torch.tensor([[2.0, 1.0], [0.5, 1.0]], dtype=torch.float64)  # second never reaches 1
    te = torch.linspace(0, 2, 21, dtype=torch.float64)
    sol = neuroplex.simulate(model, (0.0, 2.0), params=params, t_eval=te, rtol=1e-10, atol=1e-12)
    assert sol.ok
    assert sol.stats["event_stop"].tolist() == [True, False]
    assert abs(float(sol.stats["t_end"][0]) - math.log(2.0)) < 1e-8
    assert torch.isnan(sol.ys[0, te > math.log(2.0)]).all()
    assert torch.isfinite(sol.ys[1]).all()


def test_integrate_event_fn_columns_and_per_sample_spans() -> None:
    # free fall from heights 1 and 2; column 0: hits ground, column 1: passes height 0.5 going down
    def f(t, y):
        return torch.stack([y[:, 1], torch.full_like(y[:, 1], -9.81)], -1)

    def ev(t, y):
        return torch.stack([-y[:, 0], 0.5 - y[:, 0]], -1)

    y0 = torch.tensor([[0.3, 0.0], [2.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    t1 = torch.tensor([5.0, 5.0, 0.2], dtype=torch.float64)
    res = integrate(f, 0.0, t1, y0, event_fn=ev)
    assert res.event_index.tolist() == [0, 1, -1]
    assert abs(float(res.t_end[0]) - math.sqrt(2 * 0.3 / 9.81)) < 1e-9
    assert abs(float(res.t_end[1]) - math.sqrt(2 * 1.5 / 9.81)) < 1e-9
    assert float(res.t_end[2]) == 0.2
    assert res.status.tolist() == [0, 0, 0]


def test_delayed_events_are_refused_not_ignored() -> None:
    from neuroplex.errors import SolverError

    model = lif([Event("spike", v > 1, {"v": 0}, delay=0.1)])
    with pytest.raises(SolverError, match="event 'spike' of model 'lif' has a delay"):
        neuroplex.simulate(model, 1.0)
