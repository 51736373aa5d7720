"""EqProp speed on digits: our plugin vs a plain autograd relaxation of the reference recipe.

Both run in this process on one thread (CPU seconds from ``time.process_time``, robust to a
shared machine). Ours: the default Hopfield recipe (hard sigmoid, 20 free / 6 nudged
closed-form steps, free phase through ``neuroplex.equilibrate``), 64-100-10, batch 20.
Reference recipe (written here, not copied): layered Hopfield energy with sigmoid, states
drawn from N(0, 1), 50 free + 50 nudged explicit Euler steps (dt 0.1) whose state gradients
come from autograd, beta 1, parameter gradients by autograd of the batch-mean energy, Adam
1e-3, batch 20 with the last partial batch dropped.

    python benchmarks/eqprop_bench.py [--epochs 2] [--ref-batches 71] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from neuroplex.config import set_threads
from neuroplex.datasets import digits
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--ref-batches", type=int, default=71, help="reference batches to time (71 = one epoch)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
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
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
