"""The Wuxing neuron as an IR model: rest point B0, stability check, N = 1 logistic, reversed form."""
import math

import pytest
import torch

import neuroplex as nx
from neuroplex.fixed_step import heun
from neuroplex.plugins.wuxing import StabilityError, check_stability, min_stable_ratio, rest_point, ring_rhs


def _factory(name="wuxing"):
    return nx.get_host().get("neurons", name).obj


@pytest.mark.parametrize("name", ["wuxing", "wuxing_reversed"])
def test_rest_point_is_b0_for_random_uniform_k(name):
    gen = torch.Generator().manual_seed(3)
    model = _factory(name)()
    names = model.parameter_names
    n = 6
    k1 = 0.5 + torch.rand(n, generator=gen, dtype=torch.float64)
    k2 = k1 * (0.2 + 0.7 * torch.rand(n, generator=gen, dtype=torch.float64))
    k3 = 0.2 + torch.rand(n, generator=gen, dtype=torch.float64)
    params = torch.stack([{"K1": k1, "K2": k2, "K3": k3}[p.split("_")[0]] for p in names], dim=1)
    y0 = 0.2 + 2.0 * torch.rand(n, 5, generator=gen, dtype=torch.float64)
    sol = nx.simulate(model, (0.0, 250.0), params=params, y0=y0, method="heun", dt=0.1, n_points=2, throw=True)
    b0 = ((k1 - k2) / k3)[:, None].expand(n, 5)
    final = torch.stack([sol[s][:, -1] for s in model.state_names], dim=1)
    assert torch.allclose(final, b0, atol=1e-4), (final - b0).abs().max()


def test_rest_point_by_relaxation_when_k_differs_within_a_neuron():
    k1 = torch.tensor([1.0, 1.1, 0.9, 1.0, 1.2], dtype=torch.float64)
    k2 = 0.5 * k1
    k3 = torch.tensor([0.5, 0.3, 0.7, 0.5, 0.4], dtype=torch.float64)
    for direction in ("forward", "reversed"):
        rest = rest_point(k1, k2, k3, direction=direction)
        assert float(ring_rhs(rest, k1, k2, k3, 0.0, direction).abs().max()) < 1e-6
        assert not torch.allclose(rest, (k1 - k2) / k3)  # the elementwise formula is not the rest point here


def test_stability_interval_and_clear_rejection():
    assert min_stable_ratio(5) == pytest.approx((7 - 3 * math.sqrt(5)) / 2, abs=1e-9)
    assert min_stable_ratio(1) == 0.0
    with pytest.raises(StabilityError, match=r"element J: .*K2/K1=0\.1 is outside the stable interval \(0\.1459, 1\)"):
        _factory()(K1=1.0, K2=0.1)
    with pytest.raises(StabilityError, match=r"neuron 3 element H"):
        k2 = torch.full((4, 5), 0.5)
        k2[3, 3] = 1.2
        check_stability(torch.ones(4, 5), k2, torch.ones(4, 5), where="layer 1")
    # just inside the interval: the linearised ring decays, just outside it grows
    for ratio, grows in ((0.14, True), (0.16, False)):
        k = torch.tensor([1.0] * 5, dtype=torch.float64)
        e = (1 - ratio) / 0.5 + 1e-3 * torch.tensor([1.0, -0.5, 0.2, 0.1, -0.3], dtype=torch.float64)
        f = lambda t, y: ring_rhs(y, k, ratio * k, 0.5 * k)  # noqa: E731
        end = heun(f, e, 0.1, 5000).y
        assert (float((end - (1 - ratio) / 0.5).abs().max()) > 1e-3) == grows


def test_one_element_ring_is_the_logistic_equation():
    model = _factory()(n=1, K1=1.5, K2=0.5, K3=2.0, initial=0.05)
    sol = nx.simulate(model, (0.0, 10.0), method="dopri5", rtol=1e-9, atol=1e-12, n_points=11, throw=True)
    r, cap = 1.0, 0.5  # dE/dt = (K1 - K2) E - K3 E^2 = r E (1 - E / cap)
    t = sol.ts.to(torch.float64)
    exact = cap / (1 + (cap / 0.05 - 1) * torch.exp(-r * t))
    assert torch.allclose(sol["E0"][0].to(torch.float64), exact, atol=1e-6)


def test_reversed_ir_matches_the_transposed_ring():
    k1 = torch.tensor([1.0, 1.2, 0.9, 1.1, 1.0], dtype=torch.float64)
    k2 = torch.tensor([0.5, 0.55, 0.45, 0.6, 0.5], dtype=torch.float64)
    k3 = torch.tensor([0.5, 0.3, 0.7, 0.5, 0.4], dtype=torch.float64)
    e = torch.tensor([[0.8, 0.6, 1.5, 1.0, 0.9]], dtype=torch.float64)
    inp = torch.tensor([0.1, 0.0, -0.2, 0.0, 0.3], dtype=torch.float64)
    for direction, name in (("forward", "wuxing"), ("reversed", "wuxing_reversed")):
        model = _factory(name)(K1=k1.tolist(), K2=k2.tolist(), K3=k3.tolist())
        for el, value in zip(model.state_names, inp):
            model.inputs[f"I_{el}"] = float(value)
        dyn = model.compile(dtype=torch.float64)
        got = dyn.rhs(torch.tensor(0.0, dtype=torch.float64), e, dyn.default_params()[None])
        assert torch.allclose(got, ring_rhs(e, k1, k2, k3, inp, direction))
    # the transpose property: the reversed linearisation is the forward one transposed
    b0 = torch.full((5,), 1.0, dtype=torch.float64)
    ku = torch.ones(5, dtype=torch.float64)
    jac_f = torch.autograd.functional.jacobian(lambda y: ring_rhs(y, ku, 0.5 * ku, 0.5 * ku), b0)
    jac_r = torch.autograd.functional.jacobian(lambda y: ring_rhs(y, ku, 0.5 * ku, 0.5 * ku, 0.0, "reversed"), b0)
    assert torch.allclose(jac_f.T, jac_r)


def test_simulate_command_runs_the_neuron(tmp_path):
    from click.testing import CliRunner

    from neuroplex.cli import build_cli

    res = CliRunner().invoke(build_cli(), ["simulate", "wuxing", "--t-end", "60", "--method", "heun", "--dt", "0.05",
                                           "--points", "5"])
    assert res.exit_code == 0, res.output
    assert "solver torch heun" in res.output and "J" in res.output
