"""Packaging: the wheel installs only ``neuroplex/...`` (folders map to import names), ships the
model files, and declares every built-in plugin in the ``neuroplex`` entry-point group."""
from __future__ import annotations

import importlib.metadata as md
import json
import shutil
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_installed_entry_points_match_pyproject():
    declared = pyproject()["project"]["entry-points"]["neuroplex"]
    installed = {ep.name: ep.value for ep in md.distribution("neuroplex").entry_points.select(group="neuroplex")}
    assert installed == declared
    scripts = {ep.name: ep.value for ep in md.distribution("neuroplex").entry_points.select(group="console_scripts")}
    assert scripts == {"neuroplex": "neuroplex.cli:main"}


def test_every_builtin_plugin_module_lives_in_a_declared_package():
    tool = pyproject()["tool"]["setuptools"]
    packages, mapping = set(tool["packages"]), tool["package-dir"]
    for name, value in pyproject()["project"]["entry-points"]["neuroplex"].items():
        package = value.rsplit(".", 1)[0]
        assert package in packages, f"entry point {name}: package {package} is not listed in pyproject"
        prefix = max((p for p in mapping if package == p or package.startswith(p + ".")), key=len)
        folder = ROOT / mapping[prefix] / Path(*package[len(prefix):].strip(".").split(".") if package != prefix else ())
        assert (folder / (value.rsplit(".", 1)[1] + ".py")).is_file(), f"entry point {name}: no module file for {value}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # build from a clean copy: an in-tree build/ folder keeps files deleted from the sources
    src = tmp_path_factory.mktemp("src") / "neuroplex"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "out", "runs", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(src)], check=True, capture_output=True, text=True, timeout=300)
    (path,) = out.glob("neuroplex-*.whl")
    return path


@pytest.mark.slow
def test_wheel_installs_only_the_neuroplex_package(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {"neuroplex", next(t for t in top if t.endswith(".dist-info"))}
    for forbidden in ("core", "sbml", "plugins", "models", "tests", "examples", "benchmarks"):
        assert not [n for n in names if n.split("/")[0] == forbidden or n == f"{forbidden}.py"]
    for required in ("neuroplex/__init__.py", "neuroplex/sbml/__init__.py", "neuroplex/plugins/torch_solver/plugin.py",
                     "neuroplex/models/repressilator.ant", "neuroplex/models/README.md"):
        assert required in names
    shipped = {n.removeprefix("neuroplex/models/") for n in names if n.startswith("neuroplex/models/")}
    source = {p.relative_to(ROOT / "models").as_posix() for p in (ROOT / "models").rglob("*")
              if p.suffix in (".py", ".ant", ".xml", ".json", ".md") and "__pycache__" not in p.parts}
    assert shipped == source and len([n for n in shipped if n.endswith(".ant")]) >= 6


@pytest.mark.slow
def test_non_editable_install_works(wheel: Path, tmp_path: Path):
    """``pip install`` of the built wheel (into a target folder) imports and finds its data."""
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, text=True, timeout=300)
    code = ("import json, neuroplex, neuroplex.plugins.torch_solver.plugin, neuroplex.sbml; "
            "print(neuroplex.__file__); print(json.dumps(sorted(neuroplex.shipped_models())))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(site)})
    assert result.returncode == 0, result.stderr
    file, models = result.stdout.splitlines()
    assert Path(file).is_relative_to(site)
    assert {"repressilator", "lotka_volterra", "fitzhugh_nagumo", "hodgkin_huxley", "izhikevich_rs",
            "oregonator"} <= set(json.loads(models))
