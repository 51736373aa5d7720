"""The ``neuroplex`` command line, in process (click's CliRunner) and as the installed console
script (subprocess)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import neuroplex as nx
from neuroplex.cli import cli

SCRIPT = Path(sys.executable).with_name("neuroplex")


def run_script(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "NEUROPLEX_STRICT_PLUGINS": "0", **(env or {})}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=120)


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=True)


def test_plugins_listing_text_and_json(solver_host):
    result = invoke("plugins")
    assert result.exit_code == 0
    assert result.output.splitlines()[0].split() == ["name", "version", "status", "provides"]
    assert ("example          0.2.0     ok        neurons: qif; learning_rules: example-delta; "
            "solvers: example-euler; tasks: blobs") in result.output
    records = json.loads(invoke("plugins", "--all", "--json").output)
    assert records == [{"name": "example", "dist": "neuroplex-example-plugin", "version": "0.2.0",
                        "entry_point": records[0]["entry_point"], "builtin": False, "status": "ok", "error": None,
                        "provides": {"neurons": ["qif"], "learning_rules": ["example-delta"],
                                     "solvers": ["example-euler"], "tasks": ["blobs"]}}]


def test_plugins_hides_builtins_without_all():
    nx.reset_host(nx.PluginHost(strict=False).load())
    try:
        assert "torch_solver" not in invoke("plugins").output
        listed = {r["name"] for r in json.loads(invoke("plugins", "--all", "--json").output)}
        assert {"torch_solver", "sbml", "neurons"} <= listed
        assert not [r for r in json.loads(invoke("plugins", "--json").output) if r["builtin"]]
    finally:
        nx.reset_host(None)


def test_solvers_and_neurons(solver_host):
    out = invoke("solvers").output
    assert out.startswith("example-euler [example] simulate; methods: euler")
    out = invoke("neurons").output
    assert out.startswith("qif                  [example] Quadratic integrate-and-fire neuron (Latham et al. 2000, eq. 1).")


def test_version_lists_plugin_versions(solver_host):
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output.splitlines() == [f"neuroplex {nx.__version__}", "plugins:",
                                          "  example 0.2.0 (neuroplex-example-plugin) ok"]


def test_simulate_writes_csv_and_plot(solver_host, tmp_path: Path):
    csv, png = tmp_path / "qif.csv", tmp_path / "qif.png"
    result = invoke("simulate", "qif", "--solver", "example-euler", "--dt", "0.01", "--t-end", "40",
                    "--points", "41", "--out", str(csv), "--plot", str(png))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "qif: 1 variables, 41 points, solver example-euler euler"
    data = np.loadtxt(csv, delimiter=",", skiprows=1)
    assert data.shape == (41, 3) and data[0, 2] == -65.0 and data[:, 2].max() <= 30.0
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, message", [
    (["simulate", "no-such-model"], "error: no-such-model: no such file, shipped model or neuron"),
    (["simulate", "qif", "--solver", "nope"], "error: no solver named 'nope'; registered: example-euler"),
    (["simulate", "qif", "--solver", "example-euler", "--method", "rk4"],
     "error: ValueError: example-euler has one method, 'euler' (got 'rk4')"),
])
def test_errors_are_one_line_without_traceback(solver_host, args, message):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert result.output.startswith(message) and "Traceback" not in result.output


def test_debug_shows_the_exception(solver_host):
    result = CliRunner().invoke(cli, ["--debug", "simulate", "no-such-model"])
    assert result.exit_code == 1 and isinstance(result.exception, nx.NeuroplexError)


def test_console_script_version_and_plugins():
    result = run_script("--version")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"neuroplex {nx.__version__}" and "  torch_solver 0.1.0 (neuroplex) ok" in lines
    records = json.loads(run_script("plugins", "--all", "--json").stdout)
    assert {r["name"] for r in records if r["builtin"]} >= {"torch_solver", "sbml", "eqprop"}


def test_console_script_error_and_debug(tmp_path: Path):
    result = run_script("simulate", "no-such-model", cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: no-such-model: no such file")
    result = run_script("--debug", "simulate", "no-such-model", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" in result.stderr and "NeuroplexError" in result.stderr


def test_strict_plugin_failure_in_main_is_one_line(fake_dist, tmp_path: Path):
    eps = fake_dist("np-broken", "0.3", {"broken": "np_broken"}, {"np_broken": "raise ImportError('needs libfoo')"})
    site = str(Path(eps[0].dist._path).parent)
    env = {"PYTHONPATH": site, "NEUROPLEX_STRICT_PLUGINS": "1"}
    result = run_script("solvers", env=env, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: neuroplex plugin broken (np-broken 0.3) failed at import: ImportError: needs libfoo "
        "(see `neuroplex plugins --all`; block it with NEUROPLEX_DISABLE_PLUGINS=broken)"]
    blocked = run_script("solvers", env={**env, "NEUROPLEX_DISABLE_PLUGINS": "broken"}, cwd=tmp_path)
    assert blocked.returncode == 0, blocked.stderr
