"""Plastic synapses and network inputs on Brian2 against the torch engine: Brian2's STDP
example (Song, Miller & Abbott 2000) fed identical input spikes gives the same output spikes
and final weights; triplet STDP, PoissonInput, (B, 1) rates and per-population results."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import neuroplex as nx
from neuroplex.errors import NeuroplexError

from neuroplex.plugins.brian2_backend.solver import Brian2Solver
from neuroplex.plugins.snn import (Network, SynapseModel, poisson_trains, song_neuron, song_stdp, stdp_additive,
                                   triplet_stdp)

pytest.importorskip("brian2")


def test_song_stdp_example_matches_brian2_spike_for_spike():
    spikes = poisson_trains(1000, 15.0, 0.5, seed=3)
    net = song_stdp(1000, seed=1, input_spikes=spikes)
    net.rate_monitor("out")
    mine = net.run(0.5)
    brian = Brian2Solver(target="numpy").simulate(net, (0.0, 0.5))
    out_t, out_b = mine.meta["spikes"]["out"], brian.meta["spikes"]["out"]
    assert len(out_t) > 15
    assert torch.equal(out_t.time, out_b.time)
    w_t, w_b = mine.meta["synapses"]["S"]["w"], brian.meta["synapses"]["S"]["w"]
    assert float((w_t - w_b).abs().max()) < 1e-6
    assert float((w_t - torch.as_tensor(net.synapses["S"].weight)).abs().max()) > 1e-5  # it learned
    for trace in ("Apre", "Apost", "lastupdate"):
        assert float((mine.meta["synapses"]["S"][trace] - brian.meta["synapses"]["S"][trace]).abs().max()) < 1e-9
    assert torch.equal(mine.meta["rates"]["out"], brian.meta["rates"]["out"])


def test_triplet_stdp_batched_matches_brian2():
    spikes = poisson_trains(300, 20.0, 0.3, seed=4, batch=2)
    rule = triplet_stdp(A2p=5e-3, A3p=6.2e-3, wmax=0.02)
    net = song_stdp(300, seed=2, batch=2, input_spikes=spikes, rule=rule)
    for name in ("S",):
        net.synapses[name].weight *= 3.0  # 300 inputs: stronger weights so that the neuron fires
    mine = net.run(0.3)
    brian = Brian2Solver(target="numpy").simulate(net, (0.0, 0.3))
    assert len(mine.meta["spikes"]["out"]) > 10
    assert torch.equal(mine.meta["spikes"]["out"].time, brian.meta["spikes"]["out"].time)
    assert torch.equal(mine.meta["spikes"]["out"].sample, brian.meta["spikes"]["out"].sample)
    assert float((mine.meta["synapses"]["S"]["w"] - brian.meta["synapses"]["S"]["w"]).abs().max()) < 1e-6


def test_poisson_input_and_batched_rates_on_brian2():
    net = Network(dt=1e-4, batch=2)
    net.add_poisson("in", 200, torch.tensor([[10.0], [100.0]]), record_spikes=True)
    net.add_population("out", song_neuron(), 50, init={"v": -60e-3})
    net.add_poisson_input("out", "ge", N=100, rate=20.0, weight=0.01)
    net.monitor("out", ["ge"], [0, 1, 2])
    sol = Brian2Solver(target="numpy", seed=1).simulate(net, (0.0, 0.3))
    counts = torch.bincount(sol.meta["spikes"]["in"].sample, minlength=2).double()
    expected = torch.tensor([10.0, 100.0]) * 200 * 0.3
    assert torch.all((counts - expected).abs() < 5 * expected.sqrt())
    ge = float(sol.ys[:, 500:].mean())  # N rate w taue
    assert ge == pytest.approx(100 * 20.0 * 0.01 * 5e-3, rel=0.1)
    assert set(sol.meta["spikes"]) == {"in", "out"}


def test_plastic_synapses_with_volt_weights_run_with_units_on_brian2():
    idx, times, _ = poisson_trains(200, 20.0, 0.2, seed=1)
    net = Network(dt=1e-4)
    net.add_spike_generator("in", 200, idx, times)
    net.add_population("P", nx.get_neuron("lif")(synapses="current", E_l="-60 mV"), 20, init={"v": -60e-3})
    net.connect("in", "P", "ge", p=0.5, seed=1, weight=1e-3, model=stdp_additive(dApre=2e-4, wmax=2e-3), name="S")
    mine = net.run(0.2)
    brian = Brian2Solver(target="numpy", units="si").simulate(net, (0.0, 0.2))
    assert brian.meta["units"] == "si"  # w, Apre, Apost, wmin, wmax in volts: Brian2 checked them
    assert len(mine.spikes) > 10 and torch.equal(mine.spikes.time, brian.spikes.time)
    assert float((mine.meta["synapses"]["S"]["w"] - brian.meta["synapses"]["S"]["w"]).abs().max()) < 1e-9


def test_a_run_continues_across_engines():
    spikes = poisson_trains(1000, 15.0, 0.4, seed=6)
    ref = song_stdp(1000, seed=1, input_spikes=spikes).run(0.4)
    net = song_stdp(1000, seed=1, input_spikes=spikes)
    net.run(0.1)                                                    # torch: 0 .. 0.1 s
    net.store("t0.1")
    brian = Brian2Solver(target="numpy").simulate(net, (0.1, 0.3))  # Brian2 goes on: 0.1 .. 0.3 s
    last = net.run(0.1, resume=True)                                # torch again: 0.3 .. 0.4 s
    out = ref.meta["spikes"]["out"].time
    middle = out[(out >= 0.1 - 1e-9) & (out < 0.3 - 1e-9)]
    assert len(middle) > 5 and torch.equal(brian.meta["spikes"]["out"].time, middle)
    assert torch.equal(last.meta["spikes"]["out"].time, out[out >= 0.3 - 1e-9])
    assert float((last.meta["synapses"]["S"]["w"] - ref.meta["synapses"]["S"]["w"]).abs().max()) < 1e-12
    net.restore("t0.1")
    again = Brian2Solver(target="numpy").simulate(net, (0.1, 0.3))
    assert torch.equal(again.meta["synapses"]["S"]["w"], brian.meta["synapses"]["S"]["w"])
    with pytest.raises(NeuroplexError, match="ended at t=0.3"):
        Brian2Solver(target="numpy").simulate(net, (0.2, 0.3))


def test_clock_driven_trace_matches_brian2_and_its_decay():
    rule = SynapseModel("facilitation", params={"tau": 0.01, "eta": 2e-3, "wmin": 0.0, "wmax": 0.05},
                        clock_driven={"x": "tau"}, on_pre=["x += 1", "w = clip(w + eta*x, wmin, wmax)"],
                        units={"eta": "weight", "wmin": "weight", "wmax": "weight"})
    net = Network(dt=1e-4)
    net.add_spike_generator("in", 2, [0, 1, 0], [0.002, 0.004, 0.0071])
    net.add_population("out", song_neuron(), 1, init={"v": -60e-3})
    net.connect("in", "out", "ge", i=[0, 1], j=[0, 0], weight=0.01, model=rule, name="S")
    mine = net.run(0.01)
    brian = Brian2Solver(target="numpy").simulate(net, (0.0, 0.01))
    x_t, x_b = mine.meta["synapses"]["S"]["x"], brian.meta["synapses"]["S"]["x"]
    # synapse 0: x = 1 at step 20, decays 51 steps, + 1 at step 71, then decays in steps 72 .. 99
    expected = (np.exp(-51e-4 / 0.01) + 1) * np.exp(-28e-4 / 0.01)
    assert float(x_t[0]) == pytest.approx(expected, rel=1e-12)
    assert float((x_t - x_b).abs().max()) < 1e-12
    assert float((mine.meta["synapses"]["S"]["w"] - brian.meta["synapses"]["S"]["w"]).abs().max()) < 1e-12
