"""Plugin host: listing, blocking, strict mode, name clashes and failing plugins, with fake
entry points (dist-info in tmp_path) so nothing is installed."""
from __future__ import annotations

import importlib.metadata as md
import logging

import pytest

import neuroplex as nx
from neuroplex.errors import PluginConflictError, PluginError, UnknownNameError
from neuroplex.host import PluginHost

SOLVER_PLUGIN = """
from neuroplex import Solver, hookimpl

class {cls}(Solver):
    name = "{solver}"

@hookimpl
def register_solvers(register):
    register({cls})
"""

NEURON_PLUGIN = """
from neuroplex import ModelIR, State, hookimpl

def {neuron}():
    \"\"\"A leaky unit.\"\"\"
    return ModelIR("{neuron}", states=[State("x", 1.0)], derivatives={{"x": "-x"}})

@hookimpl
def register_neurons(register):
    register({neuron}, aliases=("{neuron}-alias",))
"""


def two_plugins(fake_dist):
    eps = fake_dist("np-alpha", "1.2.3", {"alpha": "np_alpha"},
                    {"np_alpha": SOLVER_PLUGIN.format(cls="Alpha", solver="alpha-solver")})
    eps += fake_dist("np-beta", "0.4", {"beta": "np_beta"}, {"np_beta": NEURON_PLUGIN.format(neuron="beta_unit")})
    return eps


def test_listing_records_name_dist_version_and_provides(fake_dist):
    host = PluginHost(entry_points=two_plugins(fake_dist), strict=True, disabled=()).load()
    records = {r.name: r for r in host.plugins()}
    assert set(records) == {"alpha", "beta"}
    assert records["alpha"].as_dict() == {
        "name": "alpha", "dist": "np-alpha", "version": "1.2.3", "entry_point": "np_alpha", "builtin": False,
        "status": "ok", "error": None, "provides": {"solvers": ["alpha-solver"]}}
    assert records["beta"].provides == {"neurons": ["beta_unit"]}
    assert host.names("solvers") == ["alpha-solver"]
    assert host.get("neurons", "beta_unit-alias").obj is host.get("neurons", "beta_unit").obj
    assert host.get("solvers", "alpha:alpha-solver").plugin == "alpha"
    assert host.plugins(include_builtin=False) == host.plugins()


def test_unknown_name_lists_the_registered_ones(fake_dist):
    host = PluginHost(entry_points=two_plugins(fake_dist), strict=True, disabled=())
    with pytest.raises(UnknownNameError, match="no solver named 'nope'; registered: alpha-solver"):
        host.get("solvers", "nope")
    with pytest.raises(UnknownNameError):
        host.get("solvers", "beta:alpha-solver")  # right name, wrong plugin


@pytest.mark.parametrize("via_env", [False, True])
def test_blocking_disables_a_plugin(fake_dist, monkeypatch, via_env):
    eps = two_plugins(fake_dist)
    if via_env:
        monkeypatch.setenv("NEUROPLEX_DISABLE_PLUGINS", "beta, other")
        host = PluginHost(entry_points=eps, strict=True)
    else:
        host = PluginHost(entry_points=eps, strict=True, disabled=["beta"])
    host.load()
    assert {r.name: r.status for r in host.plugins()} == {"alpha": "ok", "beta": "disabled"}
    assert host.names("neurons") == []
    assert host.names("solvers") == ["alpha-solver"]


def test_failed_import_is_isolated_and_strict_mode_raises(fake_dist, caplog):
    eps = two_plugins(fake_dist)
    eps += fake_dist("np-broken", "9.9", {"broken": "np_broken"}, {"np_broken": "raise ImportError('needs libfoo')"})
    with caplog.at_level(logging.WARNING, logger="neuroplex.plugins"):
        host = PluginHost(entry_points=eps, strict=False, disabled=()).load()
    broken = {r.name: r for r in host.plugins()}["broken"]
    assert (broken.status, broken.dist, broken.version) == ("failed", "np-broken", "9.9")
    assert broken.error == "ImportError: needs libfoo"
    assert "broken (np-broken 9.9) failed at import" in caplog.text
    assert "NEUROPLEX_DISABLE_PLUGINS=broken" in caplog.text
    assert host.names("solvers") == ["alpha-solver"] and host.names("neurons") == ["beta_unit"]

    with pytest.raises(PluginError, match=r"broken \(np-broken 9.9\) failed at import: ImportError: needs libfoo"):
        PluginHost(entry_points=eps, strict=True, disabled=()).load()


def test_strict_mode_from_environment(fake_dist, monkeypatch):
    eps = fake_dist("np-broken", "1", {"broken": "np_broken"}, {"np_broken": "import no_such_module_xyz"})
    monkeypatch.setenv("NEUROPLEX_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="No module named 'no_such_module_xyz'"):
        PluginHost(entry_points=eps, disabled=()).load()
    monkeypatch.setenv("NEUROPLEX_STRICT_PLUGINS", "0")
    assert PluginHost(entry_points=eps, disabled=()).load().records["broken"].status == "failed"


def test_plugin_raising_in_register_loses_all_its_items(fake_dist):
    eps = two_plugins(fake_dist)
    eps += fake_dist("np-half", "0.1", {"half": "np_half"}, {"np_half": """
        from neuroplex import ModelIR, hookimpl

        @hookimpl
        def register_neurons(register):
            register(lambda: None, name="half-neuron")

        @hookimpl
        def register_solvers(register):
            raise RuntimeError("solver table corrupt")
        """})
    host = PluginHost(entry_points=eps, strict=False, disabled=()).load()
    half = host.records["half"]
    assert half.status == "failed" and half.error == "RuntimeError: solver table corrupt"
    assert half.provides == {}
    assert host.names("neurons") == ["beta_unit"]  # half-neuron was dropped with its plugin
    assert not host.pm.is_registered(half.module)
    with pytest.raises(PluginError, match="half .*failed at register: RuntimeError: solver table corrupt"):
        PluginHost(entry_points=eps, strict=True, disabled=()).load()


def test_bad_hook_signature_is_a_failed_plugin(fake_dist):
    eps = fake_dist("np-sig", "0.1", {"sig": "np_sig"}, {"np_sig": """
        from neuroplex import hookimpl

        @hookimpl
        def register_solvers(registrar, extra):
            pass
        """})
    host = PluginHost(entry_points=eps, strict=False, disabled=()).load()
    assert host.records["sig"].status == "failed"
    assert "PluginValidationError" in host.records["sig"].error and "registrar" in host.records["sig"].error
    with pytest.raises(PluginError, match="sig .*failed at validate"):
        PluginHost(entry_points=eps, strict=True, disabled=()).load()


def test_two_plugins_registering_one_name_is_an_error_naming_both(fake_dist):
    eps = fake_dist("np-one", "1", {"one": "np_one"}, {"np_one": SOLVER_PLUGIN.format(cls="A", solver="dup")})
    eps += fake_dist("np-two", "2", {"two": "np_two"}, {"np_two": SOLVER_PLUGIN.format(cls="B", solver="dup")})
    with pytest.raises(PluginConflictError, match="solver name 'dup' is registered by both plugin 'one' and plugin 'two'"):
        PluginHost(entry_points=eps, strict=True, disabled=()).load()
    host = PluginHost(entry_points=eps, strict=False, disabled=()).load()
    assert host.get("solvers", "dup").plugin == "one"
    assert host.records["two"].status == "failed" and "'one'" in host.records["two"].error


def test_alias_clash_names_both_plugins(fake_dist):
    eps = fake_dist("np-n1", "1", {"n1": "np_n1"}, {"np_n1": NEURON_PLUGIN.format(neuron="unit")})
    eps += fake_dist("np-n2", "1", {"n2": "np_n2"}, {"np_n2": """
        from neuroplex import hookimpl

        @hookimpl
        def register_neurons(register):
            register(object(), name="unit-alias")
        """})
    with pytest.raises(PluginConflictError, match="'unit-alias' is registered by both plugin 'n1' and plugin 'n2'"):
        PluginHost(entry_points=eps, strict=True, disabled=()).load()


def test_two_distributions_declaring_one_entry_point_name(fake_dist):
    eps = fake_dist("np-x", "1", {"same": "np_x"}, {"np_x": ""})
    eps += fake_dist("np-y", "2", {"same": "np_y"}, {"np_y": ""})
    with pytest.raises(PluginConflictError, match=r"'same' is declared by both same \(np-x 1\) and same \(np-y 2\)"):
        PluginHost(entry_points=eps, strict=True, disabled=()).load()


def test_registering_without_a_name_fails_the_plugin(host):
    class Plugin:
        @nx.hookimpl
        def register_tasks(self, register):
            register(42)

    with pytest.raises(PluginError, match="plugin 'nameless' registered a task without a name"):
        host.add_plugin(Plugin(), "nameless")


def test_remove_plugin_drops_its_items(solver_host):
    assert "example-euler" in solver_host.names("solvers")
    solver_host.remove_plugin("example")
    assert solver_host.names("solvers") == [] and solver_host.names("neurons") == []
    with pytest.raises(UnknownNameError):
        solver_host.get("neurons", "quadratic-if")


def test_failing_register_commands_is_reported(fake_dist):
    import click

    eps = fake_dist("np-cmd", "1", {"cmd": "np_cmd"}, {"np_cmd": """
        from neuroplex import hookimpl

        @hookimpl
        def register_commands(cli):
            raise ValueError("bad command table")
        """})
    host = PluginHost(entry_points=eps, strict=False, disabled=())
    host.add_commands(click.Group())
    assert host.records["cmd"].status == "failed" and "bad command table" in host.records["cmd"].error
    with pytest.raises(PluginError, match="failed at register_commands"):
        PluginHost(entry_points=eps, strict=True, disabled=()).add_commands(click.Group())


def test_process_host_uses_installed_entry_points():
    """The real host sees every built-in plugin declared in pyproject."""
    host = PluginHost(strict=False, disabled=()).load()
    builtin = {r.name for r in host.plugins() if r.builtin}
    declared = {ep.name for ep in md.distribution("neuroplex").entry_points.select(group="neuroplex")}
    assert builtin == declared


def test_plugin_host_context_restores_the_previous_host(example_plugin):
    from neuroplex.testing import plugin_host

    before = nx.get_host()
    with plugin_host((example_plugin, "example")) as host:
        assert nx.get_host() is host and host.names("solvers") == ["example-euler"]
        assert host.records["example"].status == "ok"
    assert nx.get_host() is before
    with pytest.raises(PluginError, match="registered a task without a name"):
        class Nameless:
            @nx.hookimpl
            def register_tasks(self, register):
                register(1)

        with plugin_host(Nameless()):
            pass
    assert nx.get_host() is before
