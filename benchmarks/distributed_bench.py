"""Ray executor against the local one: an ensemble of BIOMD0000000012 (repressilator) parameter
sets split over W workers, ``executor="ray"`` against ``executor="local"`` (W forked processes),
on this machine; Ray's start-up timed on its own; per-task overhead with empty shards.

    OMP_NUM_THREADS=1 python benchmarks/distributed_bench.py --sets 100000 --workers 2 --out distributed.json
    OMP_NUM_THREADS=1 python benchmarks/distributed_bench.py --sets 10000      # a smaller run

Timed, in this order: (1) local: ``simulate(..., workers=W)`` (forked processes, outputs written
in place); (2) Ray start-up: ``ray.init(num_cpus=W)`` and the first round of W tiny tasks (the
worker processes start and import neuroplex); (3) ray, first call (each worker fetches the model
and parameters and compiles the model) and (4) later calls (warm workers; best of ``--repeat``, as local); (5) per-task
overhead: ``Executor.map`` over ``--empty-tasks`` tasks that do nothing, ray and local; (6) with
``--scan-sets N``: the scaling model's check (docs/distributed.md): N sets in one process, one
set alone, and on Ray split into each of ``--scan-shards`` shards. Every ray ensemble is checked
equal to the local one sample by sample.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

import neuroplex
from neuroplex.ensembles import run_sharded
from neuroplex.executors import get_executor
from neuroplex.testing import require_data


def ensemble_params(model: neuroplex.ModelIR, n: int, seed: int = 0) -> torch.Tensor:
    """Every parameter scaled by exp(0.1 z), z ~ N(0, 1) (as ``sbml_bench.py``)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.tensor([p.value for p in model.parameters], dtype=torch.float64)
    return base * torch.exp(0.1 * torch.randn((n, base.numel()), generator=g, dtype=torch.float64))


def nothing(item: int) -> int:
    """An empty shard."""
    return item


def timed(fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201 - a timing helper
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def per_task(name: str, workers: int, n: int) -> float:
    """Seconds per empty task of ``Executor.map`` (after one warm-up round)."""
    with get_executor(name, workers) as ex:
        ex.map(nothing, list(range(workers)))
        _, seconds = timed(ex.map, nothing, list(range(n)))
    return seconds / n


def shard_scan(model: neuroplex.ModelIR, n: int, shard_counts: list[int], workers: int) -> dict[str, object]:
    """The scaling model's check: ``n`` sets in one process (the per-set cost c), one set alone
    (the per-shard fixed cost f of a simulate call), and on Ray with ``workers`` workers split
    into each of ``shard_counts`` shards (best of 2 each)."""
    params = ensemble_params(model, n, seed=1)
    opts = {"t_span": (0.0, 100.0), "n_points": 101, "method": "dopri5", "rtol": 1e-6, "atol": 1e-9}

    def best(fn, *args, **kwargs) -> float:  # noqa: ANN001, ANN002, ANN003
        return min(timed(fn, *args, **kwargs)[1] for _ in range(2))

    out: dict[str, object] = {"sets": n, "one_process_s": best(neuroplex.simulate, model, params=params, **opts),
                              "one_set_s": best(neuroplex.simulate, model, params=params[:1], **opts)}
    with get_executor("ray", workers) as ex:
        run_sharded(neuroplex.simulate, model, ex, {"params": params[:8]}, opts, n_shards=workers)  # warm workers
        out["ray_s_by_shards"] = {s: best(run_sharded, neuroplex.simulate, model, ex, {"params": params}, opts,
                                          n_shards=s) for s in shard_counts}
    print(f"scan, {n} sets: one process {out['one_process_s']:.2f} s (c = {1e3 * out['one_process_s'] / n:.3f} ms/set), "
          f"one set alone {out['one_set_s']:.3f} s; ray by shards: "
          + ", ".join(f"{s}: {v:.2f} s" for s, v in out["ray_s_by_shards"].items()), flush=True)  # type: ignore[attr-defined]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", type=int, default=100_000, help="parameter sets in the ensemble")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--t-end", type=float, default=100.0)
    ap.add_argument("--points", type=int, default=101)
    ap.add_argument("--empty-tasks", type=int, default=200, help="tasks of the per-task overhead measurement")
    ap.add_argument("--repeat", type=int, default=2, help="runs of local and of warm ray, the best kept")
    ap.add_argument("--scan-sets", type=int, default=0, help="also run the shard scan on this many sets (0: no)")
    ap.add_argument("--scan-shards", default="2,20,200", help="shard counts of the scan")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = ap.parse_args()
    import ray

    torch.set_num_threads(1)
    W = args.workers
    model = neuroplex.load_model(require_data("biomodels", "BIOMD0000000012.xml"))
    params = ensemble_params(model, args.sets)
    kw = dict(params=params, n_points=args.points, method="dopri5", rtol=1e-6, atol=1e-9, workers=W)
    neuroplex.simulate(model, (0.0, 1.0), params=params[:2], n_points=2)  # compile outside timing
    out: dict[str, object] = {"model": "BIOMD0000000012", "sets": args.sets, "workers": W, "t_end": args.t_end,
                              "points": args.points, "cpus": os.cpu_count(),
                              "load_1min": os.getloadavg()[0]}
    print(f"{args.sets} sets of BIOMD0000000012, 0..{args.t_end}, {args.points} points, {W} workers "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)", flush=True)

    local, out["local_first_s"] = timed(neuroplex.simulate, model, args.t_end, **kw)
    out["local_s"] = min([out["local_first_s"], *(timed(neuroplex.simulate, model, args.t_end, **kw)[1]
                                                  for _ in range(args.repeat - 1))])
    print(f"local ({W} forked processes):      {out['local_s']:8.2f} s (best of {args.repeat}; first "
          f"{out['local_first_s']:.2f} s)", flush=True)

    _, out["ray_init_s"] = timed(ray.init, num_cpus=W, include_dashboard=False, log_to_driver=False)
    _, out["ray_workers_start_s"] = timed(per_task, "ray", W, W)
    print(f"ray start-up: init {out['ray_init_s']:.2f} s, first tasks (workers start) "
          f"{out['ray_workers_start_s']:.2f} s", flush=True)
    try:
        first, out["ray_first_s"] = timed(neuroplex.simulate, model, args.t_end, executor="ray", **kw)
        second, out["ray_warm_s"] = timed(neuroplex.simulate, model, args.t_end, executor="ray", **kw)
        out["ray_warm_s"] = min([out["ray_warm_s"], *(timed(neuroplex.simulate, model, args.t_end, executor="ray",
                                                            **kw)[1] for _ in range(args.repeat - 1))])
        for name, sol in (("first", first), ("warm", second)):
            if not (torch.equal(sol.ys, local.ys) and torch.equal(sol.status, local.status)):
                raise SystemExit(f"ray ({name} call) differs from local: max |diff| "
                                 f"{float((sol.ys - local.ys).abs().nan_to_num().max()):.3g}")
        out["ray_first_over_local"] = out["ray_first_s"] / out["local_s"]  # type: ignore[operator]
        out["ray_warm_over_local"] = out["ray_warm_s"] / out["local_s"]  # type: ignore[operator]
        print(f"ray, first call (cold workers):    {out['ray_first_s']:8.2f} s  ({out['ray_first_over_local']:.2f}x local)")
        print(f"ray, warm workers (best of {args.repeat}): {out['ray_warm_s']:6.2f} s  ({out['ray_warm_over_local']:.2f}x local)")
        print("ray results equal local ones sample by sample", flush=True)
        out["bytes_in"] = params.numel() * params.element_size()
        out["bytes_out"] = local.ys.numel() * local.ys.element_size()
        print(f"object store: {out['bytes_in'] / 1e6:.1f} MB of parameters put once, "
              f"{out['bytes_out'] / 1e6:.1f} MB of outputs back", flush=True)
        out["ray_task_overhead_ms"] = 1e3 * per_task("ray", W, args.empty_tasks)
        if args.scan_sets:
            out["scan"] = shard_scan(model, args.scan_sets, [int(x) for x in args.scan_shards.split(",")], W)
    finally:
        ray.shutdown()
    out["local_task_overhead_ms"] = 1e3 * per_task("local", W, args.empty_tasks)
    print(f"per empty task: ray {out['ray_task_overhead_ms']:.2f} ms, local (forked groups) "
          f"{out['local_task_overhead_ms']:.3f} ms over {args.empty_tasks} tasks", flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps(out, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
