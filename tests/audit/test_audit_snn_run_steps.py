"""A run of a duration between grid points simulates the step holding its end, as Brian2's.

Before: the engine (and the Brian2 backend's network run) took ``round(duration/dt)`` steps,
Python's round-half-to-even: ``net.run(0.25 ms)`` at dt 0.1 ms ran 2 steps and
``net.run(1.234 ms)`` 12, where Brian2's ``run`` takes 3 and 13 (``Clock._calc_timestep``:
the nearest step when within 1e-4 dt, else rounded up), so spikes and samples of the last
partial step were silently missing."""
from __future__ import annotations

import pytest

import neuroplex as nx
from neuroplex.host import get_solver
from neuroplex.plugins.snn import Network, timestep

CASES = [(0.25e-3, 3), (0.35e-3, 4), (1.234e-3, 13), (1.2300001e-3, 13), (1e-3, 10), (0.3e-3, 3), (2.00000001e-3, 20)]


@pytest.mark.parametrize("duration, steps", CASES)
def test_timestep_counts_as_brian2(duration, steps):
    assert timestep(duration, 1e-4) == steps


def _net() -> Network:
    net = Network(dt=1e-4)
    net.add_population("B", nx.get_neuron("lif")(), 1)
    net.monitor("B", ["v"])
    return net


def test_engine_and_brian2_backend_run_brian2s_steps():
    assert _net().run(1.234e-3).ys.shape[1] == 13
    assert _net().run(0.25e-3, backend="torch").ys.shape[1] == 3
    on_brian = get_solver("brian2")(target="numpy").simulate(_net(), (0.0, 0.25e-3))
    assert on_brian.ys.shape[1] == 3


def test_brian2_itself():
    b2 = pytest.importorskip("brian2", reason="brian2 (optional) is not installed")
    for duration, steps in CASES:
        clock = b2.Clock(dt=0.1 * b2.ms)
        clock.set_interval(0 * b2.second, duration * b2.second)
        assert clock._i_end == steps, duration
