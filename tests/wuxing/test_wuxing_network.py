"""Wuxing networks: the batched simulation against a plain reference, the adjoint property of
method 2, batch invariance, the NaN check, wiring and configs."""
import pytest
import torch

from neuroplex.errors import NeuroplexError
from neuroplex.fixed_step import heun
from neuroplex.plugins.wuxing.config import load_config, shipped_configs
from neuroplex.plugins.wuxing.network import NumericalError, WuxingNetwork
from neuroplex.plugins.wuxing.neuron import ring_rhs
from neuroplex.plugins.wuxing.wiring import link_ratio, wire


def reference_dbar(net, x, c, *, reversed_=False, err=None):
    """Plain per-sample implementation of the network equations (rows of ``c``: one C per sample).

    Forward: ``dE/dt = ring_rhs(E) + I``, ``I[dst] += C D[src]``; reversed: the transposed ring
    and ``I[src] += C D^[dst]``. Returns the trapezoidal time average of D, ``(B, n_total, 5)``."""
    cfg = net.config
    k1, k2, k3 = (k[..., 0] for k in (net.K1, net.K2, net.K3))
    rest = (net.rest_b if reversed_ else net.rest_f)[..., 0]
    batch = c.shape[0]
    drive = torch.zeros(batch, 5 * net.n_total, dtype=c.dtype)
    if reversed_:
        drive[:, net.out_idx] = cfg.err_scale / net.readout_width * err.repeat_interleave(net.readout_width, 1)
        gather, scatter = net.dst, net.src
    else:
        drive[:, net.in_idx] = cfg.in_scale * x
        gather, scatter = net.src, net.dst

    def f(t, e):
        d = (e - rest).reshape(batch, -1)
        inp = drive.index_add(1, scatter, d[:, gather] * c)
        return ring_rhs(e, k1, k2, k3, inp.view(batch, net.n_total, 5), "reversed" if reversed_ else "forward")

    e_max = net.e_max
    res = heun(f, rest.expand(batch, -1, -1).clone(), cfg.dt, net.n_steps,
               stage_hook=lambda e: e.clamp(0.0, e_max), integrand=lambda e: e - rest)
    return res.integral / (net.n_steps * cfg.dt)


def small_net(**changes):
    cfg = load_config("digits", layers=[6, 4, 3], wiring="fanin:3", dtype="float64", T=8.0, out_group=1, **changes)
    return WuxingNetwork(cfg, seed=1)


@pytest.mark.parametrize("readout", ["element", "mean"])
def test_batched_simulation_matches_the_reference(readout):
    net = small_net(in_scale=2.0, readout=readout)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(5, 6, generator=gen, dtype=torch.float64)
    c = net.C.expand(5, -1)
    dbar = net.forward(x)
    assert torch.allclose(dbar.permute(2, 0, 1), reference_dbar(net, x, c), atol=1e-12)
    assert float(dbar.abs().max()) > 0.05  # the input really drove the network
    err = net.targets(torch.tensor([0, 1, 2, 0, 1])) - net.output(dbar)
    dhat = net.backward(err)
    assert torch.allclose(dhat.permute(2, 0, 1), reference_dbar(net, x, c, reversed_=True, err=err), atol=1e-12)
    assert float(dhat[:6].abs().max()) > 1e-3  # the error reached the input layer



def test_population_readout_averages_each_classes_neurons():
    """out_group 2: class k's Leb is the mean of output neurons 2k and 2k + 1 (readout element),
    the reversed run injects err / 2 at each of them (the adjoint of that mean), both match the
    plain reference, and an out_group that does not divide the output layer is rejected."""
    cfg = load_config("digits", layers=[6, 4, 6], wiring="fanin:3", dtype="float64", T=8.0, in_scale=2.0,
                      out_group=2)
    net = WuxingNetwork(cfg, seed=1)
    assert cfg.n_classes == 3 and net.readout_width == 2
    x = torch.rand(5, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    c = net.C.expand(5, -1)
    dbar = net.forward(x)
    assert torch.allclose(dbar.permute(2, 0, 1), reference_dbar(net, x, c), atol=1e-12)
    out_neurons = dbar[net.offsets[-2]:, cfg.out_elem, :].T  # (B, 6)
    assert torch.allclose(net.output(dbar), out_neurons.reshape(5, 3, 2).mean(-1), atol=1e-15)
    y = torch.tensor([0, 1, 2, 0, 1])
    assert net.targets(y).shape == (5, 3)
    err = net.targets(y) - net.output(dbar)
    dhat = net.backward(err)
    assert torch.allclose(dhat.permute(2, 0, 1), reference_dbar(net, x, c, reversed_=True, err=err), atol=1e-12)
    assert torch.equal(net.out_idx, 5 * (net.offsets[-2] + torch.arange(6)) + cfg.out_elem)
    with pytest.raises(NeuroplexError, match="out_group"):
        load_config("digits", layers=[6, 4, 6], out_group=4)


def test_method2_update_is_a_descent_direction_link_by_link():
    """Linear regime (tiny input and error): sign(G1) = sign(-dL/dC) for >= 95 % of links
    of a 64-16-10 network, with dL/dC from forward finite differences (all links at once:
    one perturbed copy of C per batch row of the reference). T = 40 lets the time averages
    settle (the adjoint property is a steady-state one; at T = 20 about 83 % agree)."""
    from neuroplex.datasets import load_dataset

    cfg = load_config("digits", layers=[64, 16, 10], out_group=1, wiring="fanin:4", dtype="float64", in_scale=1e-3,
                      err_scale=1e-3, T=40.0, dt=0.5, target1=1e-3, target2=0.0)
    net = WuxingNetwork(cfg, seed=2)
    data = load_dataset("digits")
    nb = 1
    x, y = data.x_train[:nb].double(), data.y_train[:nb]
    dbar = net.forward(x)
    err = net.targets(y) - net.output(dbar)
    g1 = net.coupling_g1(dbar, net.backward(err))
    n_links = net.C.numel()
    h = 1e-3
    # rows: (copy k of C, sample b); copy 0 unperturbed, copy j + 1 with link j moved by h
    c = torch.cat([net.C[None], net.C + h * torch.eye(n_links, dtype=torch.float64)]).repeat_interleave(nb, 0)
    xs = x.repeat(n_links + 1, 1)
    out = net.readout(reference_dbar(net, xs, c).reshape(xs.shape[0], -1))
    loss = 0.5 * ((net.targets(y).repeat(n_links + 1, 1) - out) ** 2).sum(1).view(n_links + 1, nb).mean(1)
    grads = (loss[1:] - loss[0]) / h
    live = grads.abs() > 1e-3 * grads.abs().max()  # links from always-blank pixels carry nothing
    assert int(live.sum()) > 0.5 * n_links
    agree = (torch.sign(g1[live]) == torch.sign(-grads[live])).double().mean()
    assert agree >= 0.95, float(agree)


def test_batch_of_32_equals_32_runs_of_one():
    net = small_net()
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(32, 6, generator=gen, dtype=torch.float64)
    err = torch.randn(32, 3, generator=gen, dtype=torch.float64)
    whole_f, whole_b = net.forward(x), net.backward(err)
    for i in range(32):
        assert torch.allclose(net.forward(x[i:i + 1])[..., 0], whole_f[..., i], atol=1e-13, rtol=0)
        assert torch.allclose(net.backward(err[i:i + 1])[..., 0], whole_b[..., i], atol=1e-13, rtol=0)


def test_non_finite_values_are_reported_with_their_layer():
    net = small_net()
    c = net.C.clone()
    c[net.link_layer == 1] = float("nan")
    net.C = c
    with pytest.raises(NumericalError, match=r"non-finite forward signal in layer 2 \(neuron"):
        net.forward(torch.ones(2, 6, dtype=torch.float64))
    net = small_net()
    g1 = torch.zeros_like(net.C)
    g1[(net.link_layer == 0).nonzero()[3]] = float("inf")
    net.update_coupling(g1)  # atan bounds an infinite G1: still finite
    g1[(net.link_layer == 0).nonzero()[3]] = float("nan")
    with pytest.raises(NumericalError, match=r"coupling coefficient C in links of layer 0 -> 1"):
        net.update_coupling(g1)


def test_method1_update_moves_k3_keeps_clamps_and_recomputes_rest():
    net = small_net(eta_k3=5.0, k3_max=1.5)
    g1 = torch.linspace(-1, 1, net.n_total * 5, dtype=torch.float64).view(net.n_total, 5, 1)
    net.update_k3(g1)
    assert torch.all(net.K3[:6] == 0.5)  # input layer untouched by default
    assert float(net.K3.max()) <= 0.75 + 1e-12 and float(net.K3.min()) >= 0.05 - 1e-12
    for direction, rest in (("forward", net.rest_f), ("reversed", net.rest_b)):
        residual = ring_rhs(rest[..., 0], net.K1[..., 0], net.K2[..., 0], net.K3[..., 0], 0.0, direction)
        assert float(residual.abs().max()) < 1e-8


def test_wirings_follow_their_definitions():
    gen = torch.Generator().manual_seed(0)
    src, dst = wire("match", 40, 25, gen)
    assert len(src) == 25 and len(set(src.tolist())) == 25 and len(set(dst.tolist())) == 25
    src, dst = wire("fanin:4", 40, 25, gen)
    assert torch.all(torch.bincount(dst, minlength=25) == 4)
    assert all(len(set(src[dst == d].tolist())) == 4 for d in range(25))
    src, dst = wire("adder", 40, 10, gen)  # every source once, 4 summed per destination
    assert sorted(src.tolist()) == list(range(40)) and torch.all(torch.bincount(dst, minlength=10) == 4)
    src, dst = wire("adder:8", 20, 10, gen)  # balanced: each source used 4 times
    assert torch.all(torch.bincount(dst, minlength=10) == 8) and torch.all(torch.bincount(src, minlength=20) == 4)
    assert link_ratio(6, 3, 4) == 0.5  # the paper's Fig. 1a example
    for bad in ("fanin", "match:3", "ring", "adder:0", "fanin:x"):
        with pytest.raises(NeuroplexError, match="wiring"):
            wire(bad, 10, 10, gen)


def test_shipped_configs_and_bad_config_errors(tmp_path):
    names = set(shipped_configs())
    assert {"model1", "model2", "digits", "digits_single", "digits_match", "digits_adder"} <= names
    digits, single = load_config("digits"), load_config("digits_single")
    assert digits.n_classes == single.n_classes == 10 and (digits.out_group, single.out_group) == (8, 1)
    assert digits.layers == [64, 256, 80] and digits.wirings() == ["fanin:8", "fanin:8"]
    assert load_config("model1").layers == [784, 839, 283, 96, 32, 10]
    assert load_config("model2").layers == [784, 1048, 353, 119, 40, 10]
    bad = tmp_path / "bad.json"
    bad.write_text('{"layers": [4, 2], "eta": 1}')
    with pytest.raises(NeuroplexError, match=r"bad\.json: unknown wuxing config key\(s\) eta"):
        load_config(bad)
    with pytest.raises(NeuroplexError, match="no such file or shipped wuxing config"):
        load_config("nope")
    with pytest.raises(NeuroplexError, match="K2/K1=0.1 is outside"):
        WuxingNetwork(load_config("digits", K2=0.1))
    with pytest.raises(NeuroplexError, match=r"expected \(batch, 64\)"):
        WuxingNetwork(load_config("digits")).forward(torch.zeros(2, 63))

