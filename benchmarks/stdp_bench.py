"""Brian2's STDP example (Song, Miller & Abbott 2000; ``examples/synapses/STDP.py``) on the
neuroplex torch engine and on Brian2 at its default target (``auto``: Cython where it compiles).

1000 Poisson inputs at 15 Hz onto one neuron through additive STDP (taupre = taupost = 20 ms,
dApre = 0.01 gmax, dApost = -1.05 dApre, gmax = 0.01), dt 0.1 ms, float64.

1. ``exact``: identical input spike trains (a spike generator fed the same spikes on both
   engines) for ``--exact-duration`` seconds: output spikes equal? largest weight difference.
2. ``seeds``: ``--seeds`` independent runs of ``--duration`` seconds on each engine (Brian2 seeded
   per run; torch: one batched call of ``--seeds`` networks): final weight distributions compared
   by a two-sample Kolmogorov-Smirnov test (scipy), pooled and per seed pair; bimodality as the
   fraction of weights below 0.1 gmax and above 0.9 gmax; a histogram plot.
3. timing: wall time end to end (network building, code generation / compilation, run) and the
   loop alone, for one torch network, one Brian2 network (same duration, same process) and
   ``--batch`` networks in one torch call for ``--batch-duration`` seconds (default
   ``--duration``; time per network and simulated second). Ratios are Brian2 over torch.

Every finished part is written to ``<out>/stdp_bench.json`` (atomically) and skipped when the
command is run again (``--fresh`` starts over).

    python benchmarks/stdp_bench.py --out out/stdp            # the full 100 s benchmark
    python benchmarks/stdp_bench.py --duration 5 --batch 4 --exact-duration 0.5 --out /tmp/stdp
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuroplex.config import set_threads
from neuroplex.plugins.brian2_backend.solver import Brian2Solver
from neuroplex.plugins.snn import poisson_trains, song_stdp

GMAX = 0.01
N_INPUTS = 1000


def _save(path: Path, results: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".stdp_bench.", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(results, fh, indent=2)
    os.replace(tmp, path)


def exact(duration: float, target: str) -> dict[str, Any]:
    """Identical input spikes on both engines."""
    spikes = poisson_trains(N_INPUTS, 15.0, duration, seed=11)
    net = song_stdp(N_INPUTS, seed=1, input_spikes=spikes)
    mine = net.run(duration)
    brian = Brian2Solver(target=target).simulate(net, (0.0, duration))
    t_mine, t_brian = mine.meta["spikes"]["out"].time, brian.meta["spikes"]["out"].time
    dw = (mine.meta["synapses"]["S"]["w"] - brian.meta["synapses"]["S"]["w"]).abs().max()
    return {"duration_s": duration, "input_spikes": int(spikes[0].size), "out_spikes_torch": len(t_mine),
            "out_spikes_brian2": len(t_brian), "same_out_spikes": bool(torch.equal(t_mine, t_brian)),
            "max_abs_weight_diff": float(dw), "brian2_target": brian.meta["target"]}


def brian_run(duration: float, seed: int, target: str) -> dict[str, Any]:
    net = song_stdp(N_INPUTS, seed=seed)
    t0 = time.perf_counter()
    sol = Brian2Solver(target=target, seed=seed).simulate(net, (0.0, duration), progress=True)
    wall = time.perf_counter() - t0
    return {"seed": seed, "wall_s": wall, "loop_s": sol.meta["loop_time"], "target": sol.meta["target"],
            "out_spikes": len(sol.meta["spikes"]["out"]), "w": sol.meta["synapses"]["S"]["w"].tolist()}


def torch_run(duration: float, batch: int, seed: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    net = song_stdp(N_INPUTS, seed=seed, batch=batch)
    sol = net.run(duration, seed=seed, progress=True)
    wall = time.perf_counter() - t0
    w = sol.meta["synapses"]["S"]["w"].view(batch, N_INPUTS)
    return {"batch": batch, "seed": seed, "wall_s": wall, "loop_s": sol.meta["loop_time"],
            "wall_per_network_s": wall / batch, "engine": sol.meta["engine"],
            "out_spikes": torch.bincount(sol.meta["spikes"]["out"].sample, minlength=batch).tolist(),
            "w": w.tolist()}


def bimodality(w: np.ndarray) -> dict[str, float]:
    x = np.asarray(w) / GMAX
    return {"frac_below_0.1": float((x < 0.1).mean()), "frac_above_0.9": float((x > 0.9).mean()),
            "frac_middle": float(((x >= 0.1) & (x <= 0.9)).mean())}


def compare(results: dict[str, Any], seeds: int) -> dict[str, Any]:
    from scipy.stats import ks_2samp

    torch_w = [np.asarray(results["torch_seeds"]["w"][s]) for s in range(seeds)]
    brian_w = [np.asarray(results["brian2"][str(s)]["w"]) for s in range(seeds)]
    pooled = ks_2samp(np.concatenate(torch_w), np.concatenate(brian_w))
    pairs = [float(ks_2samp(torch_w[s], brian_w[s]).pvalue) for s in range(seeds)]
    return {"ks_pooled_p": float(pooled.pvalue), "ks_pooled_D": float(pooled.statistic), "ks_pair_p": pairs,
            "ks_pair_p_median": float(np.median(pairs)), "ks_pair_p_worst": float(np.min(pairs)),
            "torch": [bimodality(w) for w in torch_w], "brian2": [bimodality(w) for w in brian_w]}


def plot(results: dict[str, Any], seeds: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    bins = np.linspace(0, 1, 21)
    for ax, (label, ws) in zip(axes, [("neuroplex torch", [results["torch_seeds"]["w"][s] for s in range(seeds)]),
                                      ("Brian2", [results["brian2"][str(s)]["w"] for s in range(seeds)])]):
        for s, w in enumerate(ws):
            ax.hist(np.asarray(w) / GMAX, bins=bins, histtype="step", label=f"run {s}")
        ax.set_title(f"{label}: final weights after {results['config']['duration_s']:g} s")
        ax.set_xlabel("w / gmax")
    axes[0].set_ylabel("synapses")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=100.0)
    ap.add_argument("--exact-duration", type=float, default=2.0)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--batch-duration", type=float, default=None)
    ap.add_argument("--target", default="auto", help="Brian2 target (default: Brian2's own, auto)")
    ap.add_argument("--out", default="out/stdp_bench")
    ap.add_argument("--fresh", action="store_true")
    args = ap.parse_args()
    set_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "stdp_bench.json"
    batch_duration = args.batch_duration or args.duration
    config = {"duration_s": args.duration, "exact_duration_s": args.exact_duration, "seeds": args.seeds,
              "batch": args.batch, "batch_duration_s": batch_duration, "target": args.target, "torch": torch.__version__,
              "machine": platform.processor() or platform.machine(), "threads": 1}
    results: dict[str, Any] = {}
    if path.exists() and not args.fresh:
        results = json.loads(path.read_text())
        if results.get("config") != config:
            results = {}
    results["config"] = config
    results.setdefault("brian2", {})
    if "exact" not in results:
        results["exact"] = exact(args.exact_duration, args.target)
        _save(path, results)
    print("exact:", results["exact"])
    for s in range(args.seeds):
        if str(s) not in results["brian2"]:
            results["brian2"][str(s)] = brian_run(args.duration, 100 + s, args.target)
            _save(path, results)
        print("brian2 seed", s, {k: v for k, v in results["brian2"][str(s)].items() if k != "w"})
    if "torch_seeds" not in results:
        results["torch_seeds"] = torch_run(args.duration, args.seeds, 100)
        _save(path, results)
    if "torch_single" not in results:
        results["torch_single"] = torch_run(args.duration, 1, 7)
        _save(path, results)
    if "torch_batch" not in results:
        results["torch_batch"] = torch_run(batch_duration, args.batch, 200)
        results["torch_batch"].pop("w")
        _save(path, results)
    brian_wall = float(np.median([r["wall_s"] for r in results["brian2"].values()]))
    brian_loop = float(np.median([r["loop_s"] for r in results["brian2"].values()]))
    single, batch = results["torch_single"], results["torch_batch"]
    results["timing"] = {
        "brian2_wall_s_median": brian_wall, "brian2_loop_s_median": brian_loop,
        "torch_single_wall_s": single["wall_s"], "torch_single_loop_s": single["loop_s"],
        "torch_batch_wall_per_network_s": batch["wall_per_network_s"],
        "torch_batch_loop_per_network_s": batch["loop_s"] / batch["batch"],
        "torch_batch_duration_s": batch_duration,
        "ratio_brian2_over_torch_single_wall": brian_wall / single["wall_s"],
        "ratio_brian2_over_torch_single_loop": brian_loop / single["loop_s"],
        # per network and simulated second (the batched run may be shorter)
        "ratio_brian2_over_torch_batch_per_network_wall":
            (brian_wall / args.duration) / (batch["wall_per_network_s"] / batch_duration),
        "ratio_brian2_over_torch_batch_per_network_loop":
            (brian_loop / args.duration) / (batch["loop_s"] / batch["batch"] / batch_duration)}
    results["distributions"] = compare(results, args.seeds)
    _save(path, results)
    plot(results, args.seeds, out / "stdp_weights.png")
    print("timing:", results["timing"])
    print("distributions:", {k: v for k, v in results["distributions"].items()})
    print(f"wrote {path} and {out / 'stdp_weights.png'}")


if __name__ == "__main__":
    main()
