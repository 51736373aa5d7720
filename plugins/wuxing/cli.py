"""``neuroplex wuxing`` commands: fixed-point training of one neuron, network training."""
from __future__ import annotations

from pathlib import Path

import click

from neuroplex.errors import NeuroplexError

from .fixedpoint import CONVENTIONS, PARAMETERS, plot_fixed_point, train_fixed_point
from .neuron import element_names


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
