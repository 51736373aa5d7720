"""Solver settings as typed values: :class:`StepControl` (how steps are chosen) and
:class:`Execution` (where and how a run executes).

Defaults are defined here once. A solver builds both from its constructor arguments and
holds them as ``solver.control`` / ``solver.execution``; runners (the SBML runner, the
spiking network runner) and integrators receive them unchanged, so no layer re-reads a
solver's attributes or substitutes its own defaults.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from .errors import NeuroplexError


@dataclass(frozen=True)
class StepControl:
    """Error and step control of a time integration.

    ``rtol``/``atol``: per-sample error control (``atol`` may be 0); ``dt0``: the fixed step
    of fixed-step methods or the first step of adaptive ones (None: the method's choice);
    ``dt_min``/``dt_max``: step limits (``dt_max`` None: unbounded); ``max_steps``: attempted
    steps per sample before it fails with ``MAX_STEPS``.
    """

    rtol: float = 1e-6
    atol: float = 1e-9
    dt0: float | None = None
    dt_min: float = 0.0
    dt_max: float | None = None
    max_steps: int = 100_000

    def __post_init__(self) -> None:
        if not self.rtol > 0 or not self.atol >= 0:
            raise NeuroplexError(f"need rtol > 0 and atol >= 0, got rtol={self.rtol}, atol={self.atol}")
        if self.dt0 is not None and not self.dt0 > 0:
            raise NeuroplexError(f"dt must be positive, got {self.dt0}")
        if self.dt_max is not None and not self.dt_max > 0:
            raise NeuroplexError(f"dt_max must be positive, got {self.dt_max}")
        if int(self.max_steps) < 1:
            raise NeuroplexError(f"max_steps must be >= 1, got {self.max_steps}")

    def with_(self, **changes: Any) -> "StepControl":
        """A copy with some fields changed."""
        return replace(self, **changes)


_DTYPES = {"float64": torch.float64, "double": torch.float64, "float32": torch.float32, "float": torch.float32}


def as_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """``"float64"``/``"float32"`` (or a torch dtype) as a torch dtype; None stays None."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise NeuroplexError(f"dtype must be 'float64' or 'float32', not {dtype!r}")
    return _DTYPES[dtype]


#: ``Execution.fused`` chosen per call: the SBML runner picks the native ensemble, fused or eager
#: steps from the batch, device, dtype, model and cache state (:func:`neuroplex.sbml.runner.auto_path`)
FUSED_AUTO = "auto"


@dataclass(frozen=True)
class Execution:
    """Where a run executes: ``device``/``dtype`` (None: follow the model or its tensors),
    ``workers`` (CPU processes a batch is split over) and ``fused``: ``True`` compiled (fused)
    steps, ``False`` eager steps, :data:`FUSED_AUTO` (default) chosen per call; where nothing
    chooses (models other than SBML) ``"auto"`` runs eager steps (:attr:`fused_steps`)."""

    device: torch.device | None = None
    dtype: torch.dtype | None = None
    workers: int = 1
    fused: bool | str = FUSED_AUTO

    def __post_init__(self) -> None:
        if int(self.workers) < 1:
            raise NeuroplexError(f"workers must be >= 1, got {self.workers}")
        if not (self.fused is True or self.fused is False or self.fused == FUSED_AUTO):
            raise NeuroplexError(f"fused must be True, False or {FUSED_AUTO!r}, got {self.fused!r}")

    @property
    def fused_steps(self) -> bool:
        """Whether fused steps are forced on (``fused=True``)."""
        return self.fused is True
