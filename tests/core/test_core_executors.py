"""neuroplex.executors: one map interface, in this process, on forked processes, on Ray."""
from __future__ import annotations

import builtins
import os

import pytest
import torch

from neuroplex import executors, shards
from neuroplex.errors import NeuroplexError
from neuroplex.executors import LocalExecutor, TaskFailure, get_executor


def _square_and_pid(x: int) -> tuple[int, int]:
    if x == 13:
        raise ValueError(f"item {x} is unlucky")
    return x * x, os.getpid()


def _dies_on_5(x: int) -> int:
    if x == 5:
        os._exit(3)
    return x


@pytest.mark.parametrize("name", ["inprocess", "local"])
def test_map_returns_results_in_order(name: str) -> None:
    with get_executor(name, workers=3) as ex:
        out = ex.map(_square_and_pid, list(range(10)))
    assert [v for v, _ in out] == [x * x for x in range(10)]
    pids = {pid for _, pid in out}
    if name == "inprocess" or not shards.can_fork():
        assert pids == {os.getpid()}
    else:  # three contiguous groups: 0-3 here, 4-6 and 7-9 in two forked processes
        assert out[0][1] == os.getpid() and len(pids) == 3 and out[4][1] == out[6][1] != out[7][1]


@pytest.mark.parametrize("name", ["inprocess", "local"])
def test_a_failed_task_is_reported_in_its_place_or_raised(name: str) -> None:
    ex = get_executor(name, workers=2)
    out = ex.try_map(_square_and_pid, [12, 13, 14])
    assert out[0][0] == 144 and out[2][0] == 196  # type: ignore[index]
    failure = out[1]
    assert isinstance(failure, TaskFailure) and failure.index == 1 and "item 13 is unlucky" in failure.error
    with pytest.raises(ValueError, match="item 13 is unlucky"):
        ex.map(_square_and_pid, [12, 13])


def test_a_dead_local_worker_fails_the_tasks_of_its_group() -> None:
    if not shards.can_fork():
        pytest.skip("this platform cannot fork worker processes")
    out = LocalExecutor(2).try_map(_dies_on_5, list(range(8)))  # groups 0-3 (here), 4-7 (forked)
    assert out[:4] == [0, 1, 2, 3]
    assert all(isinstance(f, TaskFailure) and "exit code 3" in f.error for f in out[4:])
    assert [f.index for f in out[4:]] == [4, 5, 6, 7]  # type: ignore[union-attr]


def test_shared_values_reach_the_tasks() -> None:
    ex = get_executor("local", workers=2)
    table = ex.share(torch.arange(6.0))
    assert ex.map(_sum_slice, [(table, 0, 3), (table, 3, 6)]) == [3.0, 12.0]


def _sum_slice(item: tuple[executors.Shared[torch.Tensor], int, int]) -> float:
    table, lo, hi = item
    return float(table.get()[lo:hi].sum())


def test_unknown_names_and_misplaced_addresses_are_refused() -> None:
    with pytest.raises(NeuroplexError, match="unknown executor 'dask'; known: inprocess, local, ray"):
        get_executor("dask")
    with pytest.raises(NeuroplexError, match="address= is for the 'ray' executor"):
        get_executor("local", address="10.0.0.1:6379")


def test_ray_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_ray(name: str, *args: object, **kwargs: object) -> object:
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(NeuroplexError, match=r"pip install neuroplex\[distributed\]"):
        get_executor("ray", workers=2)
