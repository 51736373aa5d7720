"""Refractory periods in the ODE path: LIF under dopri5 against Brian2's spike times, a batch
with per-sample periods, clamped states held, and condition-type refractoriness."""
from __future__ import annotations

import math

import numpy as np
import torch

import neuroplex
from neuroplex.testing import require_data
from neuroplex.units import mV, ms

TAU, E_L, V_TH, V_R = 20e-3, -49e-3, -50e-3, -60e-3
FREE = TAU * math.log((V_R - E_L) / (V_TH - E_L))  # time from reset to threshold: 47.958 ms


def spike_times(sol, b: int = 0) -> np.ndarray:
    return sol.spikes.time[sol.spikes.sample == b].numpy()


def test_lif_matches_brian2_reference() -> None:
    ref = np.loadtxt(require_data("snn-reference", "lif_single_spikes.csv"), delimiter=",", skiprows=1) * 1e-3
    sol = neuroplex.simulate(neuroplex.get_neuron("lif")(E_l=-49 * mV), (0.0, 1.0), solver="torch", method="dopri5",
                             rtol=1e-8, atol=1e-12)
    ours = spike_times(sol)
    assert len(ours) == len(ref) == 18
    # Brian2 reports the step start on a 0.1 ms grid: 47.9 ms, then every 52.9 ms
    assert abs(ours[0] - ref[0]) < 0.1e-3
    assert np.abs(np.diff(ours) - np.diff(ref)).max() < 0.1e-3
    # continuous time: first crossing at FREE, then every t_ref + FREE (52.958 ms, not 47.958)
    np.testing.assert_allclose(ours, FREE + np.arange(18) * (5e-3 + FREE), atol=1e-7)


def test_batch_of_periods_and_clamped_state() -> None:
    lif = neuroplex.get_neuron("lif")(E_l=-49 * mV)
    names = lif.parameter_names
    p = torch.tensor([[prm.value for prm in lif.parameters]] * 3, dtype=torch.float64)
    p[:, names.index("t_ref")] = torch.tensor([0.0, 2e-3, 10e-3], dtype=torch.float64)
    t_eval = torch.linspace(0.0, 0.3, 3001, dtype=torch.float64)
    sol = neuroplex.simulate(lif, (0.0, 0.3), solver="torch", method="dopri5", params=p, t_eval=t_eval,
                             rtol=1e-8, atol=1e-12)
    for b, t_ref in enumerate([0.0, 2e-3, 10e-3]):
        ts = spike_times(sol, b)
        n = int((0.3 - FREE) // (t_ref + FREE)) + 1
        np.testing.assert_allclose(ts, FREE + np.arange(n) * (t_ref + FREE), atol=1e-7)
        if t_ref > 0:  # v sits at v_reset through the period after each spike
            v = sol.ys[b, :, 0].numpy()
            tt = t_eval.numpy()
            for s in ts:
                inside = (tt > s + 1e-9) & (tt < s + t_ref - 1e-9)
                assert inside.any() and np.abs(v[inside] - V_R).max() < 1e-12


def test_no_refractory_fires_at_the_free_period() -> None:
    sol = neuroplex.simulate(neuroplex.get_neuron("lif")(refractory=None, E_l=-49 * mV), (0.0, 0.2), solver="torch",
                             method="dopri5", rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(spike_times(sol), FREE * np.arange(1, 5), atol=1e-7)


def test_condition_refractory_blocks_events_and_holds_clamped_states() -> None:
    """Brian2's ``refractory="v > -55*mV"``: refractory from a spike until v <= -55 mV. A
    neuron that has not spiked is not refractory (it fires at -50 mV, where the old reading,
    "refractory while v > -55 mV", held it at -55 mV without a spike); after the reset to
    -60 mV the condition is false at once, so it fires at the free period, as on Brian2. With
    the condition still true after the reset (v > -65 mV), v is held there: one spike."""
    free = neuroplex.simulate(neuroplex.get_neuron("lif")(refractory=0 * ms, E_l=-49 * mV), (0.0, 0.2),
                              solver="torch", method="dopri5")
    lif = neuroplex.get_neuron("lif")(refractory="v > -55*mV", E_l=-49 * mV)
    sol = neuroplex.simulate(lif, (0.0, 0.2), solver="torch", method="dopri5", n_points=201)
    assert len(sol.spikes) == len(free.spikes) == 4
    assert torch.allclose(sol.spikes.time, free.spikes.time, atol=1e-9)
    held = neuroplex.get_neuron("lif")(refractory="v > -65*mV", E_l=-49 * mV)
    sol = neuroplex.simulate(held, (0.0, 0.2), solver="torch", method="dopri5", n_points=201)
    assert len(sol.spikes) == 1
    assert torch.allclose(sol.ys[0, 50:, 0], torch.tensor(-0.06, dtype=torch.float64))  # clamped at the reset
    assert (sol.status == 0).all()