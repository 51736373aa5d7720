"""The step loop's per-sample state, shared by the eager loop (:mod:`.loop`) and the fused one
(:mod:`.fused_loop`): :class:`LoopState` (what a step reads and writes), :class:`RowConstants`
(what it only reads), ensemble compaction (dropping finished rows) and :class:`LoopResult`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import torch

from .events import EventSpec
from .stepper import Rhs

#: ensemble compaction: once at most this fraction of a working batch of at least
#: ``COMPACT_MIN`` samples is unfinished, the loop goes on with the unfinished ones only
COMPACT_FRACTION, COMPACT_MIN = 0.9, 64


class LoopState(NamedTuple):
    """Per working-batch row: what a step of the loop reads and writes (a pytree of tensors, so
    the fused loop compiles a step as a function of it)."""

    t: torch.Tensor
    y: torch.Tensor
    fcur: torch.Tensor
    dt: torch.Tensor
    done: torch.Tensor
    err_prev: torch.Tensor
    rejected_prev: torch.Tensor
    status: torch.Tensor
    n_steps: torch.Tensor
    n_rhs: torch.Tensor
    n_stiff: torch.Tensor
    n_calm: torch.Tensor
    #: index of each row's next output time
    next_out: torch.Tensor

    def select(self, keep: torch.Tensor) -> "LoopState":
        """The rows ``keep`` only."""
        return LoopState(*(x[keep] for x in self))


class RowConstants(NamedTuple):
    """Per working-batch row: what the steps read only. ``base``: the row's first row in the
    output buffer; ``scratch`` (0-d): the buffer's scratch row (both None without outputs)."""

    t1: torch.Tensor
    t_start: torch.Tensor
    base: torch.Tensor | None
    scratch: torch.Tensor | None


@dataclass
class LoopResult:
    """What the step loop hands back (see :class:`IntegrationResult` for the public form)."""

    ys: torch.Tensor | None
    t_end: torch.Tensor
    y_end: torch.Tensor
    status: torch.Tensor
    n_steps: torch.Tensor
    n_rhs: torch.Tensor
    event_index: torch.Tensor
    event_stop: torch.Tensor
    event_log: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = field(default_factory=list)
    stopped: torch.Tensor | None = None
    #: Jacobian evaluations (steps times the method's ``jac_per_step``)
    n_jac: int = 0


def atol_of_rows(atol: float | torch.Tensor, keep: torch.Tensor, n_rows: int) -> float | torch.Tensor:
    """``atol`` for the working-batch rows ``keep`` of ``n_rows``: a per-sample ``(B, n)``
    tolerance is narrowed, a scalar or per-state one is kept."""
    if isinstance(atol, torch.Tensor) and atol.dim() == 2 and atol.shape[0] == n_rows > 1:
        return atol[keep]
    return atol


def can_compact(f: Rhs, events: EventSpec | None, stop_fn: Callable[..., torch.Tensor] | None, y0: torch.Tensor, f0: torch.Tensor) -> bool:
    """Ensemble compaction needs ``f.select(sample ids) -> Rhs`` (the right-hand side of those
    samples only), no events or stop test (their state is per sample too), and no autograd
    graph through the solve."""
    return (callable(getattr(f, "select", None)) and events is None and stop_fn is None
            and y0.shape[0] >= COMPACT_MIN and not (y0.requires_grad or f0.requires_grad))


def unpark(parked: list[tuple[torch.Tensor, ...]], b: int) -> list[torch.Tensor]:
    """Per-sample results in sample order from the ``(ids, *results)`` pieces of a compacted run."""
    full = []
    for j in range(1, len(parked[0])):
        like = parked[0][j]
        out = like.new_empty((b, *like.shape[1:]))
        for piece in parked:
            out.index_copy_(0, piece[0], piece[j])
        full.append(out)
    return full
