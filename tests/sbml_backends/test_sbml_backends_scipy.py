"""The scipy solver plugin: analytic solutions, every method, batches, events, Jacobian."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import neuroplex
from neuroplex.errors import NeuroplexError, SolverError
from neuroplex.ir import Event, ModelIR, Parameter, State
from neuroplex.plugins.scipy_solver.integrator import integrate
from neuroplex.plugins.scipy_solver.solver import METHODS, NumpyRHS, ScipySolver

pytest.importorskip("scipy")


def decay() -> ModelIR:
    return ModelIR("decay", states=[State("x", 1.0), State("y", 0.0)], parameters=[Parameter("k", 2.0)],
                   derivatives={"x": "-k*x", "y": "k*x - y"}, assignments={"total": "x + y"})


@pytest.mark.parametrize("method", METHODS)
def test_every_method_matches_the_analytic_solution(method):
    sol = neuroplex.simulate(decay(), (0, 2), solver="scipy", method=method, n_points=21, rtol=1e-10, atol=1e-12)
    t = sol.ts
    x = torch.exp(-2 * t)
    y = 2 * (torch.exp(-t) - torch.exp(-2 * t))
    assert sol.names == ["x", "y", "total"]
    assert sol.solver == "scipy" and sol.method == method and sol.ok
    assert torch.allclose(sol["x"][0], x, rtol=1e-7, atol=1e-9)
    assert torch.allclose(sol["y"][0], y, rtol=1e-7, atol=1e-9)
    assert torch.allclose(sol["total"][0], x + y, rtol=1e-7, atol=1e-9)


def test_batch_of_parameters_equals_single_runs():
    ks = torch.tensor([[0.5], [2.0], [3.0]], dtype=torch.float64)
    batch = neuroplex.simulate(decay(), (0, 1), solver="scipy", params=ks, n_points=5)
    assert batch.ys.shape == (3, 5, 3)
    for i in range(3):
        single = neuroplex.simulate(decay(), (0, 1), solver="scipy", params=ks[i], n_points=5)
        assert torch.equal(single.ys[0], batch.ys[i])
        assert torch.allclose(batch["x"][i, -1], torch.exp(-ks[i, 0]), rtol=1e-6)


def test_autograd_jacobian_matches_finite_differences():
    m = ModelIR("nl", states=[State("a", 1.0), State("b", 0.5)], parameters=[Parameter("c", 1.5)],
                derivatives={"a": "-c*a*b + sin(b)", "b": "a**2 - exp(-b)"})
    dyn = m.compile()
    fn = NumpyRHS(dyn, dyn.default_params(), None)
    y = np.array([0.7, -0.3])
    jac = fn.jac(0.0, y)
    eps = 1e-6
    fd = np.stack([(fn(0.0, y + eps * e) - fn(0.0, y - eps * e)) / (2 * eps) for e in np.eye(2)], axis=1)
    assert np.allclose(jac, fd, rtol=1e-6, atol=1e-8)


def test_stiff_robertson_with_bdf_and_radau():
    m = ModelIR("robertson", states=[State("y1", 1.0), State("y2", 0.0), State("y3", 0.0)],
                derivatives={"y1": "-0.04*y1 + 1e4*y2*y3", "y2": "0.04*y1 - 1e4*y2*y3 - 3e7*y2**2",
                             "y3": "3e7*y2**2"})
    sols = {meth: neuroplex.simulate(m, (0, 40), solver="scipy", method=meth, n_points=3, rtol=1e-8, atol=1e-12)
            for meth in ("BDF", "Radau", "LSODA")}
    for sol in sols.values():
        assert sol.ok
        total = sol["y1"] + sol["y2"] + sol["y3"]
        assert torch.allclose(total, torch.ones_like(total), atol=1e-8)
        # reference value at t = 40 (Hairer & Wanner, Solving ODEs II, section IV.1)
        assert abs(float(sol["y1"][0, -1]) - 0.7158270687) < 1e-6
    assert int(sols["BDF"].stats["n_jac"][0]) > 0


def test_bouncing_ball_event_times():
    ball = ModelIR("ball", states=[State("h", 1.0), State("v", 0.0)],
                   parameters=[Parameter("g", 9.81), Parameter("e", 0.8)],
                   derivatives={"h": "v", "v": "-g"}, events=[Event("bounce", "h < 0", {"h": "-h", "v": "-e*v"})])
    sol = neuroplex.simulate(ball, (0, 2), solver="scipy", n_points=201, rtol=1e-10, atol=1e-12)
    t1 = math.sqrt(2 / 9.81)
    expected = [t1, t1 + 2 * 0.8 * t1, t1 + 2 * 0.8 * t1 + 2 * 0.64 * t1]
    times = sol.spikes.time[:3].tolist()
    assert np.allclose(times, expected, atol=1e-7)
    assert bool((sol["h"] >= -1e-9).all())


def test_integrator_interface_stops_at_first_crossing():
    def f(t, y):
        return torch.ones_like(y)

    def event_fn(t, y):
        return torch.stack([y[:, 0] - 0.25, y[:, 0] - 0.5], dim=-1)

    res = integrate(f, 0.0, 1.0, torch.zeros(2, 1, dtype=torch.float64), t_eval=torch.tensor([0.1, 0.2, 0.3]),
                    event_fn=event_fn, method="RK45")
    assert res.event_index.tolist() == [0, 0]
    assert torch.allclose(res.t_end, torch.full((2,), 0.25, dtype=torch.float64), atol=1e-12)
    assert torch.isnan(res.ys[:, 2]).all() and torch.allclose(res.ys[:, :2, 0], torch.tensor([0.1, 0.2]).double())


def test_bad_settings_fail_clearly():
    with pytest.raises(NeuroplexError, match="unknown method 'euler'"):
        ScipySolver(method="euler")
    with pytest.raises(NeuroplexError, match=r"does not run on device 'cuda' \(it runs on: cpu\)"):
        ScipySolver(device="cuda")
    m = decay()
    m.refractory = m.time  # any expression: scipy has no refractory support
    with pytest.raises(SolverError, match="solver 'scipy' does not support refractory, which model 'decay' needs"):
        neuroplex.simulate(m, (0, 1), solver="scipy")  # the host's feature gate, before the solver runs
    with pytest.raises(NeuroplexError, match="parameters"):
        neuroplex.simulate(decay(), (0, 1), solver="scipy", params=torch.ones(2))
