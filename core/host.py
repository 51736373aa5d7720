"""The plugin host: discovers ``neuroplex`` entry points, loads each one on its own and
collects what every plugin registers, with provenance.

Design (see ``docs/architecture.md``): discovery is kept apart from import (flake8); each
entry point is loaded inside its own ``try``; each plugin's ``register_*`` implementation
is called on its own (llm ``get_tools``), so a plugin that fails to import, has a bad hook
signature or raises while registering is marked *failed* with its name, version and error,
and everything else keeps working. ``NEUROPLEX_STRICT_PLUGINS=1`` raises instead.
``NEUROPLEX_DISABLE_PLUGINS=a,b`` blocks plugins by entry-point name. Two plugins
registering one name for one kind of item is a :class:`PluginConflictError` naming both.
"""
from __future__ import annotations

import difflib
import importlib.metadata as md
import inspect
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import pluggy

from . import hookspecs
from .errors import PluginConflictError, PluginError, UnknownNameError
from .features import FeatureGate, check_declarations

log = logging.getLogger("neuroplex.plugins")

GROUP = "neuroplex"
#: the extension hooks and the registry kind each one fills
KINDS: dict[str, str] = {
    "register_neurons": "neurons",
    "register_learning_rules": "learning_rules",
    "register_solvers": "solvers",
    "register_importers": "importers",
    "register_tasks": "tasks",
    "register_runners": "runners",
}


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str) -> set[str]:
    return {x.strip() for x in os.environ.get(name, "").split(",") if x.strip()}


@dataclass
class PluginRecord:
    """One plugin as the host sees it: where it came from, and whether it works."""

    name: str
    dist: str | None = None
    version: str | None = None
    value: str = ""
    builtin: bool = False
    status: str = "pending"  # ok | failed | disabled
    error: str | None = None
    module: Any = None
    provides: dict[str, list[str]] = field(default_factory=dict)

    @property
    def display_name(self) -> str:
        """``name (distribution version)``; a plugin added in process (``add_plugin``) has no
        distribution and is named alone."""
        if self.dist is None:
            return self.name
        return f"{self.name} ({self.dist} {self.version})" if self.version else f"{self.name} ({self.dist})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dist": self.dist,
            "version": self.version,
            "entry_point": self.value,
            "builtin": self.builtin,
            "status": self.status,
            "error": self.error,
            "provides": self.provides,
        }


@dataclass
class Entry:
    """A registered item: the object and the plugin that provided it."""

    name: str
    kind: str
    obj: Any
    plugin: str
    aliases: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)


class Registrar:
    """Callable passed to ``register_*`` hooks: ``register(obj, name=None, aliases=(), **info)``.

    ``name`` defaults to ``obj.name`` (or a plain function's ``__name__``). Items are staged and only committed to the registry
    when the plugin's hook returns without error.
    """

    def __init__(self, kind: str, plugin: str):
        self.kind = kind
        self.plugin = plugin
        self.items: list[Entry] = []

    def __call__(self, obj: Any, name: str | None = None, aliases: Iterable[str] = (), **info: Any) -> None:
        key = name or getattr(obj, "name", None)
        if not key and inspect.isfunction(obj) and obj.__name__ != "<lambda>":
            key = obj.__name__
        if not key or not isinstance(key, str):
            raise PluginError(f"plugin {self.plugin!r} registered a {self.kind[:-1]} without a name: {obj!r}")
        if isinstance(aliases, str):  # one alias, not one per character
            aliases = (aliases,)
        self.items.append(Entry(key, self.kind, obj, self.plugin, tuple(aliases), dict(info)))


class PluginHost:
    """Loads plugins and holds the registries of neurons, solvers, importers, rules and tasks."""

    def __init__(
        self,
        *,
        strict: bool | None = None,
        disabled: Iterable[str] | None = None,
        entry_points: Iterable[md.EntryPoint] | None = None,
    ):
        self.strict = _env_flag("NEUROPLEX_STRICT_PLUGINS") if strict is None else strict
        self.disabled = _env_list("NEUROPLEX_DISABLE_PLUGINS") if disabled is None else set(disabled)
        self._entry_points = entry_points
        self.pm = pluggy.PluginManager("neuroplex")
        self.pm.add_hookspecs(hookspecs)
        self.pm.register(FeatureGate(), name="neuroplex-feature-gate")  # solvers' declared `supports`
        self.records: dict[str, PluginRecord] = {}
        self.registry: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS.values()}
        self._aliases: dict[str, dict[str, str]] = {kind: {} for kind in KINDS.values()}
        self._lock = threading.Lock()
        self.loaded = False

    # ----------------------------------------------------------------- loading
    def discover(self) -> list[md.EntryPoint]:
        eps = self._entry_points if self._entry_points is not None else md.entry_points(group=GROUP)
        return sorted(eps, key=lambda ep: (ep.dist is None or ep.dist.name != "neuroplex", ep.name))

    def load(self) -> "PluginHost":
        """Discover, import and register every plugin (idempotent)."""
        with self._lock:
            if self.loaded:
                return self
            for ep in self.discover():
                self._load_entry_point(ep)
            for record in list(self.records.values()):
                if record.status == "pending":
                    self._register_items(record)
            self.loaded = True
            self.pm.hook.neuroplex_configure.call_historic(kwargs={"config": {"strict": self.strict}})
        return self

    def add_plugin(self, module: Any, name: str, *, dist: str | None = None, version: str | None = None) -> PluginRecord:
        """Register a plugin object directly (tests, scripts); same checks as entry points."""
        record = PluginRecord(name=name, dist=dist, version=version, value=repr(module))
        self.records[name] = record
        self._register_module(record, module)
        if record.status == "pending":
            self._register_items(record)
        return record

    def remove_plugin(self, name: str) -> None:
        """Unregister a plugin and drop everything it registered."""
        record = self.records.pop(name, None)
        if record is None:
            return
        self._drop_items(name)
        if record.module is not None and self.pm.is_registered(record.module):
            self.pm.unregister(record.module)

    def _load_entry_point(self, ep: md.EntryPoint) -> None:
        dist = ep.dist.name if ep.dist is not None else None
        version = ep.dist.version if ep.dist is not None else None
        record = PluginRecord(name=ep.name, dist=dist, version=version, value=ep.value, builtin=dist == "neuroplex")
        if ep.name in self.records:
            other = self.records[ep.name]
            self._fail(record, PluginConflictError(
                f"plugin name {ep.name!r} is declared by both {other.display_name} and {record.display_name}"))
            return
        self.records[ep.name] = record
        if ep.name in self.disabled:
            record.status = "disabled"
            self.pm.set_blocked(ep.name)
            return
        try:
            module = ep.load()
        except Exception as exc:  # noqa: BLE001 - isolation is the point
            self._fail(record, exc, "import")
            return
        self._register_module(record, module)

    def _register_module(self, record: PluginRecord, module: Any) -> None:
        record.module = module
        try:
            self.pm.register(module, name=record.name)
            self._check_hook_names(module, record.name)
        except Exception as exc:  # noqa: BLE001 - PluginValidationError and friends
            if self.pm.is_registered(module):
                self.pm.unregister(module)
            self._fail(record, exc, "validate")

    def _check_hook_names(self, module: Any, plugin: str) -> None:
        """Refuse a hook implementation that no neuroplex hook specifies (a misspelt hook name).

        pluggy keeps such an implementation and never calls it, so a plugin whose
        ``register_neuron`` (for ``register_neurons``) would load as *ok* providing nothing.
        """
        for caller in self.pm.get_hookcallers(module) or []:
            if caller.has_spec() or all(impl.optionalhook for impl in caller.get_hookimpls()
                                        if impl.plugin_name == plugin):
                continue
            known = [name for name in vars(hookspecs) if name.startswith(("register_", "neuroplex_"))]
            close = difflib.get_close_matches(caller.name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; the hooks are: {', '.join(sorted(known))}"
            raise PluginError(f"plugin {plugin!r} implements {caller.name!r}, which is not a neuroplex hook{hint}")

    def _register_items(self, record: PluginRecord) -> None:
        staged: list[Entry] = []
        try:
            for hook_name, kind in KINDS.items():
                for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                    if impl.plugin_name != record.name:
                        continue
                    registrar = Registrar(kind, record.name)
                    impl.function(**self._impl_kwargs(impl, {"register": registrar}))
                    staged.extend(registrar.items)
            for item in staged:
                if item.kind == "solvers":
                    check_declarations(item.obj)  # a typo in supports/devices/dtypes fails the plugin now
            self._commit(record, staged)
        except Exception as exc:  # noqa: BLE001
            self._drop_items(record.name)
            if record.module is not None and self.pm.is_registered(record.module):
                self.pm.unregister(record.module)
            self._fail(record, exc, "register")
            return
        record.status = "ok"

    @staticmethod
    def _impl_kwargs(impl: Any, available: dict[str, Any]) -> dict[str, Any]:
        return {arg: available[arg] for arg in impl.argnames if arg in available}

    def _commit(self, record: PluginRecord, items: list[Entry]) -> None:
        staged: dict[tuple[str, str], Entry] = {}
        for item in items:  # check all first: all-or-nothing per plugin
            for key in dict.fromkeys((item.name, *item.aliases)):
                owner = self._owner(item.kind, key)
                if owner is not None:
                    raise PluginConflictError(
                        f"{item.kind[:-1]} name {key!r} is registered by both plugin {owner!r} "
                        f"and plugin {record.name!r}")
                first = staged.setdefault((item.kind, key), item)
                if first is not item:  # the later one would silently replace the earlier
                    raise PluginConflictError(
                        f"{item.kind[:-1]} name {key!r} is registered twice by plugin {record.name!r} "
                        f"(for {first.obj!r} and {item.obj!r})")
        for item in items:
            self.registry[item.kind][item.name] = item
            for alias in item.aliases:
                self._aliases[item.kind][alias] = item.name
            record.provides.setdefault(item.kind, []).append(item.name)

    def _owner(self, kind: str, key: str) -> str | None:
        if key in self.registry[kind]:
            return self.registry[kind][key].plugin
        if key in self._aliases[kind]:
            return self.registry[kind][self._aliases[kind][key]].plugin
        return None

    def _drop_items(self, plugin: str) -> None:
        for kind, items in self.registry.items():
            for key in [k for k, e in items.items() if e.plugin == plugin]:
                for alias in items[key].aliases:
                    self._aliases[kind].pop(alias, None)
                del items[key]
        if plugin in self.records:
            self.records[plugin].provides = {}

    def _fail(self, record: PluginRecord, exc: BaseException, stage: str = "load") -> None:
        record.status = "failed"
        record.error = f"{type(exc).__name__}: {exc}"
        self.records.setdefault(record.name, record)
        message = (f"neuroplex plugin {record.display_name} failed at {stage}: {record.error} "
                   f"(see `neuroplex plugins --all`; block it with NEUROPLEX_DISABLE_PLUGINS={record.name})")
        if self.strict:
            raise (PluginConflictError if isinstance(exc, PluginConflictError) else PluginError)(message) from exc
        log.warning(message)

    # ------------------------------------------------------------------ lookup
    def get(self, kind: str, name: str) -> Entry:
        """The entry registered under ``name`` (or an alias, or ``plugin:name``) for ``kind``."""
        self.load()
        table = self.registry[kind]
        if ":" in name:
            plugin, _, short = name.partition(":")
            entry = table.get(self._aliases[kind].get(short, short))
            if entry is not None and entry.plugin == plugin:
                return entry
        key = self._aliases[kind].get(name, name)
        if key in table:
            return table[key]
        known = ", ".join(sorted(table)) or "none"
        raise UnknownNameError(f"no {kind[:-1].replace('_', ' ')} named {name!r}; registered: {known}")

    def names(self, kind: str) -> list[str]:
        self.load()
        return sorted(self.registry[kind])

    def plugins(self, *, include_builtin: bool = True) -> list[PluginRecord]:
        self.load()
        return [r for r in self.records.values() if include_builtin or not r.builtin]

    def call_lifecycle(self, hook: str, **kwargs: Any) -> None:
        """Call a lifecycle hook (simulation start/finish) on every plugin."""
        getattr(self.pm.hook, hook)(**kwargs)

    def add_commands(self, cli: Any) -> None:
        """Let every working plugin add its CLI commands; a failing plugin is reported, not fatal.

        Command names clash like every other name: a plugin adding a command under a name the
        group already has (a built-in such as ``simulate``, or another plugin's) is a
        :class:`PluginConflictError` naming both, and none of that plugin's commands is kept.
        """
        self.load()
        owners = {name: "neuroplex" for name in cli.commands}
        for impl in self.pm.hook.register_commands.get_hookimpls():
            record = self.records.get(impl.plugin_name)
            before = dict(cli.commands)
            try:
                impl.function(**self._impl_kwargs(impl, {"cli": cli}))
                added = self._claim_commands(cli, before, owners, impl.plugin_name)
            except Exception as exc:  # noqa: BLE001
                cli.commands.clear()
                cli.commands.update(before)  # all-or-nothing per plugin
                if record is not None:
                    self._drop_items(record.name)
                    if record.module is not None and self.pm.is_registered(record.module):
                        self.pm.unregister(record.module)
                    self._fail(record, exc, "register_commands")
                elif self.strict:
                    raise
                continue
            if record is not None and added:
                record.provides["commands"] = sorted({*record.provides.get("commands", []), *added})

    @staticmethod
    def _claim_commands(cli: Any, before: dict[str, Any], owners: dict[str, str], plugin: str) -> list[str]:
        """The command names ``plugin`` added to ``cli``; a replaced name is a conflict."""
        added = []
        for name, command in cli.commands.items():
            if name not in before:
                added.append(name)
            elif before[name] is not command:
                owner = owners.get(name, "neuroplex")
                first = "neuroplex itself (a built-in command)" if owner == "neuroplex" else f"plugin {owner!r}"
                raise PluginConflictError(f"command name {name!r} is registered by both {first} and plugin {plugin!r}")
        owners.update(dict.fromkeys(added, plugin))
        return sorted(added)


_HOST: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, loaded on first use."""
    global _HOST
    if _HOST is None:
        _HOST = PluginHost()
    return _HOST.load()


def reset_host(host: PluginHost | None = None) -> None:
    """Replace the process-wide host (tests; after installing a plugin at run time)."""
    global _HOST
    _HOST = host


def lookup(kind: str) -> Callable[[str], Any]:
    """A getter for one registry kind, returning the registered object."""

    def get(name: str) -> Any:
        return get_host().get(kind, name).obj

    get.__name__ = f"get_{kind[:-1]}"
    get.__doc__ = f"The {kind[:-1].replace('_', ' ')} registered under ``name``."
    return get


get_solver = lookup("solvers")
get_neuron = lookup("neurons")
get_importer = lookup("importers")
get_learning_rule = lookup("learning_rules")
get_task = lookup("tasks")
