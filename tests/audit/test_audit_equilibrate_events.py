"""``equilibrate`` on the torch solver does not call a state past an event's threshold a rest.

Before: the equilibrium methods see only the right-hand side, so a leaky integrate-and-fire
neuron whose leak reversal sits above its threshold (``E_l = -49 mV``, ``V_t = -50 mV``: a
periodic spiker, CUBA's neuron) came back with status SUCCESS at ``v = -49 mV`` from
``anderson`` and ``ode``, a state where the threshold event fires and resets. Now such a
sample is NOT_CONVERGED with the reason in ``meta["reasons"]``; rest states below threshold
are unchanged."""
from __future__ import annotations

import pytest
import torch

import neuroplex as nx
from neuroplex.errors import SolverError
from neuroplex.solution import Status
from neuroplex.units import mV


@pytest.mark.parametrize("method", ["anderson", "ode"])
def test_a_fixed_point_past_the_threshold_is_not_a_rest(method):
    neuron = nx.get_neuron("lif")(E_l=-49 * mV)
    sol = nx.equilibrate(neuron, method=method)
    assert sol.status.tolist() == [Status.NOT_CONVERGED]
    assert "spike" in sol.meta["reasons"][0]
    with pytest.raises(SolverError, match="no rest state"):
        nx.equilibrate(neuron, method=method, throw=True)


def test_a_batch_keeps_its_rest_states():
    neuron = nx.get_neuron("lif")()
    names = [p.name for p in neuron.parameters]
    p = torch.tensor([p.value for p in neuron.parameters], dtype=torch.float64).repeat(3, 1)
    p[:, names.index("E_l")] = torch.tensor([-0.065, -0.049, -0.0505], dtype=torch.float64)
    sol = nx.equilibrate(neuron, params=p, method="ode")
    assert sol.status.tolist() == [Status.SUCCESS, Status.NOT_CONVERGED, Status.SUCCESS]
    assert sorted(sol.meta["reasons"]) == [1]
    torch.testing.assert_close(sol.ys[[0, 2], 0], p[[0, 2], names.index("E_l")], rtol=0, atol=1e-8)
