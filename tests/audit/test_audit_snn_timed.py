"""A ``TimedArray`` read at a Runge-Kutta stage time follows Brian2's rounding.

Before: ``timed_row`` rounded time on the clock grid (``K = array_dt / dt`` points per array
step), so a stage half a step past ``t_k`` sat on a rounding tie and read the *next* array row
in 58 % of steps for an array with one value per step (and at every array step boundary for a
coarser one). Brian2 rounds on a grid at least 8 times finer than the clock (``_find_K``), so
the stage reads the current row. RK4 with the reference step current (HH, dt 0.01 ms) was
0.0167 mV off Brian2's trace right at the onset and up to 6.35 mV over the first 150 ms; now
within 1e-3 mV, as exponential Euler."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import neuroplex as nx
from neuroplex.plugins.snn import Network, TimedArray
from neuroplex.plugins.snn.plan import timed_row
from neuroplex.testing import require_data
from neuroplex.units import mV


def _brian_row(t: float, array_dt: float, dt: float, n: int) -> int:
    # brian2/input/timedarray.py 2.9.0: _find_K and the Cython/C++ lookup
    K = max(int(2 ** math.ceil(math.log2(8 / dt * array_dt))), 1)
    epsilon = array_dt / K
    return min(max(int((t / epsilon + 0.5) / K), 0), n - 1)


@pytest.mark.parametrize("array_dt, dt", [(1e-4, 1e-4), (1e-4, 1e-5), (1e-3, 1e-4), (1e-4, 5e-5), (0.1, 1e-4)])
@pytest.mark.parametrize("stage", [0.0, 0.5, 1.0])
def test_rows_at_stage_times_are_brians(array_dt, dt, stage):
    n = 10**9
    got = [timed_row((k + stage) * dt, array_dt, dt, n) for k in range(5000)]
    assert got == [_brian_row((k + stage) * dt, array_dt, dt, n) for k in range(5000)]
    if stage == 0.5:  # a half step past t_k reads the row of t_k
        assert got == [int((k * dt) / array_dt + 1e-9) for k in range(5000)]


def test_rk4_step_current_follows_brians_trace():
    ref = np.loadtxt(require_data("snn-reference", "hh_step_rk4_dt0.01_trace.csv"), delimiter=",", skiprows=1)
    values = torch.zeros(10000)
    values[1000:9000] = 0.5e-9  # 0.5 nA for 100 ms <= t < 900 ms
    hh = nx.get_neuron("traub_miles")(synapses=False, E_l=-65 * mV, v0=-65 * mV, refractory="threshold")
    net = Network(dt=1e-5)
    net.add_population("N", hh, 1, method="rk4", inputs={"I": TimedArray(values, 1e-4)})
    net.monitor("N", ["v"], every=10)
    sol = net.run(0.104, dtype=torch.float64)
    n = sol.ys.shape[1]
    v = sol.ys[0, :, sol.names.index("N.v[0]")].numpy() * 1e3
    np.testing.assert_allclose(ref[:n, 0], sol.ts.numpy() * 1e3, atol=1e-9)
    assert abs(v[1000] - ref[1000, 1]) < 1e-5  # t = 100.0 ms, right after the onset step
    assert np.abs(v - ref[:n, 1]).max() < 1e-5
