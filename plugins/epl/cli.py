"""``neuroplex epl`` commands: ``info`` (a system description), ``import`` (an SBML model, with
the consistency and fidelity report), ``train`` (the ``epl`` rule on a small task)."""
from __future__ import annotations

import json
from pathlib import Path

import click
from .dynamics import relax as do_relax
from .rds import build
from .draw import draw_system, plot_trajectory
from .sbml_import import from_sbml
from .fidelity import compare_with_roadrunner
from .fidelity import export_roundtrip
from neuroplex.trainer import Trainer
from .rule import EPLConfig, EPLRule
from .tasks import get_task
from .evolve_cli import add_evolve_command


def add_commands(cli: click.Group) -> None:
    """Attach the ``epl`` group to the ``neuroplex`` command line."""

    @cli.group()
    def epl() -> None:
        """Equilibrium Point Learning: the energy DS, SBML import, learning between equilibria."""

    add_evolve_command(epl)

    @epl.command()
    @click.argument("system", type=click.Path(exists=True, dir_okay=False))
    @click.option("--relax/--no-relax", default=True, show_default=True, help="Also find the equilibrium.")
    @click.option("--draw", type=click.Path(dir_okay=False), default=None,
                  help="Draw the system (paper style) to this PNG; its energy/state trajectories go beside it.")
    def info(system: str, relax: bool, draw: str | None) -> None:
        """Nodes, reactions, flows and the equilibrium of a JSON/TOML system description."""

        r = build(system)
        s = r.system
        click.echo(f"{system}: {s.n} nodes, {s.e} edges ({r.kinds.count('reaction')} reactions, "
                   f"{r.kinds.count('transport')} transport); flows: {', '.join(s.flows.names())}")
        click.echo(f"inputs: {[r.node_names[i] for i in r.inputs]}  outputs: {[r.node_names[i] for i in r.outputs]}")
        if relax:
            sol = do_relax(s, tol=1e-9)
            x = sol.ys[0, :s.n]
            click.echo(f"equilibrium (residual {float(sol.stats['residual'][0]):.2g}, "
                       f"{int(sol.stats['iterations'][0])} steps), H = {float(s.energy(x, sol.ys[0, s.n:])):.6g}")
            for name, v in zip(r.node_names, x.tolist()):
                click.echo(f"  {name:20s} x* = {v:.6g}")
        if draw:

            out = draw_system(r, draw)
            traj = plot_trajectory(r, Path(draw).with_name(Path(draw).stem + "_trajectory.png"))
            click.echo(f"wrote {out} and {traj}")

    @epl.command(name="import")
    @click.argument("model", type=click.Path(exists=True, dir_okay=False))
    @click.option("--compare/--no-compare", default=True, show_default=True,
                  help="Compare the DS with roadrunner on the original file.")
    @click.option("--t1", type=float, default=100.0, show_default=True, help="End of the comparison span.")
    @click.option("--export", "export_path", type=click.Path(dir_okay=False), default=None,
                  help="Write the DS as SBML here (and check it reads back).")
    @click.option("--strict", is_flag=True, help="Refuse networks that need an approximation.")
    def import_(model: str, compare: bool, t1: float, export_path: str | None, strict: bool) -> None:
        """Import an SBML model into the EPL energy DS and report consistency and fidelity."""

        system, report = from_sbml(model, strict=strict)
        click.echo(report.text())
        if compare:

            cmp = compare_with_roadrunner(model, system, report, t1=t1)
            click.echo(f"vs roadrunner over 0..{t1:g}: max relative error {cmp['max_rel_error']:.3g} "
                       f"({cmp['species']}); within 1e-3: {'yes' if cmp['ok'] else 'NO'}")
        if export_path:

            rt = export_roundtrip(system, report, export_path, t1=t1)
            click.echo(f"exported {export_path} (reactions); imported again, max relative difference "
                       f"{rt['relative']:.3g} ({rt['species']})")

    @epl.command()
    @click.option("--task", default="logic-and", show_default=True,
                  help="logic-and | logic-or | logic-xor | logic-nand | regression-1d")
    @click.option("--epochs", type=int, default=5, show_default=True)
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--nodes", type=int, default=8, show_default=True)
    @click.option("--reactions", type=int, default=6, show_default=True)
    @click.option("--log-dir", type=click.Path(file_okay=False), default=None,
                  help="Metrics, checkpoint and curves (resumable).")
    @click.option("--resume", is_flag=True)
    def train(task: str, epochs: int, seed: int, nodes: int, reactions: int, log_dir: str | None,
              resume: bool) -> None:
        """Train the ``epl`` rule with the core trainer; prints loss before/after and BP-likeness."""


        data = get_task(task)
        cfg = EPLConfig(n_inputs=data.x_train.shape[1], n_outputs=data.y_train.shape[1], n_nodes=nodes,
                        n_reactions=reactions)
        rule = EPLRule(cfg)
        rule.init(seed, "cpu")
        before = rule.evaluate(data.x_test, data.y_test)["loss"]
        trainer = Trainer(rule, data, epochs=epochs, batch_size=len(data.x_train), seed=seed,
                          run_dir=Path(log_dir) if log_dir else None, resume=resume, progress=False,
                          plot=log_dir is not None)
        hist = trainer.fit()
        after = hist[-1]["test_loss"] if hist else before
        likeness = sum(h["bp_likeness"] for h in hist) / max(len(hist), 1)
        click.echo(json.dumps({"task": task, "seed": seed, "loss_before": before, "loss_after": after,
                               "mean_bp_likeness": likeness, "learned": after < before}))
