"""A command plugin: ``neuroplex example ...``, using the plugin's neuron, solver, task and rule."""
from __future__ import annotations

from pathlib import Path

import click
import torch


def firing_rates(currents: list[float], t_end: float = 200.0, dt: float = 0.01) -> list[float]:
    """The QIF neuron's firing rate (spikes per second) for each input current, all currents
    in one batched run of the ``example-euler`` solver (time in ms)."""
    import neuroplex as nx

    sol = nx.simulate("qif", (0.0, t_end), solver="example-euler", dt=dt,
                      inputs=torch.tensor(currents, dtype=torch.float64)[:, None])
    return [len(sol.spikes.for_sample(b)[1]) * 1000.0 / t_end for b in range(len(currents))]


@click.group()
def example() -> None:
    """The example plugin's commands (a QIF f-I curve, a delta-rule run)."""


@example.command("fi-curve")
@click.option("--currents", default="0,5,10,20,40", show_default=True, help="Comma-separated input currents (R I, mV).")
@click.option("--t-end", type=float, default=200.0, show_default=True, help="Simulated time (ms).")
@click.option("--dt", type=float, default=0.01, show_default=True, help="Euler step (ms).")
def fi_curve(currents: str, t_end: float, dt: float) -> None:
    """Print the QIF neuron's firing rate for each input current."""
    values = [float(c) for c in currents.split(",") if c.strip()]
    for current, rate in zip(values, firing_rates(values, t_end, dt)):
        click.echo(f"I={current:<8g} rate={rate:.4g} Hz")


@example.command()
@click.option("--epochs", type=int, default=5, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--run-dir", type=click.Path(path_type=Path), default=None, help="Metrics, checkpoints, curves.")
def train(epochs: int, seed: int, run_dir: Path | None) -> None:
    """Train the delta rule on the blobs task with neuroplex's trainer."""
    import neuroplex as nx
    from neuroplex.trainer import Trainer

    data = nx.get_task("blobs")(seed=seed)
    rule = nx.get_learning_rule("example-delta")(data.n_features, data.n_classes)
    history = Trainer(rule, data, epochs=epochs, seed=seed, run_dir=run_dir, progress=False, plot=False).fit()
    click.echo(f"test accuracy {history[-1]['test_accuracy']:.3f} after {epochs} epochs")
