"""``method="auto"`` on IR models: the torch solver's one policy (dopri5, rosenbrock for the
samples its stiffness test stops), the same the SBML runner applies."""
from __future__ import annotations

import numpy as np
import sympy as sp
import torch

import neuroplex
from neuroplex.ir import Event, ModelIR, Parameter, State
from neuroplex.plugins.torch_solver import TorchSolver

T = torch.float64
a, b, k1, k2 = sp.symbols("a b k1 k2")
v, w, k = sp.symbols("v w k")


def chain() -> ModelIR:
    """a -> b -> (out) with rates k1, k2: stiff where k1 >> k2 (and the span is long)."""
    return ModelIR("chain", states=[State("a", 1.0), State("b", 0.0)],
                   parameters=[Parameter("k1", 1e4), Parameter("k2", 1.0)],
                   derivatives={"a": -k1 * a, "b": k1 * a - k2 * b})


def exact_b(t: torch.Tensor, r1: float, r2: float) -> torch.Tensor:
    return r1 / (r2 - r1) * (torch.exp(-r1 * t) - torch.exp(-r2 * t))


def test_auto_reruns_only_the_stiff_sample_with_rosenbrock() -> None:
    params = torch.tensor([[1e4, 1.0], [3.0, 1.0]], dtype=T)  # stiff, then not
    t = torch.linspace(0, 2, 6, dtype=T)
    kw = dict(t_eval=t, params=params, rtol=1e-8, atol=1e-12)
    auto = neuroplex.simulate(chain(), (0, 2), method="auto", **kw)
    assert auto.ok and auto.method == "auto (dopri5, rosenbrock for stiff samples)"
    for i, (r1, r2) in enumerate(params.tolist()):
        assert torch.allclose(auto["b"][i], exact_b(t, r1, r2), rtol=1e-6, atol=1e-10)
    dopri5 = neuroplex.simulate(chain(), (0, 2), method="dopri5", **kw)
    rosen = neuroplex.simulate(chain(), (0, 2), method="rosenbrock", **kw)
    # the non-stiff sample is dopri5's run, untouched; the stiff one is rosenbrock's values,
    # after a dopri5 attempt cut at the stiffness test (its steps are counted too)
    assert torch.equal(auto.ys[1], dopri5.ys[1])
    assert int(auto.stats["n_steps"][1]) == int(dopri5.stats["n_steps"][1])
    assert torch.equal(auto.ys[0], rosen.ys[0])
    budget = TorchSolver.auto_policy.step_budget
    assert int(rosen.stats["n_steps"][0]) < int(auto.stats["n_steps"][0]) <= budget + int(rosen.stats["n_steps"][0])
    assert int(dopri5.stats["n_steps"][0]) > 2 * int(auto.stats["n_steps"][0])  # what auto saves
    assert "n_jac" in auto.stats


def test_auto_stays_on_dopri5_where_nothing_is_stiff() -> None:
    params = torch.tensor([[3.0, 1.0]], dtype=T)
    sol = neuroplex.simulate(chain(), (0, 5), method="auto", params=params)
    assert sol.ok and sol.method == "auto (dopri5)" and "n_jac" not in sol.stats
    assert torch.equal(sol.ys, neuroplex.simulate(chain(), (0, 5), method="dopri5", params=params).ys)


def relaxing_neuron() -> ModelIR:
    """v relaxes onto the ramp w at rate k (stiff for large k); v > 1 resets both."""
    return ModelIR("relax", states=[State("v", 0.0), State("w", 0.0)], parameters=[Parameter("k", 1e5)],
                   derivatives={"v": -k * (v - w), "w": sp.Integer(1)},
                   events=[Event("spike", v > 1, {"v": 0, "w": 0})])


def test_auto_merges_the_spikes_of_the_rerun_samples() -> None:
    params = torch.tensor([[1e4], [10.0]], dtype=T)  # sample 0 stiff, sample 1 not
    kw = dict(rtol=1e-8, atol=1e-10)
    auto = neuroplex.simulate(relaxing_neuron(), (0, 3.5), method="auto", params=params, **kw)
    assert auto.ok and auto.method == "auto (dopri5, rosenbrock for stiff samples)"
    rosen = neuroplex.simulate(relaxing_neuron(), (0, 3.5), method="rosenbrock", params=params[:1], **kw)
    dopri5 = neuroplex.simulate(relaxing_neuron(), (0, 3.5), method="dopri5", params=params[1:], **kw)
    stiff_times = auto.spikes.for_sample(0)[1]
    assert np.array_equal(stiff_times, rosen.spikes.for_sample(0)[1])
    assert np.array_equal(auto.spikes.for_sample(1)[1], dopri5.spikes.for_sample(0)[1])
    # after each reset v = w - (1 - exp(-k s)) / k (s since the reset): a spike every s1 with
    # s1 - (1 - exp(-k s1)) / k = 1, i.e. 1 + 1/k (k = 1e4) and 1.1 - 0.1 exp(-11) (k = 10)
    assert stiff_times.size == 3
    np.testing.assert_allclose(stiff_times, (1 + 1e-4) * np.arange(1, 4), rtol=1e-7)
    calm_times = auto.spikes.for_sample(1)[1]
    assert calm_times.size == 3
    np.testing.assert_allclose(calm_times, (1.1 - 0.1 * np.exp(-11.0)) * np.arange(1, 4), rtol=1e-7)
