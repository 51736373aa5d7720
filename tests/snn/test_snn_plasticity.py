"""Plastic synapses on the torch engine: STDP rules against a direct event-by-event
computation from the spike times, batching across networks, errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import neuroplex as nx
from neuroplex.errors import ModelError, NeuroplexError
from neuroplex.plugins.snn import (Network, SynapseModel, poisson_trains, song_neuron, song_stdp, stdp_additive,
                                   stdp_multiplicative, triplet_stdp)

DT = 1e-4


def _probe(rule: SynapseModel, pre_times: list[float], drive_times: list[float], w0: float = 0.005,
           batch: int = 1) -> tuple[Network, object]:
    """One plastic synapse (source 1 of a generator) onto a Song neuron that a strong fixed
    synapse (source 0) makes fire shortly after each ``drive_times``."""
    net = Network(dt=DT, batch=batch)
    idx = [0] * len(drive_times) + [1] * len(pre_times)
    net.add_spike_generator("src", 2, idx, list(drive_times) + list(pre_times))
    net.add_population("out", song_neuron(), 1, init={"v": -60e-3})
    net.connect("src", "out", "ge", i=[0], j=[0], weight=1.3, name="drive")
    net.connect("src", "out", "ge", i=[1], j=[0], weight=w0, model=rule, name="plastic")
    return net, net.run(0.1)


def _reference(rule: SynapseModel, pre: list[float], post: list[float], w0: float) -> float:
    """The rule applied event by event (Brian2's order: pre pathway before post in a step)."""
    events = sorted([(t, 0) for t in pre] + [(t, 1) for t in post])
    p = rule.params
    v = {name: 0.0 for name in rule.traces}
    w, last = w0, 0.0
    for t, kind in events:
        for name, tau in rule.traces.items():
            v[name] *= math.exp(-(t - last) / p[tau])
        last = t
        env = {**p, **v, "w": w, "clip": lambda x, a, b: min(max(x, a), b)}
        for line in (rule.on_pre if kind == 0 else rule.on_post):
            target, op, expr = line.replace("+=", " += ").split(maxsplit=2) if "+=" in line else (
                line.split("=", 1)[0].strip(), "=", line.split("=", 1)[1])
            value = eval(expr, {"math": math}, env)  # noqa: S307 - the rule's own statements
            env[target] = env[target] + value if op == "+=" else value
        w = env["w"]
        v = {name: env[name] for name in rule.traces}
    return w


@pytest.mark.parametrize("rule", [stdp_additive(), stdp_multiplicative(), triplet_stdp(A2p=5e-3)],
                         ids=["additive", "multiplicative", "triplet"])
def test_rules_match_event_by_event_reference(rule):
    pre = [0.010, 0.030, 0.052, 0.070]
    net, sol = _probe(rule, pre, drive_times=[0.020, 0.050, 0.065])
    post = sol.meta["spikes"]["out"].time.tolist()
    assert len(post) >= 3  # post spikes a few ms after each drive
    w = float(sol.meta["synapses"]["plastic"]["w"][0])
    expected = _reference(rule, pre, post, 0.005)
    assert w != pytest.approx(0.005, abs=1e-9)  # the rule changed the weight
    assert w == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_additive_pair_window_and_bounds():
    rule = stdp_additive(dApre=1e-3, wmax=0.01)
    # pre 5 ms before the post spike: potentiation dApre exp(-dt/taupre)
    net, sol = _probe(rule, [0.010], drive_times=[0.0149])
    assert len(sol.meta["spikes"]["out"]) == 1
    t_post = float(sol.meta["spikes"]["out"].time[0])
    w = float(sol.meta["synapses"]["plastic"]["w"][0])
    assert w - 0.005 == pytest.approx(1e-3 * math.exp(-(t_post - 0.010) / 0.02), rel=1e-12)
    # at the upper bound the weight stays at wmax
    _, sol = _probe(rule, [0.010], drive_times=[0.0149], w0=0.0099)
    assert float(sol.meta["synapses"]["plastic"]["w"][0]) == 0.01


def test_batched_networks_equal_single_runs():
    spikes = poisson_trains(50, 15.0, 0.3, seed=5, batch=3)
    batched = song_stdp(50, batch=3, seed=2, input_spikes=spikes).run(0.3)
    w_batch = batched.meta["synapses"]["S"]["w"].view(3, 50)
    w0 = np.random.default_rng(2).random((3, 50)) * 0.01
    for b in range(3):
        keep = spikes[2] == b
        one = song_stdp(50, batch=1, seed=2, input_spikes=(spikes[0][keep], spikes[1][keep], spikes[2][keep] * 0))
        one.synapses["S"].weight[:] = w0[b]
        sol = one.run(0.3)
        assert torch.equal(sol.meta["synapses"]["S"]["w"], w_batch[b])
        mine = batched.meta["spikes"]["out"]
        assert torch.equal(sol.meta["spikes"]["out"].time, mine.time[mine.sample == b])
    assert not torch.equal(w_batch[0], w_batch[1])


def test_song_example_learns_and_stays_in_bounds():
    sol = song_stdp(1000, seed=1).run(1.0, seed=3)
    w = sol.meta["synapses"]["S"]["w"]
    assert w.min() >= 0 and w.max() <= 0.01
    assert len(sol.meta["spikes"]["out"]) > 10
    assert not torch.allclose(w, torch.as_tensor(np.random.default_rng(1).random(1000) * 0.01))


def test_learning_rules_are_registered():
    assert nx.get_learning_rule("stdp") is stdp_additive
    assert nx.get_learning_rule("stdp_multiplicative") is stdp_multiplicative
    assert nx.get_learning_rule("triplet_stdp") is triplet_stdp
    assert nx.get_learning_rule("stdp")(wmax=0.5).params["wmax"] == 0.5


def test_plastic_synapse_errors():
    with pytest.raises(ModelError, match="cannot read statement"):
        SynapseModel("bad", on_pre=["w + 1"])
    with pytest.raises(ModelError, match="not a parameter"):
        SynapseModel("bad", traces={"x": "tau"})
    net = Network(dt=DT)
    net.add_spike_generator("src", 1, [0], [0.001])
    net.add_population("out", song_neuron(), 1)
    net.connect("src", "out", "ge", i=[0], j=[0], weight=0.1, model=SynapseModel("m", on_pre=["v = 0"]))
    with pytest.raises(ModelError, match=r"can only be changed with \+= or -="):
        net.run(0.01)
    net.synapses.clear()
    net.connect("src", "out", "ge", i=[0], j=[0], weight=0.1, model=SynapseModel("m", on_pre=["w = q"]))
    with pytest.raises(ModelError, match="'q'"):
        net.run(0.01)
    net.synapses.clear()
    net.connect("src", "out", "ge", i=[0], j=[0], weight=0.1, model=stdp_additive())
    with pytest.raises(NeuroplexError, match="C engine does not run plastic synapses"):
        net.run(0.01, backend="c")
    with pytest.raises(NeuroplexError, match="delays"):
        net.connect("src", "out", "ge", i=[0], j=[0], weight=0.1, delay=3, model=stdp_additive())
    with pytest.raises(ModelError, match="no parameter 'tau'"):
        stdp_additive().with_params(tau=1.0)
