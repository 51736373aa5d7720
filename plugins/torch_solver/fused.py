"""Fused steps: a method's whole step compiled by ``torch.compile`` into one kernel.

Eager torch runs each element-wise operation of a step as its own pass over the batch: a
Dormand-Prince step of a model with a few dozen operations in its right-hand side is hundreds
of passes. For large ensembles ``torch.compile`` (inductor: vectorised C++ on the CPU, Triton on
GPUs) fuses the stages, the right-hand side calls, the error control's ratio and the dense
output's coefficients into one loop over the samples. Compiling costs seconds per model
(inductor caches the result on disk), so this is an option (``integrate(..., fused=True)``,
``TorchSolver(fused=True)``) for batches large enough to repay it.

A right-hand side takes part when it says how it is built: ``f.traceable = (fn, args)`` with
``f(t, y) == fn(t, y, *args)`` and ``fn`` plain torch code (the SBML program's generated
right-hand side). The arguments are inputs of the compiled step, not constants baked into it,
so an ensemble whose working batch shrinks (compaction) keeps its kernel. Anything else (a
right-hand side without ``traceable``, a state or argument that needs gradients, a batch of
one sample) runs the eager step, and so does everything after a compile failure, with one
warning saying why. Where the loop has no events or stop test, :mod:`.fused_loop` compiles the
loop's whole step around these stages.
"""
from __future__ import annotations

import types
import warnings
import weakref
from typing import Any, Callable

import torch

Stages = Callable[..., Any]
#: a batch of one runs eager steps (on numpy scalars, for SBML models on the CPU)
MIN_BATCH = 2


def _call_stages(stages: Stages, fn: Callable[..., torch.Tensor], args: Any, t: torch.Tensor, y: torch.Tensor,
                 h: torch.Tensor, t_new: torch.Tensor, f0: torch.Tensor, *flags: Any) -> Any:
    return stages(lambda tt, yy: fn(tt, yy, *args), t, y, h, t_new, f0, *flags)


def _own_copy(template: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``template`` under a code object of its own: torch.compile keeps its compiled variants
    per code object (up to a recompile limit), so each model gets its own budget."""
    code = template.__code__.replace(co_name=f"{template.__name__.strip('_')}_{name}")
    return types.FunctionType(code, template.__globals__, code.co_name)


def columns(x: torch.Tensor) -> torch.Tensor:
    """``x (B, n)`` with each column contiguous and not a view of another tensor: the one form
    the compiled step is built for (torch.compile guards on layout and on view-ness, so another
    form would mean another compile), and columns vectorise over samples."""
    if x.dim() != 2 or (x.stride(0) == 1 and x.stride(1) == x.shape[0] and not x._is_view()):
        return x
    return torch.empty_strided(x.shape, (1, x.shape[0]), dtype=x.dtype, device=x.device).copy_(x)


def needs_grad(*tensors: Any) -> bool:
    return torch.is_grad_enabled() and any(isinstance(x, torch.Tensor) and x.requires_grad for x in tensors)


def describe(exc: BaseException) -> str:
    """A compile failure in one line."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


class FusedSteps:
    """``stages(f, t, y, h, t_new, f0, *flags)`` of one method, run compiled where possible.

    Calling it returns the stages' result, or None where the eager step must run instead."""

    def __init__(self, stages: Stages):
        self.stages = stages
        #: why fused steps were given up (None while they work)
        self.failed: str | None = None

    def __call__(self, f: Any, t: torch.Tensor, y: torch.Tensor, h: torch.Tensor, t_new: torch.Tensor,
                 f0: torch.Tensor, *flags: Any) -> Any:
        parts = getattr(f, "traceable", None)
        if parts is None or self.failed is not None or y.shape[0] < MIN_BATCH:
            return None
        fn, args = parts
        if needs_grad(y, f0, *args):
            return None
        try:
            return compiled_for(fn, _call_stages)(self.stages, fn, args, t, columns(y), h, t_new, columns(f0), *flags)
        except Exception as exc:  # noqa: BLE001 - no compiler, an unsupported construct: run eager
            self.give_up("torch.compile", exc)
            return None

    def give_up(self, what: str, exc: BaseException) -> None:
        """Run eager steps from now on, after one warning saying that ``what`` failed and why."""
        self.failed = describe(exc)
        warnings.warn(f"fused steps: {what} failed ({self.failed}); running eager steps", RuntimeWarning,
                      stacklevel=3)


#: compiled functions per right-hand side function and template, shared by every solve in the process
_BY_FUNCTION: weakref.WeakKeyDictionary[Any, dict[Any, Callable[..., Any]]] = weakref.WeakKeyDictionary()


def compiled_for(fn: Callable[..., Any], template: Callable[..., Any]) -> Callable[..., Any]:
    """``torch.compile(dynamic=True)`` of ``template`` (a function that calls ``fn``), once per
    right-hand side function ``fn`` and kept while ``fn`` lives."""
    per_fn = _BY_FUNCTION.setdefault(fn, {})
    step = per_fn.get(template)
    if step is None:
        step = per_fn[template] = torch.compile(_own_copy(template, getattr(fn, "__name__", "rhs")), dynamic=True,
                                                options=_OPTIONS)
    return step


#: inductor's run-time re-checks of every input's sizes, strides and alignment cost tens of
#: microseconds per call, about 7% of a Hodgkin-Huxley ensemble's time; dynamo's guards have
#: already checked what a call gets against what the kernel was compiled for
_OPTIONS = {"size_asserts": False, "scalar_asserts": False, "alignment_asserts": False}
