"""Synapse delays and indices are whole numbers, never truncated by a cast.

Before: ``Network.connect`` cast ``delay`` (and ``i``, ``j``, ``sample``) with
``np.asarray(..., dtype=np.int64)``, which truncates: ``delay=0.0029 / 1e-4``
(28.999999999999996) became 28 steps, a delay written in seconds as Brian2 takes it
(``delay=2e-3``) became 0 steps, and ``i=[1.7]`` connected neuron 1, all silently."""
from __future__ import annotations

import numpy as np
import pytest

import neuroplex as nx
from neuroplex.errors import NeuroplexError
from neuroplex.plugins.snn import Network


def _net(delay) -> Network:
    net = Network(dt=1e-4)
    net.add_spike_generator("In", 1, [0], [1e-3])
    net.add_population("B", nx.get_neuron("lif")(), 2)       # rests at -60 mV, threshold -50 mV
    net.connect("In", "B", "v", i=[0, 0], j=[0, 1], weight=0.02, delay=delay)
    return net


def _spike_steps(net: Network) -> list[int]:
    index, times = net.run(0.01).spikes.for_sample(0)
    return [int(round(t / 1e-4)) for t in times[np.argsort(index, kind="stable")]]


def test_a_delay_from_float_arithmetic_is_rounded_not_truncated():
    delays = np.array([0.0029, 0.0003]) / 1e-4            # 28.999999999999996, 2.9999999999999996
    assert _net(delays).synapses["In_B_v_0"].delay.tolist() == [29, 3]
    assert _spike_steps(_net(delays)) == _spike_steps(_net(np.array([29, 3])))


@pytest.mark.parametrize("kwargs, what", [
    (dict(i=[0], j=[0], delay=2e-3), "delay"),           # seconds, Brian2's unit: would be 0 steps
    (dict(i=[0], j=[0], delay=[2.5]), "delay"),
    (dict(i=[0.7], j=[0]), "i"),
    (dict(i=[0], j=[0.2]), "j"),
])
def test_a_fractional_value_is_an_error_naming_it(kwargs, what):
    net = Network(dt=1e-4)
    net.add_population("A", nx.get_neuron("lif")(), 1)
    with pytest.raises(NeuroplexError, match=f"synapses 'A_A_v_0': {what}.*whole numbers"):
        net.connect("A", "A", "v", weight=0.0, **kwargs)
