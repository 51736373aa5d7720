"""What a simulation method is to the step loop: the :class:`Stepper` protocol.

A method describes itself once in a :class:`MethodInfo` (order, adaptive or not, right-hand
side evaluations and Jacobians per step, step-size controller exponents, stiffness test) and
takes a step as a pure call: ``step(f, t, y, h, t_new, f0, tol, stiffness_test) ->``
:class:`StepResult`, a value. The loop hands it the tolerances (:class:`Tolerances`) and whether
to run its stiffness test; nothing is written into the stepper or read back from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch

Rhs = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: ``dense(theta) -> y(t + theta h)``: ``theta (B,)`` gives ``(B, n)``
Dense = Callable[[torch.Tensor], torch.Tensor]

#: the controller's default largest growth factor of a step (Hairer's DOPRI5 default)
FAC_MAX = 10.0


@dataclass(frozen=True)
class MethodInfo:
    """A method's constants.

    ``order``: the error estimate behaves like ``h**order`` (sets the controller exponent
    ``1/order``); ``adaptive``: the step returns an error estimate; ``rhs_per_step``/
    ``jac_per_step``: evaluations per step (the stats); ``controller_beta``: the PI term of the
    step-size controller (Hairer, *Solving ODEs II*, sec. IV.2; 0: integral control);
    ``fac_max``: largest growth factor of a step; ``stiff_h_lambda``: the method's stability
    boundary for its stiffness test (``|h lambda|`` at which a step counts as stiff; None: no
    test); ``fusable``: the step can run as one compiled kernel (:class:`FusableStepper`).
    """

    name: str
    order: int
    adaptive: bool
    rhs_per_step: int
    jac_per_step: int = 0
    controller_beta: float = 0.0
    fac_max: float = FAC_MAX
    stiff_h_lambda: float | None = None
    fusable: bool = False


@dataclass(frozen=True)
class Tolerances:
    """What a step's error is measured against: ``rtol`` and ``atol`` (a float, or per-state /
    per-sample tolerances as a tensor broadcasting to ``(B, n)``)."""

    rtol: float
    atol: float | torch.Tensor


@dataclass
class StepResult:
    """One step's outcome: the new state ``y1`` and ``f1 = f(t_new, y1)``, the dense output
    over the step, and for adaptive methods the error estimate ``err`` and/or the method's own
    error ratio (``error_ratio``; None: the loop computes the standard one from ``err``);
    ``h_lambda``: the stiffness test's ``|h lambda|`` where it ran."""

    y1: torch.Tensor
    f1: torch.Tensor
    dense: Dense
    err: torch.Tensor | None = None
    error_ratio: torch.Tensor | None = None
    h_lambda: torch.Tensor | None = None


class Stepper(Protocol):
    """A simulation method of the torch solver's method table."""

    info: MethodInfo

    def step(self, f: Rhs, t: torch.Tensor, y: torch.Tensor, h: torch.Tensor, t_new: torch.Tensor,
             f0: torch.Tensor, tol: Tolerances, stiffness_test: bool = False) -> StepResult:
        """One step from ``(t, y)`` with ``f0 = f(t, y)`` to ``t_new = t + h`` for every row."""
        ...


class FusableStepper(Stepper, Protocol):
    """A stepper (``info.fusable``) whose step also runs as one compiled kernel (:mod:`.fused`)
    and which offers the fused step loop (:mod:`.fused_loop`) its pure stage function."""

    def fuse(self) -> None:
        """Run each step as one compiled kernel where the right-hand side allows it."""
        ...

    @property
    def fused(self) -> Any:
        """The :class:`~.fused.FusedSteps` in use (None until :meth:`fuse`)."""
        ...

    @staticmethod
    def loop_stages(f: Rhs, t: torch.Tensor, y: torch.Tensor, h: torch.Tensor, t_new: torch.Tensor,
                    f0: torch.Tensor, stiffness_test: bool, rtol: float, atol: float | torch.Tensor) -> Any:
        """``(y1, f1, error ratio, |h lambda| or None, dense coefficients)`` as tensor arithmetic."""
        ...

    @staticmethod
    def dense_at(y0: torch.Tensor, coeffs: Any, theta: torch.Tensor) -> torch.Tensor:
        """The dense output from the coefficients ``loop_stages`` returned."""
        ...
