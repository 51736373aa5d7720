"""The ``ray`` executor on a local 2-worker Ray cluster (started once for the module: Ray's
start-up takes seconds), and ensembles run through it against the local executor."""
from __future__ import annotations

import os
from typing import Iterator

import pytest
import torch

from neuroplex.executors import RayExecutor, Shared, TaskFailure, get_executor

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install neuroplex[distributed])")


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _scaled_row(item: tuple[Shared[torch.Tensor], int]) -> tuple[float, int]:
    table, row = item
    if row == 3:
        raise ValueError(f"row {row} is refused")
    return float(table.get()[row].sum()), os.getpid()


def test_ray_maps_in_order_with_shared_inputs_and_reports_failures(cluster: None) -> None:
    with get_executor("ray", workers=2) as ex:
        assert isinstance(ex, RayExecutor) and ex.workers == 2
        table = ex.share(torch.arange(12.0).reshape(6, 2))
        out = ex.try_map(_scaled_row, [(table, r) for r in range(6)])
    assert [o[0] for o in out[:3]] == [1.0, 5.0, 9.0] and [o[0] for o in out[4:]] == [17.0, 21.0]  # type: ignore[index]
    assert all(o[1] != os.getpid() for o in out if not isinstance(o, TaskFailure))  # type: ignore[index]
    failure = out[3]
    assert isinstance(failure, TaskFailure) and failure.attempts == 2 and "row 3 is refused" in failure.error
    with pytest.raises(ValueError, match="row 3 is refused"):
        ex.map(_scaled_row, [(table, 3)])
