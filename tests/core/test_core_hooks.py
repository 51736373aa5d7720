"""One test per hook spec (the meta-test checks that each ``test_hook_<name>`` exists), each
exercising the hook through a plugin object added with ``host.add_plugin``."""
from __future__ import annotations

import math
from pathlib import Path

import click
import pytest
import torch
from click.testing import CliRunner

import neuroplex as nx
from neuroplex.api import Importer


def test_hook_register_neurons(host):
    def leaky(tau: float = 2.0):
        """Leaky unit."""
        return nx.ModelIR("leaky", states=[nx.State("x", 1.0)], parameters=[nx.Parameter("tau", tau)],
                          derivatives={"x": "-x / tau"})

    class Plugin:
        @nx.hookimpl
        def register_neurons(self, register):
            register(leaky, aliases=("leak",))

    host.add_plugin(Plugin(), "leaky-plugin")
    assert nx.get_neuron("leak") is leaky
    model = nx.load_model("leaky", tau=4.0)  # a neuron name works wherever a model does
    assert model.parameter("tau").value == 4.0
    dyn = model.compile()
    assert torch.allclose(dyn.rhs(0.0, torch.tensor([2.0], dtype=torch.float64)), torch.tensor([-0.5], dtype=torch.float64))


def test_hook_register_learning_rules(host):
    class Delta:
        name = "delta"

    class Plugin:
        @nx.hookimpl
        def register_learning_rules(self, register):
            register(Delta, aliases=("widrow-hoff",))

    record = host.add_plugin(Plugin(), "rules")
    assert nx.get_learning_rule("widrow-hoff") is Delta
    assert record.provides == {"learning_rules": ["delta"]}


def test_hook_register_solvers(host, example_plugin):
    from neuroplex_example_plugin.euler import ForwardEuler

    class Plugin:
        @nx.hookimpl
        def register_solvers(self, register):
            register(ForwardEuler, aliases=("fe",))

    host.add_plugin(Plugin(), "solvers")
    assert nx.get_solver("fe") is ForwardEuler
    model = nx.ModelIR("decay", states=[nx.State("x", 1.0)], derivatives={"x": "-x"})
    sol = nx.simulate(model, 1.0, solver="fe", dt=1e-3, t_eval=[0.0, 1.0])
    assert sol.solver == "example-euler" and sol.ok
    assert abs(float(sol["x"][0, -1]) - (1 - 1e-3) ** 1000) < 1e-12  # exactly forward Euler
    with pytest.raises(nx.NeuroplexError, match="solver 'example-euler' \\(plugin 'solvers'\\) does not take bogus; its constructor takes: device, dt, dtype, method"):
        nx.simulate(model, 1.0, solver="fe", bogus=1)
    with pytest.raises(nx.NeuroplexError, match="cannot equilibrate"):
        nx.equilibrate(model, solver="fe")


def test_hook_register_runners(host):
    from neuroplex.plugins.torch_solver import plugin as torch_plugin
    from neuroplex.runners import Runner
    from neuroplex.settings import StepControl

    class Tank:
        """A model kind of its own: a draining tank, run on the torch solver's integrator."""

        kind = "tank"
        name = "tank"

    seen = {}

    def run_tank(model, solver, t_span, *, y0, params, t_eval, inputs, progress):
        seen["control"] = solver.control
        f = lambda t, y: -y  # noqa: E731
        res = solver.integrator()(f, t_span[0], t_span[1], torch.ones(1, 1, dtype=torch.float64),
                                  method="dopri5", control=solver.control, t_eval=t_eval)
        return nx.Solution(ys=res.ys, ts=res.ts, names=["level"], status=res.status, solver=solver.name)

    class Plugin:
        @nx.hookimpl
        def register_runners(self, register):
            register(Runner(kind="tank", solver="torch", run=run_tank))

    host.add_plugin(torch_plugin, "torch")
    record = host.add_plugin(Plugin(), "tanks")
    assert record.provides == {"runners": ["tank@torch"]}
    sol = nx.simulate(Tank(), (0.0, 1.0), solver="torch", rtol=1e-9, atol=0.0, t_eval=[0.0, 1.0])
    assert seen["control"] == StepControl(rtol=1e-9, atol=0.0) and sol.ok
    assert abs(float(sol["level"][0, -1]) - math.exp(-1.0)) < 1e-7
    with pytest.raises(nx.NeuroplexError, match="cannot take a 'tank' model"):
        nx.equilibrate(Tank(), solver="torch")


def test_hook_register_importers(host, tmp_path: Path):
    def read_decay(path: Path) -> nx.ModelIR:
        rate = float(path.read_text().strip())
        return nx.ModelIR(path.stem, states=[nx.State("x", 1.0)], parameters=[nx.Parameter("k", rate)],
                          derivatives={"x": "-k * x"})

    class Plugin:
        @nx.hookimpl
        def register_importers(self, register):
            register(Importer(name="decay-file", suffixes=(".decay",), load=read_decay))

    host.add_plugin(Plugin(), "decay-importer")
    path = tmp_path / "fast.decay"
    path.write_text("3.5\n")
    model = nx.load_model(path, k=2.0)
    assert model.name == "fast" and model.parameter("k").value == 2.0
    other = tmp_path / "model.unknown"
    other.write_text("")
    with pytest.raises(nx.NeuroplexError, match=r"model.unknown: no importer reads '.unknown' files \(importers know: .decay\)"):
        nx.load_model(other)


def test_hook_register_tasks(host):
    def xor_task():
        return torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])

    class Plugin:
        @nx.hookimpl
        def register_tasks(self, register):
            register(xor_task, name="xor")

    host.add_plugin(Plugin(), "tasks")
    data = nx.get_task("xor")()
    assert data.shape == (4, 3) and data[:, 2].tolist() == [0.0, 1.0, 1.0, 0.0]


def test_hook_register_commands(host):
    class Plugin:
        @nx.hookimpl
        def register_commands(self, cli):
            @cli.command()
            @click.argument("name")
            def greet(name):
                """Say hello."""
                click.echo(f"hello {name}")

    host.add_plugin(Plugin(), "greeter")
    group = click.Group("test-cli")
    host.add_commands(group)
    result = CliRunner().invoke(group, ["greet", "neuron"])
    assert result.exit_code == 0 and result.output == "hello neuron\n"


def test_hook_neuroplex_configure(host):
    seen = []

    class Plugin:
        @nx.hookimpl
        def neuroplex_configure(self, config):
            seen.append(dict(config))

    # the host was loaded already: the historic call is replayed to a late plugin
    host.add_plugin(Plugin(), "configured")
    assert seen == [{"strict": True}]


class Recorder:
    def __init__(self):
        self.calls = []

    @nx.hookimpl
    def neuroplex_simulation_start(self, model, solver, options):
        self.calls.append(("start", model.name, solver.name, dict(options)))

    @nx.hookimpl
    def neuroplex_simulation_finish(self, model, solver, solution):
        self.calls.append(("finish", model.name, solver.name, solution.ok))


def test_hook_neuroplex_simulation_start(solver_host):
    rec = Recorder()
    solver_host.add_plugin(rec, "recorder")
    nx.simulate("qif", (0.0, 5.0), solver="example-euler", dt=0.1)
    assert rec.calls[0] == ("start", "qif", "example-euler", {"t_span": (0.0, 5.0), "kind": "simulate"})


def test_hook_neuroplex_simulation_finish(solver_host):
    rec = Recorder()
    solver_host.add_plugin(rec, "recorder")
    sol = nx.simulate("qif", (0.0, 5.0), solver="example-euler", dt=0.1)
    assert [c[0] for c in rec.calls] == ["start", "finish"]
    assert rec.calls[1] == ("finish", "qif", "example-euler", True) and sol.meta["model"] == "qif"
