"""Nguyen benchmark runs shared by ``benchmarks/xnet_bench.py`` and ``neuroplex xnet bench``."""
from __future__ import annotations

import json
from statistics import median

import numpy as np

from .nguyen import NGUYEN, Problem, evaluate
from .estimators import XNetRegressor
from neuroplex.progress import progress_bar
from neuroplex.trainer import atomic_write_text

#: the recovery protocol's library (the issue's default); the paper protocol adds nothing
LIBRARY = ("+", "-", "*", "/", "sin", "cos", "log", "sqrt", "exp", "square", "x")


def parse_ids(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-")
            out += list(range(int(a), int(b) + 1))
        elif part.strip():
            out.append(int(part))
    return out


def xnet_factory(time_budget: float, constants: bool = True):

    def make(problem: Problem, seed: int):
        return XNetRegressor(library=LIBRARY, random_state=seed, time_budget=time_budget, constants=constants)
    return make


def gplearn_factory(time_budget: float):
    """gplearn SymbolicRegressor as in the research notes (pop 1000, 20 generations)."""
    try:
        from gplearn.genetic import SymbolicRegressor
    except ImportError as e:  # optional peer
        raise SystemExit("gplearn is not installed: pip install neuroplex[sr]") from e
    import sympy

    class GP:
        def __init__(self, seed: int) -> None:
            self.m = SymbolicRegressor(population_size=1000, generations=20, parsimony_coefficient=0.001,
                                       function_set=("add", "sub", "mul", "div", "sin", "cos", "log", "sqrt"),
                                       random_state=seed)

        def fit(self, X, y):
            self.m.fit(X, y)
            return self

        def predict(self, X):
            return self.m.predict(X)

        def sympy(self):
            loc = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
                   "div": lambda a, b: a / b, "sin": sympy.sin, "cos": sympy.cos, "log": sympy.log,
                   "sqrt": sympy.sqrt}
            loc.update({f"X{i}": sympy.Symbol(f"x{i + 1}") for i in range(2)})
            return sympy.sympify(str(self.m._program), locals=loc)

        @property
        def n_nodes_(self) -> int:
            return int(self.m._program.length_)

        @property
        def n_params_(self) -> int:
            return sum(isinstance(n, float) for n in self.m._program.program)

    return lambda problem, seed: GP(seed)


def run_bench(ids: list[int], seeds: list[int], protocol: str, time_budget: float, with_gplearn: bool,
              json_path: str | None = None) -> list[dict]:
    makers = {"xnet": xnet_factory(time_budget)}
    if protocol == "paper":  # Table 1 reports X-Net with and without constants
        makers["xnet-noconst"] = xnet_factory(time_budget, constants=False)
    if with_gplearn:
        makers["gplearn"] = gplearn_factory(time_budget)
    rows = []
    jobs = [(name, NGUYEN[i - 1], s) for i in ids for s in seeds for name in makers]
    for name, prob, seed in progress_bar(jobs, desc=f"nguyen {protocol}", unit="run"):
        row = evaluate(makers[name], prob, seed, protocol)
        row["model"] = name
        rows.append(row)
        if json_path:

            atomic_write_text(json_path, json.dumps(rows, indent=1))
    return rows


def print_table(rows: list[dict]) -> str:
    """Per model and problem: median and worst R^2 (in range, extrapolated), recovery, size, CPU."""
    lines = ["| model | problem | runs | R2 in (median / worst) | R2 extrap (median / worst) | recovered | nodes (median) | params (median) | CPU s (median) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        for prob in dict.fromkeys(r["problem"] for r in mine):
            rr = [r for r in mine if r["problem"] == prob]
            f = lambda k: [r[k] for r in rr]  # noqa: E731
            lines.append(f"| {model} | {prob} | {len(rr)} | {median(f('r2_in')):.4f} / {min(f('r2_in')):.4f} | "
                         f"{median(f('r2_ext')):.4f} / {min(f('r2_ext')):.4f} | {sum(f('recovered'))}/{len(rr)} | "
                         f"{median(f('nodes')):.0f} | {median(f('params')):.0f} | {median(f('cpu_s')):.1f} |")
        rec = [r["recovered"] for r in mine]
        rin = [median([r["r2_in"] for r in mine if r["problem"] == p]) for p in dict.fromkeys(r["problem"] for r in mine)]
        rex = [median([r["r2_ext"] for r in mine if r["problem"] == p]) for p in dict.fromkeys(r["problem"] for r in mine)]
        sizes = [r["nodes"] for r in mine if r["recovered"]]
        lines.append(f"| {model} | **all** | {len(mine)} | medians >= 0.99 on {sum(v >= 0.99 for v in rin)}/{len(rin)} | "
                     f"mean of medians {float(np.mean(np.clip(rex, -1, 1))):.3f} (clipped at -1) | "
                     f"{sum(rec)}/{len(rec)} = {sum(rec) / len(rec):.2f} | "
                     f"{median(sizes) if sizes else float('nan'):.0f} (recovered) | | "
                     f"{median([r['cpu_s'] for r in mine]):.1f} |")
    return "\n".join(lines)


def table2(rows: list[dict], threshold: float = 0.99) -> str:
    """Table 2 of the paper: per model and problem the median nodes and parameters of the runs
    that reach ``R^2 >= threshold`` in range."""
    lines = [f"| model | problem | runs at R2 >= {threshold} | nodes (median) | parameters (median) |",
             "|---|---|---|---|---|"]
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        good_all = [r for r in mine if r["r2_in"] >= threshold]
        for prob in dict.fromkeys(r["problem"] for r in mine):
            rr = [r for r in mine if r["problem"] == prob]
            good = [r for r in rr if r["r2_in"] >= threshold]
            cnt = (f"{median([r['nodes'] for r in good]):.0f} | {median([r['params'] for r in good]):.0f}"
                   if good else "- | -")
            lines.append(f"| {model} | {prob} | {len(good)}/{len(rr)} | {cnt} |")
        if good_all:
            lines.append(f"| {model} | **mean** | {len(good_all)}/{len(mine)} | "
                         f"{np.mean([r['nodes'] for r in good_all]):.2f} | {np.mean([r['params'] for r in good_all]):.1f} |")
    return "\n".join(lines)
