"""A sweep's best trial is one with a finite metric.

Before: ``SweepResult.best`` ranked with ``max`` on the metric, and a NaN compares neither
greater nor smaller, so a first trial that diverged (test_accuracy NaN, or a NaN loss with
``mode = "min"``) stayed the "best" against every finite trial after it."""
from __future__ import annotations

import math

import pytest

from neuroplex.sweeps import SweepConfig, SweepResult, Trial


@pytest.mark.parametrize("mode, values, want", [("max", [math.nan, 0.8, 0.9], 2), ("min", [math.nan, 0.3, 0.2], 2),
                                                ("max", [math.inf, 0.5], 1), ("min", [0.4, -math.inf], 0)])
def test_a_non_finite_metric_never_wins(tmp_path, mode, values, want):
    config = SweepConfig(("eqprop", "train"), "m", tmp_path, {"seed": [0]}, mode=mode)
    trials = [Trial(i, {"seed": i}, "done", {"m": v}) for i, v in enumerate(values)]
    assert SweepResult(config, trials, tmp_path / "trials.csv").best.index == want


def test_no_finite_metric_means_no_best(tmp_path):
    config = SweepConfig(("eqprop", "train"), "m", tmp_path, {"seed": [0]})
    assert SweepResult(config, [Trial(0, {}, "done", {"m": math.nan})], tmp_path / "t.csv").best is None
