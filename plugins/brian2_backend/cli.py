"""``neuroplex compare-snn``: run one network on several solvers and report their agreement."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import torch

from neuroplex.api import make_solver
from neuroplex.compare import write_json
from neuroplex.config import set_threads
from neuroplex.errors import NeuroplexError
from neuroplex.host import get_host
from neuroplex.plugins.snn import METHODS, Network

from .compare import compare_runs, format_report, plot_comparison


def network_builders() -> dict[str, Any]:
    """Network builders accepted by ``compare-snn``: the tasks of kind ``network`` that plugins
    registered (the snn plugin's ``cuba``, ``cobahh``)."""
    host = get_host()
    entries = (host.get("tasks", name) for name in host.names("tasks"))
    return {e.name: e.obj for e in entries if e.info.get("kind") == "network"}


def build_network(spec: str, *, n: int | None = None, seed: int | None = None, in_degree: int | None = None,
                  dt: float | None = None, monitor: list[int] | None = None) -> Any:
    """A network from a builder name (``cuba``, ``cobahh``) or an exported network file."""
    path = Path(spec)
    if path.suffix == ".npz" or path.exists():
        net = Network.load(path)
        if dt is not None:
            net.dt = float(dt)
        if monitor and not net.monitors:
            first = next(p for p in net.populations.values() if getattr(p, "kind", "neurons") == "neurons")
            net.monitor(first.name, [first.model.metadata.get("threshold_state", first.model.state_names[0])],
                        [i for i in monitor if i < first.n])
        return net
    builders = network_builders()
    if spec not in builders:
        raise NeuroplexError(f"{spec}: no such network file or builder (builders: {', '.join(sorted(builders))})")
    kwargs: dict[str, Any] = {}
    if n is not None:
        kwargs["n"] = n
    if seed is not None:
        kwargs["seed"] = seed
    if in_degree is not None:
        kwargs["in_degree"] = in_degree
    if dt is not None:
        kwargs["dt"] = dt
    if monitor is not None:
        kwargs["monitor"] = [i for i in monitor if n is None or i < n]
    return builders[spec](**kwargs)


def run_on(solver: str, net: Any, duration: float, *, dt: float | None, method: str | None, dtype: str,
           seed: int | None, progress: bool = False) -> Any:
    """Run ``net`` on ``solver`` (``name`` or ``brian2:<target>``; plain ``brian2`` runs Brian2's
    default target, ``auto``); a Solution whose ``meta["target"]`` (Brian2) or ``meta["engine"]``
    (torch) names the code that ran."""
    name, _, target = solver.partition(":")
    options: dict[str, Any] = {"dtype": dtype}
    if dt is not None:
        options["dt"] = dt
    if method is not None:
        options["method"] = method
    if name == "brian2":
        options["target"] = target or "auto"
        options["seed"] = seed
    elif target:
        raise NeuroplexError(f"solver {solver!r}: only brian2 takes a target after ':'")
    start = time.perf_counter()
    if name == "torch" and method is not None and _clock_method(method):
        # the torch solver's own method names are ODE integrators; a network's clock methods
        # (exact, exponential_euler, rk2, ...) go to the clock-driven engine directly
        sol = net.run(float(duration), method=method, dtype=getattr(torch, dtype), dt=dt, progress=progress)
    else:
        instance = make_solver(name, "simulate", **options)
        sol = instance.simulate(net, (0.0, float(duration)), progress=progress)
    sol.meta.setdefault("wall_time_s", time.perf_counter() - start)
    return sol


def _clock_method(method: str) -> bool:
    return method in METHODS


def run_label(spec: str, sol: Any) -> str:
    """The report's name of a run: the solver as asked for, with the Brian2 target that ran
    when it was left to Brian2 (``brian2`` -> ``brian2:cython``)."""
    return f"brian2:{sol.meta.get('target', 'auto')}" if spec == "brian2" else spec


def add_commands(cli: click.Group) -> None:
    """Register ``compare-snn`` on the neuroplex CLI group."""

    @cli.command("compare-snn")
    @click.argument("network")
    @click.option("--solvers", default="torch,brian2", show_default=True,
                  help="Comma-separated solvers; brian2 runs Brian2's default target (auto: cython where it "
                       "compiles, else numpy), brian2:cython / brian2:numpy / brian2:cpp_standalone pick one.")
    @click.option("--duration", type=float, default=1.0, show_default=True, help="Simulated time (s).")
    @click.option("--dt", type=float, default=None, help="Time step (s); default the network's (0.1 ms).")
    @click.option("--method", default=None, help="Integration method for every population (exact, euler, "
                  "exponential_euler, rk2, rk4); default each neuron's own.")
    @click.option("--n", "n", type=int, default=None, help="Network size for builders (cuba, cobahh).")
    @click.option("--seed", type=int, default=1, show_default=True, help="Builder seed (connectivity, initial state).")
    @click.option("--in-degree", type=int, default=None, help="Fixed in-degree instead of p = 80/n.")
    @click.option("--monitor", default="0,1,2", show_default=True, help="Neuron indices whose v is recorded.")
    @click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True)
    @click.option("--warmup/--no-warmup", default=False, show_default=True,
                  help="Run each solver for 10 steps first, so wall times exclude code generation and "
                       "compilation (loop times always do).")
    @click.option("--out", type=click.Path(path_type=Path), default=None,
                  help="Folder for report.json and comparison.png.")
    def compare_snn(network: str, solvers: str, duration: float, dt: float | None, method: str | None,
                    n: int | None, seed: int, in_degree: int | None, monitor: str, dtype: str,
                    warmup: bool, out: Path | None) -> None:
        """Run NETWORK (a builder name such as cuba or cobahh, or an exported network
        file) on each solver and report spike counts, rates, ISI CV, spike-time agreement,
        voltage RMSE, the code that ran (Brian2's target, the torch engine's code), loop times
        and wall times (first call: code generation and compilation included)."""
        set_threads()  # $NEUROPLEX_THREADS or 1: per-step loops on small tensors

        names = [s.strip() for s in solvers.split(",") if s.strip()]
        if not names:
            raise NeuroplexError("--solvers names no solver")
        mon = [int(x) for x in monitor.split(",") if x.strip()] if monitor else None
        net = build_network(network, n=n, seed=seed, in_degree=in_degree, dt=dt, monitor=mon)
        step = float(dt or net.dt)
        runs = {}
        for name in names:
            if warmup:
                run_on(name, net, 10 * step, dt=step, method=method, dtype=dtype, seed=seed)
            click.echo(f"running {net.name} on {name} ...", err=True)
            sol = run_on(name, net, duration, dt=step, method=method, dtype=dtype, seed=seed, progress=True)
            runs[run_label(name, sol)] = sol
        n_neurons = sum(p.n for p in net.populations.values() if getattr(p, "kind", "neurons") == "neurons")
        report = compare_runs(runs, n_neurons=n_neurons, duration=duration, dt=step)
        report["network"] = net.name
        click.echo(format_report(report))
        if out is not None:
            click.echo(f"wrote {write_json(report, out / 'report.json')}")
            click.echo(f"wrote {plot_comparison(runs, out / 'comparison.png', title=f'{net.name}: ' + ' vs '.join(runs))}")
