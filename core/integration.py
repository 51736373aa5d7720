"""The functional integrator interface shared by solvers and runners.

A runner (for example the SBML runner, which implements events, delays and priorities on
top of a plain ODE integrator) receives an :class:`Integrator` from the solver it runs on
(``solver.integrator()``) and calls it with the solver's :class:`~neuroplex.settings.StepControl`
unchanged; the result is an :class:`IntegrationResult`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch

from .settings import StepControl
from .solution import Status

#: ``f(t, y) -> dy/dt`` on a batch: ``t (B,)``, ``y (B, n)``
Rhs = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: ``g(t, y) -> (B, k)``: a sample stops where a column crosses from < 0 to >= 0
EventFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class IntegrationResult:
    """Result of an integrator call.

    ``ts (n_t,)`` output times; ``ys (B, n_t, n)`` states there (NaN after a sample stopped);
    ``t_end``/``y_end`` where each sample stopped (``t1`` or its event time); ``status``
    (:class:`~neuroplex.solution.Status` codes); ``event_index`` (column of ``event_fn`` that
    stopped the sample, -1 if none); ``n_steps`` (attempted steps) and ``n_rhs`` per sample.
    """

    ts: torch.Tensor | None
    ys: torch.Tensor | None
    t_end: torch.Tensor
    y_end: torch.Tensor
    status: torch.Tensor
    event_index: torch.Tensor
    n_steps: torch.Tensor
    n_rhs: torch.Tensor

    @property
    def ok(self) -> bool:
        return bool((self.status == Status.SUCCESS).all())


class Integrator(Protocol):
    """``integrator(f, t0, t1, y0, *, method, control, t_eval, atol, event_fn, progress,
    stiff_stop, stiff_budget) -> IntegrationResult``.

    ``y0 (B, n)``; ``control`` is used as given; ``atol``, when not None, overrides
    ``control.atol`` with per-state tolerances (a ``(B, n)`` or ``(n,)`` tensor);
    ``event_fn(t, y) -> (B, k)`` stops a sample at the first column crossing from < 0 to >= 0
    (columns >= 0 at ``t0`` arm once they go negative). ``stiff_stop``: stop samples the
    method's stiffness test flags (status ``STIFF``) unless on pace to finish within
    ``stiff_budget`` steps (integrators without a stiffness test ignore it)."""

    def __call__(self, f: Rhs, t0: float, t1: float, y0: torch.Tensor, *, method: str, control: StepControl,
                 t_eval: torch.Tensor | None = None, atol: float | torch.Tensor | None = None,
                 event_fn: EventFn | None = None, progress: bool = False, stiff_stop: bool = False,
                 stiff_budget: int | None = None) -> IntegrationResult: ...


@dataclass(frozen=True)
class AutoPolicy:
    """The ``auto`` method of a solver that offers one (``Solver.auto_policy``; the torch solver's
    is dopri5 then rosenbrock): run ``first`` with its stiffness test stopping the samples it finds
    stiff unless they are on pace to finish within ``step_budget`` steps (status ``STIFF``), then
    rerun the stopped samples and those out of ``max_steps`` from the start with ``fallback``.
    A sample that is not stiff finishes on ``first`` however many steps its tolerance needs.
    Every model kind the solver runs uses the same policy (IR models and Dynamics in the solver,
    SBML models in their runner)."""

    first: str
    fallback: str
    step_budget: int

    def needs_fallback(self, status: torch.Tensor) -> torch.Tensor:
        """``(B,)`` bool: the samples of a ``first`` run to rerun with ``fallback``."""
        return (status == Status.MAX_STEPS) | (status == Status.STIFF)

    def label(self, fell_back: bool) -> str:
        """The solution's ``method``: which methods ran."""
        if fell_back:
            return f"auto ({self.first}, {self.fallback} for stiff samples)"
        return f"auto ({self.first})"
