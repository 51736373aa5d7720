"""The shared Brian2-made references (snn-reference/README.md) reproduced by our IR -> Brian2
translation on the numpy target: same method, same dt, float64 -> every spike in the same
step, traces within 1e-6 mV (the CSV rounding is 5e-9 mV); float32 -> same count, each
spike within one step."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroplex.host import get_neuron
from neuroplex.testing import require_data
from neuroplex.plugins.brian2_backend.solver import Brian2Solver
from neuroplex.units import mV

pytest.importorskip("brian2")
DT = 1e-4
GRID = np.arange(10000) * DT


def _csv(name: str) -> np.ndarray:
    return np.loadtxt(require_data("snn-reference", name), delimiter=",", skiprows=1, ndmin=2)


def _steps(times_s: np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(times_s) / DT).astype(np.int64)


def test_lif_exact_float64_and_float32():
    ref_t = _csv("lif_single_spikes.csv")[:, 0] * 1e-3
    trace = _csv("lif_single_trace.csv")
    model = get_neuron("lif")(E_l=-49 * mV)
    sol = Brian2Solver(method="exact", dt=DT, target="numpy").simulate(model, (0.0, 1.0), t_eval=torch.as_tensor(GRID))
    assert sol.meta["units"] == "si"
    _, t = sol.spikes.for_sample(0)
    np.testing.assert_array_equal(_steps(t), _steps(ref_t))
    assert np.abs(sol["v"][0].numpy() * 1e3 - trace[:, 1]).max() < 1e-6
    sol32 = Brian2Solver(method="exact", dt=DT, dtype="float32", target="numpy").simulate(model, (0.0, 1.0))
    _, t32 = sol32.spikes.for_sample(0)
    assert len(t32) == len(ref_t) and np.abs(_steps(t32) - _steps(ref_t)).max() <= 1


def test_izhikevich_regular_spiking_euler():
    ref_t = _csv("izh_rs_spikes.csv")[:, 0] * 1e-3
    trace = _csv("izh_rs_trace.csv")
    model = get_neuron("izhikevich")(regime="regular_spiking", I_dc=10 * mV)
    sol = Brian2Solver(method="euler", dt=DT, target="numpy").simulate(model, (0.0, 1.0), t_eval=torch.as_tensor(GRID))
    _, t = sol.spikes.for_sample(0)
    assert len(t) == 23
    np.testing.assert_array_equal(_steps(t), _steps(ref_t))
    assert np.abs(sol["v"][0].numpy() * 1e3 - trace[:, 1]).max() < 1e-6
    assert np.abs(sol["u"][0].numpy() * 1e3 - trace[:, 2]).max() < 1e-6


def test_hodgkin_huxley_step_current_exponential_euler():
    """Traub-Miles HH (El = -65 mV) with a 0.5 nA step from 100 to 900 ms as a TimedArray
    input of a one-neuron network; Brian2's exponential Euler at 0.1 ms."""
    from neuroplex.plugins.snn import Network, TimedArray

    ref_t = _csv("hh_step_expeuler_spikes.csv")[:, 0] * 1e-3
    trace = _csv("hh_step_expeuler_trace.csv")
    model = get_neuron("traub_miles")(synapses=False, refractory="threshold", gates="steady", E_l=-65 * mV, v0=-65 * mV)
    net = Network(dt=DT, name="hh_step")
    step = np.zeros(10)
    step[1:9] = 0.5e-9
    net.add_population("N", model, 1, inputs={"I": TimedArray(torch.as_tensor(step), 0.1)})
    net.monitor("N", ["v", "m", "n", "h"], [0])
    sol = Brian2Solver(method="exponential_euler", target="numpy").simulate(net, (0.0, 1.0))
    _, t = sol.spikes.for_sample(0)
    assert len(t) == 57
    np.testing.assert_array_equal(_steps(t), _steps(ref_t))
    assert np.abs(sol["N.v[0]"][0].numpy() * 1e3 - trace[:, 1]).max() < 1e-6
    for col, gate in ((2, "m"), (3, "n"), (4, "h")):
        assert np.abs(sol[f"N.{gate}[0]"][0].numpy() - trace[:, col]).max() < 1e-8


@pytest.mark.slow
def test_cuba_exported_instance_gives_brians_22463_spikes():
    """Brian2's own CUBA instance (connectivity + initial v), rebuilt as a neuroplex network
    and translated back to Brian2: the identical raster (neuron and step of all 22 463)."""
    from neuroplex.plugins.snn import Network

    ref = _csv("cuba_n4000_seed1_spikes.csv")
    net = Network.load(require_data("snn-reference", "cuba_n4000_seed1_instance.npz"))
    sol = Brian2Solver(target="numpy").simulate(net, (0.0, 1.0))
    idx, t = sol.spikes.for_sample(0)
    assert len(idx) == 22463
    ours = set(zip(idx.tolist(), _steps(t).tolist()))
    theirs = set(zip(ref[:, 0].astype(int).tolist(), np.rint(ref[:, 1] / 0.1).astype(int).tolist()))
    assert ours == theirs


@pytest.mark.slow
def test_cpp_standalone_target_gives_the_reference_lif():
    """The cpp_standalone target (a C++ build per run, ~30 s) reproduces the LIF reference."""
    ref_t = _csv("lif_single_spikes.csv")[:, 0] * 1e-3
    sol = Brian2Solver(method="exact", target="cpp_standalone").simulate(get_neuron("lif")(E_l=-49 * mV), (0.0, 1.0))
    _, t = sol.spikes.for_sample(0)
    np.testing.assert_array_equal(_steps(t), _steps(ref_t))
    assert sol.meta["target"] == "cpp_standalone" and sol.meta["loop_time"] > 0
