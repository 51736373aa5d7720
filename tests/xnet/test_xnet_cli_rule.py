"""The ``xnet`` learning rule through the trainer, and the ``neuroplex xnet`` commands."""
import numpy as np
from click.testing import CliRunner

from neuroplex.cli import build_cli
from neuroplex.datasets import iris
from neuroplex.host import get_learning_rule
from neuroplex.trainer import Trainer


def test_rule_registered_and_trains_with_checkpoint(tmp_path):
    from neuroplex.plugins.xnet.rule import XNetRule

    assert get_learning_rule("xnet") is XNetRule
    data = iris(seed=0, normalize="zscore")
    rule = XNetRule(data.n_features, data.n_classes, population=4, steps_per_round=8, refit_per_round=2)
    hist = Trainer(rule, data, epochs=1, run_dir=tmp_path, progress=False, plot=False).fit()
    assert hist[-1]["test_accuracy"] > 0.6 and (tmp_path / "metrics.csv").exists()
    rule2 = XNetRule(data.n_features, data.n_classes, population=4, steps_per_round=8, refit_per_round=2)
    hist2 = Trainer(rule2, data, epochs=2, run_dir=tmp_path, resume=True, progress=False, plot=False).fit()
    assert len(hist2) == 2 and rule2.best is not None and hist2[0] == hist[0]
    assert hist2[1]["loss"] <= hist[0]["loss"] + 1e-12  # the best so far is kept across the resume


def test_cli_fit_prints_formula_and_writes_plot(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 2, 20)
    path = tmp_path / "d.csv"
    path.write_text("a,y\n" + "\n".join(f"{v},{2 * v + 1}" for v in a))
    res = CliRunner().invoke(build_cli(), ["xnet", "fit", str(path), "--target", "y", "--max-nodes", "3",
                                        "--time-budget", "5", "--save", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output
    assert "formula:" in res.output and "R^2 (train): 1.0" in res.output
    assert (tmp_path / "d_xnet.png").stat().st_size > 1000 and (tmp_path / "m.json").exists()
    bad = CliRunner().invoke(build_cli(), ["xnet", "fit", str(path), "--target", "zz"])
    assert bad.exit_code != 0 and "no column 'zz'" in bad.output


def test_cli_bench_runs_one_problem():
    res = CliRunner().invoke(build_cli(), ["xnet", "bench", "nguyen", "--problems", "8", "--seeds", "0",
                                        "--time-budget", "10"])
    assert res.exit_code == 0, res.output
    assert "Nguyen-8" in res.output and "1/1" in res.output
    assert "runs at R2 >= 0.99" in res.output  # Table 2
