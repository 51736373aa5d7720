"""``neuroplex.compare.compare`` and ``neuroplex compare``."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from neuroplex.cli import build_cli
from neuroplex.compare import compare, parse_solver_options
from neuroplex.errors import NeuroplexError
from neuroplex.ir import ModelIR, Parameter, State
from neuroplex.testing import require_data

pytest.importorskip("scipy")


def decay() -> ModelIR:
    return ModelIR("decay", states=[State("x", 1.0), State("y", 0.0)], parameters=[Parameter("k", 2.0)],
                   derivatives={"x": "-k*x", "y": "k*x - y"})


def test_compare_reports_differences_and_plots(tmp_path):
    res = compare(decay(), ["torch", "scipy"], t_span=2.0, n_points=51, rtol=1e-10, atol=1e-12,
                  solver_options={"scipy": {"method": "RK45", "rtol": 1e-4}}, plot=tmp_path / "cmp.png")
    assert res.reference == "torch" and res.others == ["scipy"] and res.names == ["x", "y"]
    a, b = res.solutions["scipy"], res.solutions["torch"]
    assert res.max_abs["scipy"]["x"] == pytest.approx(float((a["x"] - b["x"]).abs().max()))
    assert 1e-9 < res.max_rel["scipy"]["y"] < 1e-2  # the loose RK45 run differs measurably
    assert res.within(rtol=1e-2, atol=1e-6) and not res.within(rtol=1e-12, atol=0)
    assert (tmp_path / "cmp.png").stat().st_size > 1000
    assert "scipy abs" in res.table() and json.dumps(res.to_dict())


def test_roadrunner_is_the_default_reference():
    pytest.importorskip("roadrunner")
    res = compare(decay(), ["scipy", "roadrunner"], t_span=1.0, n_points=11, rtol=1e-10, atol=1e-12)
    assert res.reference == "roadrunner"
    assert max(res.max_rel["scipy"].values()) < 1e-6


def test_cli_compare_writes_plot_and_json(tmp_path):
    pytest.importorskip("roadrunner")
    path = require_data("biomodels", "BIOMD0000000012.xml")
    out = CliRunner().invoke(build_cli(), ["compare", str(path), "--solvers", "scipy,roadrunner", "--t-end", "20",
                                           "--points", "41", "--rtol", "1e-9", "--atol", "1e-12", "--out",
                                           str(tmp_path / "p.png"), "--json", str(tmp_path / "d.json")])
    assert out.exit_code == 0, out.output
    assert "reference roadrunner" in out.output and "PX" in out.output
    data = json.loads((tmp_path / "d.json").read_text())
    assert data["solvers"] == ["scipy", "roadrunner"] and max(data["max_rel"]["scipy"].values()) < 1e-4
    assert (tmp_path / "p.png").exists()


def test_bad_requests_fail_clearly():
    with pytest.raises(NeuroplexError, match="at least two"):
        compare(decay(), ["torch"])
    with pytest.raises(NeuroplexError, match="reference"):
        compare(decay(), ["torch", "scipy"], reference="brian2")
    with pytest.raises(NeuroplexError, match="SOLVER.OPTION=VALUE"):
        parse_solver_options(["method=rk4"])
    assert parse_solver_options(["torch.method=rk4", "scipy.rtol=1e-6", "roadrunner.stiff=false"]) == {
        "torch": {"method": "rk4"}, "scipy": {"rtol": 1e-6}, "roadrunner": {"stiff": False}}
    out = CliRunner().invoke(build_cli(), ["compare", "no-such-model.xml", "--solvers", "torch,scipy"])
    assert out.exit_code == 1 and out.output.startswith("error:")
