"""Spiking-network benchmarks: the neuroplex engine against Brian2 at each of its targets.

Cases (Brette et al. 2007; Brian2 ``examples/CUBA.py`` / ``examples/COBAHH.py``; dt 0.1 ms):

* ``cuba4000``: CUBA, N = 4000, p = 0.02 (exactly the Brian2 example);
* ``cobahh4000``: COBAHH, N = 4000, p = 0.02;
* ``cuba1000``, ``cuba16000``: CUBA with a fixed in-degree of 80;
* ``batch32``: 32 independent CUBA N = 4000 networks in one run of each runner (times per network);
* ``instance``: Brian2's exported CUBA instance on the engine and on Brian2 (default target)
  must give its 22 463 reference spikes (correctness, not a timing).

Rows per case: ``torch`` (the neuroplex engine, ``solver="torch"``: generated C, see
``docs/snn.md``), ``brian2`` at Brian2's own default target (``auto``: Cython where it compiles,
the target that ran is printed), ``brian2:cpp_standalone`` and ``brian2:numpy``. Every runner
builds the *same* network instance (``neuroplex.plugins.snn``), float64. Columns:

* ``loop``: the step loop alone (Brian2's ``device._last_run_time``, the engine's loop), best of
  ``--repeats`` runs in this one process, runners alternating, torch pinned to one thread;
* ``first cold``: one call in a fresh process with empty compiler caches (the engine's library
  cache, Brian2's Cython cache, a new ``cpp_standalone`` project): planning, code generation,
  compilation, Brian2's object creation and the run, i.e. what a new user waits for;
* ``first warm``: the same in a second fresh process with those caches filled (the
  ``cpp_standalone`` project folder reused, so ``make`` rebuilds nothing).

Ratios are each row over the torch row of the same run.

    python benchmarks/snn_bench.py --out out/snn_bench.json
    python benchmarks/snn_bench.py --cases cuba4000,cobahh4000 --repeats 3
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from neuroplex.config import data_path, set_threads
from neuroplex.plugins.brian2_backend.solver import Brian2Solver
from neuroplex.plugins.snn import Engine, Network, cobahh, cuba

CASES: dict[str, tuple[str, Callable[[], Network], int]] = {
    # name: (description, builder, batch)
    "cuba4000": ("CUBA N=4000 p=0.02", lambda: cuba(4000, seed=1), 1),
    "cobahh4000": ("COBAHH N=4000 p=0.02", lambda: cobahh(4000, seed=1, monitor=None), 1),
    "cuba1000": ("CUBA N=1000 K=80", lambda: cuba(1000, in_degree=80, seed=1), 1),
    "cuba16000": ("CUBA N=16000 K=80", lambda: cuba(16000, in_degree=80, seed=1), 1),
    "batch32": ("CUBA N=4000 x32 batched", lambda: cuba(4000, seed=1, batch=32), 32),
}
RUNNERS = ("torch", "brian2", "brian2:cpp_standalone", "brian2:numpy")


def run_once(runner: str, net: Network, duration: float, caches: Path | None = None) -> dict[str, Any]:
    """One call of ``runner`` on ``net``: wall time from the network to the Solution (planning,
    code generation, compilation included), loop time, spikes and the code that ran."""
    start = time.perf_counter()
    if runner == "torch":
        sol = Engine(net).run(duration)
        code = sol.meta["engine"]
    else:
        target = runner.partition(":")[2] or "auto"
        directory = str(caches / "cpp_standalone") if caches is not None and target == "cpp_standalone" else None
        sol = Brian2Solver(target=target, directory=directory).simulate(net, (0.0, duration))
        code = sol.meta["target"]
    wall = time.perf_counter() - start
    idx, t = sol.spikes.for_sample(0)
    return {"runner": runner, "code": code, "wall_s": wall, "loop_s": float(sol.meta["loop_time"]),
            "spikes": int(len(sol.spikes)), "raster": (idx.tolist(), np.rint(t / net.dt).astype(int).tolist())}


def first_call(case: str, runner: str, duration: float, caches: Path) -> dict[str, Any]:
    """``runner`` on ``case`` in a fresh process whose compiler caches live in ``caches``."""
    env = dict(os.environ, NEUROPLEX_SNN_CACHE=str(caches / "engine"), NEUROPLEX_THREADS="1")
    cmd = [sys.executable, __file__, "--child", case, runner, "--duration", str(duration), "--caches", str(caches)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"{runner} on {case} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _child(case: str, runner: str, duration: float, caches: Path) -> int:
    from brian2 import prefs

    prefs.codegen.runtime.cython.cache_dir = str(caches / "cython")
    set_threads(1)
    net = CASES[case][1]()
    row = run_once(runner, net, duration, caches)
    row.pop("raster")
    print(json.dumps(row))
    return 0


def run_case(name: str, *, duration: float, repeats: int, runners: tuple[str, ...]) -> dict[str, Any]:
    desc, build, batch = CASES[name]
    net = build()
    n_syn = sum(len(s) for s in net.synapses.values())
    first: dict[str, dict[str, Any]] = {}
    for runner in runners:
        with tempfile.TemporaryDirectory(prefix="neuroplex_bench_") as folder:
            cold = first_call(name, runner, duration, Path(folder))
            warm = first_call(name, runner, duration, Path(folder))
        first[runner] = {"cold": cold, "warm": warm}
        print(f"  {runner}: first call cold {cold['wall_s']:.2f} s, warm {warm['wall_s']:.2f} s ({cold['code']})",
              file=sys.stderr, flush=True)
    # in-process loop times, runners alternating; Brian2's cpp_standalone reuses one project
    loops: dict[str, list[float]] = {r: [] for r in runners}
    last: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="neuroplex_bench_") as folder:
        for _ in range(repeats):
            for runner in runners:
                row = run_once(runner, net, duration, Path(folder))
                loops[runner].append(row["loop_s"] / batch)
                last[runner] = row
    rows = []
    ref = last["torch"]
    for runner in runners:
        r = last[runner]
        rows.append({"runner": runner, "code": r["code"], "spikes": r["spikes"],
                     "same_raster_as_torch": r["raster"] == ref["raster"],
                     "loop_s": min(loops[runner]), "loop_all_s": loops[runner],
                     "first_cold_s": first[runner]["cold"]["wall_s"] / batch,
                     "first_warm_s": first[runner]["warm"]["wall_s"] / batch,
                     "first_cold_code": first[runner]["cold"]["code"]})
    base = rows[0]
    for r in rows:
        for key in ("loop_s", "first_cold_s", "first_warm_s"):
            r[key.replace("_s", "_ratio")] = r[key] / base[key]
    return {"case": name, "description": desc, "batch": batch, "synapses": n_syn, "duration_s": duration,
            "rows": rows}


def check_instance(duration: float = 1.0) -> dict[str, Any]:
    """Brian2's exported CUBA instance on the engine and on Brian2 (default target), float64."""
    path = data_path("snn-reference", "cuba_n4000_seed1_instance.npz")
    ref_path = data_path("snn-reference", "cuba_n4000_seed1_spikes.csv")
    if not path.exists() or not ref_path.exists():
        return {"case": "instance", "skipped": f"shared data missing: {path}"}
    net = Network.load(path)
    ref = np.loadtxt(ref_path, delimiter=",", skiprows=1)
    steps = np.rint(ref[:, 1] / 0.1).astype(int)  # the reference is 1 s long, in ms
    keep = steps < int(round(duration / net.dt))
    theirs = set(zip(ref[keep, 0].astype(int).tolist(), steps[keep].tolist()))
    out: dict[str, Any] = {"case": "instance", "reference_spikes": len(theirs)}
    for runner in ("torch", "brian2"):
        row = run_once(runner, net, duration)
        ours = set(zip(*row["raster"]))
        out[runner] = {"code": row["code"], "spikes": len(ours), "identical_raster": ours == theirs}
    return out


def _table(case: dict[str, Any]) -> str:
    per = " (per network)" if case["batch"] > 1 else ""
    lines = [f"{case['description']}, {case['duration_s']:g} s, {case['synapses']} synapses{per}",
             f"  {'runner':<22} {'code':<15} {'spikes':>7} {'loop s':>8} {'x torch':>8} {'first cold s':>13} "
             f"{'x torch':>8} {'first warm s':>13} {'x torch':>8}  same raster"]
    for r in case["rows"]:
        lines.append(f"  {r['runner']:<22} {r['code']:<15} {r['spikes']:>7d} {r['loop_s']:>8.3f} {r['loop_ratio']:>8.2f} "
                     f"{r['first_cold_s']:>13.2f} {r['first_cold_ratio']:>8.2f} {r['first_warm_s']:>13.2f} "
                     f"{r['first_warm_ratio']:>8.2f}  {r['same_raster_as_torch']}")
    return "\n".join(lines)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="cuba4000,cobahh4000,instance",
                    help="comma-separated: " + ", ".join([*CASES, "instance"]))
    ap.add_argument("--runners", default=",".join(RUNNERS), help="comma-separated, torch first: " + ", ".join(RUNNERS))
    ap.add_argument("--duration", type=float, default=1.0, help="biological time per run (s)")
    ap.add_argument("--repeats", type=int, default=3, help="in-process runs per runner (best loop time kept)")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    ap.add_argument("--child", nargs=2, metavar=("CASE", "RUNNER"), help=argparse.SUPPRESS)
    ap.add_argument("--caches", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return _child(args.child[0], args.child[1], args.duration, args.caches)
    set_threads(1)
    names = [c.strip() for c in args.cases.split(",") if c.strip()]
    runners = tuple(r.strip() for r in args.runners.split(",") if r.strip())
    unknown = [c for c in names if c not in CASES and c != "instance"] + [r for r in runners if r not in RUNNERS]
    if unknown or runners[:1] != ("torch",):
        ap.error(f"unknown case(s)/runner(s) {', '.join(unknown)}" if unknown else "the first runner must be torch")
    import brian2

    env = {"torch_threads": torch.get_num_threads(), "torch": torch.__version__, "brian2": brian2.__version__,
           "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
           "load_avg_start": os.getloadavg()}
    results = []
    for name in names:
        print(f"{name} ...", file=sys.stderr, flush=True)
        result = check_instance(args.duration) if name == "instance" else run_case(
            name, duration=args.duration, repeats=args.repeats, runners=runners)
        results.append(result)
        if name != "instance":
            print(_table(result), flush=True)
        elif "skipped" in result:
            print(f"CUBA instance: {result['skipped']}")
        else:
            print("CUBA instance (reference {reference_spikes} spikes): ".format(**result) + "; ".join(
                f"{r} [{result[r]['code']}] {result[r]['spikes']} spikes, identical raster {result[r]['identical_raster']}"
                for r in ("torch", "brian2")), flush=True)
    env["load_avg_end"] = os.getloadavg()
    print(f"torch threads {env['torch_threads']}, load average {env['load_avg_start']} -> {env['load_avg_end']}")
    if args.out is not None:
        _write_json(args.out, {"environment": env, "results": results})
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
