"""The host refuses a model that needs what a solver declares it lacks, naming both (issue 21
item 1, beyond model kinds): events, spike trains, refractory periods, devices and dtypes."""
from __future__ import annotations

import pytest
import torch

import neuroplex as nx
from neuroplex.errors import SolverError
from neuroplex.settings import Execution
from neuroplex.features import (FEATURES, check_placement, check_support, model_needs, solver_devices,
                                solver_dtypes, solver_supports)


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
    assert model_needs(leaky(events=SPIKE)) == {"events", "spikes"}
    assert model_needs(leaky(events=SPIKE, refractory="0.1")) == {"events", "spikes", "refractory"}
    assert model_needs(leaky(events=SPIKE).compile()) == {"events", "spikes"}
    assert FEATURES == {"events", "spikes", "refractory"}


def test_host_refuses_a_model_needing_what_the_solver_lacks(host):
    host.add_plugin(Plugin(), "mine")
    assert nx.simulate(leaky(), (0.0, 1.0), solver="no-events").ok  # nothing needed, runs
    with pytest.raises(SolverError, match="solver 'no-events' does not support events, spikes, which model 'leaky' needs "
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


def test_a_typo_in_a_declaration_fails_the_plugin_at_registration():
    """Found repeating the author's journey: ``supports = {"event"}`` registered fine and broke
    ``neuroplex solvers`` and every run on that solver; now the plugin fails to load, named."""
    class Typo(NoEvents):
        name = "typo"
        supports = frozenset({"event", "spikes"})

    class Text(NoEvents):
        name = "text"
        dtypes = "float64"

    expected = {"typo": "solver 'typo' declares unknown features event (known: events, refractory, spikes)",
                "text": "solver 'text' declares dtypes as the string 'float64'; use a set of names, "
                        "e.g. frozenset({'float64'})"}
    for solver in (Typo, Text):
        class Bad:
            @nx.hookimpl
            def register_solvers(self, register):
                register(solver)

        lenient = nx.PluginHost(entry_points=[], strict=False).load()
        lenient.add_plugin(Bad(), "bad")
        record = {r.name: r for r in lenient.plugins()}["bad"]
        assert record.status == "failed" and solver.name not in lenient.names("solvers")
        assert record.error == f"SolverError: {expected[solver.name]}"
        with pytest.raises(nx.PluginError, match=r"bad failed at register: SolverError: .*declares"):
            nx.PluginHost(entry_points=[], strict=True).load().add_plugin(Bad(), "bad")


def test_sbml_events_record_no_spikes(tmp_path):
    """An SBML model's events change values (no spike train); the same model as IR has spikes."""
    sbml = pytest.importorskip("neuroplex.sbml")
    pytest.importorskip("libsbml", reason="python-libsbml is not installed")
    path = tmp_path / "leaky.xml"
    path.write_text(sbml.write_sbml(leaky(events=SPIKE)))
    model = sbml.read_sbml(path)
    assert model_needs(model) == {"events"}
    assert model_needs(model.compile()) == {"events"}


def test_a_solver_without_spike_trains_refuses_a_spiking_model():
    pytest.importorskip("roadrunner", reason="libroadrunner is not installed")
    with pytest.raises(SolverError, match="solver 'roadrunner' does not support spikes, which model 'leaky' needs"):
        nx.simulate(leaky(events=SPIKE), (0.0, 1.0), solver="roadrunner")


def test_devices_and_dtypes_are_declared_and_enforced():
    assert solver_devices(nx.get_host().get("solvers", "torch").obj) == {"cpu", "cuda"}
    assert solver_dtypes(nx.get_host().get("solvers", "scipy").obj) == {"float64"}
    with pytest.raises(SolverError, match=r"solver 'scipy' does not run on device 'cuda' \(it runs on: cpu\)"):
        nx.simulate(leaky(), (0.0, 1.0), solver="scipy", device="cuda")
    with pytest.raises(SolverError, match=r"solver 'scipy' does not compute in float32 \(it computes in: float64\)"):
        nx.simulate(leaky(), (0.0, 1.0), solver="scipy", dtype="float32")
    assert nx.simulate(leaky(), (0.0, 1.0), solver="scipy", device="auto", dtype="float64").ok
    check_placement(Undeclared, "cuda", "float32")  # undeclared: no check

    class CpuOnly(NoEvents):
        devices = frozenset({"cpu"})
        dtypes = frozenset({"float64"})

    solver = CpuOnly()
    solver.execution = Execution(device=torch.device("cuda"))  # set past the constructor
    with pytest.raises(SolverError, match="solver 'no-events' does not run on device 'cuda'"):
        nx.simulate(leaky(), (0.0, 1.0), solver=solver)

    class Typo(NoEvents):
        devices = frozenset({"gpu"})

    with pytest.raises(SolverError, match="declares unknown devices gpu"):
        solver_devices(Typo)
