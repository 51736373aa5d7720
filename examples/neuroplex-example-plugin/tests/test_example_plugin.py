"""The example plugin's own tests, written as a plugin author would: the plugin is loaded
beside neuroplex's built-ins with one call (``neuroplex.testing.with_builtins``) and every hook
is checked through neuroplex's public API and CLI."""
from __future__ import annotations

import math

import pytest
import torch
from click.testing import CliRunner

import neuroplex as nx
from neuroplex.errors import SolverError
from neuroplex.testing import neuroplex_cli, with_builtins
from neuroplex.trainer import Trainer

PLUGIN = "neuroplex_example_plugin.plugin"


@pytest.fixture
def host():
    with with_builtins(PLUGIN) as h:
        yield h


def qif_times(current: float, tau=10.0, a=0.2, v_rest=-65.0, v_c=-50.0, v_peak=30.0, v_reset=-70.0):
    """(first spike time from v_rest, inter-spike interval) in ms, from the closed form of
    tau dv/dt = a (v - m)^2 + k with m = (v_rest + v_c) / 2, k = I - a (v_c - v_rest)^2 / 4 > 0."""
    m, k = (v_rest + v_c) / 2, current - a * (v_c - v_rest) ** 2 / 4
    s = math.sqrt(a / k)

    def time(v_from: float) -> float:
        return tau * (math.atan((v_peak - m) * s) - math.atan((v_from - m) * s)) / math.sqrt(a * k)

    return time(v_rest), time(v_reset)


def test_every_hook_is_registered(host):
    record = host.records[PLUGIN]
    assert record.status == "ok"
    assert record.provides == {"neurons": ["qif"], "learning_rules": ["example-delta"], "solvers": ["example-euler"],
                               "tasks": ["blobs"]}
    assert host.get("neurons", "quadratic-if").name == "qif"
    assert host.get("learning_rules", "widrow-hoff").name == "example-delta"
    assert "torch" in host.names("solvers")  # the built-ins are there too


def test_solver_events_match_the_closed_form_qif(host):
    currents = [5.0, 20.0, 40.0]  # below threshold (11.25), and two firing regimes
    sol = nx.simulate("qif", (0.0, 60.0), solver="example-euler", dt=0.01,
                      inputs=torch.tensor(currents, dtype=torch.float64)[:, None], n_points=5)
    assert sol.ok and sol.ys.shape == (3, 5, 1) and sol.spikes.names == ["spike"]
    assert len(sol.spikes.for_sample(0)[1]) == 0
    for b, current in enumerate(currents[1:], start=1):
        first, isi = qif_times(current)
        _, times = sol.spikes.for_sample(b)
        assert times[0] == pytest.approx(first, rel=5e-3)  # forward Euler, dt = 0.01 ms: O(dt) error
        assert (times[1:] - times[:-1]) == pytest.approx([isi] * (len(times) - 1), rel=5e-3)
        assert len(times) == 1 + int((60.0 - first) / isi)


def test_solver_broadcasts_params_and_y0(host):
    model = nx.load_model("qif")
    params = model.compile().default_params().repeat(4, 1)
    params[:, 0] = torch.tensor([5.0, 10.0, 20.0, 40.0])  # tau
    sol = nx.simulate(model, (0.0, 10.0), solver="example-euler", dt=0.01, params=params,
                      y0=torch.tensor([-60.0], dtype=torch.float64))
    assert sol.ys.shape == (4, 2, 1) and (sol.ys[:, 0, 0] == -60.0).all()
    final = sol.ys[:, -1, 0]
    assert (final[:-1] != final[1:]).all()  # each sample used its own tau


def test_solver_refuses_refractory_models_and_unknown_settings(host):
    from neuroplex_example_plugin.euler import ForwardEuler

    lif = nx.ModelIR("lif-ref", states=[nx.State("v", 0.0)], derivatives={"v": "1 - v"},
                     events=[nx.Event("spike", trigger="v > 0.5", assignments={"v": "0"})], refractory="0.1")
    with pytest.raises(SolverError, match="solver 'example-euler' does not support refractory, which model "
                                          r"'lif-ref' needs \(the solver supports: events, spikes\)"):
        nx.simulate(lif, (0.0, 1.0), solver="example-euler")  # the host refuses it from `supports`
    with pytest.raises(SolverError, match="does not implement refractory periods, and model 'lif-ref' has one"):
        ForwardEuler().simulate(lif, (0.0, 1.0))  # and so does the solver, called directly
    with pytest.raises(ValueError, match="one method, 'euler'"):
        nx.simulate("qif", (0.0, 1.0), solver="example-euler", method="rk4")


def test_task_is_seeded_and_split(host):
    data = nx.get_task("blobs")(seed=3)
    again = nx.get_task("blobs")(seed=3)
    assert torch.equal(data.x_train, again.x_train) and not torch.equal(data.x_train, nx.get_task("blobs")(seed=4).x_train)
    assert data.x_train.shape == (120, 2) and data.x_test.shape == (60, 2) and data.n_classes == 3
    assert sorted(data.y_test.tolist()) == [0] * 20 + [1] * 20 + [2] * 20
    with pytest.raises(ValueError, match="n_classes >= 2"):
        nx.get_task("blobs")(n_classes=1)


def test_learning_rule_trains_on_the_task_over_seeds(host, tmp_path):
    accuracies = []
    for seed in range(3):
        data = nx.get_task("blobs")(seed=seed)
        rule = nx.get_learning_rule("example-delta")(data.n_features, data.n_classes)
        history = Trainer(rule, data, epochs=4, seed=seed, progress=False, plot=False).fit()
        assert history[-1]["loss"] < history[0]["loss"]
        accuracies.append(history[-1]["test_accuracy"])
    accuracies.sort()
    assert accuracies[1] >= 0.85 and accuracies[0] >= 0.6, accuracies  # median and worst over 3 seeds


def test_learning_rule_resumes_exactly(host, tmp_path):
    data = nx.get_task("blobs")(seed=0)

    def run(epochs, resume):
        rule = nx.get_learning_rule("example-delta")(data.n_features, data.n_classes)
        Trainer(rule, data, epochs=epochs, seed=0, run_dir=tmp_path / ("r" if resume else "f"), resume=resume,
                progress=False, plot=False).fit()
        return rule.w

    full = run(3, False)
    run(1, True)
    assert torch.equal(run(3, True), full)


def test_commands_through_the_cli(host, tmp_path):
    result = CliRunner().invoke(neuroplex_cli(), ["example", "fi-curve", "--currents", "5,20", "--t-end", "100"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["I=5        rate=0 Hz", "I=20       rate=50 Hz"]
    result = CliRunner().invoke(neuroplex_cli(), ["example", "train", "--epochs", "3", "--run-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("test accuracy ") and (tmp_path / "metrics.csv").exists()
    assert host.records[PLUGIN].provides["commands"] == ["example"]
