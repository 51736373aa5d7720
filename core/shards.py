"""Run the shards of a batched job on several CPU cores of this machine.

Python threads cannot share one torch run's small element-wise ops across cores (each op
holds the GIL for most of its few microseconds), and torch's own intra-op threads only split
ops of more than 32 768 elements. :func:`map_shards` instead forks worker processes that
inherit everything already built in this one (compiled models, generated code, tensors), so
nothing has to be pickled on the way in; each shard's result comes back pickled. This
process runs shard 0 itself. Every process runs with one torch thread, and a worker compiles
(``torch.compile``) in its own process.

Forking is only used where it is safe: a POSIX ``fork`` start method, not macOS (where
forked children of a process that has used system frameworks may crash), not inside a
daemonic worker, and a CPU job. Elsewhere the shards run one after another here, with the
same results. Beyond one machine, use Ray (the ``ray`` extra), not this.
"""
from __future__ import annotations

import mmap
import multiprocessing
import sys
from typing import Callable, TypeVar

import torch

T = TypeVar("T")

#: the job the forked workers run (set just before they are forked, cleared after)
_TASK: Callable[[int], object] | None = None


def can_fork() -> bool:
    """Whether :func:`map_shards` can run shards in forked worker processes here."""
    return ("fork" in multiprocessing.get_all_start_methods() and sys.platform != "darwin"
            and not multiprocessing.current_process().daemon)


def _run_forked(index: int) -> object:
    torch.set_num_threads(1)
    # a worker that has to compile (torch.compile, fused steps) does so in its own process: the
    # pool of compile workers inductor may have started in the parent does not survive the fork
    # (using it deadlocks)
    import torch._inductor.config as inductor_config

    inductor_config.compile_threads = 1
    assert _TASK is not None, "shard worker started without a task"
    return _TASK(index)


def map_shards(task: Callable[[int], T], n_shards: int) -> list[T]:
    """``[task(0), ..., task(n_shards - 1)]``, shards ``1..`` in forked processes where
    :func:`can_fork`, shard 0 here (with one torch thread for its duration). An exception in any
    shard is raised here."""
    global _TASK
    if n_shards <= 1 or not can_fork():
        return [task(i) for i in range(n_shards)]
    threads = torch.get_num_threads()
    _TASK = task
    try:
        with multiprocessing.get_context("fork").Pool(n_shards - 1) as pool:
            pending = pool.map_async(_run_forked, range(1, n_shards))
            torch.set_num_threads(1)
            first = task(0)
            rest = pending.get()
    finally:
        _TASK = None
        torch.set_num_threads(threads)
    return [first, *rest]


def shared_empty(shape: tuple[int, ...], dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """An uninitialised CPU tensor that the workers :func:`map_shards` forks after this call
    share with this process: a shard writes its part of a result in place instead of pickling
    it back to be joined here. It lives in an anonymous shared mapping, so it does not depend on
    the size of ``/dev/shm`` (small in many containers)."""
    numel = 1
    for size in shape:
        numel *= int(size)
    itemsize = torch.empty((), dtype=dtype).element_size()
    if numel == 0:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(mmap.mmap(-1, numel * itemsize), dtype=dtype, count=numel).view(shape)
