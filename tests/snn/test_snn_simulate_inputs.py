"""``nx.simulate(neuron, inputs={...})`` by name (issue 22, item 4): a TimedArray (it used
to fail with "Could not infer dtype"), constants with units, and per-sample series."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import neuroplex as nx
from neuroplex.errors import ModelError
from neuroplex.plugins.snn import Network, TimedArray
from neuroplex.units import UnitError, mV, nA

TAU, T_REF = 0.020, 0.005


def _period(current: float) -> float:
    """Time from -60 mV to the -50 mV threshold of the resting LIF (E_l = -60 mV, R = 100 Mohm)."""
    v_inf = -0.060 + 1e8 * current
    return TAU * math.log((v_inf + 0.060) / (v_inf + 0.050))


def test_timed_array_input_fires_at_the_analytic_times_and_as_the_network_does():
    ta = TimedArray(torch.tensor([0.0, 0.3e-9, 0.0]), dt=0.05)   # 0.3 nA on [50, 100) ms
    lif = nx.get_neuron("lif")()
    sol = nx.simulate(lif, (0.0, 0.15), inputs={"I": ta}, method="dopri5", rtol=1e-9, atol=1e-12)
    first = 0.05 + _period(0.3e-9)
    n = int((0.1 - first) // (T_REF + _period(0.3e-9))) + 1
    expected = first + np.arange(n) * (T_REF + _period(0.3e-9))
    np.testing.assert_allclose(sol.spikes.time.numpy(), expected, atol=1e-6)
    net = Network(dt=1e-5)
    net.add_population("P", lif, 1, inputs={"I": ta})
    np.testing.assert_allclose(net.run(0.15).spikes.time.numpy(), expected, atol=5e-5)  # on its 10 us clock (a step per period)
    assert sol.meta["units_of"] == {"v": "volt"}


def test_per_sample_series_and_constants_with_units():
    lif = nx.get_neuron("lif")()
    ta = TimedArray(torch.tensor([[0.3e-9, 0.25e-9]]), dt=1.0)           # (T, batch)
    sol = nx.simulate(lif, (0.0, 0.05), inputs={"I": ta}, method="dopri5", rtol=1e-9, atol=1e-12)
    for b, current in enumerate((0.3e-9, 0.25e-9)):
        _, times = sol.spikes.for_sample(b)
        assert float(times[0]) == pytest.approx(_period(current), abs=1e-6)
    const = nx.simulate(lif, (0.0, 0.02), inputs={"I": 0.3 * nA}, method="dopri5", rtol=1e-9, atol=1e-12)
    text = nx.simulate(lif, (0.0, 0.02), inputs={"I": "0.3 nA"}, method="dopri5", rtol=1e-9, atol=1e-12)
    assert float(const.spikes.time[0]) == pytest.approx(_period(0.3e-9), abs=1e-6)
    assert torch.equal(const.spikes.time, text.spikes.time)


def test_input_mistakes_are_named():
    lif = nx.get_neuron("lif")()
    with pytest.raises(UnitError, match=r"input I of model 'lif' expects amp; got 3 mV, in volt"):
        nx.simulate(lif, 0.01, inputs={"I": 3 * mV})
    with pytest.raises(UnitError, match=r"expects amp; got plain 3"):
        nx.simulate(lif, 0.01, inputs={"I": 3})
    with pytest.raises(ModelError, match=r"has no input\(s\) J"):
        nx.simulate(lif, 0.01, inputs={"J": 0.0})
