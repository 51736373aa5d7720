"""Comparison metrics on synthetic spike trains with known answers, and compare-snn."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from neuroplex.errors import NeuroplexError
from neuroplex.plugins.brian2_backend.compare import (compare_runs, first_mismatch, format_report, match_count,
                                                      spike_agreement, spike_stats, trace_rmse)
from neuroplex.solution import Solution, SpikeTrain

DT = 1e-4


def _train(idx, steps) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(idx), np.asarray(steps, dtype=float) * DT


def test_stats_of_a_regular_and_a_known_irregular_train():
    # neuron 0: every 100 steps (CV 0); neuron 1: ISIs 10, 30 (CV 0.5); neuron 2 silent
    a = _train([0] * 10 + [1, 1, 1], [*range(0, 1000, 100), 0, 10, 40])
    st = spike_stats(a, n_neurons=3, duration=0.1)
    assert st.n_spikes == 13
    assert st.rate_hz == pytest.approx(13 / 3 / 0.1)
    assert st.cv_isi == pytest.approx((0.0 + 0.5) / 2)
    assert st.active_fraction == pytest.approx(2 / 3)
    assert np.isnan(spike_stats(_train([0], [5]), 1, 0.1).cv_isi)
    with pytest.raises(NeuroplexError):
        spike_stats(a, 0, 0.1)


def test_matching_exact_and_within_one_step():
    a = _train([0, 0, 1, 2], [10, 20, 30, 40])
    b = _train([0, 0, 1, 3], [10, 21, 32, 40])  # exact, +1 step, +2 steps, other neuron
    assert match_count(a, b, DT, 0) == 1
    assert match_count(a, b, DT, 1) == 2
    assert match_count(a, b, DT, 2) == 3
    rep = spike_agreement(a, b, DT)
    assert rep["exact_step_rate"] == pytest.approx(0.25) and rep["within_1_step_rate"] == pytest.approx(0.5)
    assert rep["first_mismatch_s"] == pytest.approx(20 * DT)
    same = spike_agreement(a, a, DT)
    assert same["exact_step_rate"] == 1.0 and same["first_mismatch_s"] is None
    # one-to-one: two spikes one step apart cannot both match one spike
    assert match_count(_train([0, 0], [10, 11]), _train([0], [10]), DT, 1) == 1
    assert spike_agreement(_train([], []), _train([], []), DT)["exact_step_rate"] == 1.0
    # extra spikes lower the rate (denominator is the larger count)
    assert spike_agreement(a, _train([0], [10]), DT)["exact_step_rate"] == pytest.approx(0.25)
    assert first_mismatch(a, _train([0, 0, 1, 2], [10, 20, 30, 40]), DT) is None


def _sol(idx, steps, v, solver="x") -> Solution:
    n = len(v)
    return Solution(ys=torch.as_tensor(v, dtype=torch.float64).view(1, n, 1), ts=torch.arange(n) * DT,
                    names=["P.v[0]"], status=torch.zeros(1, dtype=torch.long),
                    spikes=SpikeTrain(torch.zeros(len(idx), dtype=torch.long), torch.as_tensor(idx),
                                      torch.as_tensor(steps, dtype=torch.float64) * DT),
                    solver=solver, method="exact", meta={"loop_time": 0.5})


def test_report_combines_stats_agreement_rmse_and_times():
    a = _sol([0, 1], [3, 5], [0.0, 1.0, 2.0, 3.0], "torch")
    b = _sol([0, 1], [3, 6], [0.0, 1.0, 2.0, 5.0], "brian2")
    assert trace_rmse(a, b)["P.v[0]"] == pytest.approx(1.0)  # sqrt(4/4)
    rep = compare_runs({"torch": a, "brian2": b}, n_neurons=2, duration=0.01, dt=DT)
    pair = rep["pairs"]["torch vs brian2"]
    assert pair["exact_step_rate"] == 0.5 and pair["within_1_step_rate"] == 1.0
    assert rep["runs"]["torch"]["loop_s"] == 0.5 and rep["runs"]["brian2"]["rate_hz"] == pytest.approx(100.0)
    text = format_report(rep)
    assert "exact-step match 0.5000" in text and "RMSE P.v[0]: 1" in text


def test_compare_snn_command_end_to_end(tmp_path):
    pytest.importorskip("brian2")
    from neuroplex.cli import build_cli

    out = tmp_path / "cmp"
    result = CliRunner().invoke(build_cli(), ["compare-snn", "cuba", "--n", "100", "--duration", "0.05",
                                              "--solvers", "torch,brian2:numpy", "--monitor", "0,1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    pair = "torch vs brian2:numpy"
    assert f"{pair}: exact-step match 1.0000, within 1 step 1.0000, first mismatch none" in result.output
    report = json.loads((out / "report.json").read_text())
    runs = report["runs"]
    assert runs["torch"]["n_spikes"] == runs["brian2:numpy"]["n_spikes"] > 0
    assert runs["brian2:numpy"]["code"] == "numpy" and runs["torch"]["code"] in ("c", "torch")  # what ran
    assert runs["torch"]["wall_s"] >= runs["torch"]["loop_s"] > 0
    assert set(report["pairs"][pair]["trace_rmse"]) == {"P.v[0]", "P.v[1]"}
    assert (out / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    exact = CliRunner().invoke(build_cli(), ["compare-snn", "cuba", "--n", "100", "--duration", "0.02",
                                             "--solvers", "torch,brian2:numpy", "--method", "exact"])
    assert exact.exit_code == 0, exact.output
    assert "exact-step match 1.0000" in exact.output and "numpy" in exact.output
    bad = CliRunner().invoke(build_cli(), ["compare-snn", "nonesuch", "--duration", "0.01"])
    assert bad.exit_code != 0 and "no such network file or builder" in bad.output
