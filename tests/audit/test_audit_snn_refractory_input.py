"""Synaptic input onto a state clamped while refractory is dropped, as Brian2 drops it.

Brian2 gives a ``(unless refractory)`` variable a conditional write on ``not_refractory``:
``on_pre: v += w`` (delayed or not) has no effect on a neuron that is refractory or that
spiked in this step. Before: the neuroplex engine (C and torch code) added it anyway, so a
network whose synapses target ``v`` of a LIF with a refractory period spiked more than on
Brian2 (here neuron 1 at step 34 and neuron 3 at step 41) with traces 23 mV apart, while the
Brian2 backend (which is Brian2) matched Brian2; CUBA hid it (its synapses target ge/gi)."""
from __future__ import annotations

import numpy as np
import pytest

import neuroplex as nx
from neuroplex.plugins.snn import Network
from neuroplex.units import ms

DT = 1e-4
GEN_T, GEN_I = np.array([0.0, 1e-3, 1.5e-3, 3e-3, 3.05e-3]), np.array([0, 1, 0, 2, 1])
PRE, POST = np.array([0, 0, 1, 1, 2, 2, 0]), np.array([0, 1, 1, 2, 0, 3, 3])
DELAY = np.array([0, 5, 3, 12, 1, 7, 20])
WEIGHT = np.array([6, 7, 8, 9, 10, 11, 12]) * 1e-3
#: Brian2 2.9 (numpy target) on this network, (neuron, step): the probe below
BRIAN2_SPIKES = [(0, 16), (1, 14), (2, 43), (3, 21)]


def _network() -> Network:
    net = Network(dt=DT)
    net.add_spike_generator("In", 3, GEN_I, GEN_T)
    net.add_population("B", nx.get_neuron("lif")(t_ref=2 * ms), 4)     # v (unless refractory)
    delayed = DELAY > 0
    net.connect("In", "B", "v", i=PRE[delayed], j=POST[delayed], weight=WEIGHT[delayed], delay=DELAY[delayed])
    net.connect("In", "B", "v", i=PRE[~delayed], j=POST[~delayed], weight=WEIGHT[~delayed])
    net.connect("B", "B", "v", i=[1], j=[0], weight=0.003)          # B1's spike at step 14 reaches B0 at once
    net.monitor("B", ["v"])
    return net


def _spikes(sol) -> list[tuple[int, int]]:
    index, times = sol.spikes.for_sample(0)
    offset = sol.meta["populations"]["B"][0]
    return sorted(zip((index - offset).tolist(), np.round(times / DT).astype(int).tolist()))


@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_engine_drops_input_during_refractoriness_as_brian2(backend):
    sol = _network().run(0.01, backend=backend)
    assert _spikes(sol) == BRIAN2_SPIKES
    v1 = sol.ys[0, :, 1].numpy()
    assert np.all(v1[15:35] == -0.06)   # refractory after the spike at step 14: the input at step 20 is lost


def test_brian2_itself():
    b2 = pytest.importorskip("brian2", reason="brian2 (optional) is not installed")
    target, b2.prefs.codegen.target = b2.prefs.codegen.target, "numpy"
    try:
        b2.start_scope()
        gen = b2.SpikeGeneratorGroup(3, GEN_I, GEN_T * b2.second, dt=DT * b2.second)
        group = b2.NeuronGroup(4, "dv/dt = (-60*mV - v)/(20*ms) : volt (unless refractory)", threshold="v > -50*mV",
                               reset="v = -60*mV", refractory=2 * b2.ms, method="exact", dt=DT * b2.second)
        group.v = -60 * b2.mV
        syn = b2.Synapses(gen, group, "w : volt", on_pre="v += w", dt=DT * b2.second)
        syn.connect(i=PRE, j=POST)
        syn.w, syn.delay = WEIGHT * b2.volt, DELAY * DT * b2.second
        rec = b2.Synapses(group, group, on_pre="v += 3*mV", dt=DT * b2.second)
        rec.connect(i=1, j=0)
        spikes = b2.SpikeMonitor(group)
        trace = b2.StateMonitor(group, "v", record=True, when="start")
        b2.Network(gen, group, syn, rec, spikes, trace).run(0.01 * b2.second, namespace={})
    finally:
        b2.prefs.codegen.target = target
    assert sorted(zip(np.asarray(spikes.i).tolist(), np.round(np.asarray(spikes.t) / DT).astype(int).tolist())) \
        == BRIAN2_SPIKES
    ours = _network().run(0.01)
    assert np.abs(ours.ys[0].numpy().T - np.asarray(trace.v)).max() < 1e-12
