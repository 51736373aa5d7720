"""A third-party plugin's mistakes are failures of that plugin, never a silent no-op or swap.

Before: a hook implementation under a misspelt name (``register_neuron`` for
``register_neurons``) was kept by pluggy and never called, so the plugin loaded as *ok*
providing nothing (strict mode included); and a plugin registering one name twice (two
neurons, or a name and another item's alias) kept the last one silently, so
``load_model(name)`` ran a different model than the first registration. ``aliases="shrink"``
(a string, not a tuple) registered the aliases ``s``, ``h``, ``r``, ``i``, ``n``, ``k``."""
from __future__ import annotations

import pytest

import neuroplex as nx
from neuroplex import hookimpl
from neuroplex.errors import PluginConflictError, PluginError
from neuroplex.host import PluginHost


def _decay(sign: str):
    def factory(k: float = 1.0) -> nx.ModelIR:
        return nx.ModelIR("decay", states=[nx.State("x", 1.0)], parameters=[nx.Parameter("k", k)],
                          derivatives={"x": f"{sign}k * x"})
    return factory


class Misspelt:
    @hookimpl
    def register_neuron(self, register):  # singular: not a neuroplex hook
        register(_decay("-"), name="decay")


class Twice:
    @hookimpl
    def register_neurons(self, register):
        register(_decay("-"), name="decay")
        register(_decay("+"), name="decay")


class AliasOfOwnName:
    @hookimpl
    def register_neurons(self, register):
        register(_decay("-"), name="decay")
        register(_decay("+"), name="growth", aliases=("decay",))


class Fine:
    @hookimpl
    def register_neurons(self, register):
        register(_decay("-"), name="decay", aliases=("shrink", "shrink"))  # a repeated alias is harmless


def test_misspelt_hook_fails_the_plugin_naming_the_right_hook():
    host = PluginHost(entry_points=[], strict=False)
    record = host.add_plugin(Misspelt(), "mine")
    assert record.status == "failed"
    assert "register_neuron" in record.error and "did you mean 'register_neurons'" in record.error
    assert not host.pm.is_registered(record.module)
    with pytest.raises(PluginError, match="register_neurons"):
        PluginHost(entry_points=[], strict=True).add_plugin(Misspelt(), "mine")


@pytest.mark.parametrize("plugin", [Twice(), AliasOfOwnName()], ids=["name twice", "alias of own name"])
def test_one_name_twice_in_one_plugin_is_a_conflict(plugin):
    host = PluginHost(entry_points=[], strict=False)
    record = host.add_plugin(plugin, "mine")
    assert record.status == "failed" and "registered twice by plugin 'mine'" in record.error
    assert host.names("neurons") == []  # all-or-nothing: nothing of it kept
    with pytest.raises(PluginConflictError, match="'decay' is registered twice"):
        PluginHost(entry_points=[], strict=True).add_plugin(plugin, "mine")


def test_a_correct_plugin_still_loads():
    host = PluginHost(entry_points=[], strict=True)
    record = host.add_plugin(Fine(), "mine")
    assert record.status == "ok"
    assert host.get("neurons", "shrink").name == "decay"


class StringAlias:
    @hookimpl
    def register_neurons(self, register):
        register(_decay("-"), name="decay", aliases="shrink")


def test_a_string_alias_is_one_alias():
    host = PluginHost(entry_points=[], strict=True)
    host.add_plugin(StringAlias(), "mine")
    assert host.get("neurons", "shrink").aliases == ("shrink",)
    with pytest.raises(nx.NeuroplexError):
        host.get("neurons", "s")
