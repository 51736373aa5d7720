"""Neuron plugins: one IR per model (units, threshold event, reset, refractory, clamps,
metadata) and their characteristic firing on the clock-driven engine."""
from __future__ import annotations

import numpy as np
import pytest
import sympy
import torch

import neuroplex as nx
from neuroplex.errors import ModelError
from neuroplex.plugins.neurons.models import IZHIKEVICH_REGIMES
from neuroplex.plugins.snn import Network
from neuroplex.units import ms, mV

NAMES = ["lif", "adex", "izhikevich", "hh", "traub_miles"]


@pytest.mark.parametrize("name", NAMES)
def test_neuron_ir_is_complete(name):
    model = nx.get_neuron(name)()
    model.validate()
    assert model.metadata["method"] in ("exact", "euler", "exponential_euler")
    assert model.metadata["factory"] == name
    assert [e.name for e in model.events] == ["spike"]
    assert isinstance(model.events[0].trigger, sympy.Rel)
    assert model.state("v").unit == "volt"
    assert all(p.unit for p in model.parameters)
    # the IR compiles to torch dynamics and has finite initial values and derivatives
    dyn = model.compile()
    y0 = dyn.initial_state()
    assert torch.isfinite(y0).all() and torch.isfinite(dyn.rhs(0.0, y0)).all()


def test_lif_refractory_and_clamp_flags():
    lif = nx.get_neuron("lif")(synapses="current")
    assert lif.refractory == sympy.Symbol("t_ref") and lif.parameter("t_ref").value == pytest.approx(5e-3)
    assert [s.name for s in lif.states if s.clamped_when_refractory] == ["v"]
    assert lif.events[0].assignments == {"v": sympy.Symbol("v_reset")}
    hh = nx.get_neuron("hh")()
    assert isinstance(hh.refractory, sympy.Rel)  # refractory while v > v_th: one spike per crossing
    assert nx.get_neuron("traub_miles")(refractory=2 * ms).refractory == sympy.Float(2e-3)


def test_bad_parameters_are_named():
    with pytest.raises(ModelError, match="no parameter.*tau_x"):
        nx.get_neuron("lif")(tau_x=1.0)
    with pytest.raises(ModelError, match="unknown regime 'bursty'"):
        nx.get_neuron("izhikevich")(regime="bursty")
    with pytest.raises(ModelError, match="synapses must be"):
        nx.get_neuron("lif")(synapses="conductance")


def _spike_times(model, duration, dt=1e-4, inputs=None, method=None, n=1):
    net = Network(dt=dt)
    net.add_population("N", model, n, inputs=inputs or {}, method=method)
    sol = net.run(duration)
    return sol.spikes.time.numpy(), sol


def _isi(times):
    return np.diff(np.sort(times))


def test_izhikevich_regimes_fire_characteristically():
    """Izhikevich (2003) Fig. 2 with I = 10: RS tonic with adaptation, FS fast tonic, CH
    repetitive bursts, IB an initial burst then tonic spikes."""
    stats = {}
    for regime in IZHIKEVICH_REGIMES:
        t, _ = _spike_times(nx.get_neuron("izhikevich")(regime=regime, I_dc=10 * mV), 0.5, dt=1e-4)
        stats[regime] = t
    rs, fs, ch, ib = (stats[k] for k in ("regular_spiking", "fast_spiking", "chattering", "intrinsically_bursting"))
    assert len(fs) > 2 * len(rs)  # fast spiking fires much faster
    isi_rs = _isi(rs)
    assert isi_rs[-1] > 1.5 * isi_rs[0]  # spike-frequency adaptation
    assert np.std(isi_rs[3:]) < 0.05 * np.mean(isi_rs[3:])  # then tonic
    isi_ch = _isi(ch)
    short, long_ = isi_ch < 0.01, isi_ch > 0.02  # bursts: short intra-burst, long inter-burst ISIs
    assert short.sum() >= 8 and long_.sum() >= 5
    isi_ib = _isi(ib)
    assert isi_ib[0] < 0.01 and (isi_ib[1:] > 0.02).all()  # burst first, then tonic


def test_adex_adapts():
    t, _ = _spike_times(nx.get_neuron("adex")(), 0.5, inputs={"I": 1e-9})
    isi = _isi(t)
    assert len(t) > 5 and isi[-1] > 2 * isi[0]


def test_squid_hh_fires_with_current_and_rests_without():
    model = nx.get_neuron("hh")()
    net = Network(dt=2.5e-5)
    net.add_population("N", model, 2, inputs={"I": torch.tensor([0.1, 0.0])})  # 10 and 0 uA/cm^2
    sol = net.run(0.1)
    assert sol.ok
    assert 5 <= int((sol.spikes.index == 0).sum()) <= 9  # ~68 Hz at 10 uA/cm^2 (HH 1952)
    assert int((sol.spikes.index == 1).sum()) == 0


def test_lif_on_the_torch_ode_solver_fires_at_the_analytic_time():
    """The same IR on the foundation's adaptive solver with in-step event location."""
    lif = nx.get_neuron("lif")(E_l=-49 * mV)  # CUBA's leak reversal, above threshold
    sol = nx.simulate(lif, (0.0, 0.06), solver="torch", method="dopri5", rtol=1e-8, atol=1e-12)
    first = float(sol.spikes.time[0])
    assert first == pytest.approx(0.020 * np.log(11.0), abs=1e-6)  # v: -60 -> -50 mV towards -49 mV
