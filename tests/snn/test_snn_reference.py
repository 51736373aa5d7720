"""The torch engine against the Brian2 references in the shared data (snn-reference/README):
same method and dt, float64 -> identical spike steps, float32 -> same count, each spike
within one step; CUBA's exported instance -> all 22 463 spikes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import neuroplex as nx
from neuroplex.plugins.snn import Network, TimedArray
from neuroplex.testing import require_data
from neuroplex.units import mV


def _ref_steps(name: str, dt: float, until: float | None = None) -> np.ndarray:
    path = require_data("snn-reference", name)
    t_ms = np.atleast_1d(np.loadtxt(path, delimiter=",", skiprows=1))
    if until is not None:
        t_ms = t_ms[t_ms < until * 1e3]
    return np.rint(t_ms * 1e-3 / dt).astype(int)


def _steps(model, dt: float, duration: float, dtype, method=None, inputs=None) -> np.ndarray:
    net = Network(dt=dt)
    net.add_population("N", model, 1, method=method, inputs=inputs or {})
    sol = net.run(duration, dtype=dtype)
    return np.rint(sol.spikes.time.numpy() / dt).astype(int)


def _check(got: np.ndarray, ref: np.ndarray, dtype) -> None:
    assert len(got) == len(ref), f"{len(got)} spikes, reference {len(ref)}"
    if dtype == torch.float64:
        np.testing.assert_array_equal(got, ref)
    else:
        assert np.abs(got - ref).max() <= 1


def _hh():
    # the reference HH: COBAHH's Traub-Miles kinetics, El = -65 mV, one spike per upward crossing
    return nx.get_neuron("traub_miles")(synapses=False, E_l=-65 * mV, v0=-65 * mV, refractory="threshold")


def _step_current() -> TimedArray:
    values = torch.zeros(10000)
    values[1000:9000] = 0.5e-9  # 0.5 nA for 100 ms <= t < 900 ms
    return TimedArray(values, 1e-4)


DTYPES = [torch.float64, torch.float32]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_lif_exact(dtype):
    ref = _ref_steps("lif_single_spikes.csv", 1e-4)
    assert len(ref) == 18
    _check(_steps(nx.get_neuron("lif")(E_l=-49 * mV), 1e-4, 1.0, dtype), ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_izhikevich_regular_spiking_euler(dtype):
    ref = _ref_steps("izh_rs_spikes.csv", 1e-4)
    assert len(ref) == 23
    _check(_steps(nx.get_neuron("izhikevich")(I_dc=10 * mV), 1e-4, 1.0, dtype), ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_hh_exponential_euler_dt_01ms(dtype):
    ref = _ref_steps("hh_step_expeuler_spikes.csv", 1e-4)
    assert len(ref) == 57
    got = _steps(_hh(), 1e-4, 1.0, dtype, "exponential_euler", {"I": _step_current()})
    _check(got, ref, dtype)


def test_hh_step_current_as_coarse_timed_array():
    """A TimedArray whose step (100 ms) is much longer than dt is read on Brian's clock
    rounding: the current starts exactly at 100 ms, not one step early."""
    ref = _ref_steps("hh_step_expeuler_spikes.csv", 1e-4, until=0.3)
    coarse = torch.zeros(10)
    coarse[1:9] = 0.5e-9
    got = _steps(_hh(), 1e-4, 0.3, torch.float64, "exponential_euler", {"I": TimedArray(coarse, 0.1)})
    _check(got, ref, torch.float64)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_hh_exponential_euler_dt_001ms(dtype):
    # the first 120 ms (12 000 steps): current onset and the first two spikes; the full
    # second runs in benchmarks/snn_torch_bench.py --references
    ref = _ref_steps("hh_step_expeuler_dt0.01_spikes.csv", 1e-5, until=0.12)
    assert len(ref) >= 2
    got = _steps(_hh(), 1e-5, 0.12, dtype, "exponential_euler", {"I": _step_current()})
    _check(got, ref, dtype)


@pytest.mark.slow
def test_hh_rk4_dt_001ms():
    """RK4 reads the timed current at each stage's time (Brian's TimedArray semantics):
    the step before the onset already sees it in its last stage."""
    ref = _ref_steps("hh_step_rk4_dt0.01_spikes.csv", 1e-5, until=0.11)
    assert len(ref) >= 1
    got = _steps(_hh(), 1e-5, 0.11, torch.float64, "rk4", {"I": _step_current()})
    _check(got, ref, torch.float64)


def _cuba_reference() -> set[tuple[int, int]]:
    path = require_data("snn-reference", "cuba_n4000_seed1_spikes.csv")
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    return set(zip(data[:, 0].astype(int).tolist(), np.rint(data[:, 1] * 10).astype(int).tolist()))


def test_cuba_exported_instance_float64_reproduces_every_spike():
    from neuroplex.plugins.snn import Network as Net

    net = Net.load(require_data("snn-reference", "cuba_n4000_seed1_instance.npz"))
    assert len(net.synapses["exc"]) == 255_618 and len(net.synapses["inh"]) == 64_174
    sol = net.run(1.0, dtype=torch.float64)
    got = set(zip(sol.spikes.index.tolist(), np.rint(sol.spikes.time.numpy() * 1e4).astype(int).tolist()))
    ref = _cuba_reference()
    assert len(ref) == 22_463
    assert got == ref


def test_cuba_exported_instance_float32_total_within_one_percent():
    from neuroplex.plugins.snn import cuba_from_instance

    net = cuba_from_instance(require_data("snn-reference", "cuba_n4000_seed1_instance.npz"))
    sol = net.run(1.0, dtype=torch.float32)
    assert abs(len(sol.spikes) - 22_463) <= 0.01 * 22_463
    early = {(i, k) for i, k in _cuba_reference() if k < 50}  # identical before chaos amplifies rounding
    got = {(i, int(round(t * 1e4))) for i, t in zip(sol.spikes.index.tolist(), sol.spikes.time.tolist()) if t < 5e-3}
    assert got == early
