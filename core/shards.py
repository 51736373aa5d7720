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
same results. This is the ``local`` executor's engine (:mod:`neuroplex.executors`); beyond one
machine, use its ``ray`` executor (the ``distributed`` extra).
"""
from __future__ import annotations

import contextlib
import math
import mmap
import multiprocessing
import os
import pickle
import sys
from multiprocessing.connection import Connection
from typing import Callable, Iterator, TypeVar

import torch

T = TypeVar("T")

#: the job the forked workers run (set just before they are forked, cleared after)
_TASK: Callable[[int], object] | None = None


def can_fork() -> bool:
    """Whether :func:`map_shards` can run shards in forked worker processes here."""
    return ("fork" in multiprocessing.get_all_start_methods() and sys.platform != "darwin"
            and not multiprocessing.current_process().daemon)


def _run_forked(index: int, results: Connection) -> None:
    """A worker: run shard ``index`` and send ``(True, result)`` or ``(False, exception)`` back."""
    try:
        torch.set_num_threads(1)
        # a worker that has to compile (torch.compile, fused steps) does so in its own process:
        # the pool of compile workers inductor may have started in the parent does not survive
        # the fork (using it deadlocks). Inductor is only touched where the parent loaded it
        # (importing it costs seconds, more than a native shard's whole run); else the setting
        # waits in the environment for a later import
        inductor_config = sys.modules.get("torch._inductor.config")
        if inductor_config is not None:
            inductor_config.compile_threads = 1  # type: ignore[attr-defined]
        else:
            os.environ["TORCHINDUCTOR_COMPILE_THREADS"] = "1"
        assert _TASK is not None, "shard worker started without a task"
        reply: tuple[bool, object] = (True, _TASK(index))
    except BaseException as exc:  # noqa: BLE001 - every failure is raised in the parent
        reply = (False, exc)
    # plain pickling (tensors as bytes): torch's multiprocessing pickler would pass tensors as
    # shared-memory handles that need this process alive until the parent has opened them
    try:
        message = pickle.dumps(reply)
    except Exception as exc:  # noqa: BLE001 - a result or exception that cannot be pickled
        message = pickle.dumps((False, RuntimeError(f"shard {index}: its result could not be sent back: {exc}")))
    try:
        results.send_bytes(message)
    finally:
        results.close()


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """One torch thread for the duration, as every shard of :func:`map_shards` runs (what is
    compiled for a thread count is then what the shards run)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def map_shards(task: Callable[[int], T], n_shards: int) -> list[T]:
    """``[task(0), ..., task(n_shards - 1)]``, shards ``1..`` in processes forked for them where
    :func:`can_fork`, shard 0 here (with one torch thread for its duration). An exception in any
    shard is raised here. (Plain processes rather than a ``multiprocessing.Pool``, whose shutdown
    polls every 0.1 s.)"""
    results = []
    for ok, value in settle_shards(task, n_shards, catch=False):
        if not ok:
            raise value  # type: ignore[misc]
        results.append(value)
    return results  # type: ignore[return-value]


def settle_shards(task: Callable[[int], T], n_shards: int, *, catch: bool = True) -> list[tuple[bool, object]]:
    """Run shards as :func:`map_shards` does, returning ``(True, result)`` or ``(False, exception)``
    per shard in order instead of raising (a worker process that ended without a result gives a
    :class:`RuntimeError` naming its exit code). ``catch=False``: an exception in shard 0 (run
    here) or the first failed shard is raised at once, as :func:`map_shards` wants."""
    global _TASK
    if n_shards <= 1 or not can_fork():
        return [_settle_here(task, i, catch) for i in range(n_shards)]
    context = multiprocessing.get_context("fork")
    workers: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
    _TASK = task
    try:
        for index in range(1, n_shards):
            receive, send = context.Pipe(duplex=False)
            child = context.Process(target=_run_forked, args=(index, send), daemon=True,
                                    name=f"neuroplex-shard-{index}")
            child.start()
            send.close()
            workers.append((child, receive))
        with one_thread():
            results = [_settle_here(task, 0, catch)]
        for index, (process, receive) in enumerate(workers, start=1):
            try:
                reply: tuple[bool, object] = pickle.loads(receive.recv_bytes())
            except EOFError:
                process.join()
                reply = (False, RuntimeError(f"shard {index}: its worker process ended without a result "
                                             f"(exit code {process.exitcode})"))
            if not reply[0] and not catch:
                raise reply[1]  # type: ignore[misc]
            results.append(reply)
    finally:
        _TASK = None
        for process, receive in workers:
            receive.close()
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
    return results


def _settle_here(task: Callable[[int], T], index: int, catch: bool) -> tuple[bool, object]:
    """``(True, task(index))`` run in this process; an exception is raised unless ``catch``."""
    if not catch:
        return True, task(index)
    try:
        return True, task(index)
    except Exception as exc:  # noqa: BLE001 - reported per shard to the caller
        return False, exc


def shared_empty(shape: tuple[int, ...], dtype: torch.dtype = torch.float64, *, reuse: bool = False) -> torch.Tensor:
    """An uninitialised CPU tensor that the workers :func:`map_shards` forks after this call
    share with this process: a shard writes its part of a result in place instead of pickling
    it back to be joined here. It lives in an anonymous shared mapping, so it does not depend on
    the size of ``/dev/shm`` (small in many containers).

    ``reuse``: take a mapping of an earlier call that nothing references any more (see
    :func:`_free_mapping`) instead of a new one: a fresh mapping costs a page fault per 4 KiB
    on first touch (about 0.1 s for 50 MB on this project's machine, as much as a short
    ensemble's whole run), a reused one none. Up to :data:`POOL_SIZE` mappings stay mapped
    between calls for this."""
    numel = math.prod(shape)
    if numel == 0:
        return torch.empty(shape, dtype=dtype)
    nbytes = numel * dtype.itemsize
    buffer = _free_mapping(nbytes) if reuse else None
    if buffer is None:
        buffer = mmap.mmap(-1, nbytes)
        if reuse:
            _POOL.append(buffer)
            del _POOL[:-POOL_SIZE]
    return torch.frombuffer(buffer, dtype=dtype, count=numel).view(shape)


#: shared mappings :func:`shared_empty` may hand out again (newest last)
_POOL: list[mmap.mmap] = []
#: how many mappings the pool keeps
POOL_SIZE = 4
#: references to a pooled mapping that nothing else holds: the pool's list, the loop variable
#: and ``sys.getrefcount``'s argument
_POOL_REFS = 3


def _free_mapping(nbytes: int) -> mmap.mmap | None:
    """The smallest pooled mapping of at least ``nbytes`` (and at most twice that) that no tensor
    or array references (each one built on it holds a reference, views included), or None."""
    best = None
    for buffer in _POOL:
        if nbytes <= len(buffer) <= 2 * nbytes and sys.getrefcount(buffer) <= _POOL_REFS:
            if best is None or len(buffer) < len(best):
                best = buffer
    return best
