"""Wuxing networks: epoch speed on digits (ours vs an eager per-layer peer), and seed tables.

Speed mode (default), one CPU thread, CPU seconds (``time.process_time``, robust to a shared
machine). Ours: ``wuxing-coupling`` on the ``digits`` config (``--config``; the shipped one is
64-256-80, fan-in 8, T 20, dt 0.2), one epoch of the fixed split (1437 samples, batch 16) through the core Trainer's
batches: forward + reversed run + update. Peer (written here after the notes' eager design, not
copied): per-layer state tensors ``(B, N, 5)``, ``torch.roll`` rings, links by
``index_add_`` on the interface axis, Heun over the whole network, the same layer sizes and steps;
timed on ``--peer-batches`` batches and scaled to the epoch. Then ours at batch 256
(samples per second, forward + reversed + update).

    python benchmarks/wuxing_bench.py [--peer-batches 10] [--json out.json]

Seed-table mode (``--seeds``): train a rule once per seed (at most ``--jobs`` processes of
one thread each) and print test accuracy per epoch for every seed, then the median and
worst at each epoch and any NaN/Inf stop::

    python benchmarks/wuxing_bench.py --seeds 0-4 --method coupling --epochs 10
    python benchmarks/wuxing_bench.py --seeds 0-4 --method k3 --epochs 5
    python benchmarks/wuxing_bench.py --seeds 0-4 --method mixed --epochs 5
    python benchmarks/wuxing_bench.py --seeds 0-4 --config digits_match --epochs 5
    python benchmarks/wuxing_bench.py --seeds 0-4 --option readout=mean --option eta_c=0.5

Tuning without the test split: ``--validation 360`` trains on the first 1077 training samples
and reports accuracy on the last 360 of them; ``--validation-start 0`` takes the block
from sample 0 instead (fold B), ``--validation-start 360`` from sample 360 (fold C, other
writers: the fold closest to the test split, docs/wuxing.md round 4)::

    python benchmarks/wuxing_bench.py --seeds 0-3 --validation 360 --validation-start 0
    python benchmarks/wuxing_bench.py --seeds 10-13 --validation 360 --validation-start 360
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import statistics
import time
import warnings
from typing import Any

import torch

from neuroplex.config import set_threads
from neuroplex.datasets import load_dataset
from neuroplex.plugins.wuxing.config import load_config
from neuroplex.plugins.wuxing.rule import default_config
from neuroplex.plugins.wuxing.network import NumericalError
from neuroplex.plugins.wuxing.rule import WuxingRule
from neuroplex.trainer import Trainer


# ------------------------------------------------------------------ the eager peer
class EagerPeer:
    """The notes' eager per-layer design: lists of ``(B, N_l, 5)`` states, roll, index_add."""

    def __init__(self, sizes: list[int], fanin: int, seed: int, T: float = 20.0, dt: float = 0.2):
        gen = torch.Generator().manual_seed(seed)
        self.sizes, self.dt, self.steps = sizes, dt, round(T / dt)
        self.links = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            src = torch.argsort(torch.rand(5 * b, 5 * a, generator=gen), dim=1)[:, :fanin].reshape(-1)
            dst = torch.arange(5 * b).repeat_interleave(fanin)
            self.links.append([src, dst, 0.15 * (0.5 + torch.rand(src.numel(), generator=gen))])
        self.rest = 1.0  # K1 = 1, K2 = K3 = 0.5

    def _rhs(self, es: list[torch.Tensor], drive: torch.Tensor, reverse: bool) -> list[torch.Tensor]:
        s = -1 if reverse else 1
        inputs = [torch.zeros_like(e) for e in es]
        if reverse:
            inputs[-1][:, :, 0] += drive
        else:
            inputs[0][:, :, 0] += drive
        for l, (src, dst, c) in enumerate(self.links):
            a, b = (l + 1, l) if reverse else (l, l + 1)
            g, sc = (dst, src) if reverse else (src, dst)
            d = (es[a] - self.rest).reshape(es[a].shape[0], -1)
            inputs[b].view(inputs[b].shape[0], -1).index_add_(1, sc, d[:, g] * c)
        return [torch.roll(e, s, 2) - 0.5 * e - 0.5 * e * torch.roll(e, 2 * s, 2) + i for e, i in zip(es, inputs)]

    def run(self, drive: torch.Tensor, reverse: bool) -> list[torch.Tensor]:
        batch = drive.shape[0]
        es = [torch.full((batch, n, 5), self.rest) for n in self.sizes]
        acc = [torch.zeros_like(e) for e in es]
        for _ in range(self.steps):
            k1 = self._rhs(es, drive, reverse)
            ep = [(e + self.dt * k).clamp(0, 20) for e, k in zip(es, k1)]
            k2 = self._rhs(ep, drive, reverse)
            new = [(e + 0.5 * self.dt * (a + b)).clamp(0, 20) for e, a, b in zip(es, k1, k2)]
            acc = [s + 0.5 * self.dt * (a + b - 2 * self.rest) for s, a, b in zip(acc, es, new)]
            es = new
        return [a / (self.steps * self.dt) for a in acc]

    def train_batch(self, x: torch.Tensor, y: torch.Tensor) -> None:
        dbar = self.run(x, reverse=False)
        err = torch.nn.functional.one_hot(y, self.sizes[-1]).float() - dbar[-1][:, :, 0]
        dhat = self.run(err, reverse=True)
        for l, link in enumerate(self.links):
            src, dst, c = link
            g1 = (dbar[l].reshape(x.shape[0], -1)[:, src] * dhat[l + 1].reshape(x.shape[0], -1)[:, dst]).mean(0)
            link[2] = (c + 0.3 * torch.atan(g1)).clamp(-1, 1)


def speed(peer_batches: int, config: str = "digits") -> dict[str, Any]:
    set_threads(1)
    data = load_dataset("digits")
    rule = WuxingRule(config, method="coupling")
    trainer = Trainer(rule, data, epochs=1, batch_size=16, seed=0, progress=False, plot=False)
    rule.init(0, "cpu")
    trainer.generator.manual_seed(0)
    cpu = time.process_time()
    n = 0
    for x, y in trainer.batches():
        rule.train_batch(x, y)
        n += 1
    ours = time.process_time() - cpu
    peer = EagerPeer(rule.config.layers, 8, 0)
    cpu = time.process_time()
    for i in range(peer_batches):
        peer.train_batch(data.x_train[16 * i:16 * (i + 1)], data.y_train[16 * i:16 * (i + 1)])
    peer_epoch = (time.process_time() - cpu) / peer_batches * n
    rule.init(0, "cpu")
    x, y = data.x_train[:256], data.y_train[:256]
    rule.train_batch(x, y)
    cpu = time.process_time()
    reps = 3
    for _ in range(reps):
        rule.train_batch(x, y)
    per_256 = (time.process_time() - cpu) / reps
    return {"config": config, "layers": rule.config.layers, "batches": n, "ours_epoch_cpu_s": ours, "peer_epoch_cpu_s": peer_epoch, "speedup": peer_epoch / ours,
            "batch256_samples_per_cpu_s": 256 / per_256}


# ------------------------------------------------------------------- seed tables
def _one(job: dict[str, Any]) -> dict[str, Any]:
    set_threads(1)
    warnings.simplefilter("ignore")
    rule = WuxingRule(job["config"], method=job["method"], **job["options"])
    data = load_dataset(job["dataset"])
    if job["validation"]:
        data = validation_split(data, job["validation"], job["validation_start"])
    accs: list[float] = []
    train: list[float] = []

    def record(trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        accs.append(metrics["test_accuracy"])
        train.append(metrics["train_accuracy"])

    error = ""
    cpu = time.process_time()
    try:
        Trainer(rule, data, epochs=job["epochs"], batch_size=job["batch_size"], seed=job["seed"], progress=False,
                plot=False, callbacks=[record]).fit()
    except NumericalError as exc:
        error = str(exc)
    return {"seed": job["seed"], "test_accuracy": accs, "train_accuracy": train, "error": error,
            "cpu_s": time.process_time() - cpu}


def validation_split(data: Any, n: int, start: int | None = None) -> Any:
    """Training samples ``start .. start + n`` (default: the last ``n``) as the test set, the
    rest as the training set (for tuning without looking at the test split)."""
    total = data.x_train.shape[0]
    start = total - n if start is None else start
    keep = torch.cat([torch.arange(start), torch.arange(start + n, total)])
    return dataclasses.replace(data, x_train=data.x_train[keep], y_train=data.y_train[keep],
                               x_test=data.x_train[start:start + n], y_test=data.y_train[start:start + n])


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b) + 1)) if b else [int(a)]
    return out


def seed_table(args: argparse.Namespace) -> list[dict[str, Any]]:
    options = {}
    for item in args.option:
        key, _, value = item.partition("=")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    args.config = args.config or default_config(args.method)
    load_config(args.config, **options)  # fail early on a bad option
    jobs = [{"seed": s, "config": args.config, "method": args.method, "options": options, "epochs": args.epochs,
             "batch_size": args.batch_size, "dataset": args.dataset, "validation": args.validation,
             "validation_start": args.validation_start} for s in _seeds(args.seeds)]
    with multiprocessing.get_context("spawn").Pool(min(args.jobs, len(jobs))) as pool:
        rows = pool.map(_one, jobs)
    where = ""
    if args.validation:
        first = "the last" if args.validation_start is None else f"from {args.validation_start},"
        where = f" validation: {first} {args.validation} training samples"
    print(f"wuxing-{args.method} config {args.config} {options or ''} dataset {args.dataset} batch "
          f"{args.batch_size}{where}")
    for row in rows:
        print(f"seed {row['seed']}: " + " ".join(f"{a:.3f}" for a in row["test_accuracy"])
              + f"  (train {row['train_accuracy'][-1] if row['train_accuracy'] else float('nan'):.3f}; "
              f"{row['cpu_s']:.0f} CPU s){'  ERROR ' + row['error'] if row['error'] else ''}")
    for epoch in range(args.epochs):
        col = [r["test_accuracy"][epoch] for r in rows if len(r["test_accuracy"]) > epoch]
        if col:
            print(f"epoch {epoch + 1}: median {statistics.median(col):.3f} worst {min(col):.3f} best {max(col):.3f} "
                  f"(n={len(col)})")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-batches", type=int, default=10)
    parser.add_argument("--seeds", default=None, help="e.g. 0-4: seed-table mode")
    parser.add_argument("--method", default="coupling", choices=["k3", "coupling", "mixed"])
    parser.add_argument("--config", default=None, help="[default: digits_single for k3, digits otherwise]")
    parser.add_argument("--option", action="append", default=[], help="config field=value (repeatable)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--validation", type=int, default=0,
                        help="tune: test on the last N training samples, train on the rest")
    parser.add_argument("--validation-start", type=int, default=None,
                        help="first training sample of the validation block [the last N]")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.seeds:
        result: Any = seed_table(args)
    else:
        result = speed(args.peer_batches, args.config or "digits")
        print(f"one digits epoch ({result['config']} {result['layers']}, {result['batches']} batches of 16, "
              f"T 20, dt 0.2), 1 thread: ours "
              f"{result['ours_epoch_cpu_s']:.2f} CPU s, eager peer {result['peer_epoch_cpu_s']:.2f} CPU s "
              f"(x{result['speedup']:.1f}); batch 256: {result['batch256_samples_per_cpu_s']:.0f} samples/CPU s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
