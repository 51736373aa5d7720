"""The ``ray`` executor on a local 2-worker Ray cluster (started once for the module: Ray's
start-up takes seconds), and ensembles run through it against the local executor."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Iterator

import cloudpickle
import pytest
import torch

import neuroplex as nx
from neuroplex import Solution, Status
from neuroplex.ensembles import run_sharded
from neuroplex.executors import RayExecutor, Shared, TaskFailure, get_executor
from neuroplex.plugins.torch_solver import TorchIntegrator, TorchSolver
from neuroplex.testing import require_data

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install neuroplex[distributed])")


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    # the Ray workers cannot import this test module: its functions and classes travel by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


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


# ------------------------------------------------------------------ SBML ensembles
BIOMODEL = "BIOMD0000000012.xml"  # the repressilator (Elowitz & Leibler 2000)


@pytest.fixture(scope="module")
def ensemble() -> tuple[object, torch.Tensor]:
    model = nx.load_model(require_data("biomodels", BIOMODEL))
    base = torch.tensor(list(model.parameter_values().values()), dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    return model, base * (1 + 0.2 * torch.rand(200, base.numel(), generator=g, dtype=torch.float64))


def test_an_sbml_ensemble_on_ray_equals_the_local_executor(cluster: None, ensemble: tuple[object, torch.Tensor]) -> None:
    model, params = ensemble
    local = nx.simulate(model, 50, params=params, n_points=6, workers=2)
    remote = nx.simulate(model, 50, params=params, n_points=6, workers=2, executor="ray")
    assert remote.meta["shards"] == 2 and remote.ok and local.ok
    assert torch.equal(remote.ys, local.ys) and torch.equal(remote.stats["n_steps"], local.stats["n_steps"])
    steady = nx.equilibrate(model, params=params[:4], executor="ray", workers=2)
    assert torch.equal(steady.ys, nx.equilibrate(model, params=params[:4]).ys)


class DiesOnce(TorchSolver):
    """The torch solver, whose first integrator (in whichever worker asks first) kills its
    worker process: a marker file made atomically says it has happened."""

    def __init__(self, marker: str, **options: object):
        super().__init__(**options)  # type: ignore[arg-type]
        self.marker = marker

    def integrator(self) -> TorchIntegrator:
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return super().integrator()
        os._exit(1)


def test_a_killed_worker_is_retried_and_no_sample_goes_missing(cluster: None, ensemble: tuple[object, torch.Tensor],
                                                               tmp_path: Path) -> None:
    model, params = ensemble
    marker = tmp_path / "killed"
    remote = nx.simulate(model, 50, params=params, n_points=6, executor="ray", workers=2,
                         solver=DiesOnce(str(marker)))
    assert marker.exists()  # a worker did die
    local = nx.simulate(model, 50, params=params, n_points=6, workers=2)
    assert remote.ok and "failed_shards" not in remote.meta
    assert torch.equal(remote.ys, local.ys)


def _fails_on_shard_with_sample_7(model: object, params: torch.Tensor, **options: object) -> Solution:
    if bool((params[:, 0] == -7.0).any()):
        raise RuntimeError("sample 7 cannot run")
    return nx.simulate(model, params=params, **options)  # type: ignore[arg-type]


def test_a_shard_failing_twice_is_reported_per_sample(cluster: None, ensemble: tuple[object, torch.Tensor]) -> None:
    model, params = ensemble
    params = params[:12].clone()
    params[7, 0] = -7.0
    with get_executor("ray", workers=2) as ex:
        sol = run_sharded(_fails_on_shard_with_sample_7, model, ex, {"params": params, "y0": None},
                          {"t_span": (0.0, 50.0), "n_points": 6}, n_shards=3)
    assert sol.ys.shape[0] == 12
    # shards 0-3, 4-7, 8-11: the middle one fails in both attempts
    assert sol.status.tolist() == [0] * 4 + [int(Status.FAILED)] * 4 + [0] * 4
    assert torch.isnan(sol.ys[4:8]).all() and not torch.isnan(sol.ys[:4]).any() and not torch.isnan(sol.ys[8:]).any()
    (failure,) = sol.meta["failed_shards"]
    assert failure["samples"] == [4, 8] and failure["attempts"] == 2 and "sample 7 cannot run" in failure["error"]
    assert sol.failed_samples() == [4, 5, 6, 7]
    good = nx.simulate(model, 50, params=params[[0, 1, 2, 3, 8, 9, 10, 11]], n_points=6)
    assert torch.allclose(sol.ys[[0, 1, 2, 3, 8, 9, 10, 11]], good.ys, rtol=1e-9, atol=1e-12)


def _sleeps(x: int) -> int:
    time.sleep(120)
    return x


def test_ctrl_c_cancels_the_submitted_tasks(  # last: it ends the two workers
        cluster: None, monkeypatch: pytest.MonkeyPatch) -> None:
    ex = get_executor("ray", workers=2)
    cancelled: list[object] = []
    real_cancel = ray.cancel

    def interrupted(*args: object, **kwargs: object) -> object:
        time.sleep(2)  # the first two tasks are running by now
        raise KeyboardInterrupt  # Ctrl-C while the driver waits for the first result

    def spy(ref: object, **kwargs: object) -> None:
        cancelled.append(ref)
        real_cancel(ref, **kwargs)

    monkeypatch.setattr(ray, "get", interrupted)
    monkeypatch.setattr(ray, "cancel", spy)
    with pytest.raises(KeyboardInterrupt):
        ex.try_map(_sleeps, [1, 2, 3])
    monkeypatch.undo()
    assert len(cancelled) == 3  # two running, one queued: none sleeps on for two minutes
    ready, _ = ray.wait(cancelled, num_returns=3, timeout=30)  # type: ignore[arg-type]
    assert len(ready) == 3
    for ref in cancelled:
        with pytest.raises((ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError)):
            ray.get(ref)
