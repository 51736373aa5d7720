"""scipy and roadrunner declare what they honour (issue 21 item 1): events, no refractory
periods; the host refuses a model with a refractory period naming the solver and the model."""
from __future__ import annotations

import math

import pytest

import neuroplex as nx
from neuroplex.errors import SolverError


def leaky(refractory: str | None = None) -> nx.ModelIR:
    """v' = 1 - v from 0, reset to 0 at v = 0.5: a spike every ln 2."""
    return nx.ModelIR("leaky", states=[nx.State("v", 0.0, clamped_when_refractory=True)], derivatives={"v": "1 - v"},
                      events=[nx.Event("spike", trigger="v > 0.5", assignments={"v": "0"})], refractory=refractory)


@pytest.mark.parametrize("name, supports", [("scipy", {"events", "spikes"}), ("roadrunner", {"events"})])
def test_declares_events_without_refractory(name, supports) -> None:
    assert nx.get_host().get("solvers", name).obj.supports == supports


@pytest.mark.parametrize("name, missing, supports", [("scipy", "refractory", "events, spikes"),
                                                     ("roadrunner", "refractory, spikes", "events")])
def test_refractory_model_is_refused_naming_both(name, missing, supports) -> None:
    with pytest.raises(SolverError, match=f"solver '{name}' does not support {missing}, which model 'leaky' needs "
                                          rf"\(the solver supports: {supports}\)"):
        nx.simulate(leaky("0.1"), (0.0, 2.0), solver=name)


def test_roadrunner_refuses_a_spike_train_it_cannot_record() -> None:
    with pytest.raises(SolverError, match="solver 'roadrunner' does not support spikes, which model 'leaky' needs"):
        nx.simulate(leaky(), (0.0, 2.0), solver="roadrunner")


@pytest.mark.parametrize("name", ["scipy"])
def test_event_model_runs_with_its_resets(name) -> None:
    # at t=2 the reset at 2 ln 2 shows: v = 1 - exp(-(2 - 2 ln 2)), not the unreset 1 - exp(-2)
    sol = nx.simulate(leaky(), (0.0, 2.0), solver=name, rtol=1e-10, atol=1e-12)
    assert sol.ok
    assert float(sol["v"][0, -1]) == pytest.approx(1 - math.exp(-(2 - 2 * math.log(2))), abs=1e-5)
    if name == "scipy":  # scipy records the spikes (roadrunner applies SBML events, records none)
        assert sol.spikes.for_sample(0)[1].tolist() == pytest.approx([math.log(2), 2 * math.log(2)], abs=1e-6)
