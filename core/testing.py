"""Test helpers for neuroplex and for plugin authors' own test suites."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

from .config import data_dir


def require_data(*parts: str) -> Path:
    """The shared test-data path ``parts`` or a pytest skip naming what is missing
    (``$NEUROPLEX_DATA``, default ``../shared/data``)."""
    import pytest

    path = data_dir().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data missing: {path} (set NEUROPLEX_DATA)")
    return path


@contextlib.contextmanager
def plugin_host(*plugins: Any, strict: bool = True) -> Iterator[Any]:
    """A clean process-wide plugin host for the ``with`` block: no installed entry points, only
    ``plugins`` (plugin objects or modules, or ``(plugin, name)`` pairs), strict by default.
    ``neuroplex.simulate`` and friends use it; the previous host returns afterwards.

    ::

        with plugin_host((my_plugin_module, "mine")) as host:
            assert "my-solver" in host.names("solvers")
    """
    from . import host as host_module

    previous = host_module._HOST
    host = host_module.PluginHost(entry_points=[], strict=strict, disabled=()).load()
    host_module.reset_host(host)
    try:
        for i, item in enumerate(plugins):
            plugin, name = item if isinstance(item, tuple) else (item, getattr(item, "__name__", f"plugin{i}"))
            host.add_plugin(plugin, name)
        yield host
    finally:
        host_module.reset_host(previous)
