"""A sweep through Ray Tune on a local 2-worker Ray cluster gives the trials the local run gives."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

import neuroplex as nx
from neuroplex.sweeps import SweepConfig
from neuroplex.trainer import TIMING_KEYS

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install neuroplex[distributed])")
pytest.importorskip("ray.tune", reason="Ray Tune is not installed (pip install neuroplex[distributed])")


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.slow  # Ray Tune starts an actor per concurrent trial: about a minute on 2 shared cores
def test_an_eqprop_sweep_of_four_trials_on_ray_equals_the_local_one(cluster: None, tmp_path: Path) -> None:
    def config(out: str, executor: str) -> SweepConfig:
        return SweepConfig(("eqprop", "train"), "test_accuracy", tmp_path / out,
                           {"seed": [0, 1], "learning-rate": ["0.1 0.05", "0.2 0.1"]},
                           {"epochs": 1, "dimensions": "64 8 10"}, executor=executor, workers=2)

    local = nx.sweep(config("local", "local"), progress=False)
    remote = nx.sweep(config("ray", "ray"))
    assert [t.status for t in remote.trials] == ["done"] * 4
    assert (tmp_path / "ray" / "trials.csv").exists()
    for a, b in zip(local.trials, remote.trials):
        assert a.options == b.options
        assert {k: v for k, v in a.metrics.items() if k not in TIMING_KEYS} == \
               {k: v for k, v in b.metrics.items() if k not in TIMING_KEYS}
    assert len({t.metrics["test_accuracy"] for t in local.trials}) > 1  # the trials differ
    assert remote.best is not None and remote.best.index == local.best.index  # type: ignore[union-attr]
