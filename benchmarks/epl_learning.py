"""EPL learning (Algorithm 1) on the small tasks over several seeds: test loss before and after
training, against predicting the mean training target, and the mean BP-likeness
(eqn:EPL_LOSS_BPA). Prints a markdown table.

    OMP_NUM_THREADS=1 python benchmarks/epl_learning.py [--epochs 5] [--seeds 5] [--feedback-gain 0.5]
        [--remove-input] [--tasks logic-and regression-1d]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from neuroplex.plugins.epl.rule import EPLConfig, EPLRule
from neuroplex.plugins.epl.tasks import get_task


def run(task_name: str, seed: int, epochs: int, config: EPLConfig) -> dict[str, float]:
    task = get_task(task_name)
    rule = EPLRule(config)
    rule.init(seed, torch.device("cpu"))
    before = rule.evaluate(task.x_test, task.y_test)["loss"]
    likeness = []
    for _ in range(epochs):
        likeness.append(rule.train_batch(task.x_train, task.y_train)["bp_likeness"])
    after = rule.evaluate(task.x_test, task.y_test)["loss"]
    mean = float(((task.y_test - task.y_train.mean()) ** 2).mean())
    return {"before": before, "after": after, "mean": mean, "bp": sum(likeness) / len(likeness)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--feedback-gain", type=float, default=0.5)
    ap.add_argument("--remove-input", action="store_true")
    ap.add_argument("--tasks", nargs="*", default=["logic-and", "regression-1d"])
    args = ap.parse_args()
    config = EPLConfig(feedback_gain=args.feedback_gain, remove_input=args.remove_input)
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
