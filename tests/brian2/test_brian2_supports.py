"""brian2 declares what it honours (issue 21 item 1): threshold/reset events (``threshold=``,
``reset=``) and refractory periods (``refractory=``, clamped states ``(unless refractory)``)."""
from __future__ import annotations

import math

import pytest

import neuroplex as nx
from neuroplex.features import check_support


def leaky(refractory: str | None = None) -> nx.ModelIR:
    """v' = 1 - v from 0, reset to 0 at v = 0.5: a spike every ln 2 (plus the refractory period,
    during which v stays at its reset)."""
    return nx.ModelIR("leaky", states=[nx.State("v", 0.0, clamped_when_refractory=True)], derivatives={"v": "1 - v"},
                      events=[nx.Event("spike", trigger="v > 0.5", assignments={"v": "0"})], refractory=refractory)


def test_brian2_declares_events_and_refractory() -> None:
    solver = nx.get_host().get("solvers", "brian2").obj
    assert solver.supports == {"events", "spikes", "refractory"}
    check_support(solver, leaky("0.1"))  # nothing missing


def test_brian2_runs_a_refractory_model() -> None:
    sol = nx.simulate(leaky("0.1"), (0.0, 2.0), solver="brian2", dt=1e-4, target="numpy", method="euler")
    assert sol.ok
    # clock-driven: spikes within a few steps of ln 2 and 2 ln 2 + 0.1 (the clamp delays the second)
    assert sol.spikes.for_sample(0)[1].tolist() == pytest.approx([math.log(2), 2 * math.log(2) + 0.1], abs=1e-3)
