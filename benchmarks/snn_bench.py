"""Spiking-network benchmarks: the torch engine vs Brian2 (cython), side by side.

Cases (Brette et al. 2007; Brian2 ``examples/CUBA.py`` / ``examples/COBAHH.py``; 1 s of
biological time, dt 0.1 ms):

* ``cuba4000``: CUBA, N = 4000, p = 0.02 (exactly the Brian2 example);
* ``cuba1000``, ``cuba16000``: CUBA with a fixed in-degree of 80;
* ``cobahh4000``: COBAHH, N = 4000, p = 0.02;
* ``batch32``: 32 independent CUBA N = 4000 networks in one torch run (time per network)
  against one Brian2 network;
* ``instance``: Brian2's exported CUBA instance on our Brian2 backend must give its
  22 463 spikes (correctness of the translation, not a timing).

Both simulators build the *same* network instance (``neuroplex.plugins.snn.builders``)
and run alternately in this one process with torch pinned to one thread; each is timed
``--repeats`` times (best kept) after an untimed warm-up that compiles (TorchScript;
Cython). The loop time is Brian2's ``device._last_run_time`` and the torch engine's loop
(excluding network construction and compilation, reported separately).

    python benchmarks/snn_bench.py --out out/snn_bench.json
    python benchmarks/snn_bench.py --cases cuba4000,batch32 --repeats 5
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from neuroplex.config import data_path, set_threads
from neuroplex.plugins.brian2_backend.solver import Brian2Solver
from neuroplex.plugins.snn.builders import cobahh, cuba
from neuroplex.plugins.snn.network import Network

CASES: dict[str, tuple[str, Callable[[], Network], int]] = {
    # name: (description, builder, batch)
    "cuba4000": ("CUBA N=4000 p=0.02", lambda: cuba(4000, seed=1), 1),
    "cuba1000": ("CUBA N=1000 K=80", lambda: cuba(1000, in_degree=80, seed=1), 1),
    "cuba16000": ("CUBA N=16000 K=80", lambda: cuba(16000, in_degree=80, seed=1), 1),
    "cobahh4000": ("COBAHH N=4000 p=0.02", lambda: cobahh(4000, seed=1, monitor=None), 1),
    "batch32": ("CUBA N=4000 x32 batched", lambda: cuba(4000, seed=1, batch=32), 32),
}


def _torch_run(net: Network, duration: float, dtype: torch.dtype) -> tuple[float, int, float]:
    sol = net.run(duration, dtype=dtype)
    return float(sol.meta["loop_time"]), len(sol.spikes), float(sol.meta.get("build_time", float("nan")))


def _brian_run(net: Network, duration: float, target: str, dtype: str) -> tuple[float, int, float]:
    sol = Brian2Solver(target=target, dtype=dtype).simulate(net, (0.0, duration))
    return float(sol.meta["loop_time"]), len(sol.spikes), float(sol.meta["run_time"] - sol.meta["loop_time"])


def run_case(name: str, *, duration: float, repeats: int, target: str, dtype: str) -> dict[str, Any]:
    """Time one case: torch and Brian2 alternately, best of ``repeats``."""
    desc, build, batch = CASES[name]
    tdtype = getattr(torch, dtype)
    net = build()
    n_syn = sum(len(s) for s in net.synapses.values())
    brian_net = cuba(4000, seed=1) if name == "batch32" else net
    # warm-up: compile the torch step and Brian2's code objects (Cython caches on disk)
    _torch_run(net, min(duration, 0.01), tdtype)
    _brian_run(brian_net, min(duration, 0.01), target, dtype)
    torch_times, brian_times = [], []
    torch_spikes = brian_spikes = 0
    torch_build = brian_setup = float("nan")
    for _ in range(repeats):
        t_loop, torch_spikes, torch_build = _torch_run(net, duration, tdtype)
        torch_times.append(t_loop / batch)
        b_loop, brian_spikes, brian_setup = _brian_run(brian_net, duration, target, dtype)
        brian_times.append(b_loop)
    best_t, best_b = min(torch_times), min(brian_times)
    return {"case": name, "description": desc, "n": net.populations["P"].n, "batch": batch, "synapses": n_syn,
            "duration_s": duration, "torch_loop_s": best_t, "brian2_loop_s": best_b, "ratio_torch_over_brian2": best_t / best_b,
            "torch_loop_all_s": torch_times, "brian2_loop_all_s": brian_times,
            "torch_spikes": torch_spikes, "brian2_spikes": brian_spikes,
            "torch_build_s": torch_build, "brian2_setup_s": brian_setup}


def check_instance(target: str) -> dict[str, Any]:
    """Brian2's exported CUBA instance on our Brian2 backend (float64): its 22 463 spikes."""
    path = data_path("snn-reference", "cuba_n4000_seed1_instance.npz")
    ref_path = data_path("snn-reference", "cuba_n4000_seed1_spikes.csv")
    if not path.exists() or not ref_path.exists():
        return {"case": "instance", "skipped": f"shared data missing: {path}"}
    net = Network.load(path)
    sol = Brian2Solver(target=target).simulate(net, (0.0, 1.0))
    ref = np.loadtxt(ref_path, delimiter=",", skiprows=1)
    idx, t = sol.spikes.for_sample(0)
    ours = set(zip(idx.tolist(), np.rint(t / 1e-4).astype(int).tolist()))
    theirs = set(zip(ref[:, 0].astype(int).tolist(), np.rint(ref[:, 1] / 0.1).astype(int).tolist()))
    return {"case": "instance", "brian2_spikes": len(ours), "reference_spikes": len(theirs),
            "identical_raster": ours == theirs, "brian2_loop_s": float(sol.meta["loop_time"])}


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'case':<26} {'synapses':>10} {'torch s':>9} {'brian2 s':>9} {'ratio':>6} {'spikes t/b':>17}"]
    for r in rows:
        if "torch_loop_s" not in r:
            continue
        per = " /net" if r["batch"] > 1 else ""
        lines.append(f"{r['description']:<26} {r['synapses']:>10d} {r['torch_loop_s']:>9.3f} {r['brian2_loop_s']:>9.3f} "
                     f"{r['ratio_torch_over_brian2']:>6.2f} {r['torch_spikes']:>8d}/{r['brian2_spikes']:<8d}{per}")
    return "\n".join(lines)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="cuba4000,cuba1000,cuba16000,cobahh4000,batch32,instance",
                    help="comma-separated: " + ", ".join([*CASES, "instance"]))
    ap.add_argument("--duration", type=float, default=1.0, help="biological time per run (s)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per simulator (best kept; >= 3)")
    ap.add_argument("--target", default="cython", choices=["cython", "numpy", "cpp_standalone"])
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = ap.parse_args(argv)
    set_threads(1)
    names = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in names if c not in CASES and c != "instance"]
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)}")
    env = {"torch_threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
           "machine": platform.machine(), "cpus": os.cpu_count(), "target": args.target, "dtype": args.dtype,
           "load_avg_start": os.getloadavg()}
    try:
        import brian2

        env["brian2"] = brian2.__version__
    except ImportError:
        print("Brian2 is not installed: pip install 'neuroplex[snn]'", file=sys.stderr)
        return 1
    rows = []
    for name in names:
        start = time.perf_counter()
        row = check_instance(args.target) if name == "instance" else run_case(
            name, duration=args.duration, repeats=args.repeats, target=args.target, dtype=args.dtype)
        row["wall_s"] = time.perf_counter() - start
        rows.append(row)
        print(f"done {name} in {row['wall_s']:.1f} s", file=sys.stderr, flush=True)
    env["load_avg_end"] = os.getloadavg()
    print(_table(rows))
    for r in rows:
        if r["case"] == "instance":
            print(f"CUBA instance on brian2 ({args.target}): {r.get('brian2_spikes')} spikes, reference "
                  f"{r.get('reference_spikes')}, identical raster: {r.get('identical_raster')}" if "skipped" not in r
                  else f"CUBA instance: {r['skipped']}")
    targets = {}
    by = {r["case"]: r for r in rows}
    if "cuba4000" in by:
        targets["cuba4000_torch_at_most_2x_brian2"] = by["cuba4000"]["ratio_torch_over_brian2"] <= 2.0
    if "batch32" in by:
        targets["batch32_per_network_faster_than_brian2"] = by["batch32"]["ratio_torch_over_brian2"] < 1.0
    for key, ok in targets.items():
        print(f"target {key}: {'met' if ok else 'NOT met'}")
    print(f"torch threads {env['torch_threads']}, load average {env['load_avg_start']} -> {env['load_avg_end']}")
    if args.out is not None:
        _write_json(args.out, {"environment": env, "results": rows, "targets": targets})
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
