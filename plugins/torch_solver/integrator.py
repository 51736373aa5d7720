"""The functional core of the torch solver: :func:`integrate`, and :class:`TorchIntegrator`, the
:class:`~neuroplex.integration.Integrator` that ``TorchSolver.integrator()`` hands to runners
(the SBML runner) with the step control given as a :class:`~neuroplex.settings.StepControl`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from neuroplex.errors import SolverError
from neuroplex.integration import EventFn, IntegrationResult, Rhs
from neuroplex.settings import StepControl

from .events import EventSpec
from .loop import run_loop
from .methods import get_method


def _as_batch_times(v: float | torch.Tensor, b: int, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(v, dtype=like.dtype, device=like.device).expand(b).clone()


def integrate(f: Rhs, t0: float | torch.Tensor, t1: float | torch.Tensor, y0: torch.Tensor, *,
              method: str = "dopri5", rtol: float = 1e-6, atol: float | torch.Tensor = 1e-9,
              dt0: float | torch.Tensor | None = None, dt_min: float = 0.0, dt_max: float | None = None,
              t_eval: torch.Tensor | Sequence[float] | None = None,
              event_fn: EventFn | None = None,
              max_steps: int = 100_000, adaptive: bool | None = None,
              progress: bool = False, stiff_stop: bool = False, stiff_budget: int | None = None,
              fused: bool = False) -> IntegrationResult:
    """Integrate a batch of ODEs ``y' = f(t, y)``: the functional core of the torch solver.

    ``f(t, y) -> dy``: ``y`` is ``(B, n)``, ``t`` a ``(B,)`` tensor (every sample has its own
    time). ``t0``/``t1``: floats or ``(B,)`` tensors. ``y0``: ``(B, n)`` (or ``(n,)``, run as
    ``B = 1``). ``method``: a simulate method of the table (``euler``, ``heun``, ``rk4``
    (fixed step ``dt0``, default span/1000), ``dopri5``, ``rosenbrock`` (adaptive; ``dt0`` is
    the first step)).
    ``rtol``/``atol``: per-sample error control, RMS norm of
    ``err / (atol + rtol * max(|y0|, |y1|))``; ``atol`` may be a tensor broadcasting to ``(B, n)``
    (per-state tolerances). ``t_eval``: increasing ``(n_t,)`` output times,
    filled by the method's dense output. ``event_fn(t, y) -> (B, k)``: sample ``b`` stops at
    the first time a column crosses from ``< 0`` to ``>= 0`` (located inside the step by root
    finding on the dense output, to about 1e-13 relative); columns already ``>= 0`` at the start
    arm once they go negative. Outputs after a stop are NaN; ``event_index`` names the column.
    ``adaptive=False`` runs an adaptive method on the fixed step ``dt0``. ``stiff_stop``: dopri5
    stops samples its stiffness test finds stiff (status ``STIFF``) unless at their pace so far
    they finish within ``stiff_budget`` steps (default ``max_steps``), so a caller can rerun them
    with ``rosenbrock`` instead of spending its step budget; samples the test does not find stiff
    go on up to ``max_steps``. ``fused=True``: dopri5 and dop853 run each step as one compiled
    kernel where ``f`` is traceable (``f.traceable = (fn, args)``, see
    :mod:`neuroplex.plugins.torch_solver.fused` and :mod:`.fused_loop`): worth its compile time
    (seconds to minutes, cached on disk) on large batches.
    Returns an :class:`IntegrationResult`; failed samples carry their status
    (``MAX_STEPS``, ``DT_MIN``, ``NONFINITE``, ``STIFF``) and never raise.
    """
    squeeze = y0.dim() == 1
    y0b = y0[None] if squeeze else y0
    if y0b.dim() != 2:
        raise SolverError(f"integrate: y0 must be (B, n) or (n,), got shape {tuple(y0.shape)}")
    if not y0b.is_floating_point():
        y0b = y0b.to(torch.get_default_dtype())
    b = y0b.shape[0]
    t0b = _as_batch_times(t0, b, y0b)
    t1b = _as_batch_times(t1, b, y0b)
    if not bool((t1b >= t0b).all()):
        bad = torch.nonzero(~(t1b >= t0b)).flatten().tolist()
        raise SolverError(f"integrate: need t1 >= t0 (forward in time); sample(s) {bad[:10]} have "
                          f"t0={t0b[bad[0]].item()}, t1={t1b[bad[0]].item()} (first shown)")
    te = None
    if t_eval is not None:
        te = torch.as_tensor(t_eval, dtype=y0b.dtype, device=y0b.device).flatten().contiguous()
        if te.numel() > 1 and bool((te[1:] < te[:-1]).any()):
            raise SolverError("integrate: t_eval must be increasing")
    events = None
    if event_fn is not None:
        k = int(event_fn(t0b, y0b).shape[-1])
        events = EventSpec(event_fn, torch.zeros(k, dtype=torch.bool, device=y0b.device),
                           torch.ones(k, dtype=torch.bool, device=y0b.device))
    stepper = get_method(method, "simulate").factory()
    if dt0 is None and not stepper.info.adaptive and bool(torch.isfinite(t1b - t0b).all()):
        dt0 = ((t1b - t0b) / 1000).clamp_min(torch.finfo(y0b.dtype).tiny)
    res = run_loop(f, stepper, t0b, t1b, y0b, rtol=rtol, atol=atol, dt0=dt0, dt_min=dt_min, dt_max=dt_max,
                   max_steps=max_steps, t_eval=te, events=events, adaptive=adaptive,
                   progress=progress, stiff_stop=stiff_stop, stiff_budget=stiff_budget, fused=fused)
    return IntegrationResult(te, res.ys, res.t_end, res.y_end, res.status, res.event_index, res.n_steps, res.n_rhs)


@dataclass(frozen=True)
class TorchIntegrator:
    """Batched torch integration; ``fused``: dopri5/dop853 steps as one compiled kernel where
    the right-hand side is traceable (see :mod:`.fused`)."""

    fused: bool = False

    def __call__(self, f: Rhs, t0: float, t1: float, y0: torch.Tensor, *, method: str, control: StepControl,
                 t_eval: torch.Tensor | None = None, atol: float | torch.Tensor | None = None,
                 event_fn: EventFn | None = None, progress: bool = False, stiff_stop: bool = False,
                 stiff_budget: int | None = None) -> IntegrationResult:
        return integrate(f, t0, t1, y0, method=method, rtol=control.rtol,
                         atol=control.atol if atol is None else atol, dt0=control.dt0, dt_min=control.dt_min,
                         dt_max=control.dt_max, max_steps=control.max_steps, t_eval=t_eval, event_fn=event_fn,
                         progress=progress, stiff_stop=stiff_stop, stiff_budget=stiff_budget, fused=self.fused)
