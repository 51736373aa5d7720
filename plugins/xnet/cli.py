"""``neuroplex xnet`` commands: ``fit`` a CSV column as a formula, ``bench nguyen``."""
from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from neuroplex.errors import NeuroplexError

from .library import DEFAULT_LIBRARY
from .estimators import XNetRegressor
from .persist import save
from .bench import parse_ids, print_table, run_bench, table2
from neuroplex.trainer import atomic_write_bytes


def read_csv(path: str, target: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Numeric CSV with a header; returns (X, y, feature names). Clear errors name the problem."""
    import csv

    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if len(rows) < 3:
        raise NeuroplexError(f"{path}: needs a header row and at least two data rows")
    header = [h.strip() for h in rows[0]]
    if target not in header:
        raise NeuroplexError(f"{path}: no column {target!r} (columns: {', '.join(header)})")
    for line, r in enumerate(rows[1:], start=2):
        if r and len(r) != len(header):
            raise NeuroplexError(f"{path}: line {line} has {len(r)} values, the header {len(header)} columns")
    try:
        data = np.array([[float(v) for v in r] for r in rows[1:] if r], dtype=float)
    except ValueError as e:
        raise NeuroplexError(f"{path}: non-numeric value ({e})") from None
    j = header.index(target)
    names = [h for i, h in enumerate(header) if i != j]
    return np.delete(data, j, axis=1), data[:, j], names


def add_commands(cli: click.Group) -> None:
    """Attach the ``xnet`` group to the ``neuroplex`` command line."""

    @cli.group()
    def xnet() -> None:
        """X-Net symbolic regression (tree networks trained by Alternating Backpropagation)."""

    @xnet.command("fit")
    @click.argument("data", type=click.Path(exists=True, dir_okay=False))
    @click.option("--target", required=True, help="Column to predict.")
    @click.option("--library", default=",".join(DEFAULT_LIBRARY), show_default=True,
                  help="Activations, comma separated (x = the inputs).")
    @click.option("--max-nodes", type=int, default=15, show_default=True)
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--time-budget", type=float, default=60.0, show_default=True, help="CPU seconds.")
    @click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
                  help="Fit/extrapolation plot [default: DATA stem + '_xnet.png'].")
    @click.option("--save", "save_path", type=click.Path(dir_okay=False), default=None, help="Write the model (JSON).")
    def fit_cmd(data, target, library, max_nodes, seed, time_budget, plot_path, save_path) -> None:
        """Fit a formula for TARGET from the other columns of the CSV file DATA."""
        import pandas as pd


        X, y, names = read_csv(data, target)
        lib = tuple(s.strip() for s in library.split(",") if s.strip())
        model = XNetRegressor(library=lib, max_nodes=max_nodes, random_state=seed, time_budget=time_budget)
        model.fit(pd.DataFrame(X, columns=names), y)
        r2 = model.score(pd.DataFrame(X, columns=names), y)
        click.echo(f"formula: {model.text()}")
        click.echo(f"R^2 (train): {r2:.6f}   nodes: {model.n_nodes_}   parameters: {model.n_params_}")
        plot_path = plot_path or str(Path(data).with_name(Path(data).stem + "_xnet.png"))
        _plot(model, X, y, names, plot_path)
        click.echo(f"plot: {plot_path}")
        if save_path:
            save(model, save_path)
            click.echo(f"model: {save_path}")

    @xnet.command("bench")
    @click.argument("suite", type=click.Choice(["nguyen"]))
    @click.option("--protocol", type=click.Choice(["paper", "recovery"]), default="recovery", show_default=True)
    @click.option("--seeds", default="0,1,2", show_default=True, help="Comma separated seeds.")
    @click.option("--problems", default="1-12", show_default=True, help="e.g. 1-12 or 1,8,10.")
    @click.option("--time-budget", type=float, default=60.0, show_default=True, help="CPU seconds per run.")
    @click.option("--with-gplearn", is_flag=True, help="Also run gplearn (pip install neuroplex[sr]).")
    @click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write the rows.")
    def bench_cmd(suite, protocol, seeds, problems, time_budget, with_gplearn, json_path) -> None:
        """The Nguyen benchmark: R^2 in range / extrapolated, exact recovery, sizes."""

        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
        rows = run_bench(parse_ids(problems), seed_list, protocol, time_budget, with_gplearn, json_path)
        click.echo(print_table(rows))
        click.echo(table2(rows))


def _plot(model, X: np.ndarray, y: np.ndarray, names: list[str], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd


    j = 0
    lo, hi = X[:, j].min(), X[:, j].max()
    span = hi - lo if hi > lo else 1.0
    grid = np.tile(X.mean(0), (400, 1))
    grid[:, j] = np.linspace(lo - span, hi + span, 400)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(X[:, j], y, s=12, color="k", label="data")
    ax.plot(grid[:, j], model.predict(pd.DataFrame(grid, columns=names)), label="X-Net")
    ax.axvspan(lo, hi, color="0.9", label="training range")
    ax.set_xlabel(names[j])
    ax.set_title(model.text()[:80], fontsize=8)
    ax.legend()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
