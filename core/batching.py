"""The one broadcasting rule for batches (issue 21 item 4), used by every built-in solver.

``params`` ``(P,)`` or ``(B, P)``, ``y0`` ``(n,)`` or ``(B, n)`` and ``inputs`` ``(k,)`` or
``(B, k)``: any of them may carry the batch; an argument without a batch dimension, or with a
batch of 1, broadcasts to it; two batches larger than 1 that differ are an error naming the
arguments and their sizes.
"""
from __future__ import annotations

from typing import Protocol, Sequence

from .errors import SolverError


class Shaped(Protocol):
    """An array (torch tensor, numpy array) as the rule sees it: its shape."""

    @property
    def shape(self) -> Sequence[int]: ...


def batch_size(**arrays: Shaped | None) -> int:
    """The batch of ``arrays`` (by argument name; None: not given): the leading size of the 2-D
    ones larger than 1, else 1. Raises :class:`~neuroplex.errors.SolverError` naming each
    argument's batch when two differ."""
    sizes = {name: int(x.shape[0]) for name, x in arrays.items() if x is not None and len(x.shape) == 2}
    batches = {size for size in sizes.values() if size != 1}
    if len(batches) > 1:
        given = ", ".join(f"{name} {size}" for name, size in sizes.items())
        raise SolverError(f"batch sizes differ: {given} (each of {', '.join(arrays)} is (n,) or (batch, n); "
                          f"a batch of 1 broadcasts, other batches must be equal)")
    return batches.pop() if batches else 1
