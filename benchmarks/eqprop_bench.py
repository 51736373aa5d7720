"""EqProp speed on digits (ours vs an autograd relaxation), and accuracy tables over seeds.

Speed mode (default). Both run in this process on one thread (CPU seconds from ``time.process_time``, robust to a
shared machine). Ours: the default Hopfield recipe (hard sigmoid, 20 free / 6 nudged
closed-form steps, free phase through ``neuroplex.equilibrate``), 64-100-10, batch 20.
Reference recipe (written here, not copied): layered Hopfield energy with sigmoid, states
drawn from N(0, 1), 50 free + 50 nudged explicit Euler steps (dt 0.1) whose state gradients
come from autograd, beta 1, parameter gradients by autograd of the batch-mean energy, Adam
1e-3, batch 20 with the last partial batch dropped.

    python benchmarks/eqprop_bench.py [--epochs 2] [--ref-batches 71] [--json out.json]

Seed-table mode (``--seeds``): train ``neuroplex eqprop train``'s default rule (or the energy and
options given) once per seed (and per split seed for ``digits-random`` / ``iris``), in at most
``--jobs`` processes of one thread each, and print one row per run (test and train accuracy at the
last epoch, the epochs flagged as stalled) with the median, the worst and the count at or above
``--bar``::

    python benchmarks/eqprop_bench.py --seeds 0-19 --epochs 10
    python benchmarks/eqprop_bench.py --seeds 0-19 --epochs 10 --energy cond_gaussian
    python benchmarks/eqprop_bench.py --seeds 0-3 --split-seeds 0-4 --dataset digits-random --epochs 10
    python benchmarks/eqprop_bench.py --seeds 0-19 --option beta=0.5 --option beta_sign=random  # S&B's nudging
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import time
import warnings
from typing import Any

import torch

from neuroplex.config import set_threads
from neuroplex.datasets import digits, load_dataset
from neuroplex.plugins.eqprop.rule import EqPropRule
from neuroplex.trainer import Trainer


def hopfield_energy(x, us, params):
    acts = [x] + [torch.sigmoid(u) for u in us]
    e = sum(0.5 * (u * u).sum(-1) for u in us)
    for l, u in enumerate(us):
        W, b = params[2 * l], params[2 * l + 1]
        e = e - (acts[l + 1] * (acts[l] @ W.T + b)).sum(-1)
    return e


def reference_epoch(data, n_batches: int, seed: int = 0) -> tuple[float, int]:
    """One epoch (or ``n_batches``) of the autograd recipe; returns (CPU seconds, batches)."""
    torch.manual_seed(seed)
    dims = (64, 100, 10)
    params = []
    for a, b in zip(dims[:-1], dims[1:]):
        lin = torch.nn.Linear(a, b)
        params += [lin.weight.detach().clone().requires_grad_(True), lin.bias.detach().clone().requires_grad_(True)]
    opt = torch.optim.Adam(params, lr=1e-3)
    dt, beta, steps, bs = 0.1, 1.0, 50, 20
    perm = torch.randperm(data.x_train.shape[0])
    n = min(n_batches, data.x_train.shape[0] // bs)
    start = time.process_time()
    for i in range(n):
        idx = perm[i * bs:(i + 1) * bs]
        x, y = data.x_train[idx], torch.nn.functional.one_hot(data.y_train[idx], 10).float()
        us = [torch.randn(bs, d) for d in dims[1:]]

        def relax(us, nudge):
            for _ in range(steps):
                us = [u.detach().requires_grad_(True) for u in us]
                f = hopfield_energy(x, us, params).sum()
                if nudge:
                    f = f + beta * 0.5 * ((us[-1] - y) ** 2).sum()
                grads = torch.autograd.grad(f, us)
                us = [u - dt * g for u, g in zip(us, grads)]
            return [u.detach() for u in us]

        free = relax(us, False)
        g_free = torch.autograd.grad(hopfield_energy(x, free, params).mean(), params)
        nudged = relax(free, True)
        g_nudged = torch.autograd.grad(hopfield_energy(x, nudged, params).mean(), params)
        for p, gn, gf in zip(params, g_nudged, g_free):
            p.grad = (gn - gf) / beta
        opt.step()
    return time.process_time() - start, n


def seed_range(text: str) -> list[int]:
    """``"0-19"`` or ``"0,3,7"`` (or a mix) as a list of ints."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    return out


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` rule options; values are read as JSON where they parse, else as text."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--option expects key=value, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def seed_run(task: tuple[str, int, int, int, dict[str, Any]]) -> dict[str, Any]:
    """One training run (one thread); returns the last epoch's accuracies and the stalled epochs."""
    dataset, split_seed, seed, epochs, options = task
    warnings.simplefilter("ignore", RuntimeWarning)  # the stall warning is reported in the row
    set_threads(1)
    data = load_dataset(dataset, seed=split_seed)
    start = time.process_time()
    hist = Trainer(EqPropRule(**options), data, epochs=epochs, batch_size=20, seed=seed, progress=False,
                   plot=False, threads=1).fit()
    return {"dataset": dataset, "split_seed": split_seed, "seed": seed, "test_accuracy": hist[-1]["test_accuracy"],
            "train_accuracy": hist[-1]["train_accuracy"], "cpu_seconds": time.process_time() - start,
            "stalled_epochs": [int(h["epoch"]) for h in hist if h.get("stalled")]}


def seed_table(args: argparse.Namespace) -> dict[str, Any]:
    options = {"energy": args.energy, **parse_options(args.option)}
    splits = seed_range(args.split_seeds)
    tasks = [(args.dataset, sp, s, args.epochs, options) for sp in splits for s in seed_range(args.seeds)]
    wall = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(max(1, min(args.jobs, len(tasks)))) as pool:
        rows = pool.map(seed_run, tasks, chunksize=1)
    wall = time.perf_counter() - wall
    rule = EqPropRule(**options).config
    print(f"{args.dataset}, {args.epochs} epochs, energy {rule.energy}, nonlinearity {rule.nonlinearity}, "
          f"beta {rule.beta} ({rule.beta_sign}), optimizer {rule.optimizer} {list(rule.learning_rate)}")
    print(f"{'split':>5} {'seed':>4}  {'test acc':>8}  {'train acc':>9}  stalled epochs")
    for r in rows:
        print(f"{r['split_seed']:>5} {r['seed']:>4}  {r['test_accuracy']:8.3f}  {r['train_accuracy']:9.3f}  "
              f"{','.join(map(str, r['stalled_epochs'])) or '-'}")
    tests = [r["test_accuracy"] for r in rows]
    summary = {"runs": len(rows), "median": statistics.median(tests), "worst": min(tests),
               "at_or_above_bar": sum(t >= args.bar for t in tests), "bar": args.bar,
               "stalled_runs": sum(bool(r["stalled_epochs"]) for r in rows), "wall_seconds": wall,
               "cpu_seconds": sum(r["cpu_seconds"] for r in rows), "jobs": args.jobs}
    print(f"median {summary['median']:.3f}, worst {summary['worst']:.3f}, >= {args.bar}: "
          f"{summary['at_or_above_bar']}/{len(rows)}, runs flagged stalled: {summary['stalled_runs']}; "
          f"wall {wall:.0f} s in {args.jobs} processes ({summary['cpu_seconds']:.0f} CPU-s)")
    return {"options": options, "dataset": args.dataset, "epochs": args.epochs, "rows": rows, "summary": summary}


def speed(args: argparse.Namespace) -> dict[str, Any]:
    set_threads(1)
    data = digits()
    rule = EqPropRule()
    start = time.process_time()
    hist = Trainer(rule, data, epochs=args.epochs, batch_size=20, seed=0, progress=False, plot=False, threads=1).fit()
    total = time.process_time() - start
    ours = sorted(h["cpu_seconds"] for h in hist)[len(hist) // 2]
    ours_best = min(h["cpu_seconds"] for h in hist)
    eval_s = (total - sum(h["cpu_seconds"] for h in hist)) / len(hist)
    ref_s, ref_n = reference_epoch(data, args.ref_batches)
    ref_epoch = ref_s * (71 / ref_n)
    result = {"ours_cpu_s_per_epoch": ours, "ours_best_cpu_s_per_epoch": ours_best, "ours_eval_cpu_s_per_epoch": eval_s,
              "ours_test_accuracy": hist[-1]["test_accuracy"], "epochs": args.epochs,
              "reference_autograd_cpu_s_per_epoch": ref_epoch, "reference_batches_timed": ref_n,
              "speedup": ref_epoch / ours, "threads": torch.get_num_threads()}
    print(f"ours (closed form, equilibrate): {ours:.3f} CPU-s/epoch train, median of {len(hist)} epochs "
          f"(best {ours_best:.3f}; +{eval_s:.3f} s evaluation per epoch), "
          f"test acc after {args.epochs} epochs {hist[-1]['test_accuracy']:.3f}")
    print(f"reference recipe (autograd, 50+50 Euler): {ref_epoch:.3f} CPU-s/epoch ({ref_n} batches timed)")
    print(f"ratio reference / ours: {ref_epoch / ours:.1f}x; target <= 0.2 CPU-s/epoch: "
          f"{'met' if ours <= 0.2 else 'NOT met'}")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=None, help="epochs per run (speed mode 3, seed tables 10)")
    ap.add_argument("--ref-batches", type=int, default=71, help="reference batches to time (71 = one epoch)")
    ap.add_argument("--seeds", default=None, help="seed-table mode: training seeds, e.g. 0-19 or 0,4,7")
    ap.add_argument("--split-seeds", default="0", help="seeds of the digits-random / iris split, e.g. 0-4")
    ap.add_argument("--dataset", default="digits", help="digits (fixed split), digits-random, iris")
    ap.add_argument("--energy", default="restr_hopfield", help="restr_hopfield or cond_gaussian (its preset)")
    ap.add_argument("--option", action="append", default=[], help="rule option key=value (repeatable)")
    ap.add_argument("--bar", type=float, default=0.86, help="test accuracy counted in the summary")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes for the seed table")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.seeds is not None:
        args.epochs = 10 if args.epochs is None else args.epochs
        result = seed_table(args)
    else:
        args.epochs = 3 if args.epochs is None else args.epochs
        result = speed(args)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
