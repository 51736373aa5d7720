"""The ``epl`` learning rule under the core trainer, and ``neuroplex epl`` commands."""
from __future__ import annotations

import json

import torch
from click.testing import CliRunner

import neuroplex as nx
from neuroplex.plugins.epl.model import EXAMPLE
from neuroplex.plugins.epl.rule import EPLConfig, EPLRule
from neuroplex.plugins.epl.tasks import logic_task, regression_task
from neuroplex.trainer import Trainer

FAST = dict(n_nodes=6, n_reactions=4, explore_steps=8, relax_steps=40)


def test_epl_rule_trains_and_resumes_under_core_trainer(tmp_path):
    assert isinstance(nx.get_learning_rule("epl")(), EPLRule)
    data = logic_task("and")
    rule = EPLRule(EPLConfig(**FAST))
    hist = Trainer(rule, data, epochs=1, batch_size=4, seed=1, run_dir=tmp_path, progress=False, plot=False).fit()
    m = hist[-1]
    assert {"loss", "bp_likeness", "test_loss"} <= set(m)
    assert -1.0 <= m["bp_likeness"] <= 1.0 and m["test_loss"] >= 0
    # the learned state moved (the learning signal is the movement between equilibria) and stays positive
    z1 = rule.z.clone()
    assert bool((z1[:6] > 0).all())
    again = EPLRule(EPLConfig(**FAST))
    hist2 = Trainer(again, data, epochs=2, batch_size=4, seed=1, run_dir=tmp_path, resume=True, progress=False,
                    plot=False).fit()
    assert len(hist2) == 2 and hist2[0] == hist[0]


def test_epl_rule_bp_likeness_is_cosine_of_equilibrium_move_and_gradient():
    data = regression_task(n=3)
    rule = EPLRule(EPLConfig(n_inputs=1, **FAST))
    rule.init(0, torch.device("cpu"))
    z0 = rule.z.clone()
    x, y = data.x_train[:1], data.y_train[:1]
    zp = z0.clone().requires_grad_(True)
    o, _ = rule.explore(rule.inject(zp, x[0]))
    (g,) = torch.autograd.grad(((o - y[0]) ** 2).mean(), zp)
    m = rule.train_batch(x, y)
    expected = torch.nn.functional.cosine_similarity(z0 - rule.z, g, dim=0)
    assert abs(m["bp_likeness"] - float(expected)) < 1e-9


def test_epl_cli_info_import_train(tmp_path):
    from neuroplex.cli import build_cli

    sysfile = tmp_path / "s.json"
    sysfile.write_text(json.dumps(EXAMPLE))
    runner = CliRunner()
    cli = build_cli()
    out = runner.invoke(cli, ["epl", "info", str(sysfile), "--draw", str(tmp_path / "ds.png")])
    assert out.exit_code == 0, out.output
    assert "3 nodes" in out.output and "x* =" in out.output
    assert (tmp_path / "ds.png").stat().st_size > 0 and (tmp_path / "ds_trajectory.png").stat().st_size > 0
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    out = runner.invoke(cli, ["epl", "info", str(bad)])
    assert out.exit_code != 0 and "bad.json" in out.output
    antimony = __import__("pytest").importorskip("antimony")
    antimony.clearPreviousLoads()
    antimony.loadAntimonyString("species A, B; A = 1; B = 0; J: A -> B; k * A - k2 * B; k = 1; k2 = 0.5")
    model = tmp_path / "m.xml"
    model.write_text(antimony.getSBMLString(antimony.getMainModuleName()))
    out = runner.invoke(cli, ["epl", "import", str(model), "--no-compare", "--export", str(tmp_path / "o.xml"), "--t1", "5"])
    assert out.exit_code == 0, out.output
    assert "consistency" in out.output and "imported again" in out.output
    out = runner.invoke(cli, ["epl", "train", "--epochs", "1", "--nodes", "5", "--reactions", "3"])
    assert out.exit_code == 0, out.output
    rec = json.loads(out.output.strip().splitlines()[-1])
    assert {"loss_before", "loss_after", "mean_bp_likeness"} <= set(rec)
