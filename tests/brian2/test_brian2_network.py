"""Networks on Brian2: the same instance as the torch engine (connectivity, batch, delays,
per-neuron parameters and inputs, Poisson input, monitors, export/import)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroplex.errors import NeuroplexError
from neuroplex.host import get_neuron
from neuroplex.plugins.brian2_backend.compare import spike_agreement
from neuroplex.plugins.brian2_backend.solver import Brian2Solver
from neuroplex.plugins.snn import Network, cuba
from neuroplex.units import mV

pytest.importorskip("brian2")
DT = 1e-4


def _raster(sol, sample: int = 0) -> set[tuple[int, int]]:
    idx, t = sol.spikes.for_sample(sample)
    return set(zip(idx.tolist(), np.rint(t / DT).astype(int).tolist()))


def test_batched_cuba_is_identical_to_the_torch_engine():
    # every LIF group in this module has 100 neurons: Brian2 caches the symbolic 'exact'
    # integrator per group size, and solving it costs ~10 s
    net = cuba(50, p=0.5, seed=5, batch=2, monitor=[0, 7])
    brian = Brian2Solver(target="numpy").simulate(net, (0.0, 0.1))
    torch_sol = net.run(0.1)
    assert brian.names == torch_sol.names == ["P.v[0]", "P.v[7]"]
    assert brian.meta["units_of"] == torch_sol.meta["units_of"] == {"P.v[0]": "volt", "P.v[7]": "volt"}
    assert brian.ys.shape == torch_sol.ys.shape == (2, 1000, 2)
    torch.testing.assert_close(brian.ts, torch_sol.ts)
    for b in range(2):
        assert len(_raster(brian, b)) > 20
        assert _raster(brian, b) == _raster(torch_sol, b)
    assert _raster(brian, 0) != _raster(brian, 1)  # independent networks
    assert float((brian.ys - torch_sol.ys).abs().max()) < 1e-12
    assert brian.stats["n_spikes"].tolist() == torch_sol.stats["n_spikes"].tolist()
    assert brian.meta["loop_time"] > 0 and brian.solver == "brian2"


def _delay_net() -> Network:
    lif = get_neuron("lif")
    net = Network(dt=DT, name="delays")
    current = torch.zeros(100)
    current[1:3] = torch.tensor([0.05e-9, -0.05e-9])
    v0 = torch.full((100,), -0.06)
    v0[:3] = torch.tensor([-0.0505, -0.055, -0.052])
    net.add_population("A", lif(synapses="current"), 100, inputs={"I": current}, init={"v": v0})
    net.add_population("B", get_neuron("izhikevich")(I_dc=0.0), 2, params={"d": torch.tensor([0.002, 0.008])})
    net.connect("A", "B", "v", i=[0, 1, 2], j=[0, 1, 1], weight=[2e-3, 1e-3, 3e-3], delay=[3, 0, 7])
    net.monitor("B", ["v", "u"], [0, 1])
    return net


def test_delays_weights_and_per_neuron_values_match_the_engine():
    net = _delay_net()
    brian = Brian2Solver(target="numpy").simulate(net, (0.0, 0.05))
    torch_sol = net.run(0.05)
    assert _raster(brian) == _raster(torch_sol)
    assert float((brian.ys - torch_sol.ys).abs().max()) < 1e-12
    # Brian2's delay semantics: a spike of A0 in step k reaches B0 in step k + 3, so B0's v
    # (recorded at the start of each step) jumps by the weight between indices k + 3 and k + 4
    idx, t = brian.spikes.for_sample(0)
    k_a0 = int(np.rint(t[idx == 0][0] / DT))
    v0 = brian["B.v[0]"][0].numpy()
    jumps = np.flatnonzero(np.diff(v0) > 1.5e-3)
    assert jumps[0] == k_a0 + 3


def test_poisson_input_drives_the_network_at_its_rate():
    net = Network(dt=DT, name="poisson")
    net.add_poisson("In", 200, 40.0, record_spikes=True)
    net.add_population("P", get_neuron("lif")(synapses="current"), 100)
    net.connect("In", "P", "ge", p=0.2, weight=1.5e-3, seed=3)
    net.monitor("P", ["ge"], [0])
    sol = Brian2Solver(seed=11, target="numpy").simulate(net, (0.0, 0.2))
    idx, _ = sol.spikes.for_sample(0)
    n_in = int((idx < 200).sum())
    assert abs(n_in - 1600) < 5 * np.sqrt(1600)  # 200 sources x 40 Hz x 0.2 s
    assert float(sol["P.ge[0]"].max()) >= 1.5e-3  # the input reaches its target
    again = Brian2Solver(seed=11, target="numpy").simulate(net, (0.0, 0.2))
    assert _raster(again) == _raster(sol)  # Brian2's seed makes Poisson input reproducible


def test_exported_network_runs_the_same_on_brian2(tmp_path):
    net = cuba(100, seed=2, monitor=[3])
    path = net.export(tmp_path / "cuba100.npz")
    loaded = Network.load(path)
    a = Brian2Solver(target="numpy").simulate(net, (0.0, 0.05))
    b = Brian2Solver(target="numpy").simulate(loaded, (0.0, 0.05))
    assert _raster(a) == _raster(b) and len(_raster(a)) > 0
    assert spike_agreement(a, b, DT)["exact_step_rate"] == 1.0


def test_network_arguments_are_checked():
    net = cuba(50, seed=1, p=0.1)
    with pytest.raises(NeuroplexError, match="must start at 0"):
        Brian2Solver(target="numpy").simulate(net, (0.01, 0.02))
    with pytest.raises(NeuroplexError, match="carries its own initial state"):
        Brian2Solver(target="numpy").simulate(net, (0.0, 0.01), y0=torch.zeros(3))


def test_front_door_runs_networks_and_neurons_on_brian2():
    import neuroplex

    net = cuba(100, p=0.1, seed=1)
    sol = neuroplex.simulate(net, 0.02, solver="brian2", method="euler", target="numpy")
    assert sol.solver == "brian2" and sol.meta["populations"] == {"P": (0, 100)}
    assert _raster(sol) == _raster(net.run(0.02, method="euler"))
    izh = neuroplex.simulate(get_neuron("izhikevich")(I_dc=10 * mV), (0.0, 0.05), solver="brian2", n_points=501, target="numpy")
    assert izh.method == "euler" and len(izh.spikes) == 2  # 3.3 and 27.0 ms (the reference's first two)
