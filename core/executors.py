"""Executors: one interface that maps a function over the items of a batch job, here or on a
Ray cluster.

* ``inprocess``: a plain loop in this process (no processes; for debugging and tiny jobs).
* ``local`` (the default): processes forked on this machine (:mod:`neuroplex.shards`), the
  items split into ``workers`` contiguous groups; no new dependency.
* ``ray``: tasks on a Ray cluster (optional extra ``pip install neuroplex[distributed]``, Ray
  imported only when this executor is made). ``ray.init()`` starts a local Ray on first use;
  ``address=`` (or ``RAY_ADDRESS``) joins a running cluster instead.

Usage::

    with get_executor("ray", workers=4) as ex:
        table = ex.share(big_tensor)                  # sent once (Ray's object store)
        out = ex.map(score, [(table, i) for i in range(100)])   # results in order

``fn`` must be a module-level function (Ray pickles it by reference). Large inputs that every
task needs go through :meth:`Executor.share`: the ``ray`` executor puts them into the object
store once and each worker process fetches them once (:meth:`Shared.get` caches the value per
process, so a model compiled inside it is compiled once per worker and reused by its later
tasks); the forking ``local`` executor simply inherits them. :meth:`Executor.try_map` reports a
failed task as a :class:`TaskFailure` in its place instead of raising; the ``ray`` executor
retries a task whose worker died or raised ``retries`` times first (Ray task retries).
"""
from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from types import ModuleType, TracebackType
from typing import Callable, ClassVar, Generic, Sequence, TypeVar

import torch

from .errors import NeuroplexError
from .shards import settle_shards

T = TypeVar("T")
R = TypeVar("R")

#: how to get the ``ray`` executor's dependency
RAY_EXTRA = "pip install neuroplex[distributed]"


@dataclass
class TaskFailure:
    """A task that failed in every attempt: its ``index`` in the items, the last ``error``
    (message, with the exception's type) and how many ``attempts`` were made."""

    index: int
    error: str
    attempts: int
    exception: BaseException | None = None


class Shared(Generic[T]):
    """A value every task may need, sent to each worker once; :meth:`get` returns it."""

    def __init__(self, value: T):
        self._value = value

    def get(self) -> T:
        return self._value


class Executor(abc.ABC):
    """Maps a function over items on ``workers`` parallel workers; a context manager
    (:meth:`close` on exit)."""

    name: ClassVar[str]
    workers: int

    def share(self, value: T) -> Shared[T]:
        """``value`` wrapped for tasks to read with ``.get()`` (see the module docstring)."""
        return Shared(value)

    @abc.abstractmethod
    def try_map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R | TaskFailure]:
        """``[fn(item) for item in items]`` in order, a failed task as a :class:`TaskFailure`."""

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[fn(item) for item in items]`` in order; the first failed task's exception is raised."""
        out: list[R] = []
        for result in self.try_map(fn, items):
            if isinstance(result, TaskFailure):
                if result.exception is not None:
                    raise result.exception
                raise NeuroplexError(f"{self.name} executor: task {result.index} failed after "
                                     f"{result.attempts} attempt(s): {result.error}")
            out.append(result)
        return out

    def close(self) -> None:
        """Release what this executor holds (nothing for the local ones)."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _failure(index: int, exc: BaseException, attempts: int = 1) -> TaskFailure:
    return TaskFailure(index, f"{type(exc).__name__}: {exc}", attempts, exc)


class InProcessExecutor(Executor):
    """A plain loop in this process."""

    name = "inprocess"

    def __init__(self, workers: int | None = None):
        self.workers = 1

    def try_map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R | TaskFailure]:
        out: list[R | TaskFailure] = []
        for index, item in enumerate(items):
            try:
                out.append(fn(item))
            except Exception as exc:  # noqa: BLE001 - reported in the task's place
                out.append(_failure(index, exc))
        return out


def _chunks(n_items: int, n_groups: int) -> list[range]:
    """``n_items`` indices in ``n_groups`` contiguous ranges of sizes differing by at most one."""
    size, extra = divmod(n_items, n_groups)
    bounds = [0]
    for g in range(n_groups):
        bounds.append(bounds[-1] + size + (g < extra))
    return [range(lo, hi) for lo, hi in zip(bounds, bounds[1:])]


class LocalExecutor(Executor):
    """Processes forked on this machine (:func:`neuroplex.shards.settle_shards`): the items in
    ``workers`` contiguous groups (default: the CPU count), the first group run here; where
    forking is unsafe the groups run here one after another. A worker process that dies fails
    every task of its group."""

    name = "local"

    def __init__(self, workers: int | None = None):
        self.workers = int(workers or os.cpu_count() or 1)
        if self.workers < 1:
            raise NeuroplexError(f"local executor: workers must be >= 1, got {workers}")

    def try_map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R | TaskFailure]:
        groups = _chunks(len(items), min(self.workers, len(items)))

        def run_group(g: int) -> list[tuple[bool, object]]:
            out: list[tuple[bool, object]] = []
            for i in groups[g]:
                try:
                    out.append((True, fn(items[i])))
                except Exception as exc:  # noqa: BLE001 - reported in the task's place
                    out.append((False, exc))
            return out

        results: list[R | TaskFailure] = []
        for group, (ok, value) in zip(groups, settle_shards(run_group, len(groups))):
            if not ok:  # the group's process died (or its results could not be sent back)
                results.extend(_failure(i, value) for i in group)  # type: ignore[arg-type]
                continue
            for i, (task_ok, result) in zip(group, value):  # type: ignore[call-overload]
                results.append(result if task_ok else _failure(i, result))
        return results


# ---------------------------------------------------------------------------- Ray
def _ray_module() -> ModuleType:
    """Ray, or an error naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise NeuroplexError(f"the 'ray' executor needs Ray, which is not installed: {RAY_EXTRA}") from None
    return ray


#: values of :class:`RayShared` already fetched by this (worker) process, by object id
_FETCHED: dict[str, object] = {}


class RayShared(Shared[T]):
    """A value in Ray's object store; :meth:`get` fetches it once per process and keeps it
    (the reference is held in a list so that Ray does not resolve it on the way into a task)."""

    def __init__(self, ref: object):
        self._ref = [ref]

    def get(self) -> T:
        ref = self._ref[0]
        key = ref.hex()  # type: ignore[attr-defined]
        if key not in _FETCHED:
            _FETCHED[key] = _ray_module().get(ref)
        return _FETCHED[key]  # type: ignore[return-value]


def _call_with_one_thread(fn: Callable[[T], R], item: T) -> R:
    """A Ray task: ``fn(item)`` with one torch thread (the task holds one CPU)."""
    torch.set_num_threads(1)
    return fn(item)


class RayExecutor(Executor):
    """Ray tasks of one CPU each (``num_gpus`` per task: e.g. 1 on a GPU cluster), each retried
    ``retries`` times when its worker dies or it raises. Ray is started here
    (``ray.init(address=...)``, ``num_cpus=workers`` when starting a local one) unless this process
    has already; Ray stays up for later executors of the process (``ray.shutdown()`` stops it).
    ``workers`` (default: the cluster's CPUs) is how many tasks may run at once; items are
    submitted all at once and Ray schedules them. Ctrl-C cancels the submitted tasks."""

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None, *, retries: int = 1,
                 num_gpus: float = 0):
        ray = self._ray = _ray_module()
        if not ray.is_initialized():
            address = address or os.environ.get("RAY_ADDRESS")
            env = {key: os.environ[key] for key in ("TORCHINDUCTOR_CACHE_DIR",) if key in os.environ}
            ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                     runtime_env={"env_vars": env} if env else None)
        self.workers = int(workers or ray.cluster_resources().get("CPU", 1))
        if self.workers < 1:
            raise NeuroplexError(f"ray executor: workers must be >= 1, got {workers}")
        self.retries = int(retries)
        self._task = ray.remote(num_cpus=1, num_gpus=num_gpus, max_retries=self.retries,
                                retry_exceptions=True)(_call_with_one_thread)

    def share(self, value: T) -> Shared[T]:
        return RayShared(self._ray.put(value))

    def try_map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R | TaskFailure]:
        ray = self._ray
        fn_ref = ray.put(fn)  # pickled once, not once per task
        refs = [self._task.remote(fn_ref, item) for item in items]
        results: list[R | TaskFailure] = []
        try:
            for index, ref in enumerate(refs):
                try:
                    results.append(ray.get(ref))
                except ray.exceptions.RayTaskError as exc:
                    results.append(_failure(index, exc.as_instanceof_cause(), self.retries + 1))
                except ray.exceptions.RayError as exc:  # the worker died (every attempt)
                    results.append(_failure(index, exc, self.retries + 1))
        except KeyboardInterrupt:
            for ref in refs:
                ray.cancel(ref, force=True)
            raise
        return results


#: the executors by name
EXECUTORS = ("inprocess", "local", "ray")


def get_executor(name: str = "local", workers: int | None = None, address: str | None = None) -> Executor:
    """The executor called ``name`` (``inprocess``, ``local``, ``ray``) with ``workers`` parallel
    workers; ``address`` (``ray`` only): the Ray cluster to join."""
    if name not in EXECUTORS:
        raise NeuroplexError(f"unknown executor {name!r}; known: {', '.join(EXECUTORS)}")
    if address is not None and name != "ray":
        raise NeuroplexError(f"executor {name!r} runs on this machine: address= is for the 'ray' executor")
    if name == "ray":
        return RayExecutor(workers, address)
    return LocalExecutor(workers) if name == "local" else InProcessExecutor(workers)
