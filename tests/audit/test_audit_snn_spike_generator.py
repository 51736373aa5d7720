"""A spike generator's time falls in the step whose interval holds it, as in Brian2.

Before: ``Network.add_spike_generator`` put a time in step ``rint(time/dt)``, so a spike at
0.35 ms, 0.46 ms or 1.26 ms (dt 0.1 ms) was delivered one step later than Brian2's
``SpikeGeneratorGroup`` delivers it (``floor(time/dt + 1e-3)``), on the torch engine and, as
the Brian2 backend is handed those steps, on Brian2 too: every downstream spike shifted."""
from __future__ import annotations

import numpy as np
import pytest

import neuroplex as nx
from neuroplex.plugins.snn import Network

TIMES = np.array([0.15e-3, 0.25e-3, 0.35e-3, 0.46e-3, 0.999999e-3, 1.0e-3, 1.24e-3, 1.26e-3, 2.0e-3 - 1e-12])
#: Brian2 2.9's SpikeGeneratorGroup bins at dt = 0.1 ms (``_timebins``), measured with the probe below
BRIAN2_STEPS = [1, 2, 3, 4, 10, 10, 12, 12, 20]


def _generator_steps(dt: float = 1e-4) -> list[int]:
    net = Network(dt=dt)
    net.add_spike_generator("In", len(TIMES), np.arange(len(TIMES)), TIMES, record_spikes=True)
    net.add_population("B", nx.get_neuron("lif")(), 1)
    net.connect("In", "B", "v", i=[0], j=[0], weight=0.0)
    index, times = net.run(3e-3).spikes.for_sample(0)
    order = np.argsort(index[index < len(TIMES)], kind="stable")
    return [int(round(t / dt)) for t in times[index < len(TIMES)][order]]


def test_generator_steps_are_brian2s():
    assert _generator_steps() == BRIAN2_STEPS


def test_generator_steps_match_brian2_itself():
    b2 = pytest.importorskip("brian2", reason="brian2 (optional) is not installed")
    b2.start_scope()
    target, b2.prefs.codegen.target = b2.prefs.codegen.target, "numpy"  # no compiler needed
    group = b2.SpikeGeneratorGroup(len(TIMES), np.arange(len(TIMES)), TIMES * b2.second, dt=0.1 * b2.ms)
    monitor = b2.SpikeMonitor(group)
    try:
        b2.Network(group, monitor).run(3 * b2.ms, namespace={})
    finally:
        b2.prefs.codegen.target = target
    steps = dict(zip(np.asarray(monitor.i).tolist(), np.round(np.asarray(monitor.t) / 1e-4).astype(int).tolist()))
    assert [steps[k] for k in range(len(TIMES))] == BRIAN2_STEPS
