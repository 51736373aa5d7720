"""A refractory condition ends refractoriness for good, as Brian2's does, until the next spike.

Brian2 turns ``refractory="v > -40*mV"`` into ``not_refractory = not_refractory or not (v >
-40 mV)``: once the condition has been false the neuron may spike, whatever v does until then.
Before: the engine took ``not_refractory = not (cond)`` of the current state, so a neuron with
a threshold above the condition (threshold -20 mV, refractory ``v > -40*mV``) was refractory
from the moment v passed -40 mV and never spiked: a ramp crossing -20 mV every 30 ms gave no
spike on the engine and one every 30 ms on Brian2."""
from __future__ import annotations

import numpy as np
import pytest

import neuroplex as nx
from neuroplex.host import get_solver
from neuroplex.plugins.neurons import from_equations
from neuroplex.plugins.snn import Network

#: Brian2 (euler, numpy target, dt 0.1 ms) on the ramp below: the steps of its spikes
BRIAN2_STEPS = [399, 699, 999]


def _model() -> nx.ModelIR:
    return from_equations("dv/dt = drive : volt", threshold="v > -20*mV", reset="v = -50*mV",
                          refractory="v > -40*mV", init={"v": "-60*mV"}, parameters={"drive": "1 volt/second"})


def _ramp() -> Network:
    net = Network(dt=1e-4)
    net.add_population("A", _model(), 1, init={"v": np.array([-0.06])})
    return net


def _steps(sol) -> list[int]:
    return np.round(sol.spikes.for_sample(0)[1] / 1e-4).astype(int).tolist()


@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_engine_leaves_refractoriness_as_brian2(backend):
    assert _steps(_ramp().run(0.11, method="euler", backend=backend)) == BRIAN2_STEPS


def test_brian2_backend():
    pytest.importorskip("brian2", reason="brian2 (optional) is not installed")
    sol = get_solver("brian2")(target="numpy", method="euler").simulate(_ramp(), (0.0, 0.11))
    assert _steps(sol) == BRIAN2_STEPS


def test_torch_ode_path_leaves_refractoriness_as_brian2():
    sol = nx.simulate(_model(), (0.0, 0.11), solver="torch", method="dopri5")
    np.testing.assert_allclose(sol.spikes.for_sample(0)[1], [0.04, 0.07, 0.10], atol=1e-9)  # -20 mV crossings
    lif = nx.simulate(nx.get_neuron("lif")(refractory="v > -50*mV", E_l="-49 mV"), (0.0, 0.2), method="dopri5")
    assert len(lif.spikes) == 4      # Brian2 (dt 0.1 ms): 47.9, 95.9, 143.9, 191.9 ms
