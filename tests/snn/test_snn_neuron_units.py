"""Neuron parameters with units (issue 22, item 2): each unit mistake raises, naming the
parameter and the unit; quantities (ours and Brian2's) and strings are accepted; ``units=False``
takes SI numbers; defaults rest unless their reference model fires on its own; degenerate
parameters raise when the neuron is built, whichever engine would run it."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import neuroplex as nx
from neuroplex import cli as cli_module
from neuroplex import neuron_docs
from neuroplex.errors import ModelError
from neuroplex.plugins.snn import Network
from neuroplex.units import UnitError, mV, ms, nA, pF

NAMES = ["lif", "adex", "izhikevich", "hh", "traub_miles"]


def test_plain_number_for_a_voltage_is_an_error():
    """E_l=-65 (meant as mV) used to run at -65 V with no spikes."""
    with pytest.raises(UnitError, match=r"lif: E_l expects volt; got plain -65: write -65\*mV or '-65 mV'"):
        nx.get_neuron("lif")(E_l=-65)


def test_plain_number_for_a_threshold_is_an_error():
    """v_th=-50 used to put the threshold at -50 V: a spike every refractory period."""
    with pytest.raises(UnitError, match=r"lif: v_th expects volt; got plain -50"):
        nx.get_neuron("lif")(v_th=-50)


def test_wrong_dimension_is_an_error():
    with pytest.raises(UnitError, match=r"lif: tau_m expects second; got 5 mV, in volt"):
        nx.get_neuron("lif")(tau_m=5 * mV)
    with pytest.raises(UnitError, match=r"adex: C expects farad; got 2 nA, in amp"):
        nx.get_neuron("adex")(C=2 * nA)
    with pytest.raises(UnitError, match=r"refractory expects second; got plain 0.002: write 2\*ms"):
        nx.get_neuron("traub_miles")(refractory=2e-3)


def test_quantities_strings_and_the_si_opt_out_give_the_same_model():
    ours = nx.get_neuron("lif")(E_l=-65 * mV, tau_m=10 * ms)
    text = nx.get_neuron("lif")(E_l="-65 mV", tau_m="10*ms")
    si = nx.get_neuron("lif")(E_l=-0.065, tau_m=0.01, units=False)
    values = [[p.value for p in m.parameters] for m in (ours, text, si)]
    assert values[0] == pytest.approx(values[1]) and values[0] == pytest.approx(values[2])
    assert ours.parameter("E_l").value == pytest.approx(-0.065)
    brian2 = pytest.importorskip("brian2", reason="brian2 (optional) is not installed")
    theirs = nx.get_neuron("lif")(E_l=-65 * brian2.mV, tau_m=10 * brian2.ms)
    assert [p.value for p in theirs.parameters] == pytest.approx(values[0])


def test_factory_kwargs_rebuild_the_model_in_si():
    model = nx.get_neuron("adex")(C=200 * pF, refractory=2 * ms)
    again = nx.get_neuron("adex")(**model.metadata["factory_kwargs"])
    assert model.metadata["factory_kwargs"]["units"] is False
    assert [p.value for p in again.parameters] == [p.value for p in model.parameters]
    assert float(again.refractory) == pytest.approx(2e-3)


@pytest.mark.parametrize("name", NAMES)
def test_every_neuron_is_dimension_checked_and_labels_its_units(name):
    model = nx.get_neuron(name)()
    dims = model.check_units()
    assert str(dims["v"]) == "volt"
    units = model.units()
    assert units["v"] == "volt" and units["I"] in ("amp", "volt", "amp/meter**2")


@pytest.mark.parametrize("name", NAMES)
def test_defaults_do_not_fire_without_input_unless_the_reference_does(name):
    """A neuron rests at its defaults without drive (LIF used to have E_l = -49 mV, above
    threshold; Izhikevich 10 mV of built-in drive), except where its reference model fires on
    its own: CUBA's LIF (El = -49 mV) and COBAHH's Traub-Miles neuron (El = -60 mV, ~13 Hz;
    Brian2 runs the same equations to the same 4 spikes in 0.3 s)."""
    net = Network(dt=1e-4)
    net.add_population("P", nx.get_neuron(name)(synapses=False) if name == "traub_miles" else nx.get_neuron(name)(), 1)
    assert len(net.run(0.3).spikes) == (4 if name == "traub_miles" else 0)
    if name == "traub_miles":
        rest = Network(dt=1e-4)
        rest.add_population("P", nx.get_neuron(name)(synapses=False, E_l=-65 * mV, v0=-65 * mV), 1)
        assert len(rest.run(0.3).spikes) == 0
    if name == "lif":
        cuba = Network(dt=1e-4)
        cuba.add_population("P", nx.get_neuron("lif")(synapses="current"), 1)
        assert len(cuba.run(0.3).spikes) == 5  # El = -49 mV in CUBA: at 47.9 ms, then every 52.9 ms


@pytest.mark.parametrize("name, kwargs, message", [
    ("lif", {"tau_m": 0 * ms}, r"tau_m = 0 second is degenerate; tau_m \(membrane time constant\) must be > 0"),
    ("lif", {"tau_m": -5 * ms}, r"tau_m = -0.005 second is degenerate"),
    ("lif", {"synapses": "current", "tau_e": 0 * ms}, r"tau_e = 0 second is degenerate"),
    ("lif", {"t_ref": -1 * ms}, r"t_ref = -0.001 second is degenerate; .* must be >= 0"),
    ("izhikevich", {"tau": 0 * ms}, r"tau = 0 second is degenerate"),
    ("adex", {"C": 0 * pF}, r"C = 0 farad is degenerate"),
    ("adex", {"Delta_T": 0 * mV}, r"Delta_T = 0 volt is degenerate"),
    ("hh", {"C_m": "-1 uF/cm2"}, r"C_m = -0.01 farad/meter\*\*2 is degenerate"),
    ("traub_miles", {"tau_i": 0 * ms}, r"tau_i = 0 second is degenerate"),
])
def test_degenerate_parameters_raise_when_the_neuron_is_built(name, kwargs, message):
    with pytest.raises(ModelError, match=message):
        nx.get_neuron(name)(**kwargs)


@pytest.mark.parametrize("solver", ["torch", "brian2"])
def test_degenerate_parameters_reach_neither_engine(solver):
    """The error comes from building the neuron, by name or by factory, before any engine
    (the Brian2 backend used to run tau_m=0 with divide-by-zero warnings and 20 spikes)."""
    if solver == "brian2":
        pytest.importorskip("brian2", reason="brian2 (optional) is not installed")
    with pytest.raises(ModelError, match="tau_m = 0 second is degenerate"):
        nx.simulate(nx.load_model("lif", tau_m="0 ms"), (0.0, 0.01), solver=solver)
    ok = nx.simulate(nx.load_model("lif", tau_m="10 ms"), (0.0, 0.01), solver=solver, n_points=11,
                     **({"target": "numpy"} if solver == "brian2" else {}))
    assert torch.isfinite(ok.ys).all() and ok.meta["units_of"]["v"] == "volt"


def test_neuron_reference_in_docs_matches_the_registry():
    """docs/snn.md's parameter tables are generated from the factories (no drift)."""
    page = Path(__file__).resolve().parents[2] / "docs" / "snn.md"
    current = page.read_text()
    assert neuron_docs.splice(current, neuron_docs.render_markdown(neuron_docs.neuron_references())) == current, (
        "docs/snn.md's neuron reference is stale: run `python -m neuroplex.neuron_docs docs/snn.md`")
    for name in NAMES:
        assert f"#### `{name}`" in current


def test_neurons_verbose_lists_parameters_defaults_units_and_sources():
    result = CliRunner().invoke(cli_module.cli, ["neurons", "--verbose"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any("E_l" in ln and "-60 mV" in ln and "[volt]" in ln for ln in lines)          # lif
    assert any("tau_m" in ln and "20 ms" in ln and "(> 0)" in ln for ln in lines)
    assert any("C " in ln and "281 pF" in ln and "[farad]" in ln for ln in lines)          # adex
    assert any("I_dc" in ln and "0 mV" in ln for ln in lines)                                # izhikevich
    assert "defaults from: Brian2 examples/CUBA.py" in result.output
