"""EqProp on fresh seeds: the default recipe learns on every seed, and a stalled run says so.

The bars were set from measurements (docs/eqprop.md, "Stalled runs"): over seeds 0-99 the default
recipe has test accuracy >= 0.79 and train accuracy >= 0.89 after 3 epochs and no pinned output unit;
Scellier & Bengio's nudging (beta 0.5, random sign) collapses on seeds 4, 7, 10, 14 and 16 of 0-19
(train accuracy <= 0.86 after 3 epochs, output units pinned from epoch 1 on).
"""
from __future__ import annotations

import statistics

import pytest
import torch

from neuroplex.datasets import digits
from neuroplex.plugins.eqprop.energies import NONLINEARITIES, make_energy
from neuroplex.plugins.eqprop.rule import EqPropRule
from neuroplex.trainer import Trainer

FAST_SEEDS = (0, 1, 2, 3, 4, 5)
FAST_EPOCHS = 3
FAST_TEST_BAR, FAST_TRAIN_BAR = 0.75, 0.87
REFERENCE_NUDGING = {"beta": 0.5, "beta_sign": "random"}


@pytest.fixture(scope="module")
def data():
    return digits()


def healthy(row: dict[str, float]) -> bool:
    """The fast bar: what a collapsed run fails and a healthy one passes on every seed."""
    return (row["test_accuracy"] >= FAST_TEST_BAR and row["train_accuracy"] >= FAST_TRAIN_BAR
            and not row["stalled"])


@pytest.mark.parametrize("seed", FAST_SEEDS)
def test_default_recipe_learns_on_fresh_seeds(data, seed):
    hist = Trainer(EqPropRule(), data, epochs=FAST_EPOCHS, seed=seed, progress=False, plot=False).fit()
    last = hist[-1]
    assert healthy(last), last
    assert last["train_pinned_outputs"] == 0 and last["train_saturated"] < 0.5


def test_reference_nudging_collapse_is_flagged(data, capsys, monkeypatch):
    """Seed 10 with beta 0.5 and a random sign: output units pinned at a bound of the hard
    sigmoid learn nothing. The metrics, the progress bar and a warning say so, and the fast
    bar fails; the default recipe on the same seed passes it."""
    monkeypatch.setenv("NEUROPLEX_PROGRESS", "1")  # draw the bar although pytest's stderr is no terminal
    with pytest.warns(RuntimeWarning, match="stalled: 2 output units pinned"):
        hist = Trainer(EqPropRule(**REFERENCE_NUDGING), data, epochs=FAST_EPOCHS, seed=10, plot=False).fit()
    assert all(row["stalled"] == 1.0 and row["train_pinned_outputs"] >= 1 for row in hist)
    assert not healthy(hist[-1])
    assert "STALLED=2 output units pinned" in capsys.readouterr().err
    fixed = Trainer(EqPropRule(), data, epochs=FAST_EPOCHS, seed=10, progress=False, plot=False).fit()
    assert healthy(fixed[-1]), fixed[-1]


def test_pinned_output_units_are_counted(data):
    """An output unit driven far below 0 (silent on its own class) or far above 1 (on for
    every class) is pinned: the nudge cannot move it."""
    rule = EqPropRule(dtype="float64")
    torch.manual_seed(0)
    rule.init(0, "cpu")
    x, y = data.x_train[:400], data.y_train[:400]
    assert rule.evaluate(x, y)["pinned_outputs"] == 0
    with torch.no_grad():
        rule.params[3][2] = -5.0  # output unit 2: drive below -beta on every sample
        rule.params[3][7] = 5.0   # output unit 7: drive above 1 + beta on every sample
    metrics = rule.evaluate(x, y)
    assert metrics["pinned_outputs"] == 2
    counts = rule.pin_counts(x.double(), torch.nn.functional.one_hot(y, 10).double(), rule.free_phase(x.double())[0])
    assert counts[0, 2, 2] == counts[0, 0, 2] and counts[1, 2, 7] == counts[1, 0, 7]  # every sample of the group
    assert rule.stall_reasons({"train_pinned_outputs": 2.0, "train_saturated": 0.6}) == [
        "2 output units pinned", "60% hidden units saturated"]
    assert rule.stall_reasons({"train_pinned_outputs": 0.0, "train_saturated": 0.1}) == []


@pytest.mark.parametrize("nonlin", list(NONLINEARITIES))
def test_saturated_marks_the_flat_parts_of_rho(nonlin):
    energy = make_energy("restr_hopfield", (2, 3, 2), nonlin)
    u = torch.tensor([-20.0, -0.5, 0.0, 0.5, 1.0, 20.0], dtype=torch.float64)
    flat = energy.saturated(u).tolist()
    expected = {"hard_sigmoid": [True, True, True, False, True, True],
                "relu": [True, True, False, False, False, False],
                "leaky_relu": [False] * 6,
                "sigmoid": [True, False, False, False, False, True],
                "tanh": [True, False, False, False, False, True]}[nonlin]
    assert flat == expected


def test_cli_warns_when_the_run_stalls(tmp_path):
    from click.testing import CliRunner

    from neuroplex.cli import build_cli

    args = ["eqprop", "train", "--no-progress", "--epochs", "1", "--seed", "10", "--beta", "0.5", "--beta-sign",
            "random", "--log-dir", str(tmp_path / "run")]
    with pytest.warns(RuntimeWarning):
        res = CliRunner().invoke(build_cli(), args)
    assert res.exit_code == 0, res.output
    assert "warning: the run looks stalled at epoch 1: 2 output units pinned" in res.output


@pytest.mark.slow
def test_default_recipe_over_twenty_seeds(data):
    """The issue's target: seeds 0-19, 10 epochs, fixed split: >= 19 of 20 at >= 0.86 test
    accuracy, none below 0.80, median >= 0.88 (measured: 20/20, worst 0.867, median 0.886)."""
    tests = []
    for seed in range(20):
        hist = Trainer(EqPropRule(), data, epochs=10, seed=seed, progress=False, plot=False).fit()
        tests.append(hist[-1]["test_accuracy"])
        assert not hist[-1]["stalled"], (seed, hist[-1])
    assert sum(t >= 0.86 for t in tests) >= 19, tests
    assert min(tests) >= 0.80 and statistics.median(tests) >= 0.88, tests
