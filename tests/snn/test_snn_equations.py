"""Neurons written as Brian2-style equation strings (issue 22, item 3): the same IR as the
registered neurons, dimension-checked, exported, and a network written entirely from
equation strings matching the registered-neuron network spike for spike on both engines."""
from __future__ import annotations

import pytest
import sympy
import torch

import neuroplex as nx
from neuroplex.errors import ModelError
from neuroplex.plugins.neurons import from_equations
from neuroplex.plugins.snn import Network
from neuroplex.units import Mohm, UnitError, mV, ms, nA, nS, pF

CUBA_TEXT = """
dv/dt = (ge + gi + E_l - v + R_m*I)/tau_m : volt (unless refractory)
dge/dt = -ge/tau_e : volt      # excitatory synaptic input
dgi/dt = -gi/tau_i : volt
I : amp
"""
CUBA_PARAMS = {"E_l": -49 * mV, "tau_m": 20 * ms, "v_th": -50 * mV, "v_reset": -60 * mV, "t_ref": 5 * ms,
               "R_m": 100 * Mohm, "tau_e": 5 * ms, "tau_i": 10 * ms}


def cuba_text() -> object:
    return from_equations(CUBA_TEXT, threshold="v > v_th", reset="v = v_reset", refractory="t_ref",
                          init={"v": "v_reset"}, parameters=CUBA_PARAMS, name="lif")


def test_text_lif_is_the_registered_ir():
    text, reg = cuba_text(), nx.get_neuron("lif")(synapses="current")
    assert text.derivatives == reg.derivatives
    assert [(e.trigger, e.assignments) for e in text.events] == [(e.trigger, e.assignments) for e in reg.events]
    assert text.refractory == reg.refractory and text.inputs == reg.inputs
    assert {p.name: (p.value, p.unit) for p in text.parameters} == \
        {p.name: (pytest.approx(p.value), p.unit) for p in reg.parameters}
    assert [(s.name, s.unit, s.clamped_when_refractory) for s in text.states] == \
        [(s.name, s.unit, s.clamped_when_refractory) for s in reg.states]
    assert text.metadata["method"] == "exact" and text.units()["I"] == "amp"


def test_units_in_expressions_adex_with_increment_reset_and_euler():
    adex = from_equations("""
        dv/dt = (-g_l*(v - E_l) + g_l*Delta_T*exp((v - V_T)/Delta_T) - w + I)/C : volt
        dw/dt = (a*(v - E_l) - w)/tau_w : amp
        I : amp
    """, threshold="v > -40.4*mV", reset="v = -70.6*mV; w += b", init={"v": "-70.6 mV"},
        parameters={"C": 281 * pF, "g_l": 30 * nS, "E_l": "-70.6 mV", "V_T": -50.4 * mV, "Delta_T": 2 * mV,
                    "tau_w": 144 * ms, "a": 4 * nS, "b": 0.0805 * nA})
    assert adex.metadata["method"] == "euler"
    assert adex.events[0].trigger == sympy.sympify("v > -0.0404")
    assert adex.events[0].assignments["w"] == sympy.sympify("w + b")
    reg = nx.get_neuron("adex")()
    inputs = {"I": 1 * nA}
    for model in (adex, reg):
        model.metadata["run"] = Network(dt=1e-4)
        model.metadata["run"].add_population("P", model, 1, inputs={"I": inputs["I"].si})
    a, b = (m.metadata.pop("run").run(0.3) for m in (adex, reg))
    assert len(a.spikes) == len(b.spikes) > 3
    assert torch.equal(a.spikes.time, b.spikes.time)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"equations": "dv/dt = (E_l - v)/tau_m : volt", "parameters": {"E_l": -60 * mV, "tau_m": 5 * mV}},
     UnitError, r"dv/dt: has unit 1, expected volt/second|dv/dt: has unit"),
    ({"equations": "dv/dt = (E_l - v)/tau_m : volt", "parameters": {"E_l": -60, "tau_m": 5 * ms}},
     UnitError, r"cannot add"),
    ({"equations": "dv/dt = (E_l - v)/tau_m : volt\nE_l : volt", "parameters": {"E_l": -60, "tau_m": 5 * ms}},
     UnitError, r"E_l expects volt; got plain -60: write -60\*mV"),
    ({"equations": "dv/dt = (E_l - v)/tau_m : volt", "parameters": {"E_l": -60 * mV}},
     ModelError, r"tau_m not defined: give a value in parameters="),
    ({"equations": "dv/dt = -v/tau : volt", "parameters": {"tau": 5 * ms, "tua": 1 * ms}},
     ModelError, r"parameters tua are not used"),
    ({"equations": "dv/dt = -v/tau", "parameters": {"tau": 5 * ms}}, ModelError, r"no ': unit'"),
    ({"equations": "dv/dt = -v/tau : volt", "parameters": {"tau": 5 * ms}, "threshold": "v > 10*ms"},
     UnitError, r"cannot compare volt and second"),
    ({"equations": "dv/dt = -v/tau : volt", "parameters": {"tau": 5 * ms}, "threshold": "v > 1*mV",
      "reset": "v = 3*ms"}, UnitError, r"reset of v .* has unit second, expected volt"),
])
def test_text_mistakes_raise_clearly(kwargs, error, message):
    with pytest.raises(error, match=message):
        from_equations(**kwargs)


def _network(model: object, n: int = 200) -> Network:
    """The same random CUBA-like instance around any LIF-with-ge/gi model."""
    g = torch.Generator().manual_seed(7)
    net = Network(dt=1e-4)
    net.add_population("P", model, n, init={"v": -0.06 + 0.01 * torch.rand(n, generator=g, dtype=torch.float64)})
    net.connect("P", "P", "ge", p=0.05, seed=1, pre_range=(0, n * 4 // 5), weight=1.62e-3)
    net.connect("P", "P", "gi", p=0.05, seed=2, pre_range=(n * 4 // 5, n), weight=-9e-3)
    net.monitor("P", ["v"], [0, 1])
    return net


def test_text_network_matches_the_registered_network_on_torch_and_after_export(tmp_path):
    reg = _network(nx.get_neuron("lif")(synapses="current")).run(0.2)
    text_net = _network(cuba_text())
    text = text_net.run(0.2)
    assert len(reg.spikes) > 100
    assert torch.equal(reg.spikes.index, text.spikes.index) and torch.equal(reg.spikes.time, text.spikes.time)
    assert torch.equal(reg.ys, text.ys)
    again = Network.load(text_net.export(tmp_path / "text.npz")).run(0.2)
    assert torch.equal(again.spikes.time, text.spikes.time)
