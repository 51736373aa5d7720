"""A network written entirely from Brian2-style equation strings on the Brian2 backend
(issue 22, item 3): the same spikes as the registered-neuron network, and compare-snn on an
exported text network."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

import neuroplex as nx
from neuroplex.plugins.neurons import from_equations
from neuroplex.plugins.snn import Network
from neuroplex.units import Mohm, mV, ms

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


def _network(model: object, n: int = 200) -> Network:
    """The same random CUBA-like instance around any LIF-with-ge/gi model."""
    g = torch.Generator().manual_seed(7)
    net = Network(dt=1e-4)
    net.add_population("P", model, n, init={"v": -0.06 + 0.01 * torch.rand(n, generator=g, dtype=torch.float64)})
    net.connect("P", "P", "ge", p=0.05, seed=1, pre_range=(0, n * 4 // 5), weight=1.62e-3)
    net.connect("P", "P", "gi", p=0.05, seed=2, pre_range=(n * 4 // 5, n), weight=-9e-3)
    net.monitor("P", ["v"], [0, 1])
    return net


def test_text_network_matches_the_registered_network_on_brian2(tmp_path):
    pytest.importorskip("brian2", reason="brian2 (optional) is not installed")
    reg = nx.simulate(_network(nx.get_neuron("lif")(synapses="current")), 0.06, solver="brian2", target="numpy")
    text = nx.simulate(_network(cuba_text()), 0.06, solver="brian2", target="numpy")
    ours = _network(cuba_text()).run(0.06)
    assert len(reg.spikes) > 30
    for sol in (text, ours):
        assert torch.equal(reg.spikes.index, sol.spikes.index)
        assert torch.equal(torch.round(reg.spikes.time / 1e-4), torch.round(sol.spikes.time / 1e-4))
    equations = text.meta.get("brian_equations") or ""
    assert "metre" not in str(equations)


def test_compare_snn_runs_an_exported_text_network(tmp_path):
    pytest.importorskip("brian2", reason="brian2 (optional) is not installed")
    from neuroplex.cli import build_cli

    path = _network(cuba_text(), n=100).export(tmp_path / "text.npz")
    result = CliRunner().invoke(build_cli(), ["compare-snn", str(path), "--duration", "0.03",
                                              "--solvers", "torch,brian2:numpy", "--monitor", "0"])
    assert result.exit_code == 0, result.output
    assert "torch vs brian2:numpy: exact-step match 1.0000" in result.output
