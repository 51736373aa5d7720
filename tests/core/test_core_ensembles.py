"""neuroplex.ensembles: a batched simulate/equilibrate split in shards over an executor and
joined in sample order (in this process here; Ray in test_core_ray.py)."""
from __future__ import annotations

import pytest
import torch

import neuroplex as nx
from neuroplex import Solution, Status
from neuroplex.ensembles import join, shard_bounds
from neuroplex.errors import NeuroplexError, SolverError
from neuroplex.executors import TaskFailure
from neuroplex.testing import require_data


def test_shard_bounds_are_contiguous_and_balanced() -> None:
    assert shard_bounds(10, 3) == [0, 4, 7, 10] and shard_bounds(2, 2) == [0, 1, 2]


def test_shards_in_process_give_each_shard_its_own_run() -> None:
    model = nx.load_model(require_data("biomodels", "BIOMD0000000012.xml"))
    base = torch.tensor(list(model.parameter_values().values()), dtype=torch.float64)
    params = base * torch.linspace(0.8, 1.2, 7, dtype=torch.float64)[:, None]
    sol = nx.simulate(model, 20, params=params, n_points=3, executor="inprocess", workers=3)
    assert sol.meta["shards"] == 3 and sol.ys.shape == (7, 3, len(sol.names)) and sol.ok
    for lo, hi in [(0, 3), (3, 5), (5, 7)]:  # the same numbers as each shard run alone
        assert torch.equal(sol.ys[lo:hi], nx.simulate(model, 20, params=params[lo:hi], n_points=3).ys)
    steady = nx.equilibrate(model, params=params, executor="inprocess", workers=2)
    assert torch.equal(steady.ys[4:], nx.equilibrate(model, params=params[4:]).ys)


def _part(values: list[float], status: int = 0) -> Solution:
    ys = torch.tensor(values, dtype=torch.float64)[:, None, None]
    return Solution(ys, torch.tensor([0.0]), ["x"], torch.full((len(values),), status),
                    {"n_steps": torch.arange(len(values))}, solver="torch", meta={"model": "m"})


def test_a_failed_shard_leaves_failed_nan_samples_and_its_reason() -> None:
    sol = join([_part([1.0, 2.0]), TaskFailure(1, "OSError: worker died", 2), _part([5.0])], [0, 2, 4, 5])
    assert sol.status.tolist() == [0, 0, int(Status.FAILED), int(Status.FAILED), 0]
    assert sol.ys[[0, 1, 4], 0, 0].tolist() == [1.0, 2.0, 5.0] and torch.isnan(sol.ys[2:4]).all()
    assert sol.stats["n_steps"].tolist() == [0, 1, -1, -1, 0]
    assert sol.meta["failed_shards"] == [{"shard": 1, "samples": [2, 4], "error": "OSError: worker died", "attempts": 2}]
    with pytest.raises(SolverError, match="2 \\(failed"):
        sol.raise_on_failure()
    with pytest.raises(SolverError, match="every shard failed \\(shard 0: OSError: gone\\)"):
        join([TaskFailure(0, "OSError: gone", 2)], [0, 3])


def test_an_address_needs_the_ray_executor() -> None:
    with pytest.raises(NeuroplexError, match="address= and gpus_per_task= are for the .ray. executor"):
        nx.simulate("repressilator", 1, address="10.0.0.1:6379")
