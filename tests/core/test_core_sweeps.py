"""neuroplex.sweeps: grid and random searches over a training command's options, run here one
trial after another (Ray Tune: test_core_sweeps_ray.py), with the CSV and exact resume."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import neuroplex as nx
from neuroplex.errors import NeuroplexError
from neuroplex.sweeps import SweepConfig, load_config, run_trial, summary, trials
from neuroplex.trainer import TIMING_KEYS

#: a tiny EqProp run: one hidden layer of 8 units on digits, one epoch ~0.3 s
TINY = {"epochs": 2, "dimensions": "64 8 10"}


def test_a_grid_is_the_product_and_a_random_search_is_seeded(tmp_path: Path) -> None:
    grid = SweepConfig(("eqprop", "train"), "test_accuracy", tmp_path, {"seed": [0, 1], "beta": [0.5, 1.0]})
    assert trials(grid) == [{"seed": 0, "beta": 0.5}, {"seed": 0, "beta": 1.0}, {"seed": 1, "beta": 0.5},
                            {"seed": 1, "beta": 1.0}]
    rand = SweepConfig(("eqprop", "train"), "test_accuracy", tmp_path, search="random", samples=5, seed=3,
                       space={"beta": {"low": 0.1, "high": 10.0, "log": True}, "free-steps": {"low": 5, "high": 9, "int": True},
                              "energy": ["cond_gaussian", "restr_hopfield"]})
    drawn = trials(rand)
    assert drawn == trials(rand) and len(drawn) == 5 and len({t["beta"] for t in drawn}) == 5
    assert all(0.1 <= t["beta"] <= 10.0 and t["free-steps"] in range(5, 10) for t in drawn)  # type: ignore[operator]
    assert {t["energy"] for t in drawn} <= {"cond_gaussian", "restr_hopfield"}


def test_bad_configs_name_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('command = "eqprop train"\nmetric = "test_accuracy"\nspaces = {}\n')
    with pytest.raises(NeuroplexError, match=r"bad.toml: unknown keys spaces"):
        load_config(path)
    path.write_text('command = "eqprop train"\nmetric = "x"\n[space]\nbeta = {low = 1, high = 2}\n')
    with pytest.raises(NeuroplexError, match=r"bad.toml: .*space.beta: a grid needs a list"):
        load_config(path)
    config = SweepConfig(("eqprop", "train"), "test_accuracy", tmp_path, {"no-such": [1]}, executor="local")
    with pytest.raises(NeuroplexError, match="'neuroplex eqprop train' has no option --no-such"):
        nx.sweep(config)
    with pytest.raises(NeuroplexError, match="no command 'neuroplex eqprop fit'"):
        nx.sweep(SweepConfig(("eqprop", "fit"), "test_accuracy", tmp_path, {"seed": [0]}))


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_local_sweep_writes_its_table_resumes_and_names_the_best(tmp_path: Path) -> None:
    path = tmp_path / "sweep.toml"
    path.write_text('command = "eqprop train"\nmetric = "test_accuracy"\nout = "runs"\nexecutor = "local"\n'
                    '[fixed]\nepochs = 2\ndimensions = "64 8 10"\n[space]\nseed = [0, 1]\n')
    config = load_config(path)
    # trial 1 was stopped after its first epoch: its run directory holds that epoch's checkpoint
    run_trial(SweepConfig(config.command, config.metric, config.out, config.space, {**TINY, "epochs": 1}), 1, {"seed": 1})
    result = nx.sweep(path, progress=False)
    assert [t.status for t in result.trials] == ["done", "done"]
    history = json.loads((config.out / "trials" / "trial-001" / "metrics.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]  # continued, not restarted
    fresh = run_trial(SweepConfig(config.command, config.metric, tmp_path / "fresh", config.space, TINY), 1, {"seed": 1})
    same = {k: v for k, v in fresh.items() if k not in TIMING_KEYS}
    assert {k: result.trials[1].metrics[k] for k in same} == same  # exact resume
    rows = _rows(config.out / "trials.csv")
    assert [r["seed"] for r in rows] == ["0", "1"] and float(rows[1]["test_accuracy"]) == same["test_accuracy"]
    best = result.best
    assert best is not None and best.metrics["test_accuracy"] == max(t.metrics["test_accuracy"] for t in result.trials)
    text = summary(result)
    assert f"best: trial {best.index} (seed={best.options['seed']})" in text
    assert "reproduce: neuroplex eqprop train --epochs 2 --dimensions '64 8 10'" in text
    stamp = (config.out / "trials" / "trial-000" / "metrics.json").stat().st_mtime_ns
    again = nx.sweep(path, progress=False)  # every trial done: nothing runs again
    assert (config.out / "trials" / "trial-000" / "metrics.json").stat().st_mtime_ns == stamp
    assert [t.metrics for t in again.trials] == [t.metrics for t in result.trials]
