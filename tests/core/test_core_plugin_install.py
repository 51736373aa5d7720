"""Third-party plugins for real: pip-install the example plugin into this environment and use
it; pip-install a deliberately broken plugin and check the host reports it and keeps working."""
from __future__ import annotations

import importlib
import importlib.metadata as md
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import neuroplex as nx

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("neuroplex")


def pip(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def neuroplex_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NEUROPLEX_STRICT_PLUGINS": "0", **env})


@pytest.mark.slow
def test_installed_example_plugin_is_listed_and_used(tmp_path: Path):
    src = tmp_path / "src"  # a copy: building in the checkout would leave egg-info/build there
    shutil.copytree(ROOT / "examples" / "neuroplex-example-plugin", src, ignore=shutil.ignore_patterns("tests"))
    pip("install", "-q", "--no-deps", "--no-build-isolation", str(src))
    try:
        listed = json.loads(neuroplex_cli("plugins", "--json").stdout)
        (example,) = [r for r in listed if r["name"] == "example"]
        assert example == {"name": "example", "dist": "neuroplex-example-plugin", "version": "0.2.0",
                           "entry_point": "neuroplex_example_plugin.plugin", "builtin": False, "status": "ok",
                           "error": None, "provides": {"neurons": ["qif"], "learning_rules": ["example-delta"],
                                                       "solvers": ["example-euler"], "tasks": ["blobs"],
                                                       "commands": ["example"]}}

        # the console script simulates the plugin's neuron on the plugin's solver
        out = tmp_path / "qif.csv"
        result = neuroplex_cli("simulate", "qif", "--solver", "example-euler", "--dt", "0.01", "--t-end", "100",
                               "--points", "101", "--out", str(out))
        assert result.returncode == 0, result.stderr
        v = np.loadtxt(out, delimiter=",", skiprows=1)[:, 2]
        assert v[0] == -65.0 and (np.diff(v) < -30).sum() == 5  # five threshold resets in 100 ms

        # and so does the scripting API in this process, through the real entry points
        importlib.invalidate_caches()
        nx.reset_host(nx.PluginHost(strict=False).load())
        record = nx.get_host().records["example"]
        assert (record.status, record.dist, record.builtin) == ("ok", "neuroplex-example-plugin", False)
        sol = nx.simulate("qif", (0.0, 100.0), solver="example-euler", dt=0.01, n_points=11)
        assert type(nx.get_solver("example-euler")).__name__ == "ABCMeta" and sol.solver == "example-euler"
        assert len(sol.spikes) >= 3 and sol.spikes.names == ["spike"]
    finally:
        nx.reset_host(None)
        pip("uninstall", "-y", "-q", "neuroplex-example-plugin")
        sys.modules.pop("neuroplex_example_plugin.plugin", None)
    importlib.invalidate_caches()
    assert "example" not in {ep.name for ep in md.entry_points(group="neuroplex")}


BROKEN_PYPROJECT = """
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "neuroplex-broken-plugin"
version = "0.0.1"

[project.entry-points.neuroplex]
broken = "neuroplex_broken_plugin"

[tool.setuptools]
py-modules = ["neuroplex_broken_plugin"]
"""


@pytest.mark.slow
def test_installed_broken_plugin_is_reported_and_the_rest_works(tmp_path: Path):
    src = tmp_path / "broken"
    src.mkdir()
    (src / "pyproject.toml").write_text(textwrap.dedent(BROKEN_PYPROJECT))
    (src / "neuroplex_broken_plugin.py").write_text("import neuroplex_missing_dependency  # noqa: F401\n")
    # a --target install, put on PYTHONPATH for the subprocesses only: a broken plugin in the
    # shared environment would break every other process started meanwhile (strict in CI)
    site = tmp_path / "site"
    pip("install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site), str(src))
    env = {"PYTHONPATH": str(site)}

    result = neuroplex_cli("plugins", "--all", "--json", **env)
    assert result.returncode == 0, result.stderr
    records = {r["name"]: r for r in json.loads(result.stdout)}
    broken = records["broken"]
    assert (broken["status"], broken["dist"], broken["version"]) == ("failed", "neuroplex-broken-plugin", "0.0.1")
    assert broken["error"] == "ModuleNotFoundError: No module named 'neuroplex_missing_dependency'"
    assert records["torch_solver"]["status"] == "ok"
    assert "broken (neuroplex-broken-plugin 0.0.1) failed at import" in result.stderr  # one warning line

    solvers = neuroplex_cli("solvers", **env)
    assert solvers.returncode == 0
    listed = [line.split()[0] for line in solvers.stdout.splitlines() if not line.startswith(" ")]
    assert listed == nx.PluginHost(strict=False).names("solvers") != []

    strict = neuroplex_cli("solvers", **env, NEUROPLEX_STRICT_PLUGINS="1")
    assert strict.returncode == 1 and strict.stdout == ""
    assert strict.stderr.splitlines() == [
        "error: neuroplex plugin broken (neuroplex-broken-plugin 0.0.1) failed at import: ModuleNotFoundError: "
        "No module named 'neuroplex_missing_dependency' (see `neuroplex plugins --all`; block it with "
        "NEUROPLEX_DISABLE_PLUGINS=broken)"]
