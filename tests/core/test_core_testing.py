"""``neuroplex.testing``: one call loads a plugin (module, import path, entry point) beside the
built-in plugins, as a plugin author's test suite needs (issue 21 item 6)."""
from __future__ import annotations

import pytest

import neuroplex as nx
from neuroplex.errors import UnknownNameError
from neuroplex.testing import builtin_entry_points, installed_entry_point, plugin_host, with_builtins


def test_builtin_entry_points_are_the_neuroplex_distributions():
    eps = builtin_entry_points()
    assert {"torch_solver", "neurons", "sbml"} <= {ep.name for ep in eps}
    assert {ep.dist.name for ep in eps} == {"neuroplex"}


def test_with_builtins_loads_a_module_beside_the_builtins(example_plugin):
    before = nx.get_host()
    with with_builtins(example_plugin) as host:
        assert nx.get_host() is host and host.strict
        assert {"torch", "example-euler"} <= set(host.names("solvers"))
        assert {"qif", "lif"} <= set(host.names("neurons"))
        assert host.records[example_plugin.__name__].status == "ok"
        sol = nx.simulate("qif", (0.0, 5.0), solver="torch", method="rk4", dt=0.01, n_points=3)
        assert sol.ok and sol.solver == "torch"
    assert nx.get_host() is before


def test_import_path_and_entry_point_forms(example_plugin, fake_dist):
    with with_builtins("neuroplex_example_plugin.plugin") as host:
        assert host.get("solvers", "example-euler").plugin == "neuroplex_example_plugin.plugin"
    eps = fake_dist("np-unit", "2.5", {"unit": "np_unit"}, {"np_unit": """
        from neuroplex import ModelIR, State, hookimpl

        def unit():
            return ModelIR("unit", states=[State("x", 1.0)], derivatives={"x": "-x"})

        @hookimpl
        def register_neurons(register):
            register(unit)
        """})
    with plugin_host(eps[0]) as host:
        record = host.records["unit"]
        assert (record.dist, record.version, record.status) == ("np-unit", "2.5", "ok")
        assert host.names("neurons") == ["unit"] and host.names("solvers") == []


def test_installed_entry_point_by_name():
    assert installed_entry_point("torch_solver").dist.name == "neuroplex"
    with pytest.raises(UnknownNameError, match="no installed neuroplex entry point named 'nope'; installed: .*sbml"):
        installed_entry_point("nope")
