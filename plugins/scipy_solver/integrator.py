"""A scipy ``OdeSolver`` loop with the functional integrator interface of neuroplex.

``integrate(f, t0, t1, y0, *, method, rtol, atol, t_eval, event_fn, max_steps)`` has the
signature and result of the torch solver's :func:`neuroplex.plugins.torch_solver.integrate`,
so the SBML runner (:mod:`neuroplex.sbml.runner`) runs on it unchanged. Samples of a
batch run one after another, each through scipy's step-by-step solver classes (LSODA, BDF,
Radau, RK45, DOP853) with dense output. The Jacobian for the implicit methods comes from torch
autograd: ``n`` stacked copies of ``y`` go through ``f`` once and one backward pass of
``sum_i f(Y)_ii`` leaves row ``i`` of ``df/dy`` in the gradient of copy ``i``.

Events: ``event_fn(t, y) -> (B, k)``; a sample stops at the first time an armed column
crosses from ``< 0`` to ``>= 0`` (columns ``>= 0`` at the start arm once they go negative),
located on the step's dense output by bisection to a bracket of a few ulps; the stop state
is the dense output at the bracket's upper end, where the column reads ``>= 0``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from neuroplex.errors import NeuroplexError
from neuroplex.integration import EventFn, IntegrationResult, Rhs
from neuroplex.settings import StepControl
from neuroplex.solution import Status

METHODS = ("LSODA", "BDF", "Radau", "RK45", "DOP853")
IMPLICIT = frozenset({"LSODA", "BDF", "Radau"})


def canonical_method(method: str | None) -> str:
    canon = {m.lower(): m for m in METHODS}
    key = str(method or "LSODA").lower()
    if key not in canon:
        raise NeuroplexError(f"scipy solver: unknown method {method!r} (methods: {', '.join(METHODS)})")
    return canon[key]


class _Sample:
    """numpy views of a batched torch ``f`` for one sample, counting evaluations."""

    def __init__(self, f: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], n: int, dtype: torch.dtype):
        self.f, self.n, self.dtype = f, n, dtype
        self.n_rhs = 0
        self.eye = torch.eye(n, dtype=dtype)

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        self.n_rhs += 1
        with torch.no_grad():
            out = self.f(torch.full((1,), float(t), dtype=self.dtype), torch.as_tensor(y, dtype=self.dtype)[None])
        return out[0].numpy()

    def jac(self, t: float, y: np.ndarray) -> np.ndarray:
        rows = torch.as_tensor(np.array(y), dtype=self.dtype).expand(self.n, -1).clone().requires_grad_(True)
        with torch.enable_grad():
            out = self.f(torch.full((self.n,), float(t), dtype=self.dtype), rows)
            (out * self.eye).sum().backward()
        return rows.grad.numpy()


def _sample_atol(atol: float | torch.Tensor, b: int) -> float | np.ndarray:
    """Sample ``b``'s absolute tolerance: a float, or its row of a per-state tensor."""
    if not isinstance(atol, torch.Tensor):
        return float(atol)
    a = atol.detach().to(torch.float64)
    return (a[b] if a.dim() == 2 and a.shape[0] > 1 else a.reshape(-1)).numpy().copy()


def integrate(f: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], t0: float, t1: float, y0: torch.Tensor, *,
              method: str = "LSODA", rtol: float = 1e-8, atol: float | torch.Tensor = 1e-10, t_eval: Any = None,
              event_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
              max_steps: int = 200_000, max_step: float | None = None, first_step: float | None = None,
              jacobian: bool = True, **_ignored: Any) -> IntegrationResult:
    """Integrate ``y' = f(t, y)`` for each sample of ``y0 (B, n)`` with a scipy solver.

    ``atol``: a float, or per-state tolerances as an ``(n,)`` or ``(B, n)`` tensor."""
    from scipy import integrate as si

    cls = getattr(si, canonical_method(method))
    y0b = torch.as_tensor(y0, dtype=torch.float64)
    y0b = y0b[None] if y0b.dim() == 1 else y0b
    batch, n = y0b.shape
    t0, t1 = float(t0), float(t1)
    te = None if t_eval is None else torch.as_tensor(t_eval, dtype=torch.float64).flatten()
    te_np = None if te is None else te.numpy()
    ys = None if te is None else torch.full((batch, te.numel(), n), math.nan, dtype=torch.float64)
    t_end = torch.full((batch,), t1, dtype=torch.float64)
    y_end = y0b.clone()
    status = torch.zeros(batch, dtype=torch.long)
    event_index = torch.full((batch,), -1, dtype=torch.long)
    n_steps = torch.zeros(batch, dtype=torch.long)
    n_rhs = torch.zeros(batch, dtype=torch.long)
    implicit = jacobian and cls.__name__ in IMPLICIT
    for b in range(batch):
        sample = _Sample(f, n, torch.float64)
        y_start = y0b[b].numpy().copy()
        out = None if ys is None else ys[b]
        if te_np is not None:
            out[torch.from_numpy(te_np == t0)] = y0b[b]
        if n == 0 or t1 <= t0:
            y_end[b] = y0b[b]
            t_end[b] = t0 if t1 <= t0 else t1
            continue
        kwargs: dict[str, Any] = {"rtol": rtol, "atol": _sample_atol(atol, b)}
        if max_step is not None:
            kwargs["max_step"] = max_step
        if first_step is not None:
            kwargs["first_step"] = min(first_step, t1 - t0)
        if implicit:
            kwargs["jac"] = sample.jac
        solver = cls(sample.rhs, t0, y_start, t1, **kwargs)
        ev = None if event_fn is None else _Events(event_fn, b, t0, y_start)
        code, t_stop, y_stop, k_hit = Status.SUCCESS, t1, None, -1
        steps = 0
        while solver.status == "running":
            t_old = solver.t
            message = solver.step()
            steps += 1
            if solver.status == "failed":
                code = Status.DT_MIN if "step size" in str(message).lower() else Status.FAILED
                t_stop, y_stop = t_old, None
                break
            t_new, y_new = solver.t, solver.y
            if not np.isfinite(y_new).all():
                code, t_stop = Status.NONFINITE, t_old
                break
            dense = None
            if ev is not None:
                hit = ev.check(t_new, y_new)
                if hit is not None:
                    dense = solver.dense_output()
                    t_stop, k_hit = ev.locate(dense, t_old, t_new, hit)
                    y_stop = dense(t_stop)
            upper = t_stop if k_hit >= 0 else t_new
            if te_np is not None:
                sel = (te_np > t_old) & (te_np <= upper)
                if sel.any():
                    dense = dense or solver.dense_output()
                    idx = np.flatnonzero(sel)
                    vals = np.array(dense(te_np[idx]), dtype=np.float64).reshape(n, idx.size).T
                    if upper == t_new and te_np[idx[-1]] == t_new:
                        vals[-1] = y_new  # exact step end
                    out[torch.from_numpy(idx)] = torch.from_numpy(np.asarray(vals, dtype=np.float64))
            if k_hit >= 0:
                break
            if steps >= max_steps:
                code, t_stop = Status.MAX_STEPS, t_new
                y_stop = y_new.copy()
                break
        if code == Status.SUCCESS and k_hit < 0:
            t_stop, y_stop = solver.t, solver.y.copy()
        t_end[b] = t_stop
        y_end[b] = torch.from_numpy(np.asarray(y_stop if y_stop is not None else solver.y, dtype=np.float64))
        status[b] = int(code)
        event_index[b] = k_hit
        n_steps[b], n_rhs[b] = steps, sample.n_rhs
    return IntegrationResult(te, ys, t_end, y_end, status, event_index, n_steps, n_rhs)


@dataclass(frozen=True)
class ScipyIntegrator:
    """:func:`integrate` as a :class:`neuroplex.integration.Integrator` (what
    ``ScipySolver.integrator()`` hands to runners): step control from the given
    :class:`~neuroplex.settings.StepControl` (``dt_max`` is scipy's ``max_step``); the solver's
    own ``first_step`` and ``jacobian`` are bound here. No stiffness test: ``stiff_stop`` is moot."""

    first_step: float | None = None
    jacobian: bool = True

    def __call__(self, f: Rhs, t0: float, t1: float, y0: torch.Tensor, *, method: str, control: StepControl,
                 t_eval: torch.Tensor | None = None, atol: float | torch.Tensor | None = None,
                 event_fn: EventFn | None = None, progress: bool = False, stiff_stop: bool = False,
                 stiff_budget: int | None = None) -> IntegrationResult:
        return integrate(f, t0, t1, y0, method=method, rtol=control.rtol, atol=control.atol if atol is None else atol,
                         t_eval=t_eval, event_fn=event_fn, max_steps=control.max_steps, max_step=control.dt_max,
                         first_step=self.first_step, jacobian=self.jacobian)


class _Events:
    """Armed-column bookkeeping and root location for one sample."""

    def __init__(self, event_fn: Callable, b: int, t0: float, y0: np.ndarray):
        self.event_fn = event_fn
        g = self.g(t0, y0)
        self.armed = g < 0

    def g(self, t: float, y: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = self.event_fn(torch.full((1,), float(t), dtype=torch.float64),
                                torch.as_tensor(np.asarray(y), dtype=torch.float64)[None])
        return out[0].numpy()

    def check(self, t: float, y: np.ndarray) -> np.ndarray | None:
        g = self.g(t, y)
        hit = self.armed & (g >= 0)
        if hit.any():
            return hit
        self.armed |= g < 0
        return None

    def locate(self, dense: Any, ta: float, tb: float, hit: np.ndarray) -> tuple[float, int]:
        """The earliest crossing among the hit columns: bisection on the dense output."""
        cols = np.flatnonzero(hit)
        lo, hi = ta, tb
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if mid <= lo or mid >= hi:
                break
            g = self.g(mid, dense(mid))[cols]
            if (g >= 0).any():
                hi = mid
            else:
                lo = mid
        g_hi = self.g(hi, dense(hi))[cols]
        k = int(cols[np.flatnonzero(g_hi >= 0)[0]]) if (g_hi >= 0).any() else int(cols[0])
        return hi, k
