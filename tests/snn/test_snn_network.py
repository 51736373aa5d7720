"""Networks on the torch engine: synapses, delays, Poisson input, monitors, batching,
export/import, the torch solver entry point, integrators and error messages."""
from __future__ import annotations

import numpy as np
import pytest
import sympy
import torch

import neuroplex as nx
from neuroplex.errors import ModelError, NeuroplexError
from neuroplex.plugins.snn import Network, TimedArray, build_step, cobahh, cuba
from neuroplex.testing import require_data
from neuroplex.units import mV, second

DT = 1e-4


def _raster(sol, b: int = 0) -> set[tuple[int, int]]:
    idx, t = sol.spikes.for_sample(b)
    return set(zip(idx.tolist(), np.rint(t / DT).astype(int).tolist()))


def test_exact_propagator_is_the_analytic_solution():
    step = build_step(nx.get_neuron("lif")(synapses="current"), "exact")
    tm, te, dt = sympy.symbols("tau_m tau_e dt")
    assert sympy.simplify(step.P[0][0] - sympy.exp(-dt / tm)) == 0
    assert sympy.simplify(step.P[0][1] - te / (te - tm) * (sympy.exp(-dt / te) - sympy.exp(-dt / tm))) == 0
    assert step.P_ref[0] == [1, 0, 0] and step.c_ref[0] == 0  # v frozen while refractory
    assert step.P_ref[1][1] == sympy.exp(-dt / te)  # ge decays while refractory


def test_methods_converge_to_exact_and_reject_what_brian_rejects():
    lif = nx.get_neuron("lif")(synapses="current")
    finals = {}
    for method in ("exact", "euler", "rk2", "rk4", "exponential_euler"):
        net = Network(dt=DT)
        net.add_population("N", lif, 1, init={"v": -0.055, "ge": 0.004, "gi": -0.001})
        finals[method] = net.run(0.02, method=method).meta["final_state"]["N"][:, 0, 0]
    err = {m: float((finals[m] - finals["exact"]).abs().max()) for m in finals}
    assert err["rk4"] < 1e-12 < err["rk2"] < 1e-7 < err["euler"] < 1e-5  # orders 4, 2, 1 (volts)
    assert err["exponential_euler"] < 1e-5  # first order in the coupling (frozen ge, gi)
    with pytest.raises(ModelError, match="linear"):
        build_step(nx.get_neuron("izhikevich")(), "exact")
    with pytest.raises(ModelError, match="exponential_euler needs dv/dt linear in v"):
        build_step(nx.get_neuron("izhikevich")(), "exponential_euler")
    with pytest.raises(ModelError, match="unknown integration method 'heun'"):
        build_step(nx.get_neuron("lif")(), "heun")


def _pair(delay=None) -> Network:
    net = Network(dt=DT)
    v0 = torch.tensor([-0.05001, -0.06])
    net.add_population("A", nx.get_neuron("lif")(synapses="current"), 2, init={"v": v0})
    net.connect("A", "A", "v", i=[0], j=[1], weight=2e-3, delay=delay)
    net.monitor("A", ["v"], [1])
    return net


def test_on_pre_jump_acts_after_the_delay():
    sol0, sol5 = _pair().run(0.002), _pair(delay=5).run(0.002)
    k_spike = int(round(float(sol0.spikes.time[0]) / DT))
    v0, v5 = sol0["A.v[1]"][0], sol5["A.v[1]"][0]
    jump0 = int(torch.nonzero(v0.diff() > 1e-3)[0]) + 1  # first recorded step showing the jump
    jump5 = int(torch.nonzero(v5.diff() > 1e-3)[0]) + 1
    assert jump0 == k_spike + 1  # no delay: visible at the start of the next step (Brian's order)
    assert jump5 == jump0 + 5


def test_poisson_input_rate_and_reproducibility():
    net = Network(dt=DT)
    net.add_poisson("In", 200, 50.0, record_spikes=True)
    net.add_population("N", nx.get_neuron("lif")(synapses="current", E_l=-70 * mV), 10)
    net.connect("In", "N", "ge", p=0.5, seed=3, weight=1e-3)
    a, b = net.run(0.5, seed=11), net.run(0.5, seed=11)
    n_in = int((a.spikes.index < 200).sum())
    assert abs(n_in / (200 * 0.5) - 50.0) < 5.0
    assert torch.equal(a.spikes.index, b.spikes.index) and int((a.spikes.index >= 200).sum()) > 0
    assert a.meta["populations"] == {"In": (0, 200), "N": (200, 10)}


def test_batched_networks_match_their_single_runs():
    batch = cuba(200, p=0.1, seed=4, batch=3, monitor=[0, 5])
    sol = batch.run(0.1)
    assert sol.ys.shape == (3, 1000, 2) and sol.names == ["P.v[0]", "P.v[5]"]
    for b in range(3):
        single = Network(dt=DT)
        single.add_population("P", nx.get_neuron("lif")(synapses="current"), 200,
                              init={"v": batch.populations["P"].init["v"][b]})
        for name, syn in batch.synapses.items():
            keep = syn.sample == b
            single.connect("P", "P", syn.target, i=syn.i[keep], j=syn.j[keep], weight=syn.weight[keep], name=name)
        single.monitor("P", ["v"], [0, 5])
        one = single.run(0.1)
        assert _raster(one) == _raster(sol, b) and len(_raster(one)) > 50
        torch.testing.assert_close(one.ys[0], sol.ys[b], atol=0, rtol=0)
    assert _raster(sol, 0) != _raster(sol, 1)


def test_export_load_round_trip(tmp_path):
    net = Network(dt=DT, batch=2, name="mixed")
    net.add_poisson("In", 20, torch.linspace(10, 80, 20))
    net.add_population("E", nx.get_neuron("izhikevich")(regime="chattering"), 5,
                       params={"d": torch.linspace(1e-3, 3e-3, 5)}, inputs={"I": torch.full((2, 5), 1e-3)})
    hh = nx.get_neuron("traub_miles")(synapses=False, refractory="threshold")
    net.add_population("H", hh, 2, inputs={"I": TimedArray(torch.tensor([0.0, 0.6e-9]), 0.01)},
                       init={"v": torch.tensor([[-0.065, -0.06], [-0.07, -0.06]])})
    net.connect("In", "E", "v", p=0.3, seed=1, weight=0.5e-3)
    net.connect("E", "H", "v", i=[0, 1], j=[1, 0], weight=[1e-3, 2e-3], delay=[2, 4])
    net.monitor("H", ["v", "m"], [0, 1], every=10)
    path = net.export(tmp_path / "net.npz")
    back = Network.load(path)
    assert repr(back) == repr(net)
    a, b = net.run(0.05, seed=2), back.run(0.05, seed=2)
    assert torch.equal(a.spikes.index, b.spikes.index) and torch.equal(a.spikes.sample, b.spikes.sample)
    assert len(a.spikes) > 10
    torch.testing.assert_close(a.ys, b.ys, atol=0, rtol=0)
    assert a.names == b.names and a.ys.shape == (2, 50, 4)


def test_cuba_builder_matches_brian_example_and_reference_instance_loads():
    net = cuba(4000, seed=1)
    syn = net.synapses
    assert set(syn) == {"exc", "inh"}
    assert syn["exc"].i.max() < 3200 <= syn["inh"].i.min()
    assert abs(len(syn["exc"]) / (3200 * 4000) - 0.02) < 0.001
    assert np.allclose(syn["exc"].weight, 1.62e-3) and np.allclose(syn["inh"].weight, -9e-3)
    v0 = net.populations["P"].init["v"]
    assert float(v0.min()) >= -0.06 and float(v0.max()) <= -0.05
    k = cuba(1000, in_degree=80, seed=2)
    assert np.all(np.bincount(k.synapses["exc"].j, minlength=1000) == 64)
    assert np.all(np.bincount(k.synapses["inh"].j, minlength=1000) == 16)
    inst = Network.load(require_data("snn-reference", "cuba_n4000_seed1_instance.npz"))
    assert inst.populations["P"].n == 4000


def test_cobahh_runs_and_fires():
    net = cobahh(400, seed=3)
    sol = net.run(0.05)
    assert sol.ok and len(sol.spikes) > 0
    assert sol.names == ["P.v[1]", "P.v[10]", "P.v[100]"]


def test_torch_solver_runs_a_network():
    net = cuba(300, p=0.05, seed=2, monitor=[0])
    solver = nx.get_solver("torch")(dt=DT, method="euler", dtype="float32")
    sol = solver.simulate(net, (0.0, 0.05))
    assert sol.method == "euler" and sol.ys.dtype == torch.float32 and sol.ys.shape == (1, 500, 1)
    direct = net.run(0.05, method="euler", dtype=torch.float32)
    assert _raster(sol) == _raster(direct)
    front = nx.simulate(net, (0.0, 0.05), solver="torch", dt=DT, method="euler", dtype="float32")
    assert _raster(front) == _raster(direct)


def test_errors_name_the_problem():
    net = Network(dt=DT)
    net.add_population("P", nx.get_neuron("lif")(), 3)
    with pytest.raises(NeuroplexError, match="no population 'Q'"):
        net.connect("P", "Q", "v", i=[0], j=[0], weight=1.0)
    with pytest.raises(ModelError, match="no state 'ge'"):
        net.connect("P", "P", "ge", i=[0], j=[0], weight=1.0)
    with pytest.raises(NeuroplexError, match="indices outside"):
        net.connect("P", "P", "v", i=[0], j=[7], weight=1.0)
    with pytest.raises(NeuroplexError, match="already exists"):
        net.add_population("P", nx.get_neuron("lif")(), 3)
    with pytest.raises(NeuroplexError, match=r"expected a scalar, \(3,\)"):
        bad = Network(dt=DT)
        bad.add_population("P", nx.get_neuron("lif")(), 3, init={"v": torch.zeros(4)})
        bad.run(0.001)
    with pytest.raises(NeuroplexError, match="no such network file"):
        Network.load("missing.npz")


def test_loading_a_foreign_npz_names_its_keys(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(2))
    with pytest.raises(NeuroplexError, match="not a neuroplex network file.*keys: a"):
        Network.load(tmp_path / "x.npz")


@pytest.mark.gpu
def test_cuda_run_matches_cpu():
    net = cuba(500, p=0.05, seed=6, batch=2, monitor=[0])
    cpu, gpu = net.run(0.1), net.run(0.1, device="cuda")
    assert _raster(cpu, 0) == _raster(gpu, 0) and _raster(cpu, 1) == _raster(gpu, 1)
    torch.testing.assert_close(cpu.ys, gpu.ys.cpu())


def test_per_neuron_parameters_and_inputs_under_exact_match_scalar_runs():
    """Per-neuron tau_m and input current: the element-wise exact propagator equals one
    scalar-parameter run per neuron."""
    taus, currents = [0.01, 0.02, 0.03], [0.0, 0.2e-9, -0.1e-9]
    net = Network(dt=DT)
    net.add_population("P", nx.get_neuron("lif")(E_l=-45 * mV), 3, params={"tau_m": torch.tensor(taus, dtype=torch.float64)},
                       inputs={"I": torch.tensor(currents, dtype=torch.float64)})
    net.monitor("P", ["v"])
    many = net.run(0.2)
    for j, (tau, cur) in enumerate(zip(taus, currents)):
        one = Network(dt=DT)
        one.add_population("P", nx.get_neuron("lif")(E_l=-45 * mV, tau_m=tau * second), 1, inputs={"I": cur})
        one.monitor("P", ["v"])
        single = one.run(0.2)
        torch.testing.assert_close(many.ys[0, :, j], single.ys[0, :, 0], atol=1e-15, rtol=1e-12)
        assert int((many.spikes.index == j).sum()) == len(single.spikes)
    assert int((many.spikes.index == 1).sum()) > int((many.spikes.index == 0).sum()) > 0


def test_time_dependent_model_under_rk4_matches_the_analytic_solution():
    from neuroplex.ir import ModelIR, Parameter, State

    model = ModelIR("drive", states=[State("v", 0.0, "volt")],
                    parameters=[Parameter("f", 50.0, "hertz"), Parameter("tau", 0.01, "second")],
                    assignments={"drive": "0.02*sin(2*pi*f*t)"}, derivatives={"v": "(drive - v)/tau"})
    net = Network(dt=DT)
    net.add_population("O", model, 1, method="rk4")
    net.monitor("O", ["v"])
    sol = net.run(0.05)
    t = sol.ts
    w, tau = 2 * np.pi * 50.0, 0.01
    exact = 0.02 / (1 + (w * tau) ** 2) * (torch.sin(w * t) - w * tau * torch.cos(w * t) + w * tau * torch.exp(-t / tau))
    assert float((sol.ys[0, :, 0] - exact).abs().max()) < 1e-10
