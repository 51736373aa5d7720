"""Batched torch solver vs a ``scipy.integrate.solve_ivp`` loop over the same samples.

Two problems, each an ensemble of parameter sets at the same tolerances:

* non-stiff: Van der Pol (mu in [0.5, 2]) over 0..20, torch ``dopri5`` in one batched call vs
  scipy ``RK45`` (also Dormand-Prince 5(4)) per sample;
* stiff: Robertson with the rate constants scaled by [0.5, 2] over 0..100, torch ``rosenbrock``
  vs scipy ``LSODA`` per sample.

Throughput = samples per CPU second (``time.process_time``, robust to a shared machine); scipy is
timed on a subset of the samples and scaled. Both sides run on one thread
(``neuroplex.config.set_threads``) and their results are compared at the end time.

    python benchmarks/torch_solver_bench.py [--batch 2000] [--scipy-samples 100] [--json out.json]

``--equilibrium`` instead times the fixed-point loop's own cost: ``neuroplex.equilibrate(...,
method="iteration")`` on a clipped affine map (the EqProp Hopfield step, 110 states, batch 20)
against the bare map calls, giving the per-call front-door time (``max_iter=0``) and the
solver's per-iteration overhead beyond the map.
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Any, Callable

import numpy as np
import torch

from neuroplex.config import set_threads
from neuroplex.plugins.torch_solver import integrate


def vdp_torch(mu: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def f(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.stack([y[:, 1], mu * (1 - y[:, 0] ** 2) * y[:, 1] - y[:, 0]], -1)
    return f


def vdp_numpy(mu: float) -> Callable[[float, np.ndarray], np.ndarray]:
    def f(t: float, y: np.ndarray) -> np.ndarray:
        return np.array([y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]])
    return f


def rob_torch(k: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def f(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y1, y2, y3 = y[:, 0], y[:, 1], y[:, 2]
        r1, r2, r3 = 0.04 * k * y1, 1e4 * k * y2 * y3, 3e7 * k * y2 * y2
        return torch.stack([-r1 + r2, r1 - r2 - r3, r3], -1)
    return f


def rob_numpy(k: float) -> Callable[[float, np.ndarray], np.ndarray]:
    def f(t: float, y: np.ndarray) -> np.ndarray:
        r1, r2, r3 = 0.04 * k * y[0], 1e4 * k * y[1] * y[2], 3e7 * k * y[1] * y[1]
        return np.array([-r1 + r2, r1 - r2 - r3, r3])
    return f


def run_case(name: str, batch: int, n_scipy: int, t1: float, y0: list[float], spread: tuple[float, float],
             torch_rhs: Callable, numpy_rhs: Callable, method: str, scipy_method: str, rtol: float,
             atol: float) -> dict[str, Any]:
    from scipy.integrate import solve_ivp

    gen = torch.Generator().manual_seed(0)
    prm = spread[0] + (spread[1] - spread[0]) * torch.rand(batch, generator=gen, dtype=torch.float64)
    y0t = torch.tensor(y0, dtype=torch.float64).expand(batch, -1).clone()
    start = time.process_time()
    res = integrate(torch_rhs(prm), 0.0, t1, y0t, method=method, rtol=rtol, atol=atol)
    torch_s = time.process_time() - start
    assert res.ok, f"{name}: torch samples failed: {res.status.unique().tolist()}"
    idx = np.linspace(0, batch - 1, n_scipy).astype(int)
    start = time.process_time()
    ends = []
    for i in idx:
        sol = solve_ivp(numpy_rhs(float(prm[i])), (0.0, t1), y0, method=scipy_method, rtol=rtol, atol=atol)
        assert sol.success, sol.message
        ends.append(sol.y[:, -1])
    scipy_s = time.process_time() - start
    ends_np = np.array(ends)
    ours = res.y_end[torch.as_tensor(idx)].numpy()
    rel = float(np.max(np.abs(ours - ends_np) / (np.abs(ends_np) + 1e3 * atol)))
    torch_rate = batch / torch_s
    scipy_rate = n_scipy / scipy_s
    return {"case": name, "batch": batch, "torch_method": method, "scipy_method": scipy_method,
            "rtol": rtol, "atol": atol, "torch_cpu_s": round(torch_s, 3),
            "torch_steps_max": int(res.n_steps.max()), "scipy_samples": n_scipy,
            "scipy_cpu_s": round(scipy_s, 3), "torch_samples_per_s": round(torch_rate, 1),
            "scipy_samples_per_s": round(scipy_rate, 1), "ratio": round(torch_rate / scipy_rate, 2),
            "max_rel_diff_at_end": rel}


def equilibrium_overhead(batch: int = 20, n: int = 110, iters: int = 20, reps: int = 300) -> dict[str, Any]:
    """CPU microseconds: one map step, the front door (``max_iter=0``) and the per-iteration
    overhead ``(t(max_iter=iters) - t(max_iter=0) - iters * map) / iters``."""
    import neuroplex
    from neuroplex.dynamics import Dynamics

    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen) * 0.02
    c = torch.rand(batch, n, generator=gen) * 0.5

    class Clipped(Dynamics):
        name = "clipped-affine"
        state_names = [f"y{i}" for i in range(n)]

        def fixed_point_map(self, y, p=None, u=None):
            return torch.addmm(c, y, a).clamp_(0, 1)

        def rhs(self, t, y, p=None, u=None):
            return self.fixed_point_map(y) - y

    dyn, y0 = Clipped(), torch.zeros(batch, n)

    def cpu_us(fn: Callable[[], Any]) -> float:
        fn()
        start = time.process_time()
        for _ in range(reps):
            fn()
        return (time.process_time() - start) / reps * 1e6

    def bare() -> None:
        y = y0
        for _ in range(iters):
            y = dyn.fixed_point_map(y)

    def call(k: int) -> Callable[[], Any]:
        return lambda: neuroplex.equilibrate(dyn, y0, solver="torch", method="iteration", tol=0.0, max_iter=k)

    step = cpu_us(bare) / iters
    front = cpu_us(call(0))
    full = cpu_us(call(iters))
    return {"case": "equilibrium overhead", "batch": batch, "states": n, "iterations": iters,
            "map_step_us": round(step, 1), "front_door_us": round(front, 1),
            "per_iteration_overhead_us": round((full - front - iters * step) / iters, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--scipy-samples", type=int, default=100)
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--equilibrium", action="store_true", help="time the fixed-point loop's overhead instead")
    args = ap.parse_args()
    set_threads()
    if args.equilibrium:
        r = equilibrium_overhead()
        print(f"equilibrate(iteration), batch {r['batch']} x {r['states']}: map step {r['map_step_us']} us, "
              f"front door {r['front_door_us']} us/call, solver overhead {r['per_iteration_overhead_us']} us/iteration")
        _write(args.json, [r])
        return
    results = [
        run_case("van der pol (non-stiff)", args.batch, args.scipy_samples, 20.0, [2.0, 0.0], (0.5, 2.0),
                 vdp_torch, vdp_numpy, "dopri5", "RK45", 1e-6, 1e-9),
        run_case("robertson (stiff)", args.batch, args.scipy_samples, 100.0, [1.0, 0.0, 0.0], (0.5, 2.0),
                 rob_torch, rob_numpy, "rosenbrock", "LSODA", 1e-6, 1e-12),
    ]
    for r in results:
        print(f"{r['case']:<26} batch {r['batch']}: torch {r['torch_method']} {r['torch_samples_per_s']:>9.1f} "
              f"samples/s | scipy {r['scipy_method']} loop {r['scipy_samples_per_s']:>7.1f} samples/s | "
              f"ratio {r['ratio']:.1f}x | max rel diff {r['max_rel_diff_at_end']:.1e}")
    _write(args.json, results)


def _write(dest: str | None, results: list[dict[str, Any]]) -> None:
    """Results as JSON, atomically (temp file + os.replace)."""
    if dest:
        from pathlib import Path
        import os
        import tempfile

        path = Path(dest)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w") as fh:
            json.dump(results, fh, indent=2)
        os.replace(tmp, path)


if __name__ == "__main__":
    main()
