"""A batched :func:`neuroplex.simulate` / :func:`neuroplex.equilibrate` call split into
contiguous shards of its batch, run on an executor (:mod:`neuroplex.executors`), and joined
back into one :class:`~neuroplex.solution.Solution` in sample order.

What is sent where: the model and the call's options travel once
(:meth:`~neuroplex.executors.Executor.share`: Ray's object store), and each worker process
fetches them once and keeps them, so the model it compiles on its first shard (SBML: the
generated program; ``fused``: the compiled step, found in inductor's on-disk cache when this
machine built it before) is reused by its later shards. Each task receives its shard's rows of
``params``/``y0``/``inputs`` (copies, so that only those rows are serialised; Ray keeps an
argument over 100 KB in its object store), so every input byte travels once whatever the
number of workers. Each shard's solution comes back through the object
store. A shard that fails in every attempt (the ``ray`` executor retries it) leaves its samples
with :attr:`~neuroplex.solution.Status.FAILED`, NaN outputs, and the reason in
``solution.meta["failed_shards"]``: no sample goes missing silently.
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch

from .batching import batch_size
from .errors import SolverError
from .executors import Executor, Shared, TaskFailure
from .solution import Solution, SpikeTrain, Status

#: a front door run per shard: ``call(model, **arrays, **options) -> Solution``
Call = Callable[..., Solution]
#: what a shard task receives: the shared ``(call, model, options)`` and its rows of the arrays
ShardTask = tuple[Shared[tuple[Call, object, dict[str, object]]], dict[str, torch.Tensor | None]]


def shard_bounds(batch: int, n_shards: int) -> list[int]:
    """``n_shards + 1`` boundaries of contiguous shards whose sizes differ by at most one."""
    size, extra = divmod(batch, n_shards)
    bounds = [0]
    for k in range(n_shards):
        bounds.append(bounds[-1] + size + (k < extra))
    return bounds


def _rows(x: torch.Tensor | None, batch: int, lo: int, hi: int) -> torch.Tensor | None:
    """A copy of rows ``lo:hi`` of an argument that carries the batch (a copy: a view would be
    serialised with its whole storage); one that broadcasts as it is."""
    if x is None or x.dim() != 2 or x.shape[0] != batch or batch == 1:
        return x
    return x[lo:hi].clone()


def run_shard(task: ShardTask) -> Solution:
    """One shard: the call on its rows of the batched arguments (the shared model and options
    are fetched once per worker process)."""
    shared, arrays = task
    call, model, options = shared.get()
    return call(model, **arrays, **options)


def run_sharded(call: Call, model: object, executor: Executor, arrays: Mapping[str, torch.Tensor | None],
                options: Mapping[str, object], n_shards: int | None = None) -> Solution:
    """``call(model, **arrays, **options)`` with the batch of ``arrays`` (``params``, ``y0``,
    ``inputs``: ``(n,)`` or ``(batch, n)``, see :mod:`neuroplex.batching`) split into ``n_shards``
    (default: the executor's workers) contiguous shards run as the executor's tasks."""
    tensors = {name: None if x is None else torch.as_tensor(x) for name, x in arrays.items()}
    batch = batch_size(**tensors)
    n = max(1, min(n_shards or executor.workers, batch))
    bounds = shard_bounds(batch, n)
    shared = executor.share((call, model, dict(options)))
    tasks: list[ShardTask] = [(shared, {name: _rows(x, batch, bounds[k], bounds[k + 1]) for name, x in tensors.items()})
                              for k in range(n)]
    parts = executor.try_map(run_shard, tasks)
    return join(parts, bounds)


def _filled(like: torch.Tensor, rows: int) -> torch.Tensor:
    """``rows`` rows shaped like ``like``'s: NaN for floating point, -1 otherwise."""
    return torch.full((rows, *like.shape[1:]), float("nan") if like.is_floating_point() else -1,
                      dtype=like.dtype, device=like.device)


def join(parts: list[Solution | TaskFailure], bounds: list[int]) -> Solution:
    """One solution from per-shard solutions (shard ``k`` holds samples ``bounds[k]:bounds[k+1]``);
    the samples of a failed shard get :attr:`Status.FAILED`, NaN outputs and per-sample stats,
    and the failure is listed in ``meta["failed_shards"]``."""
    done = [p for p in parts if isinstance(p, Solution)]
    if not done:
        reasons = "; ".join(f"shard {p.index}: {p.error}" for p in parts if isinstance(p, TaskFailure))
        raise SolverError(f"every shard failed ({reasons})")
    first = done[0]
    per_sample_ts = first.ts is not None and first.ts.dim() == 2
    ys, ts, status, spikes = [], [], [], []
    stats: dict[str, list[torch.Tensor]] = {key: [] for key, v in first.stats.items()
                                            if isinstance(v, torch.Tensor) and v.dim() >= 1
                                            and v.shape[0] == first.batch_size}
    failed: list[dict[str, object]] = []
    for k, part in enumerate(parts):
        lo, hi = bounds[k], bounds[k + 1]
        if isinstance(part, TaskFailure):
            failed.append({"shard": k, "samples": [lo, hi], "error": part.error, "attempts": part.attempts})
            ys.append(_filled(first.ys, hi - lo))
            if per_sample_ts:
                ts.append(_filled(first.ts, hi - lo))  # type: ignore[arg-type]
            status.append(torch.full((hi - lo,), int(Status.FAILED), dtype=first.status.dtype))
            for key, values in stats.items():
                values.append(_filled(first.stats[key], hi - lo))
            continue
        ys.append(part.ys)
        if per_sample_ts:
            ts.append(part.ts)  # type: ignore[arg-type]
        status.append(part.status)
        for key, values in stats.items():
            values.append(part.stats[key])
        if part.spikes is not None and len(part.spikes):
            spikes.append(SpikeTrain(part.spikes.sample + lo, part.spikes.index, part.spikes.time, part.spikes.names))
    meta = dict(first.meta)
    meta["shards"] = len(parts)
    if failed:
        meta["failed_shards"] = failed
    train = None
    if first.spikes is not None:
        train = SpikeTrain.empty() if not spikes else SpikeTrain(
            torch.cat([s.sample for s in spikes]), torch.cat([s.index for s in spikes]),
            torch.cat([s.time for s in spikes]), first.spikes.names)
    return Solution(torch.cat(ys), torch.cat(ts) if per_sample_ts else first.ts, first.names, torch.cat(status),
                    {key: torch.cat(values) for key, values in stats.items()}, train, solver=first.solver,
                    method=max((p.method for p in done), key=len), meta=meta)
