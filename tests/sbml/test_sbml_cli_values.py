"""CLI values by id and steady states, the default SBML plot, failures with their reason
(issue 20, items 3 and 4)."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

import neuroplex
from neuroplex.cli import build_cli
from neuroplex.testing import require_data


def run(*args: str):
    return CliRunner().invoke(build_cli(), list(args))


def test_simulate_with_param_init_select(tmp_path):
    path = require_data("biomodels", "BIOMD0000000012.xml")
    out = tmp_path / "px.csv"
    res = run("simulate", str(path), "--t-end", "200", "--points", "11", "--param", "n=2.5", "--init", "PX=10",
              "--select", "PX,PY", "--out", str(out))
    assert res.exit_code == 0, res.output
    header = out.read_text().splitlines()[0].split(",")
    assert header == ["sample", "t", "PX", "PY"]
    rows = [list(map(float, line.split(","))) for line in out.read_text().splitlines()[1:]]
    ref = neuroplex.simulate(path, (0, 200), n_points=11, params={"n": 2.5}, initial={"PX": 10})
    assert rows[0][2] == 10.0 and rows[-1][2] == pytest.approx(float(ref["PX"][0, -1]), rel=1e-9)


def test_cli_errors_name_the_problem():
    path = str(require_data("biomodels", "BIOMD0000000012.xml"))
    res = run("simulate", path, "--param", "nn=2")
    assert res.exit_code == 1 and "did you mean 'n'" in res.output
    res = run("simulate", path, "--points", "0")
    assert res.exit_code == 1 and "at least one" in res.output
    res = run("simulate", path, "--select", "PXX")
    assert res.exit_code == 1 and "did you mean 'PX'" in res.output
    res = run("steady-state", path)
    assert res.exit_code == 1 and "no steady state" in res.output and "unstable" in res.output


def test_steady_state_command(tmp_path):
    path = str(require_data("biomodels", "BIOMD0000000028.xml"))
    res = run("steady-state", path, "--select", "M,Mpp", "--out", str(tmp_path / "ss.csv"))
    assert res.exit_code == 0, res.output
    assert "3 conservation law(s)" in res.output
    value = float(res.output.split("Mpp")[1].split()[0])
    assert value == pytest.approx(float(neuroplex.steady_state(path)["Mpp"][0]), rel=1e-9)


def test_default_plot_shows_species_with_a_legend():
    model = neuroplex.load_model(require_data("biomodels", "BIOMD0000000009.xml"))
    sol = neuroplex.simulate(model, (0, 1), n_points=3)
    assert len(sol.names) >= len(model.sbml["species"]) > 12  # more than the in-axes legend holds
    fig = sol.plot()
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == list(model.sbml["species"])
    assert ax.get_legend() is not None


def test_roadrunner_failure_raises_with_its_reason(tmp_path):
    pytest.importorskip("roadrunner")
    path = require_data("biomodels", "BIOMD0000000012.xml")
    sol = neuroplex.simulate(path, (0, 1000), solver="roadrunner", max_steps=3)
    assert not sol.ok and sol.meta["errors"]
    with pytest.raises(neuroplex.SolverError, match="CV|step|mxstep|maximum"):
        sol.raise_on_failure()
    assert torch.isnan(sol.ys).all()
