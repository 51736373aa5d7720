"""Cost and results of the torch ``equilibrate`` distance test (``accept="distance"``, the
default) against the residual test alone (``accept="residual"``, the old rule) for the
plugins that call it, on one CPU thread, both timed in this process, interleaved:

- EqProp's free phase (the default rule, 64-100-10, batch 20, digits, ``free_steps`` 20):
  as the rule calls it (``tol`` 1e-4), and with ``tol`` 1e-2 so every sample is checked;
- EqProp training, one epoch of the default rule (train CPU seconds), its calls of
  ``neuroplex.equilibrate`` forced to each rule (it asks for ``accept="residual"``: this case
  measured why), at its ``tol`` 1e-4 and at 1e-2;
- EPL's RDS population relaxation (``RDSPopulation.relax``, fixed-point iteration to ``tol``).

Prints one JSON line per case: CPU seconds per call of each rule (median over ``--reps``),
the ratio distance / residual, the mean CPU seconds of the distance checks alone (the rest of
the difference is the resumed runs of samples found too far), the samples SUCCESS under each rule and the largest state
difference between the two::

    OMP_NUM_THREADS=1 python benchmarks/equilibrate_accept_bench.py --reps 5
"""
from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from typing import Any, Callable

import torch

import neuroplex
from neuroplex.datasets import digits
from neuroplex.plugins.torch_solver import distance
from neuroplex.plugins.epl import RDSPopulation, build, random_description
from neuroplex.plugins.eqprop.rule import EqPropRule
from neuroplex.solution import Solution, Status
from neuroplex.trainer import Trainer

ACCEPTS = ("residual", "distance")
CHECK_S = [0.0]  # CPU seconds in the distance checks (Jacobian and solves), the rest is resumed runs
_newton_distance = distance.newton_distance


def _timed_newton_distance(*args: Any, **kwargs: Any) -> Any:
    start = time.process_time()
    try:
        return _newton_distance(*args, **kwargs)
    finally:
        CHECK_S[0] += time.process_time() - start


distance.newton_distance = _timed_newton_distance  # type: ignore[assignment]


def compare(name: str, run: Callable[[str], Solution], reps: int, **extra: Any) -> dict[str, Any]:
    """Time ``run(accept)`` for both rules, interleaved, and compare their solutions."""
    times: dict[str, list[float]] = {a: [] for a in ACCEPTS}
    sols: dict[str, Solution] = {}
    for a in ACCEPTS:  # warm-up
        run(a)
    CHECK_S[0] = 0.0
    for _ in range(reps):
        for a in ACCEPTS:
            start = time.process_time()
            sols[a] = run(a)
            times[a].append(time.process_time() - start)
    med = {a: statistics.median(times[a]) for a in ACCEPTS}
    old, new = sols["residual"], sols["distance"]
    row = {"case": name, **extra, "residual_cpu_s": round(med["residual"], 5), "distance_cpu_s": round(med["distance"], 5),
           "ratio": round(med["distance"] / med["residual"], 3),
           "check_cpu_s": round(CHECK_S[0] / reps, 5), "batch": int(old.ys.shape[0]),
           "n_states": int(old.ys.shape[1]),
           "success_residual": int((old.status == Status.SUCCESS).sum()),
           "success_distance": int((new.status == Status.SUCCESS).sum()),
           "max_abs_state_diff": float((old.ys - new.ys).abs().max()),
           "reasons": sorted(set(new.meta.get("reasons", {}).values()))[:2]}
    print(json.dumps(row))
    return row


def eqprop_cases(reps: int) -> None:
    data = digits()
    rule = EqPropRule()
    torch.manual_seed(0)
    rule.init(0)
    c = rule.config
    x = data.x_train[:20].to(rule.dtype)
    dyn = rule.dynamics.bind(x)
    y0 = torch.cat(rule.energy.forward(x, rule.params), -1) if c.fast_ff_init else dyn.initial_state(batch=x.shape[0])
    for tol in (c.tol, 1e-2):
        compare("eqprop free phase", lambda a, tol=tol: neuroplex.equilibrate(  # type: ignore[misc]
            dyn, y0, solver="torch", method="iteration", tol=tol, max_iter=c.free_steps, accept=a), reps, tol=tol)


def _forced(equilibrate: Callable[..., Solution], rule: str, /, *args: Any, **kwargs: Any) -> Solution:
    """``equilibrate`` with ``accept=rule`` whatever the caller asked (the rule asks for "residual")."""
    return equilibrate(*args, **{**kwargs, "accept": rule})


def eqprop_epochs(reps: int) -> None:
    """Train CPU seconds per epoch of the default rule under each rule (test accuracy too)."""
    data, equilibrate = digits(), neuroplex.equilibrate
    for tol in (EqPropRule().config.tol, 1e-2):
        times: dict[str, list[float]] = {a: [] for a in ACCEPTS}
        acc: dict[str, float] = {}
        for _ in range(reps):
            for a in ACCEPTS:
                neuroplex.equilibrate = functools.partial(_forced, equilibrate, a)  # type: ignore[assignment]
                try:
                    hist = Trainer(EqPropRule(tol=tol), data, epochs=1, batch_size=20, seed=0, progress=False,
                                   plot=False, threads=1).fit()
                finally:
                    neuroplex.equilibrate = equilibrate  # type: ignore[assignment]
                times[a].append(hist[-1]["cpu_seconds"])
                acc[a] = hist[-1]["test_accuracy"]
        med = {a: statistics.median(times[a]) for a in ACCEPTS}
        print(json.dumps({"case": "eqprop train epoch", "tol": tol, "residual_cpu_s": round(med["residual"], 4),
                          "distance_cpu_s": round(med["distance"], 4), "ratio": round(med["distance"] / med["residual"], 3),
                          "test_accuracy_residual": acc["residual"], "test_accuracy_distance": acc["distance"]}))


def epl_cases(reps: int, pop: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(2, 9, (pop,), generator=g).tolist()
    population = RDSPopulation([build(random_description(s, seed=seed * 100_000 + i)) for i, s in enumerate(sizes)])
    for tol in (1e-6, 1e-8):
        compare("epl RDS population relax", lambda a, tol=tol: population.relax(  # type: ignore[misc]
            tol=tol, max_iter=20000, accept=a), reps, tol=tol)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--pop", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    eqprop_cases(args.reps)
    eqprop_epochs(args.reps)
    epl_cases(args.reps, args.pop, args.seed)


if __name__ == "__main__":
    main()
