"""Test helpers for neuroplex and for plugin authors' own test suites."""
from __future__ import annotations

import contextlib
import importlib
import importlib.metadata as md
from pathlib import Path
from typing import Any, Iterator

from .config import data_dir
from . import cli as cli_module
from . import host as host_module
from .errors import UnknownNameError
from .host import get_host


def require_data(*parts: str) -> Path:
    """The shared test-data path ``parts`` or a pytest skip naming what is missing
    (``$NEUROPLEX_DATA``, default ``../shared/data``)."""
    import pytest

    path = data_dir().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data missing: {path} (set NEUROPLEX_DATA)")
    return path


def builtin_entry_points() -> list[md.EntryPoint]:
    """The ``neuroplex`` entry points of the neuroplex distribution itself (the built-in
    plugins: torch, scipy, roadrunner and brian2 solvers, neurons, SBML, ...), none of any
    other installed distribution."""
    return list(md.distribution("neuroplex").entry_points.select(group="neuroplex"))


def installed_entry_point(name: str) -> md.EntryPoint:
    """The installed ``neuroplex`` entry point ``name`` (e.g. after ``pip install -e .`` of your
    plugin), to hand to :func:`plugin_host` / :func:`with_builtins` with its distribution."""
    for ep in md.entry_points(group="neuroplex"):
        if ep.name == name:
            return ep

    known = ", ".join(sorted(ep.name for ep in md.entry_points(group="neuroplex")))
    raise UnknownNameError(f"no installed neuroplex entry point named {name!r}; installed: {known}")


def _resolve(item: Any, index: int) -> tuple[Any, str, str | None, str | None]:
    """``(plugin object, name, dist, version)`` from what :func:`plugin_host` accepts."""
    if isinstance(item, tuple):
        plugin, name = item
        return _resolve(plugin, index)[0], name, None, None
    if isinstance(item, md.EntryPoint):
        dist = item.dist
        return item.load(), item.name, dist.name if dist else None, dist.version if dist else None
    if isinstance(item, str):  # "package.plugin" or "package.plugin:object"
        module_name, _, attr = item.partition(":")
        obj = importlib.import_module(module_name)
        for part in filter(None, attr.split(".")):
            obj = getattr(obj, part)
        return obj, module_name, None, None
    return item, getattr(item, "__name__", None) or type(item).__name__.lower() or f"plugin{index}", None, None


@contextlib.contextmanager
def plugin_host(*plugins: Any, strict: bool = True, builtins: bool = False) -> Iterator[Any]:
    """A clean process-wide plugin host for the ``with`` block, strict by default, holding only
    ``plugins`` -- plus neuroplex's built-in plugins (torch solver, neurons, SBML, ...) when
    ``builtins=True``, never other installed distributions. ``neuroplex.simulate``, the CLI and
    friends use it; the previous host returns afterwards.

    Each plugin is a module or object with ``@hookimpl`` functions, a ``(plugin, name)`` pair,
    an import path (``"my_pkg.plugin"``, named after the module like a module object) or an
    ``importlib.metadata.EntryPoint`` (named after the entry point, with its distribution)::

        with plugin_host((my_plugin_module, "mine")) as host:
            assert "my-solver" in host.names("solvers")
    """

    previous = host_module._HOST
    eps = builtin_entry_points() if builtins else []
    host = host_module.PluginHost(entry_points=eps, strict=strict, disabled=()).load()
    host_module.reset_host(host)
    try:
        for i, item in enumerate(plugins):
            plugin, name, dist, version = _resolve(item, i)
            host.add_plugin(plugin, name, dist=dist, version=version)
        yield host
    finally:
        host_module.reset_host(previous)


def with_builtins(*plugins: Any, strict: bool = True) -> contextlib.AbstractContextManager[Any]:
    """One call for a plugin's tests: ``plugins`` loaded beside neuroplex's built-in plugins
    (so ``solver="torch"`` and the shipped neurons work next to yours), strict::

        with with_builtins("my_pkg.plugin") as host:
            sol = neuroplex.simulate("my-neuron", (0, 10), solver="torch")
    """
    return plugin_host(*plugins, strict=strict, builtins=True)


def neuroplex_cli(host: Any = None) -> Any:
    """A fresh ``neuroplex`` click group: the core commands plus the commands of the plugins of
    ``host`` (default: the process-wide host, e.g. the one :func:`with_builtins` set up), for
    ``click.testing.CliRunner``::

        with with_builtins("my_pkg.plugin"):
            result = CliRunner().invoke(neuroplex_cli(), ["my-command", "--flag"])
    """

    core = cli_module._BUILTIN_COMMANDS if cli_module._BUILTIN_COMMANDS is not None else dict(cli_module.cli.commands)
    group = cli_module.NeuroplexGroup("neuroplex", commands=dict(core), params=list(cli_module.cli.params),
                                      help=cli_module.cli.help)
    (get_host() if host is None else host).add_commands(group)
    return group
