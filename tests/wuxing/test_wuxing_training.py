"""Methods 1, 2 and mixed through the core Trainer: learning, exact resume, the CLI."""
from dataclasses import replace

import pytest
import torch
from click.testing import CliRunner

import neuroplex as nx
from neuroplex.cli import build_cli
from neuroplex.datasets import load_dataset
from neuroplex.trainer import Trainer, load_checkpoint


@pytest.fixture(scope="module")
def small_digits():
    data = load_dataset("digits")
    return replace(data, x_train=data.x_train[:320], y_train=data.y_train[:320],
                   x_test=data.x_test[:120], y_test=data.y_test[:120])


def make_rule(name, **changes):
    return nx.get_host().get("learning_rules", name).obj(**changes)


def test_rules_are_registered_and_method2_learns(small_digits):
    rule = make_rule("wuxing-coupling", config="digits")
    hist = Trainer(rule, small_digits, epochs=2, batch_size=16, seed=0, progress=False, plot=False).fit()
    assert rule.name == "wuxing-coupling"
    assert hist[-1]["train_accuracy"] > 0.5 and hist[-1]["test_accuracy"] > 0.4  # chance is 0.1


def test_method1_changes_only_k3_and_mixed_changes_both(small_digits):
    for name, k3_moves, c_moves in (("wuxing-k3", True, False), ("wuxing-mixed", True, True)):
        rule = make_rule(name, config="digits", layers=[64, 16, 30], out_group=3)
        rule.init(0, "cpu")
        net = rule.network
        k3, c = net.K3.clone(), net.C.clone()
        rule.train_batch(small_digits.x_train[:16], small_digits.y_train[:16])
        assert bool((net.K3 != k3).any()) == k3_moves and bool((net.C != c).any()) == c_moves
        assert torch.all(net.K3[:64] == k3[:64])  # input layer K3 fixed by default


def test_resume_is_exact(small_digits, tmp_path):
    data = replace(small_digits, x_train=small_digits.x_train[:96], y_train=small_digits.y_train[:96])
    kw = dict(batch_size=16, seed=3, progress=False, plot=False)
    full = Trainer(make_rule("wuxing-mixed", config="digits", layers=[64, 16, 30], out_group=3), data, epochs=2,
                   run_dir=tmp_path / "a", **kw)
    full.fit()
    Trainer(make_rule("wuxing-mixed", config="digits", layers=[64, 16, 30], out_group=3), data, epochs=1,
            run_dir=tmp_path / "b", **kw).fit()
    resumed = Trainer(make_rule("wuxing-mixed", config="digits", layers=[64, 16, 30], out_group=3), data, epochs=2,
                      run_dir=tmp_path / "b", resume=True, **kw)
    resumed.fit()
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    for key in ("C", "K3", "rest_f", "rest_b", "src", "dst"):
        assert torch.equal(a["rule"]["net"][key], b["rule"]["net"][key]), key
    strip = lambda h: [{k: v for k, v in row.items() if k not in ("seconds", "cpu_seconds")} for row in h]  # noqa: E731
    assert strip(full.history) == strip(resumed.history)


def test_train_command_writes_run_files_and_resumes(tmp_path):
    log = tmp_path / "run"
    config = tmp_path / "small.json"
    config.write_text('{"name": "small", "layers": [64, 16, 10], "T": 10.0}')
    args = ["wuxing", "train", "--config", str(config), "--wiring", "adder:4", "--method", "coupling", "--train-samples",
            "32", "--batch-size", "16", "--log-dir", str(log), "--no-progress"]
    res = CliRunner().invoke(build_cli(), args + ["--epochs", "1"])
    assert res.exit_code == 0, res.output
    assert "link ratio (LR)" in res.output and "epoch 1:" in res.output
    assert {"metrics.csv", "metrics.json", "checkpoint.pt", "curves.png", "config.json"} <= {p.name for p in log.iterdir()}
    res = CliRunner().invoke(build_cli(), args + ["--epochs", "1"])
    assert res.exit_code != 0 and "already holds a run" in res.output
    res = CliRunner().invoke(build_cli(), args + ["--epochs", "2", "--resume"])
    assert res.exit_code == 0 and "epoch 2:" in res.output
    assert len((log / "metrics.csv").read_text().strip().splitlines()) == 3
    res = CliRunner().invoke(build_cli(), ["wuxing", "train", "--config", "model1", "--epochs", "1", "--log-dir",
                                           str(tmp_path / "m1"), "--no-progress"])
    assert res.exit_code != 0 and "does not fit digits" in res.output


def test_lr_decay_shrinks_later_steps(small_digits):
    rule = make_rule("wuxing-coupling", config="digits", layers=[64, 16, 30], out_group=3, lr_decay=1e6)
    rule.init(0, "cpu")
    x, y = small_digits.x_train[:16], small_digits.y_train[:16]
    c0 = rule.network.C.clone()
    rule.train_batch(x, y)  # update 0: full rate
    c1 = rule.network.C.clone()
    rule.train_batch(x, y)  # update 1: rate / (1 + 1e6)
    assert float((c1 - c0).abs().max()) > 1e-3
    assert float((rule.network.C - c1).abs().max()) < 1e-6 * float((c1 - c0).abs().max()) * 10


def test_per_layer_rates_scale_each_layer_pairs_step(small_digits):
    x, y = small_digits.x_train[:16], small_digits.y_train[:16]
    steps = []
    for layers_eta in ([1.0, 1.0], [2.0, 0.0]):
        rule = make_rule("wuxing-coupling", config="digits", layers=[64, 16, 30], out_group=3, eta_c_layers=layers_eta)
        rule.init(0, "cpu")
        c0 = rule.network.C.clone()
        rule.train_batch(x, y)
        steps.append(rule.network.C - c0)
    first = rule.network.link_layer == 0
    assert float(steps[0][first].abs().max()) > 1e-4 and float(steps[0][~first].abs().max()) > 1e-4
    assert torch.allclose(steps[1][first], 2 * steps[0][first], atol=1e-6)
    assert torch.all(steps[1][~first] == 0)
    with pytest.raises(nx.NeuroplexError, match="eta_c_layers"):
        make_rule("wuxing-coupling", config="digits", eta_c_layers=[1.0, 1.0, 1.0])


def test_zscore_readout_tracks_training_outputs_and_resumes(small_digits, tmp_path):
    rule = make_rule("wuxing-k3", config="digits", layers=[64, 16, 30], out_group=3, readout_norm="zscore", norm_momentum=0.5)
    rule.init(0, "cpu")
    net = rule.network
    outs = []
    for i in range(2):
        x = small_digits.x_train[16 * i:16 * (i + 1)]
        outs.append(net.output(net.forward(x)))
        rule.train_batch(x, small_digits.y_train[16 * i:16 * (i + 1)])
    mean = 0.5 * outs[0].mean(0) + 0.5 * outs[1].mean(0)
    var = 0.5 * outs[0].var(0, unbiased=False) + 0.5 * outs[1].var(0, unbiased=False)
    assert torch.allclose(net.out_mean, mean, atol=1e-6) and torch.allclose(net.out_var, var, atol=1e-6)
    out = outs[1]
    assert torch.allclose(net.decision(out), (out - mean) / var.sqrt(), atol=1e-4)
    state = rule.state_dict()
    other = make_rule("wuxing-k3", config="digits", layers=[64, 16, 30], out_group=3, readout_norm="zscore", norm_momentum=0.5)
    other.init(1, "cpu")
    other.load_state_dict(state)
    assert torch.equal(other.network.out_mean, net.out_mean) and other.network.out_seen


def test_per_layer_k3_rates_scale_each_layers_step(small_digits):
    x, y = small_digits.x_train[:16], small_digits.y_train[:16]
    steps = []
    for factors in ([1.0, 1.0, 1.0], [1.0, 3.0, 0.0]):
        rule = make_rule("wuxing-k3", config="digits", layers=[64, 16, 30], out_group=3, eta_k3_layers=factors)
        rule.init(0, "cpu")
        k0 = rule.network.K3.clone()
        rule.train_batch(x, y)
        steps.append(torch.log(rule.network.K3 / k0))
    assert float(steps[0][64:80].abs().max()) > 1e-6 and float(steps[0][80:].abs().max()) > 1e-6
    assert torch.allclose(steps[1][64:80], 3 * steps[0][64:80], rtol=1e-3, atol=1e-7)
    assert torch.all(steps[1][80:] == 0) and torch.all(steps[1][:64] == 0)
    with pytest.raises(nx.NeuroplexError, match="eta_k3_layers"):
        make_rule("wuxing-k3", config="digits", eta_k3_layers=[1.0, 1.0])


def test_each_method_trains_its_default_config_and_a_bad_method_is_named():
    from neuroplex.errors import NeuroplexError
    from neuroplex.plugins.wuxing.rule import WuxingRule, default_config

    assert WuxingRule(method="k3").config.name == default_config("k3") == "digits_single"
    assert WuxingRule(method="coupling").config.name == default_config("coupling") == "digits"
    assert WuxingRule(method="mixed").config.name == "digits"
    assert WuxingRule("digits", method="k3").config.name == "digits"
    with pytest.raises(NeuroplexError, match="hebbian"):
        default_config("hebbian")
