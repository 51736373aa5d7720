"""The torch solver declares what it honours (issue 21 item 1): threshold/reset events and
refractory periods; the host checks the declaration (:mod:`neuroplex.features`)."""
from __future__ import annotations

import math

import pytest

import neuroplex as nx
from neuroplex.features import check_support
from neuroplex.plugins.torch_solver import TorchSolver


def leaky(refractory: str | None = None) -> nx.ModelIR:
    """v' = 1 - v from 0, reset to 0 at v = 0.5: a spike every ln 2 (plus the refractory period,
    during which v stays at its reset)."""
    return nx.ModelIR("leaky", states=[nx.State("v", 0.0, clamped_when_refractory=True)], derivatives={"v": "1 - v"},
                      events=[nx.Event("spike", trigger="v > 0.5", assignments={"v": "0"})], refractory=refractory)


def test_torch_declares_events_and_refractory() -> None:
    assert TorchSolver.supports == {"events", "spikes", "refractory"}
    check_support(TorchSolver, leaky("0.1"))  # nothing missing


def test_torch_runs_events_and_refractory_models() -> None:
    sol = nx.simulate(leaky(), (0.0, 2.0), solver="torch", rtol=1e-9, atol=1e-12)
    assert sol.ok
    assert sol.spikes.for_sample(0)[1].tolist() == pytest.approx([math.log(2), 2 * math.log(2)], abs=1e-6)
    # v is held at its reset for 0.1 after each spike: the second spike comes 0.1 later
    ref = nx.simulate(leaky("0.1"), (0.0, 2.0), solver="torch", rtol=1e-9, atol=1e-12)
    assert ref.spikes.for_sample(0)[1].tolist() == pytest.approx([math.log(2), 2 * math.log(2) + 0.1], abs=1e-6)
