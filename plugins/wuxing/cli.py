"""``neuroplex wuxing`` commands: fixed-point training of one neuron, network training."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from neuroplex.errors import NeuroplexError

from .fixedpoint import CONVENTIONS, PARAMETERS, plot_fixed_point, train_fixed_point
from .neuron import element_names
from neuroplex.datasets import check_split_seed, load_dataset
from neuroplex.trainer import Trainer, start_run_dir
from .rule import WuxingRule


def _numbers(text: str, what: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise NeuroplexError(f"--{what}: expected numbers separated by spaces or commas, got {text!r}") from None


def _ks(text: str, what: str) -> float | list[float]:
    vals = _numbers(text, what)
    return vals[0] if len(vals) == 1 else vals


def add_commands(cli: click.Group) -> None:
    """Attach the ``wuxing`` group to the ``neuroplex`` command line."""

    @cli.group()
    def wuxing() -> None:
        """Wuxing five-element neurons: fixed-point training and network training."""

    @wuxing.command("fixed-point")
    @click.option("--target", default="0.8 0.6 1.5 1.0 0.9", show_default=True,
                  help="Target fixed point, one value per element (J S M H T for five).")
    @click.option("--param", type=click.Choice(PARAMETERS), default="K3", show_default=True, help="Parameter adjusted.")
    @click.option("--convention", type=click.Choice(CONVENTIONS), default="next", show_default=True,
                  help="Neighbour indexing: prev (eq 2.2 literal) or next (the reversed equation's).")
    @click.option("--k1", default="1.0", show_default=True, help="K1: one value or one per element.")
    @click.option("--k2", default="0.5", show_default=True, help="K2: one value or one per element.")
    @click.option("--k3", default="0.5", show_default=True, help="K3: one value or one per element.")
    @click.option("--max-adjustments", type=int, default=40, show_default=True)
    @click.option("--tol", type=float, default=1e-2, show_default=True, help="Max |E - E*| to stop.")
    @click.option("--relax-time", type=float, default=100.0, show_default=True, help="Relaxation time per adjustment.")
    @click.option("--dt", type=float, default=0.1, show_default=True, help="Heun step.")
    @click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="Write the element trajectories (framework paper Fig. 2 style) as PNG.")
    def fixed_point(target: str, param: str, convention: str, k1: str, k2: str, k3: str, max_adjustments: int,
                    tol: float, relax_time: float, dt: float, plot: Path | None) -> None:
        """Store a target fixed point in one neuron by adjusting K1, K2 or K3 (eq 3.5 / 3.6)."""
        tgt = _numbers(target, "target")
        res = train_fixed_point(tgt, K1=_ks(k1, "k1"), K2=_ks(k2, "k2"), K3=_ks(k3, "k3"), param=param,
                                convention=convention, max_adjustments=max_adjustments, tol=tol,
                                relax_time=relax_time, dt=dt)
        names = element_names(len(tgt))
        click.echo(f"{res.status}: {res.reason}")
        click.echo(f"closed-form {param}: " + " ".join(f"{n}={float(v):.4g}" for n, v in zip(names, res.required)))
        if res.status != "infeasible":
            click.echo(f"adjustments: {res.adjustments}")
            click.echo(f"{param}: " + " ".join(f"{n}={float(v):.4g}" for n, v in zip(names, res.k[param])))
            click.echo("E: " + " ".join(f"{n}={float(v):.4g}" for n, v in zip(names, res.state)))
            if plot is not None:
                plot_fixed_point(res, plot)
                click.echo(f"wrote {plot}")
        if res.status != "converged":
            raise SystemExit(2)

    @wuxing.command()
    @click.option("--config", "config_name", default=None,
                  help="Shipped config (digits, digits_single, digits_match, digits_adder, model1, model2, "
                  "model1_adder) or a JSON file [default: digits_single for k3, digits otherwise].")
    @click.option("--method", type=click.Choice(["k3", "coupling", "mixed"]), default="coupling", show_default=True,
                  help="k3: method 1 (K3); coupling: method 2 (C); mixed: both.")
    @click.option("--wiring", default=None, help="match | fanin:K | adder[:K] [config's].")
    @click.option("--epochs", type=int, default=5, show_default=True)
    @click.option("--batch-size", type=int, default=16, show_default=True, help="Mini-batch (1: online, as the papers).")
    @click.option("--dataset", default="digits", show_default=True,
                  help="digits (fixed split), digits-random or mnist:PATH (IDX folder or .npz).")
    @click.option("--split-seed", type=int, default=0, show_default=True, help="Permutation seed of digits-random.")
    @click.option("--train-samples", type=int, default=None, help="Use only the first N training samples.")
    @click.option("--seed", type=int, default=0, show_default=True, help="Seed of wiring, C init and data order.")
    @click.option("--eta-c", type=float, default=None, help="Method-2 learning rate [config's: 0.3].")
    @click.option("--eta-k3", type=float, default=None, help="Method-1 learning rate [config's: 0.05].")
    @click.option("--mix", default=None, help="Mixed weights 'K3,C' [config's: 1,1].")
    @click.option("--kt", type=float, default=None, help="G2 = atan(kt G1) / kt [config's: 1].")
    @click.option("--t-end", "t_end", type=float, default=None, help="Simulated time T per pass [config's].")
    @click.option("--dt", type=float, default=None, help="Heun step [config's: 0.2].")
    @click.option("--device", default="cpu", show_default=True, help="cpu, cuda or auto.")
    @click.option("--threads", type=int, default=1, show_default=True, help="torch intra-op threads.")
    @click.option("--log-dir", type=click.Path(file_okay=False), default=None,
                  help="Run directory [default: log/wuxing_<config>_<method>_<data>].")
    @click.option("--resume", is_flag=True, help="Continue exactly from the last checkpoint in the log directory.")
    @click.option("--progress/--no-progress", default=True, help="Show the progress bar.")
    def train(config_name: str | None, method: str, wiring: str | None, epochs: int, batch_size: int, dataset: str,
              split_seed: int, train_samples: int | None, seed: int, eta_c: float | None, eta_k3: float | None,
              mix: str | None, kt: float | None, t_end: float | None, dt: float | None, device: str, threads: int,
              log_dir: str | None, resume: bool, progress: bool) -> None:
        """Train a Wuxing network with method 1 (k3), method 2 (coupling) or both (mixed).

        Writes metrics.csv / metrics.json (accuracies, losses, |C|, K3, seconds per epoch),
        checkpoint.pt (exact --resume) and curves.png into the log directory.
        """
        from dataclasses import replace



        check_split_seed(dataset, split_seed)
        data = load_dataset(dataset, seed=split_seed)
        if train_samples is not None:
            if not 1 <= train_samples <= len(data.x_train):
                raise NeuroplexError(f"--train-samples {train_samples}: {data.name} has {len(data.x_train)} "
                                     f"training samples (use 1 to {len(data.x_train)})")
            data = replace(data, x_train=data.x_train[:train_samples], y_train=data.y_train[:train_samples])
        weights = _numbers(mix, "mix") if mix else [None, None]
        if len(weights) != 2:
            raise NeuroplexError(f"--mix: expected two weights 'K3,C', got {mix!r}")
        rule = WuxingRule(config_name, method=method, wiring=wiring, eta_c=eta_c, eta_k3=eta_k3, kt=kt, T=t_end,
                          dt=dt, mix_k3=weights[0], mix_c=weights[1])
        cfg = rule.config
        if cfg.layers[0] != data.n_features or cfg.n_classes < data.n_classes:
            raise NeuroplexError(f"config {cfg.name!r} (layers {cfg.layers}) does not fit {data.name}: it has "
                                 f"{data.n_features} input features and {data.n_classes} classes")
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in dataset.split(":")[0])
        run_dir = Path(log_dir) if log_dir else Path("log") / f"wuxing_{cfg.name}_{method}_{safe}"
        settings: dict[str, Any] = {"dataset": dataset, "split_seed": split_seed, "train_samples": train_samples,
                                    "batch_size": batch_size, "epochs": epochs, "seed": seed, "method": method,
                                    "device": device, "config": cfg.to_dict()}
        start_run_dir(run_dir, settings, resume=resume)
        trainer = Trainer(rule, data, epochs=epochs, batch_size=batch_size, seed=seed, device=device,
                          run_dir=run_dir, resume=resume, progress=progress, config=settings, threads=threads)
        history = trainer.fit()
        summary = rule.network.summary()
        click.echo(f"{cfg.name}: layers {summary['layers']}, links {summary['links']}, link ratio (LR) "
                   + ", ".join(f"{r:.4g}" for r in summary["link_ratio"]))
        if history:
            last = history[-1]
            click.echo(f"epoch {last['epoch']}: train accuracy {last['train_accuracy']:.4f}, "
                       f"test accuracy {last['test_accuracy']:.4f}; results in {run_dir}")
