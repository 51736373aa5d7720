"""X-Net on the Nguyen benchmark, gplearn side by side (issue 18, item 5).

    python benchmarks/xnet_bench.py --protocol recovery --seeds 0,1,2 --problems 1-12 --time-budget 60 --with-gplearn
    python benchmarks/xnet_bench.py --protocol paper --seeds 0,1,2
    python benchmarks/xnet_bench.py --classify iris --seeds 0,1,2 --time-budget 30
    python benchmarks/xnet_bench.py --classify iris --cv 5 --seeds 0,1,2 --time-budget 10
    python benchmarks/xnet_bench.py --classify iris --cv 5 --seeds 0,1,2 --time-budget 10 --projection lda --bagging 8
    python benchmarks/xnet_bench.py --classify digits --pca 6 --seeds 0,1,2 --time-budget 60

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
    ap.add_argument("--cv", type=int, default=0,
                    help="classification: stratified K-fold cross-validation per seed (0: the data set's split)")
    ap.add_argument("--pca", type=int, default=None, help="classification: X-Net on this many principal components")
    ap.add_argument("--projection", choices=("pca", "lda"), default="pca",
                    help="classification: the input projection (lda: discriminant axes, n_classes - 1 unless --pca)")
    ap.add_argument("--bagging", type=int, default=1,
                    help="classification: searches on bootstrap resamples whose class trees are averaged")
    ap.add_argument("--select-cv", type=int, default=5, help="classification: inner CV folds of the final choice")
    a = ap.parse_args()
    set_threads(1)
    if a.classify:
        seeds = [int(s) for s in a.seeds.split(",")]
        opts = dict(n_components=a.pca, projection=a.projection, bagging=a.bagging, select_cv=a.select_cv)
        if a.cv:
            classify_cv(a.classify, seeds, a.time_budget, a.cv, opts)
        else:
            classify(a.classify, seeds, a.time_budget, opts)
        return
    rows = run_bench(parse_ids(a.problems), [int(s) for s in a.seeds.split(",")], a.protocol, a.time_budget,
                     a.with_gplearn, a.json)
    print(print_table(rows))
    print()
    print(table2(rows))


def classify(name: str, seeds: list[int], time_budget: float, opts: dict) -> None:
    """XNetClassifier (one tree per class, cross-entropy; ``opts``: its projection, bagging and
    inner-CV settings) on the core's data sets (the split depends on the seed for iris; digits
    has one fixed split, so its seeds vary only the fit), next to a logistic regression on the
    same split."""
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
        clf = XNetClassifier(random_state=seed, time_budget=time_budget, **opts)
        t0 = time.process_time()
        clf.fit(d.x_train.numpy(), d.y_train.numpy())
        acc = clf.score(d.x_test.numpy(), d.y_test.numpy())
        accs.append(acc)
        nodes.append(clf.n_nodes_)
        cpu = time.process_time() - t0
        peer = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(d.x_train.numpy(), d.y_train.numpy())
        print(f"{name} seed {seed}: test accuracy {acc:.4f}, nodes {clf.n_nodes_}, parameters {clf.n_params_}, "
              f"trees {clf.choice_}, rounds {clf.n_rounds_}, "
              f"CPU {cpu:.1f} s; logistic regression on the same split {peer.score(d.x_test.numpy(), d.y_test.numpy()):.4f}",
              flush=True)
    print(f"{name}: accuracy median {median(accs):.4f} worst {min(accs):.4f}; nodes median {median(nodes)}")



def classify_cv(name: str, seeds: list[int], time_budget: float, folds: int, opts: dict) -> None:
    """Stratified ``folds``-fold cross-validation of XNetClassifier (``opts``: its projection,
    bagging and inner-CV settings) on the whole data set, the
    shuffle seeded by each seed; logistic regression (C = 1 and C = 100) and an RBF SVC on the
    same folds. Per seed the mean test accuracy over the folds; median and worst over seeds."""
    import time
    from statistics import median

    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from neuroplex.datasets import load_dataset
    from neuroplex.plugins.xnet import XNetClassifier

    d = load_dataset(name, seed=0)
    X = np.concatenate([d.x_train.numpy(), d.x_test.numpy()]).astype(np.float64)
    y = np.concatenate([d.y_train.numpy(), d.y_test.numpy()])
    peers = {"logreg C=1": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
             "logreg C=100": lambda: make_pipeline(StandardScaler(), LogisticRegression(C=100, max_iter=5000)),
             "svc rbf": lambda: make_pipeline(StandardScaler(), SVC())}
    per_seed: dict[str, list[float]] = {k: [] for k in ["xnet", *peers]}
    for seed in seeds:
        accs: dict[str, list[float]] = {k: [] for k in per_seed}
        nodes, cpu, chosen = [], [], []
        for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
            t0 = time.process_time()
            clf = XNetClassifier(random_state=seed, time_budget=time_budget, **opts).fit(X[tr], y[tr])
            cpu.append(time.process_time() - t0)
            accs["xnet"].append(clf.score(X[te], y[te]))
            nodes.append(clf.n_nodes_)
            chosen.append(getattr(clf, "choice_", "-"))
            for k, make in peers.items():
                accs[k].append(make().fit(X[tr], y[tr]).score(X[te], y[te]))
        for k in per_seed:
            per_seed[k].append(float(np.mean(accs[k])))
        print(f"{name} seed {seed} ({folds}-fold): X-Net {per_seed['xnet'][-1]:.4f} (folds "
              + " ".join(f"{a:.3f}" for a in accs["xnet"]) + f"), nodes median {median(nodes)}, chosen trees " + "/".join(chosen) + ", "
              f"CPU {sum(cpu):.1f} s; " + ", ".join(f"{k} {per_seed[k][-1]:.4f}" for k in peers), flush=True)
    for k, v in per_seed.items():
        print(f"{name} {folds}-fold CV, {k}: mean accuracy per seed median {median(v):.4f} worst {min(v):.4f}")


if __name__ == "__main__":
    main()
