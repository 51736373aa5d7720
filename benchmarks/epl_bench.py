"""Batched population evaluation of RDS systems (one torch call, padded to the largest) against
a per-system loop, on one CPU thread: relaxation through the core ``neuroplex.equilibrate``
with a fixed number of implicit-layer steps (tol 0), same result checked.

    OMP_NUM_THREADS=1 python benchmarks/epl_bench.py --pop 100 --steps 200
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from neuroplex.plugins.epl import RDSPopulation, build, random_description


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pop", type=int, default=100)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--max-spaces", type=int, default=8, help="4 species per space: 8 -> at most 32 species")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(args.seed)
    sizes = torch.randint(2, args.max_spaces + 1, (args.pop,), generator=g).tolist()
    systems = [build(random_description(s, seed=args.seed * 100_000 + i)) for i, s in enumerate(sizes)]
    pop = RDSPopulation(systems)
    pop.relax(tol=0.0, max_iter=5)  # warm-up
    t = time.perf_counter()
    batched = pop.relax(tol=0.0, max_iter=args.steps)
    t_batch = time.perf_counter() - t
    singles = [RDSPopulation([r]) for r in systems]
    t = time.perf_counter()
    loop = [p.relax(tol=0.0, max_iter=args.steps) for p in singles]
    t_loop = time.perf_counter() - t
    diff = max(float((a - p.unpad(b.ys)[0]).abs().max()) for a, b, p in zip(pop.unpad(batched.ys), loop, singles))
    print(json.dumps({"pop": args.pop, "species": [min(sizes) * 4, max(sizes) * 4], "steps": args.steps,
                      "batched_s": round(t_batch, 4), "loop_s": round(t_loop, 4),
                      "speedup": round(t_loop / t_batch, 1), "max_abs_diff": diff, "threads": 1}))


if __name__ == "__main__":
    main()
