"""The neuroplex demo (`make demo`): one section per capability, each writing into --out.

Sections run in order and report their wall time. Add a capability by writing a function
``section_<name>(ctx: Context) -> None`` and listing it in ``SECTIONS``.

    python examples/demo.py --out out                 # every section
    python examples/demo.py --out out --only plugins  # one section
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

import neuroplex as nx
from neuroplex.config import set_threads


@dataclass
class Context:
    """What every section gets: the output folder and a list of files it wrote."""

    out: Path
    written: list[Path] = field(default_factory=list)

    def wrote(self, path: Path) -> None:
        self.written.append(path)
        print(f"    wrote {path}")


def section_plugins(ctx: Context) -> None:
    """List every plugin (built-ins included) with version, status and what it provides."""
    for rec in nx.get_host().plugins():
        provides = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in rec.provides.items())
        print(f"    {rec.name:<14} {rec.version or '?':<8} {rec.status:<8} {rec.error or provides}")


def section_repressilator(ctx: Context) -> None:
    """Simulate the shipped repressilator (Elowitz & Leibler 2000) on the torch solver.

    One run is written as CSV and PNG, then a batch of four transcription rates runs in one call.
    """
    model = nx.load_model("repressilator")
    sol = nx.simulate(model, (0.0, 100.0), solver="torch", method="dopri5", rtol=1e-6, atol=1e-9,
                      n_points=1001, progress=True, throw=True)
    n_steps = int(sol.stats["n_steps"][0]) if "n_steps" in sol.stats else -1
    print(f"    {model.name}: {len(sol.names)} species, {n_steps} dopri5 steps, status {sol.status.tolist()}")
    ctx.wrote(sol.save(ctx.out / "repressilator.csv"))
    sol.plot(names=[n for n in sol.names if n.startswith("p_")], path=ctx.out / "repressilator.png",
             title="Repressilator (Elowitz & Leibler 2000): repressor proteins")
    ctx.wrote(ctx.out / "repressilator.png")

    dyn = model.compile()
    params = dyn.default_params(batch=4)
    alpha = dyn.param_names.index("alpha")
    params[:, alpha] = torch.tensor([2.0, 20.0, 216.0, 2000.0], dtype=params.dtype)
    batch = nx.simulate(model, (0.0, 100.0), params=params, n_points=1001, throw=True)
    p = batch["p_lacI"][:, 500:]  # second half: settled behaviour
    for a, lo, hi in zip(params[:, alpha].tolist(), p.min(dim=1).values.tolist(), p.max(dim=1).values.tolist()):
        kind = "oscillates" if hi - lo > 0.1 * max(hi, 1e-9) else "steady state"
        print(f"    alpha = {a:>6g}: p_lacI in [{lo:8.3f}, {hi:8.3f}]  {kind}")
    ctx.wrote(batch.save(ctx.out / "repressilator_alpha_sweep.npz"))


def section_compare(ctx: Context) -> None:
    """Cross-check the shipped Oregonator (Field & Noyes 1974, stiff) on torch against libroadrunner."""
    from neuroplex.compare import compare

    result = compare("oregonator", ["torch", "roadrunner"], t_span=(0.0, 30.0), n_points=601, rtol=1e-8, atol=1e-12,
                     solver_options={"torch": {"method": "rosenbrock"}},
                     plot=ctx.out / "oregonator_torch_vs_roadrunner.png")
    for name in result.names:
        print(f"    {name:<8} max |torch - roadrunner| = {result.max_abs['torch'][name]:.3g} "
              f"(relative {result.max_rel['torch'][name]:.3g})")
    ctx.wrote(ctx.out / "oregonator_torch_vs_roadrunner.png")


def section_spiking(ctx: Context) -> None:
    """One CUBA network instance (Brette et al. 2007, 1000 neurons, 0.3 s) on the torch engine and on Brian2."""
    from neuroplex.plugins.brian2_backend.compare import compare_runs, format_report, plot_comparison
    from neuroplex.plugins.snn import cuba

    net = cuba(n=1000, seed=3, monitor=[0, 1, 2])
    duration = 0.3
    runs = {}
    for label, solver, options in (("torch", "torch", {"dtype": "float64"}),
                                   ("brian2:numpy", "brian2", {"dtype": "float64", "target": "numpy"})):
        t0 = time.perf_counter()
        sol = nx.simulate(net, (0.0, duration), solver=solver, progress=False, **options)
        sol.meta.setdefault("wall_time_s", time.perf_counter() - t0)
        runs[label] = sol
    report = compare_runs(runs, n_neurons=1000, duration=duration, dt=net.dt)
    print("    " + format_report(report).replace("\n", "\n    "))
    ctx.wrote(plot_comparison(runs, ctx.out / "cuba_torch_vs_brian2.png", title="CUBA, 1000 neurons: torch vs Brian2"))


def section_eqprop(ctx: Context) -> None:
    """Train a 64-100-10 Hopfield network by Equilibrium Propagation on scikit-learn's digits (3 epochs)."""
    from neuroplex.datasets import load_dataset
    from neuroplex.plugins.eqprop.rule import EqPropRule
    from neuroplex.trainer import Trainer

    run_dir = ctx.out / "eqprop_digits"
    rule = EqPropRule(dimensions=(64, 100, 10), energy="restr_hopfield")
    history = Trainer(rule, load_dataset("digits"), epochs=3, batch_size=20, seed=1, run_dir=run_dir,
                      resume=True, progress=True).fit()
    last = history[-1]
    print(f"    epoch {last['epoch']}: train accuracy {last['train_accuracy']:.3f}, test accuracy {last['test_accuracy']:.3f}")
    for name in ("metrics.csv", "curves.png"):
        ctx.wrote(run_dir / name)


SECTIONS: list[tuple[str, Callable[[Context], None]]] = [
    ("plugins", section_plugins),
    ("repressilator", section_repressilator),
    ("compare", section_compare),
    ("spiking", section_spiking),
    ("eqprop", section_eqprop),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder (default ./out)")
    parser.add_argument("--only", action="append", choices=[name for name, _ in SECTIONS],
                        help="run only these sections (repeatable)")
    args = parser.parse_args(argv)
    set_threads()
    args.out.mkdir(parents=True, exist_ok=True)
    ctx = Context(args.out)
    chosen = [(n, f) for n, f in SECTIONS if not args.only or n in args.only]
    start = time.perf_counter()
    for i, (name, fn) in enumerate(chosen, 1):
        print(f"[{i}/{len(chosen)}] {name}: {(fn.__doc__ or '').strip().splitlines()[0]}", flush=True)
        t0 = time.perf_counter()
        fn(ctx)
        print(f"    done in {time.perf_counter() - t0:.1f} s", flush=True)
    print(f"demo finished in {time.perf_counter() - start:.1f} s; {len(ctx.written)} files in {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
