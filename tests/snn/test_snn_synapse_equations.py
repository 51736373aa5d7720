"""Plastic synapses from Brian2-style text equal the shipped rules they describe."""
from __future__ import annotations

import pytest
import torch

from neuroplex.errors import ModelError
from neuroplex.plugins.snn import poisson_trains, song_stdp, stdp_additive, synapse_from_equations
from neuroplex.units import UnitError, ms

#: Brian2's examples/synapses/STDP.py, as its users write it
MODEL = """
w : 1
dApre/dt = -Apre / taupre : 1 (event-driven)
dApost/dt = -Apost / taupost : 1 (event-driven)
"""
ON_PRE = """ge += w
Apre += dApre
w = clip(w + Apost, 0, gmax)"""
ON_POST = "Apost += dApost; w = clip(w + Apre, 0, gmax)"
GMAX = 0.01


def song_text_rule():
    return synapse_from_equations(MODEL, ON_PRE, ON_POST, target="ge", name="song", parameters={
        "taupre": 20 * ms, "taupost": "20 ms", "gmax": GMAX, "dApre": 0.01 * GMAX, "dApost": -0.01 * GMAX * 1.05})


def test_text_reads_into_a_synapse_model():
    rule = song_text_rule()
    assert rule.traces == {"Apre": "taupre", "Apost": "taupost"} and not rule.clock_driven
    assert rule.on_pre == ["Apre += dApre", "w = clip(w + Apost, 0, gmax)"]  # the network adds ge += w
    assert rule.on_post == ["Apost += dApost", "w = clip(w + Apre, 0, gmax)"]
    assert rule.params["taupre"] == pytest.approx(0.02) and rule.unit("taupre") == "second"
    clocked = synapse_from_equations("dx/dt = -x/tau : 1 (clock-driven)", parameters={"tau": 5 * ms})
    assert clocked.clock_driven == {"x": "tau"}


def test_song_network_from_text_equals_the_shipped_rule():
    spikes = poisson_trains(200, 15.0, 0.4, seed=4)
    shipped = song_stdp(200, seed=2, input_spikes=spikes, rule=stdp_additive(
        taupre=20e-3, taupost=20e-3, dApre=0.01 * GMAX, dApost=-0.01 * GMAX * 1.05, wmax=GMAX)).run(0.4)
    text = song_stdp(200, seed=2, input_spikes=spikes, rule=song_text_rule()).run(0.4)
    assert len(shipped.meta["spikes"]["out"]) > 0
    assert torch.equal(text.meta["spikes"]["out"].time, shipped.meta["spikes"]["out"].time)
    assert torch.allclose(text.meta["synapses"]["S"]["w"], shipped.meta["synapses"]["S"]["w"], rtol=0, atol=1e-15)


@pytest.mark.parametrize("model, params, message", [
    ("dx/dt = -x/tau : 1", {"tau": 5 * ms}, r"needs \(event-driven\) or \(clock-driven\)"),
    ("dx/dt = 1 - x/tau : 1 (event-driven)", {"tau": 5 * ms}, "only decaying traces"),
    ("dx/dt = -x/tau : 1 (event-driven)", {}, "'tau' is not a parameter"),
    ("dx/dt = -x/tau : 1 (event-driven)", {"tau": 0.005}, "time constant 'tau' of 'x' must be a time"),
    ("x = 3", {}, "cannot read model line 'x = 3'"),
])
def test_text_mistakes_are_named(model, params, message):
    with pytest.raises(ModelError, match=message):
        synapse_from_equations(model, parameters=params, name="bad")


def test_parameter_units_are_read():
    with pytest.raises(UnitError):
        synapse_from_equations("w : 1", parameters={"tau": "20 parsecs"})
