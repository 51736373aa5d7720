"""Fixtures for the core tests: fresh plugin hosts, fake distributions, the example plugin."""
from __future__ import annotations

import importlib.metadata as md
import sys
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

from neuroplex.host import PluginHost
from neuroplex.testing import plugin_host

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_PLUGIN = ROOT / "examples" / "neuroplex-example-plugin"


@pytest.fixture
def host() -> Iterator[PluginHost]:
    """A strict host with no entry points, installed as the process-wide host."""
    with plugin_host() as h:
        yield h


@pytest.fixture
def example_plugin(monkeypatch: pytest.MonkeyPatch):
    """The example plugin's module, imported from its source folder (not installed)."""
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN))
    import neuroplex_example_plugin.plugin as plugin

    return plugin


@pytest.fixture
def solver_host(host: PluginHost, example_plugin) -> PluginHost:
    """A host with the example plugin (neuron ``qif``, solver ``example-euler``) added."""
    host.add_plugin(example_plugin, "example", dist="neuroplex-example-plugin", version="0.2.0")
    return host


@pytest.fixture
def fake_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``fake_dist(name, version, {ep_name: module}, {module: source})`` writes a dist-info and
    modules under tmp_path and returns the distribution's ``neuroplex`` entry points."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    created: list[str] = []

    def make(name: str, version: str, eps: dict[str, str], modules: dict[str, str]) -> list[md.EntryPoint]:
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        lines = "\n".join(f"{k} = {v}" for k, v in eps.items())
        (info / "entry_points.txt").write_text(f"[neuroplex]\n{lines}\n")
        for mod, source in modules.items():
            (site / f"{mod}.py").write_text(textwrap.dedent(source))
            created.append(mod)
        return list(md.PathDistribution(info).entry_points.select(group="neuroplex"))

    yield make
    for mod in created:
        sys.modules.pop(mod, None)


