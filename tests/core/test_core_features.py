"""The host refuses a model that needs what a solver declares it lacks, naming both (issue 21
item 1, beyond model kinds): events and refractory periods."""
from __future__ import annotations

import pytest
import torch

import neuroplex as nx
from neuroplex.errors import SolverError
from neuroplex.features import FEATURES, check_support, model_needs, solver_supports


def leaky(**extra):
    return nx.ModelIR("leaky", states=[nx.State("v", 0.0)], derivatives={"v": "1 - v"}, **extra)


SPIKE = [nx.Event("spike", trigger="v > 0.5", assignments={"v": "0"})]


class NoEvents(nx.Solver):
    """A plain ODE stepper: it would step past a reset and report status ok."""

    name = "no-events"
    supports = frozenset()

    def simulate(self, model, t_span, *, y0=None, params=None, t_eval=None, inputs=None, progress=False):
        dyn = model.compile() if isinstance(model, nx.ModelIR) else model
        y = dyn.initial_state(dyn.default_params())
        return nx.Solution(ys=y[:, None].repeat(1, 2, 1), ts=torch.tensor(t_span, dtype=torch.float64),
                           names=list(dyn.state_names), status=torch.zeros(1, dtype=torch.long), solver=self.name)


class Undeclared(NoEvents):
    name = "undeclared"
    supports = None


class Plugin:
    @nx.hookimpl
    def register_solvers(self, register):
        register(NoEvents)
        register(Undeclared)


def test_model_needs():
    assert model_needs(leaky()) == set()
    assert model_needs(leaky(events=SPIKE)) == {"events"}
    assert model_needs(leaky(events=SPIKE, refractory="0.1")) == {"events", "refractory"}
    assert model_needs(leaky(events=SPIKE).compile()) == {"events"}
    assert FEATURES == {"events", "refractory"}


def test_host_refuses_a_model_needing_what_the_solver_lacks(host):
    host.add_plugin(Plugin(), "mine")
    assert nx.simulate(leaky(), (0.0, 1.0), solver="no-events").ok  # nothing needed, runs
    with pytest.raises(SolverError, match="solver 'no-events' does not support events, which model 'leaky' needs "
                                          r"\(the solver supports: neither\)"):
        nx.simulate(leaky(events=SPIKE), (0.0, 1.0), solver="no-events")
    # a solver declaring nothing is the solver's own responsibility
    assert nx.simulate(leaky(events=SPIKE), (0.0, 1.0), solver="undeclared").solver == "undeclared"


def test_declared_features_are_checked():
    class Typo(NoEvents):
        supports = frozenset({"event"})

    with pytest.raises(SolverError, match="declares unknown features event"):
        solver_supports(Typo)
    check_support(Undeclared, leaky(events=SPIKE, refractory="0.1"))  # undeclared: no check
