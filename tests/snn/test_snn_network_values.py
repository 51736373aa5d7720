"""Values given to a population: quantities are checked against units, and parameters outside a
neuron's allowed range are refused before any engine sees them."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroplex.errors import ModelError
from neuroplex.host import get_neuron
from neuroplex.plugins.snn import Network
from neuroplex.units import UnitError, mV, ms


def test_quantities_become_si_and_are_checked():
    net = Network(dt=1e-4)
    pop = net.add_population("P", get_neuron("lif")(), 3, init={"v": -60 * mV}, params={"tau_m": "10 ms"})
    assert pop.init["v"] == pytest.approx(-0.06) and pop.params["tau_m"] == pytest.approx(0.01)
    with pytest.raises(UnitError, match="population 'Q': tau_m expects second; got 5 mV"):
        net.add_population("Q", get_neuron("lif")(), 3, params={"tau_m": 5 * mV})


@pytest.mark.parametrize("value", [np.array([0.02, 0.0, 0.01]), torch.tensor([0.02, -0.01, 0.01]), float("nan"), 0 * ms])
def test_degenerate_per_neuron_parameters_are_refused(value):
    with pytest.raises(ModelError, match=r"population 'P' \(model 'lif'\): tau_m = .* is degenerate; tau_m must be > 0"):
        Network(dt=1e-4).add_population("P", get_neuron("lif")(), 3, params={"tau_m": value})


def test_valid_arrays_pass_unchanged():
    tau = np.array([0.01, 0.02, 0.03])
    pop = Network(dt=1e-4).add_population("P", get_neuron("lif")(), 3, params={"tau_m": tau})
    assert pop.params["tau_m"] is tau


def test_network_results_carry_units():
    net = Network(dt=1e-4)
    net.add_population("P", get_neuron("lif")(), 2, init={"v": -60 * mV})
    net.monitor("P", ["v"], [1])
    sol = net.run(0.002)
    assert sol.meta["units_of"] == {"P.v[1]": "volt"} and sol.meta["time_unit"] == "second"
