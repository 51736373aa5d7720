"""EPL learning (Algorithm 1) on the small tasks over several seeds: test loss before and after
training, against predicting the mean training target, and the mean BP-likeness
(eqn:EPL_LOSS_BPA). Prints a markdown table.

    OMP_NUM_THREADS=1 python benchmarks/epl_learning.py [--epochs 5] [--seeds 5] [--feedback-gain 0.5]
        [--remove-input] [--tasks logic-and regression-1d]

``--moieties``: instead, train seed 0 for ``--epochs`` and print how the learned state's conserved
totals M^T z* moved (z* is a function of them): per step |cos| with M^T e_out (the feedback's
direction) and the singular values of the stacked changes (how many directions were learned).
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch

from neuroplex.plugins.epl.random import conservation_matrix
from neuroplex.plugins.epl.rule import EPLConfig, EPLRule
from neuroplex.plugins.epl.tasks import Task, get_task


def fitted(config: EPLConfig, task: Task) -> EPLConfig:
    """``config`` with the task's input and output widths (regression-1d has one input)."""
    return replace(config, n_inputs=task.x_train.shape[1], n_outputs=task.y_train.shape[1])


def run(task_name: str, seed: int, epochs: int, config: EPLConfig) -> dict[str, float]:
    task = get_task(task_name)
    rule = EPLRule(fitted(config, task))
    rule.init(seed, torch.device("cpu"))
    before = rule.evaluate(task.x_test, task.y_test)["loss"]
    likeness = []
    for _ in range(epochs):
        likeness.append(rule.train_batch(task.x_train, task.y_train)["bp_likeness"])
    after = rule.evaluate(task.x_test, task.y_test)["loss"]
    mean = float(((task.y_test - task.y_train.mean()) ** 2).mean())
    return {"before": before, "after": after, "mean": mean, "bp": sum(likeness) / len(likeness)}


def moieties(task_name: str, epochs: int, config: EPLConfig) -> str:
    """Directions in which training moved the conserved totals M^T z* (seed 0)."""
    task = get_task(task_name)
    rule = EPLRule(fitted(config, task))
    rule.init(0, torch.device("cpu"))
    n = rule.system.n
    M = conservation_matrix(rule.system.Mperp)
    M = M[:, M.abs().sum(0) > 0]
    totals = [M.T @ rule.z[:n]]
    for _ in range(epochs):
        for xi, yi in zip(task.x_train, task.y_train):
            rule.train_batch(xi[None], yi[None])
            totals.append(M.T @ rule.z[:n])
    steps = torch.stack([b - a for a, b in zip(totals, totals[1:])])
    e_out = torch.zeros(n, dtype=steps.dtype)
    e_out[rule._out] = 1.0
    cos = [abs(float(torch.nn.functional.cosine_similarity(d, M.T @ e_out, dim=0))) for d in steps]
    sv = torch.linalg.svdvals(steps).tolist()
    return (f"{task_name}, remove_input {config.remove_input}: {M.shape[1]} conserved totals; |cos(step, M^T e_out)| "
            f"{' '.join(f'{c:.4f}' for c in cos)}; singular values of the steps {' '.join(f'{v:.3g}' for v in sv)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--feedback-gain", type=float, default=0.5)
    ap.add_argument("--remove-input", action="store_true")
    ap.add_argument("--tasks", nargs="*", default=["logic-and", "regression-1d"])
    ap.add_argument("--moieties", action="store_true", help="which directions training moved z* (seed 0)")
    args = ap.parse_args()
    config = EPLConfig(feedback_gain=args.feedback_gain, remove_input=args.remove_input)
    if args.moieties:
        for name in args.tasks:
            print(moieties(name, args.epochs, config), flush=True)
        return
    print(f"feedback_gain {args.feedback_gain}, remove_input {args.remove_input}, {args.epochs} epochs, "
          f"seeds 0..{args.seeds - 1}")
    print("| task | loss before (median / worst) | loss after (median / worst) | predict-the-mean | "
          "seeds improved | seeds below mean | mean BP-likeness | s |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.tasks:
        t = time.time()
        rows = [run(name, s, args.epochs, config) for s in range(args.seeds)]
        b = [r["before"] for r in rows]
        a = [r["after"] for r in rows]
        print(f"| {name} | {statistics.median(b):.4f} / {max(b):.4f} | {statistics.median(a):.4f} / {max(a):.4f} | "
              f"{rows[0]['mean']:.4f} | {sum(r['after'] < r['before'] for r in rows)}/{len(rows)} | "
              f"{sum(r['after'] < r['mean'] for r in rows)}/{len(rows)} | "
              f"{statistics.mean(r['bp'] for r in rows):.3f} | {time.time() - t:.0f} |", flush=True)


if __name__ == "__main__":
    main()
