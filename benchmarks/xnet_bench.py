"""X-Net on the Nguyen benchmark, gplearn side by side (issue 18, item 5).

    python benchmarks/xnet_bench.py --protocol recovery --seeds 0,1,2 --problems 1-12 --time-budget 60 --with-gplearn
    python benchmarks/xnet_bench.py --protocol paper --seeds 0,1,2

* ``recovery``: the DSR/DSO spec (20 points U[a, b] per variable, docs/xnet.md), exact symbolic
  recovery by sympy, R^2 on 1000 fresh in-range points and on the extrapolation box;
* ``paper``: X-Net Table 1 protocol, 100 training points on the paper's range ([-2, 2] for the
  one-variable polynomials), R^2 in range and extrapolated;
* node and parameter counts of every fitted model (Table 2), CPU seconds per run.

Prints a markdown table (median and worst over seeds) and writes the rows as JSON (``--json``).
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from neuroplex.config import set_threads  # noqa: E402
from neuroplex.plugins.xnet.bench import parse_ids, print_table, run_bench  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--protocol", choices=("recovery", "paper"), default="recovery")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--problems", default="1-12")
    ap.add_argument("--time-budget", type=float, default=60.0, help="CPU seconds per X-Net run")
    ap.add_argument("--with-gplearn", action="store_true")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    set_threads(1)
    rows = run_bench(parse_ids(a.problems), [int(s) for s in a.seeds.split(",")], a.protocol, a.time_budget,
                     a.with_gplearn, a.json)
    print(print_table(rows))


if __name__ == "__main__":
    main()
