"""``neuroplex eqprop`` commands: train an energy-based model with Equilibrium Propagation."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from neuroplex.errors import NeuroplexError

from .energies import COSTS, ENERGIES, NONLINEARITIES
from .rule import BETA_SIGNS, OPTIMIZERS, PRESETS


def _numbers(text: str | None, kind: type, what: str) -> tuple | None:
    if text is None:
        return None
    try:
        return tuple(kind(v) for v in text.replace(",", " ").split())
    except ValueError:
        raise NeuroplexError(f"--{what}: expected numbers separated by spaces or commas, got {text!r}") from None


def default_log_dir(energy: str, cost: str, dataset: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in dataset.split(":")[0])
    return Path("log") / f"eqprop_{energy}_{cost}_{safe}"


def add_commands(cli: click.Group) -> None:
    """Attach the ``eqprop`` group to the ``neuroplex`` command line."""

    @cli.group()
    def eqprop() -> None:
        """Equilibrium Propagation (energy-based models trained by EqProp)."""

    @eqprop.command()
    @click.option("--batch-size", type=int, default=20, show_default=True, help="Size of mini-batches during training.")
    @click.option("--c-energy", type=click.Choice(COSTS), default=None,
                  help="Supervised cost on the output layer [preset: squared_error (Hopfield), cross_entropy].")
    @click.option("--dimensions", default="64 100 10", show_default=True,
                  help="Layer sizes, input first, e.g. '784 500 10' (spaces or commas).")
    @click.option("--energy", type=click.Choice(list(ENERGIES)), default="restr_hopfield", show_default=True,
                  help="Type of energy-based model.")
    @click.option("--epochs", type=int, default=15, show_default=True, help="Number of epochs to train.")
    @click.option("--fast-ff-init/--no-fast-ff-init", default=None,
                  help="Start the free phase from a feed-forward pass [preset: on for cond_gaussian].")
    @click.option("--learning-rate", default=None,
                  help="Learning rate, or one per weight layer, e.g. '0.1 0.05' [preset per energy].")
    @click.option("--log-dir", type=click.Path(file_okay=False), default=None,
                  help="Run directory for metrics, checkpoints and the plot [default: log/eqprop_<energy>_<cost>_<data>].")
    @click.option("--nonlinearity", type=click.Choice(list(NONLINEARITIES)), default=None,
                  help="Nonlinearity rho of the free layers [preset: hard_sigmoid (Hopfield), sigmoid].")
    @click.option("--optimizer", type=click.Choice(list(OPTIMIZERS)), default=None,
                  help="Optimizer [preset: sgd (Hopfield), adam].")
    @click.option("--seed", type=int, default=0, show_default=True, help="Seed of python, numpy and torch RNGs.")
    @click.option("--beta", type=float, default=None, help="Nudging strength (> 0) [preset: 1.0].")
    @click.option("--beta-sign", type=click.Choice(BETA_SIGNS), default=None,
                  help="positive, random sign per batch, or centered (+beta and -beta) [preset: centered (Hopfield), positive].")
    @click.option("--step-size", type=float, default=None, help="Relaxation step eps [preset: 0.5 (Hopfield), 0.1].")
    @click.option("--free-steps", type=int, default=None, help="Max free-phase steps [preset: 20].")
    @click.option("--nudged-steps", type=int, default=None, help="Nudged-phase steps [preset: 6 (Hopfield), 20].")
    @click.option("--tol", type=float, default=1e-4, show_default=True,
                  help="Free-phase residual tolerance (max |step| per sample) for early stopping.")
    @click.option("--dataset", default="digits", show_default=True,
                  help="digits (fixed split), digits-random, iris or mnist:PATH (IDX folder or .npz).")
    @click.option("--split-seed", type=int, default=0, show_default=True,
                  help="Seed of the permutation of digits-random / iris (independent of --seed).")
    @click.option("--normalize", type=click.Choice(["none", "zscore"]), default="none", show_default=True,
                  help="Input normalisation (zscore uses training-set statistics).")
    @click.option("--device", default="cpu", show_default=True, help="cpu, cuda or auto.")
    @click.option("--threads", type=int, default=1, show_default=True, help="torch intra-op threads.")
    @click.option("--resume", is_flag=True, help="Continue exactly from the last checkpoint in the log directory.")
    @click.option("--progress/--no-progress", default=True, help="Show the progress bar.")
    def train(batch_size: int, c_energy: str | None, dimensions: str, energy: str, epochs: int,
              fast_ff_init: bool | None, learning_rate: str | None, log_dir: str | None, nonlinearity: str | None,
              optimizer: str | None, seed: int, beta: float | None, beta_sign: str | None, step_size: float | None,
              free_steps: int | None, nudged_steps: int | None, tol: float, dataset: str, split_seed: int, normalize: str,
              device: str, threads: int, resume: bool, progress: bool) -> None:
        """Train an energy-based model with Equilibrium Propagation.

        Writes metrics.csv / metrics.json (per epoch: accuracies, free energy, free-phase
        residual and iterations, saturated hidden units, pinned output units, a stalled flag,
        weight norms, seconds), checkpoint.pt and curves.png into the log directory. Defaults
        are Scellier & Bengio's recipe on digits with centered nudging at beta 1
        (their beta 0.5 with a random sign: --beta 0.5 --beta-sign random).
        """
        from neuroplex.datasets import check_split_seed, load_dataset
        from neuroplex.trainer import Trainer, start_run_dir

        from .rule import EqPropRule

        dims = _numbers(dimensions, int, "dimensions")
        lrs = _numbers(learning_rate, float, "learning-rate")
        check_split_seed(dataset, split_seed)
        data = load_dataset(dataset, seed=split_seed, normalize=normalize)
        if dims[0] != data.n_features or dims[-1] < data.n_classes:
            raise NeuroplexError(f"--dimensions {' '.join(map(str, dims))} do not fit {data.name}: it has "
                                 f"{data.n_features} input features and {data.n_classes} classes")
        rule = EqPropRule(dimensions=dims, energy=energy, nonlinearity=nonlinearity, c_energy=c_energy, beta=beta,
                          beta_sign=beta_sign, step_size=step_size, free_steps=free_steps, nudged_steps=nudged_steps,
                          tol=tol, fast_ff_init=fast_ff_init, optimizer=optimizer, learning_rate=lrs)
        cfg = rule.config
        run_dir = Path(log_dir) if log_dir else default_log_dir(cfg.energy, cfg.c_energy, dataset)
        settings: dict[str, Any] = {"dataset": dataset, "split_seed": split_seed, "normalize": normalize, "batch_size": batch_size,
                                    "epochs": epochs, "seed": seed, "device": device, **_plain(cfg)}
        start_run_dir(run_dir, settings, resume=resume)
        trainer = Trainer(rule, data, epochs=epochs, batch_size=batch_size, seed=seed, device=device,
                          run_dir=run_dir, resume=resume, progress=progress, config=settings, threads=threads)
        history = trainer.fit()
        if history:
            last = history[-1]
            click.echo(f"epoch {last['epoch']}: train accuracy {last['train_accuracy']:.4f}, "
                       f"test accuracy {last['test_accuracy']:.4f}; results in {run_dir}")
            if trainer.stalled:
                click.echo(f"warning: the run looks stalled at epoch {last['epoch']}: {'; '.join(trainer.stalled)} "
                           f"(see 'Stalled runs' in docs/eqprop.md)", err=True)

    @eqprop.command()
    def presets() -> None:
        """Print the defaults each energy uses for options left unset."""
        click.echo(json.dumps(PRESETS, indent=1))


def _plain(cfg: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items() if k != "extra"}
