"""The Nguyen benchmark (Uy et al. 2011) in the DSR/DSO sampling, and the scoring used by
``benchmarks/xnet_bench.py`` and ``neuroplex xnet bench``: R^2 in range and on an extrapolation
box, and exact symbolic recovery (sympy)."""
from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass
from typing import Callable

import numpy as np
import sympy

x1, x2 = sympy.symbols("x1 x2", real=True)


@dataclass(frozen=True)
class Problem:
    name: str
    expr: sympy.Expr
    n_vars: int
    train: tuple[float, float]       # DSO spec: 20 points U[a, b] per variable
    extrap: tuple[float, float]      # wider box (docs/xnet.md)
    paper: tuple[float, float]       # X-Net Table 1 protocol: training range

    def sample(self, box: tuple[float, float], n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        X = rng.uniform(box[0], box[1], (n, self.n_vars))
        return X, self.f(X)

    def f(self, X: np.ndarray) -> np.ndarray:
        fn = sympy.lambdify([x1, x2][: self.n_vars], self.expr, "numpy")
        return np.broadcast_to(np.asarray(fn(*X.T), dtype=float), (X.shape[0],)).copy()


def _p(i, e, k, tr, ex, paper=None):
    return Problem(f"Nguyen-{i}", e, k, tr, ex, paper or tr)


NGUYEN: list[Problem] = [
    _p(1, x1**3 + x1**2 + x1, 1, (-1, 1), (-5, 5), (-2, 2)),
    _p(2, x1**4 + x1**3 + x1**2 + x1, 1, (-1, 1), (-5, 5), (-2, 2)),
    _p(3, x1**5 + x1**4 + x1**3 + x1**2 + x1, 1, (-1, 1), (-5, 5), (-2, 2)),
    _p(4, x1**6 + x1**5 + x1**4 + x1**3 + x1**2 + x1, 1, (-1, 1), (-5, 5), (-2, 2)),
    _p(5, sympy.sin(x1**2) * sympy.cos(x1) - 1, 1, (-1, 1), (-5, 5), (-2, 2)),
    _p(6, sympy.sin(x1) + sympy.sin(x1 + x1**2), 1, (-1, 1), (-5, 5), (-2, 2)),
    _p(7, sympy.log(x1 + 1) + sympy.log(x1**2 + 1), 1, (0, 2), (0, 5), (0, 2)),
    _p(8, sympy.sqrt(x1), 1, (0, 4), (0, 10), (0, 4)),
    _p(9, sympy.sin(x1) + sympy.sin(x2**2), 2, (0, 1), (-3, 3), (-1, 1)),
    _p(10, 2 * sympy.sin(x1) * sympy.cos(x2), 2, (0, 1), (-3, 3), (-1, 1)),
    _p(11, x1**x2, 2, (0, 1), (0, 3), (0, 1)),
    _p(12, x1**4 - x1**3 + x2**2 / 2 - x2, 2, (0, 1), (-3, 3), (-1, 1)),
]


def by_name(name: str) -> Problem:
    for p in NGUYEN:
        if p.name.lower() == name.lower() or p.name.split("-")[1] == name:
            return p
    raise KeyError(name)


def r2(y: np.ndarray, pred: np.ndarray) -> float:
    y, pred = np.asarray(y, float), np.asarray(pred, float)
    if not np.all(np.isfinite(pred)):
        return -np.inf
    ss = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float(((y - pred) ** 2).sum()) / ss if ss > 0 else float(np.allclose(y, pred))


def _equal(args) -> bool:
    cand, truth = args
    try:
        diff = sympy.simplify(cand - truth)
        if diff == 0:
            return True
        if sympy.simplify(sympy.expand(sympy.expand_log(diff, force=True))) == 0:
            return True
        return sympy.simplify(sympy.expand_trig(diff)) == 0
    except Exception:
        return False


def recovered(candidate: sympy.Expr, truth: sympy.Expr, positive: bool = False, timeout: float = 10.0) -> bool:
    """Exact recovery: ``simplify(candidate - truth) == 0`` after rationalising the candidate's
    floats (tolerance 1e-6), with a time limit (a timeout counts as not recovered)."""
    syms = {s.name: sympy.Symbol(s.name, positive=True) if positive else sympy.Symbol(s.name, real=True)
            for s in candidate.free_symbols | truth.free_symbols}
    def rationalise(e: sympy.Expr) -> sympy.Expr:
        reps = {}
        for f in e.atoms(sympy.Float):
            v = float(f)
            reps[f] = 0 if abs(v) < 1e-8 else sympy.nsimplify(v, [sympy.pi], tolerance=1e-6 * max(1.0, abs(v)))
        return e.xreplace(reps)

    base = candidate.xreplace({s: syms[s.name] for s in candidate.free_symbols})
    tru = truth.xreplace({s: syms[s.name] for s in truth.free_symbols})
    # the candidate's floats rationalised as they stand, then after expanding (products of
    # floats combine into the coefficients of a polynomial or of a sum of functions)
    for cand in (rationalise(base), rationalise(sympy.expand(base))):
        with mp.get_context("fork").Pool(1) as pool:
            res = pool.apply_async(_equal, ((cand, tru),))
            try:
                if res.get(timeout):
                    return True
            except mp.TimeoutError:
                pass
    return False


def evaluate(make: Callable[[Problem, int], object], problem: Problem, seed: int, protocol: str = "recovery") -> dict:
    """Fit one model on one problem and seed; R^2 in range / extrapolated, recovery, size, CPU s."""
    import time

    rng = np.random.default_rng(seed)
    box = problem.train if protocol == "recovery" else problem.paper
    n = 20 if protocol == "recovery" else 100
    X, y = problem.sample(box, n, rng)
    model = make(problem, seed)
    t0 = time.process_time()
    model.fit(X, y)
    cpu = time.process_time() - t0
    Xi, yi = problem.sample(box, 1000, rng)
    Xe, ye = problem.sample(problem.extrap, 1000, rng)
    row = dict(problem=problem.name, seed=seed, cpu_s=cpu,
               r2_in=r2(yi, model.predict(Xi)), r2_ext=r2(ye, model.predict(Xe)))
    expr = model.sympy() if hasattr(model, "sympy") else None
    if expr is not None and not isinstance(expr, sympy.Expr):
        expr = sympy.sympify(str(expr))
    row["expr"] = str(expr)
    row["nodes"] = int(getattr(model, "n_nodes_", -1))
    row["params"] = int(getattr(model, "n_params_", -1))
    positive = box[0] >= 0
    row["recovered"] = bool(expr is not None and recovered(expr, problem.expr, positive=positive))
    return row
