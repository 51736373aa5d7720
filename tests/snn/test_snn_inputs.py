"""Network inputs and run control on the torch engine: spike generators, PoissonInput,
batched rates, spikes per population, the population rate, continuing a run, store/restore."""
from __future__ import annotations

import pytest
import torch

from neuroplex.errors import NeuroplexError
from neuroplex.host import get_neuron
from neuroplex.plugins.snn import Network, cuba, poisson_trains, song_stdp, triplet_stdp

DT = 1e-4


def test_spike_generator_delivers_its_spikes_at_their_steps():
    net = Network(dt=DT)
    net.add_spike_generator("src", 3, [2, 0, 1], [0.0031, 0.001, 0.001], record_spikes=True)
    net.add_population("P", get_neuron("lif")(synapses="current"), 2, init={"v": -60e-3})
    net.connect("src", "P", "ge", i=[0, 2], j=[0, 1], weight=[1e-3, 2e-3])
    net.monitor("P", ["ge"])
    sol = net.run(0.005)
    src = sol.meta["spikes"]["src"]
    assert src.index.tolist() == [0, 1, 2] and src.time.tolist() == pytest.approx([0.001, 0.001, 0.0031])
    ge = sol.ys[0, :, :2]  # recorded at the start of each step
    assert float(ge[10, 0]) == 0 and float(ge[11, 0]) == pytest.approx(1e-3)  # step 10's spike lands at 11
    assert float(ge[31, 1]) == 0 and float(ge[32, 1]) == pytest.approx(2e-3)
    with pytest.raises(NeuroplexError, match="twice in one step"):
        net.add_spike_generator("dup", 1, [0, 0], [0.001, 0.00101])
    with pytest.raises(NeuroplexError, match="outside"):
        net.add_spike_generator("far", 1, [1], [0.001])


def test_batched_rates_of_shape_b1_broadcast():
    net = Network(dt=DT, batch=3)
    net.add_poisson("in", 400, torch.tensor([[5.0], [50.0], [200.0]]), record_spikes=True)
    sol = net.run(0.5, seed=1)
    counts = torch.bincount(sol.meta["spikes"]["in"].sample, minlength=3).double()
    expected = torch.tensor([5.0, 50.0, 200.0]) * 400 * 0.5
    assert torch.all((counts - expected).abs() < 5 * expected.sqrt())


def test_spikes_per_population_and_rate_monitor():
    net = cuba(500, seed=2)
    net.add_poisson("ext", 100, 10.0, record_spikes=True)
    net.rate_monitor("P")
    sol = net.run(0.1, seed=4)
    by_pop = sol.meta["spikes"]
    assert set(by_pop) == {"P", "ext"}
    assert len(by_pop["P"]) + len(by_pop["ext"]) == len(sol.spikes)
    assert int(by_pop["ext"].index.max()) < 100 and int(by_pop["P"].index.max()) < 500
    rate = sol.meta["rates"]["P"]
    assert rate.shape == (1, 1000)
    assert float(rate.sum() * 500 * DT) == pytest.approx(len(by_pop["P"]))


def test_poisson_input_mean_drive():
    net = Network(dt=DT)
    lif = get_neuron("lif")(synapses="current", v_th="1 V")  # never fires: ge is a filtered input
    net.add_population("P", lif, 200)
    net.add_poisson_input("P", "ge", N=100, rate=20.0, weight=1e-4)
    net.monitor("P", ["ge"])
    sol = net.run(0.2, seed=3)
    ge = sol.ys[0, 1000:].mean()  # after 20 time constants: N rate w tau_e
    assert float(ge) == pytest.approx(100 * 20.0 * 1e-4 * 5e-3, rel=0.03)
    with pytest.raises(NeuroplexError, match="C engine does not run PoissonInput"):
        net.run(0.01, backend="c")


def test_second_run_continues_and_restore_goes_back():
    spikes = poisson_trains(1000, 15.0, 0.4, seed=8)
    whole = song_stdp(1000, seed=1, input_spikes=spikes)
    ref = whole.run(0.4)
    net = song_stdp(1000, seed=1, input_spikes=spikes)
    net.store("start")
    first = net.run(0.15)
    net.store("middle")
    second = net.run(0.25, resume=True)
    times = torch.cat([first.meta["spikes"]["out"].time, second.meta["spikes"]["out"].time])
    assert torch.equal(times, ref.meta["spikes"]["out"].time)
    assert torch.equal(second.meta["synapses"]["S"]["w"], ref.meta["synapses"]["S"]["w"])
    net.restore("middle")
    again = net.run(0.25, resume=True)
    assert torch.equal(again.meta["synapses"]["S"]["w"], ref.meta["synapses"]["S"]["w"])
    net.restore("start")
    fresh = net.run(0.4, resume=True)
    assert torch.equal(fresh.meta["spikes"]["out"].time, ref.meta["spikes"]["out"].time)
    with pytest.raises(NeuroplexError, match="nothing stored as 'nope'"):
        net.restore("nope")


def test_continuing_a_static_network_keeps_state_and_monitors():
    net = cuba(300, seed=3, monitor=[0, 1])
    ref = net.run(0.06, backend="torch")
    net.run(0.02)
    b = net.run(0.04, resume=True)  # resuming runs the torch code
    assert b.meta["engine"] == "torch" and b.ys.shape[1] == 400
    assert torch.equal(b.ys[0], ref.ys[0, 200:])
    late = ref.spikes.time >= 0.02 - 1e-12
    assert torch.equal(b.spikes.time, ref.spikes.time[late]) and torch.equal(b.spikes.index, ref.spikes.index[late])


def test_export_keeps_plastic_synapses_generators_and_poisson_inputs(tmp_path):
    idx, times, _ = poisson_trains(100, 20.0, 0.1, seed=2)
    net = Network(dt=DT, batch=2)
    net.add_spike_generator("in", 100, idx, times)
    net.add_population("P", get_neuron("lif")(synapses="current", E_l="-60 mV"), 10, init={"v": -60e-3})
    net.connect("in", "P", "ge", p=0.5, seed=1, weight=2e-3, model=triplet_stdp(A2p=5e-3, wmax=4e-3), name="S")
    net.add_poisson_input("P", "ge", N=20, rate=torch.tensor([[10.0], [30.0]]), weight=1e-3)
    net.rate_monitor("P")
    back = Network.load(net.export(tmp_path / "plastic.npz"))
    a, b = net.run(0.1, seed=5), back.run(0.1, seed=5)
    assert len(a.spikes) > 5 and torch.equal(a.spikes.time, b.spikes.time)
    assert torch.equal(a.meta["synapses"]["S"]["w"], b.meta["synapses"]["S"]["w"])
    assert torch.equal(a.meta["rates"]["P"], b.meta["rates"]["P"])
