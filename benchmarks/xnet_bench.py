"""X-Net on the Nguyen benchmark, gplearn side by side (issue 18, item 5).

    python benchmarks/xnet_bench.py --protocol recovery --seeds 0,1,2 --problems 1-12 --time-budget 60 --with-gplearn
    python benchmarks/xnet_bench.py --protocol paper --seeds 0,1,2
    python benchmarks/xnet_bench.py --classify iris --seeds 0,1,2 --time-budget 30

* ``recovery``: the DSR/DSO spec (20 points U[a, b] per variable, docs/xnet.md), exact symbolic
  recovery by sympy, R^2 on 1000 fresh in-range points and on the extrapolation box;
* ``paper``: X-Net Table 1 protocol, 100 training points on the paper's range ([-2, 2] for the
  one-variable polynomials), R^2 in range and extrapolated, X-Net with constants (``xnet``) and
  without (``xnet-noconst``: every w = 1, b = 0);
* node and parameter counts of every fitted model, and per problem at R^2 >= 0.99 (Table 2),
  CPU seconds per run.

Prints a markdown table (median and worst over seeds) and writes the rows as JSON (``--json``).
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from neuroplex.config import set_threads  # noqa: E402
from neuroplex.plugins.xnet.bench import parse_ids, print_table, run_bench, table2  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--protocol", choices=("recovery", "paper"), default="recovery")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--problems", default="1-12")
    ap.add_argument("--time-budget", type=float, default=60.0, help="CPU seconds per X-Net run")
    ap.add_argument("--with-gplearn", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--classify", choices=("iris", "digits"), default=None,
                    help="classification instead: test accuracy and size over the seeds")
    a = ap.parse_args()
    set_threads(1)
    if a.classify:
        classify(a.classify, [int(s) for s in a.seeds.split(",")], a.time_budget)
        return
    rows = run_bench(parse_ids(a.problems), [int(s) for s in a.seeds.split(",")], a.protocol, a.time_budget,
                     a.with_gplearn, a.json)
    print(print_table(rows))
    print()
    print(table2(rows))


def classify(name: str, seeds: list[int], time_budget: float) -> None:
    """XNetClassifier (one tree per class, cross-entropy) on the core's data sets (the split
    depends on the seed), next to a logistic regression on the same split."""
    import time
    from statistics import median

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from neuroplex.datasets import load_dataset
    from neuroplex.plugins.xnet import XNetClassifier

    accs, nodes = [], []
    for seed in seeds:
        d = load_dataset(name, seed=seed)
        clf = XNetClassifier(random_state=seed, time_budget=time_budget)
        t0 = time.process_time()
        clf.fit(d.x_train.numpy(), d.y_train.numpy())
        acc = clf.score(d.x_test.numpy(), d.y_test.numpy())
        accs.append(acc)
        nodes.append(clf.n_nodes_)
        cpu = time.process_time() - t0
        peer = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(d.x_train.numpy(), d.y_train.numpy())
        print(f"{name} seed {seed}: test accuracy {acc:.4f}, nodes {clf.n_nodes_}, parameters {clf.n_params_}, "
              f"CPU {cpu:.1f} s; logistic regression on the same split {peer.score(d.x_test.numpy(), d.y_test.numpy()):.4f}",
              flush=True)
    print(f"{name}: accuracy median {median(accs):.4f} worst {min(accs):.4f}; nodes median {median(nodes)}")


if __name__ == "__main__":
    main()
