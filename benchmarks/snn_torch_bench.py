"""The neuroplex spiking engine on its own (CUBA, COBAHH): its code backends, the CUBA seed
statistics and the full single-neuron reference checks.

    python benchmarks/snn_torch_bench.py                 # CUBA N=1000/4000/16000, batched 32
    python benchmarks/snn_torch_bench.py --backend torch # the torch fallback code instead of C
    python benchmarks/snn_torch_bench.py --seeds 5       # independent CUBA networks: rate, ISI CV
    python benchmarks/snn_torch_bench.py --references    # full 1 s single-neuron references

Loop time = the engine's step loop only; build time = planning, code generation and the C
compiler (or loading the library from the disk cache: ``cached``) reported apart; best of
``--repeats``; torch threads fixed with ``neuroplex.config.set_threads`` (default 1). The
side-by-side table against Brian2 (cython, cpp_standalone, numpy) is ``snn_bench.py``.
``--out`` writes the results as JSON (atomically).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from neuroplex.config import data_path, set_threads
from neuroplex.plugins.snn import Engine, Network, TimedArray, cobahh, cuba, spike_stats
from neuroplex.units import mV


def time_network(net: Network, duration: float, dtype: torch.dtype, repeats: int, device: str = "cpu",
                 backend: str = "auto") -> dict:
    engine = Engine(net, dtype=dtype, device=device, backend=backend)
    loops, spikes = [], 0
    for _ in range(repeats):
        sol = engine.run(duration)
        loops.append(sol.meta["loop_time"])
        spikes = len(sol.spikes)
    return {"build_s": engine.build_time, "cached": engine.cached, "engine": engine.backend, "loop_s": min(loops),
            "loops": loops, "spikes": spikes, "per_network_s": min(loops) / net.batch}


def bench(args: argparse.Namespace) -> list[dict]:
    rows = []
    dtype = getattr(torch, args.dtype)
    cases = [("CUBA", 1000, {"in_degree": 80}, 1), ("CUBA", 4000, {"p": 0.02}, 1),
             ("CUBA", 16000, {"in_degree": 80}, 1), ("CUBA", 1000, {"in_degree": 80}, args.batch),
             ("CUBA", 4000, {"p": 0.02}, args.batch)]
    if args.cobahh:
        cases.append(("COBAHH", 4000, {"p": 0.02}, 1))
    for name, n, conn, batch in cases:
        t0 = time.perf_counter()
        builder = cuba if name == "CUBA" else cobahh
        net = builder(n, seed=1, batch=batch, **conn, **({"monitor": None} if name == "COBAHH" else {}))
        setup = time.perf_counter() - t0
        res = time_network(net, args.duration, dtype, args.repeats, args.device, args.backend)
        res.update(case=name, n=n, batch=batch, connectivity=conn, setup_s=setup, dtype=args.dtype)
        rows.append(res)
        print(f"{name:6s} N={n:6d} B={batch:3d} {str(conn):18s} [{res['engine']}] loop {res['loop_s']:.3f} s "
              f"({res['per_network_s']:.3f} s/network)  spikes {res['spikes']}  "
              f"build {res['build_s']:.2f} s{' (cached)' if res['cached'] else ''}  setup {setup:.2f} s", flush=True)
    return rows


def seeds(args: argparse.Namespace) -> dict:
    """Independent CUBA realisations (new connectivity and v0 per seed) in one batched run."""
    net = cuba(4000, seed=args.seed0, batch=args.seeds)
    sol = net.run(1.0, dtype=getattr(torch, args.dtype))
    per = [spike_stats(sol, 4000, 1.0, sample=b) for b in range(args.seeds)]
    out = {k: float(np.mean([p[k] for p in per])) for k in ("rate_hz", "mean_cv_isi", "frac_active")}
    out["per_seed"] = per
    print(f"CUBA N=4000, {args.seeds} independent networks: mean rate {out['rate_hz']:.3f} Hz "
          f"(Brian 5.65), mean ISI CV {out['mean_cv_isi']:.4f} (Brian 0.524), "
          f"active {out['frac_active']:.3f} (Brian 0.840)")
    for b, p in enumerate(per):
        print(f"  sample {b}: {p}")
    return out


def references(args: argparse.Namespace) -> list[dict]:
    """The full single-neuron reference runs (float64 and float32)."""
    from neuroplex.host import get_neuron

    ref_dir = data_path("snn-reference")
    values = torch.zeros(10000)
    values[1000:9000] = 0.5e-9
    current = TimedArray(values, 1e-4)

    def hh():
        return get_neuron("traub_miles")(synapses=False, E_l=-65 * mV, v0=-65 * mV, refractory="threshold")

    cases = [("lif exact 0.1 ms", lambda: get_neuron("lif")(E_l=-49 * mV), None, 1e-4, "lif_single_spikes.csv", {}),
             ("izhikevich RS euler 0.1 ms", lambda: get_neuron("izhikevich")(I_dc=10 * mV), None, 1e-4,
              "izh_rs_spikes.csv", {}),
             ("HH exp-Euler 0.1 ms", hh, "exponential_euler", 1e-4, "hh_step_expeuler_spikes.csv", {"I": current}),
             ("HH exp-Euler 0.01 ms", hh, "exponential_euler", 1e-5, "hh_step_expeuler_dt0.01_spikes.csv",
              {"I": current}),
             ("HH RK4 0.01 ms", hh, "rk4", 1e-5, "hh_step_rk4_dt0.01_spikes.csv", {"I": current})]
    rows = []
    for label, make, method, dt, ref_name, inputs in cases:
        ref = np.rint(np.atleast_1d(np.loadtxt(ref_dir / ref_name, delimiter=",", skiprows=1)) * 1e-3 / dt).astype(int)
        for dtype in (torch.float64, torch.float32):
            net = Network(dt=dt)
            net.add_population("N", make(), 1, method=method, inputs=inputs)
            sol = net.run(1.0, dtype=dtype)
            got = np.rint(sol.spikes.time.numpy() / dt).astype(int)
            same = len(got) == len(ref)
            diff = int(np.abs(got - ref).max()) if same and len(ref) else None
            rows.append({"case": label, "dtype": str(dtype), "ref": len(ref), "got": len(got), "max_step_diff": diff})
            print(f"{label:28s} {str(dtype):14s} reference {len(ref):3d} spikes, torch {len(got):3d}, "
                  f"max |step diff| {diff}", flush=True)
    return rows


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--backend", default="auto", choices=["auto", "c", "torch"], help="the engine's code")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cobahh", action="store_true", help="also time COBAHH N=4000")
    ap.add_argument("--seeds", type=int, default=0, help="run N independent CUBA networks and report statistics")
    ap.add_argument("--seed0", type=int, default=1)
    ap.add_argument("--references", action="store_true", help="run the full single-neuron references")
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    set_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.1f}, "
          f"dtype {args.dtype}, device {args.device}, backend {args.backend}", flush=True)
    result: dict = {"threads": torch.get_num_threads(), "load": os.getloadavg()}
    if not args.no_timing:
        result["timing"] = bench(args)
    if args.seeds:
        result["seeds"] = seeds(args)
    if args.references:
        result["references"] = references(args)
    if args.out:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
