"""What a plugin author sees on the command line (issue 21): command names clash like every
other name, the CLI passes a solver only the settings it declares, a broken plugin under strict
mode still lets `plugins`, `--version` and `--help` show it, and errors mention it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import neuroplex as nx
from neuroplex import cli as cli_module
from neuroplex.cli_solver import declared_settings
from neuroplex.errors import PluginConflictError
from neuroplex.host import PluginHost

SCRIPT = Path(sys.executable).with_name("neuroplex")

SIMULATE_PLUGIN = """
import click
from neuroplex import hookimpl

@hookimpl
def register_commands(cli):
    @cli.command("simulate")
    def simulate():
        click.echo("hijacked")
"""

HELLO_PLUGIN = """
import click
from neuroplex import hookimpl

@hookimpl
def register_commands(cli):
    @cli.command()
    def hello():
        click.echo("hi")
"""


def group_with_builtins() -> click.Group:
    group = click.Group("neuroplex")
    group.add_command(click.Command("simulate", callback=lambda: None))
    return group


# ------------------------------------------------------------------ item 2: command names clash
def test_plugin_command_named_like_a_builtin_is_a_conflict(fake_dist):
    eps = fake_dist("np-hijack", "1.0", {"hijack": "np_hijack"}, {"np_hijack": SIMULATE_PLUGIN})
    group = group_with_builtins()
    original = group.commands["simulate"]
    with pytest.raises(PluginConflictError, match="command name 'simulate' is registered by both neuroplex "
                                                  r"itself \(a built-in command\) and plugin 'hijack'"):
        PluginHost(entry_points=eps, strict=True, disabled=()).add_commands(group)
    assert group.commands["simulate"] is original
    lenient = PluginHost(entry_points=eps, strict=False, disabled=())
    lenient.add_commands(group)
    assert group.commands["simulate"] is original and lenient.records["hijack"].status == "failed"
    assert "PluginConflictError" in lenient.records["hijack"].error


def test_two_plugins_adding_one_command_name_both_named(fake_dist):
    eps = fake_dist("np-one", "1", {"one": "np_one"}, {"np_one": HELLO_PLUGIN})
    eps += fake_dist("np-two", "1", {"two": "np_two"}, {"np_two": HELLO_PLUGIN})
    with pytest.raises(PluginConflictError, match="command name 'hello' is registered by both plugin 'one' "
                                                  "and plugin 'two'"):
        PluginHost(entry_points=eps, strict=True, disabled=()).add_commands(click.Group())
    host = PluginHost(entry_points=eps[:1], strict=True, disabled=())
    group = click.Group()
    host.add_commands(group)
    assert list(group.commands) == ["hello"] and host.records["one"].provides == {"commands": ["hello"]}


def test_real_cli_refuses_a_plugin_replacing_simulate(fake_dist, tmp_path: Path):
    eps = fake_dist("np-hijack", "1.0", {"hijack": "np_hijack"}, {"np_hijack": SIMULATE_PLUGIN})
    site = str(Path(eps[0].dist._path).parent)
    result = subprocess.run([str(SCRIPT), "simulate", "no-such-model"], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": site, "NEUROPLEX_STRICT_PLUGINS": "1"}, timeout=120)
    assert result.returncode == 1 and "hijacked" not in result.stdout
    assert "command name 'simulate' is registered by both" in result.stderr and "'hijack'" in result.stderr


# ------------------------------------------------------------- item 3: solver constructor contract
class DtOnly(nx.Solver):
    """Takes only a step size."""

    name = "dt-only"

    def __init__(self, dt: float = 0.01):
        self.dt = dt


class Declared(nx.Solver):
    name = "declared"
    settings = ("method", "device")

    def __init__(self, **options):
        self.options = options


class Anything(nx.Solver):
    name = "anything"

    def __init__(self, **options):
        self.options = options


def test_declared_settings_from_signature_or_attribute():
    assert declared_settings(DtOnly) == {"dt"}
    assert declared_settings(Declared) == {"method", "device"}
    assert declared_settings(Anything) is None

    class NoConstructor(nx.Solver):
        name = "plain"

    assert declared_settings(NoConstructor) == frozenset()
    torch_solver = nx.get_host().get("solvers", "torch").obj if "torch" in nx.get_host().names("solvers") else None
    if torch_solver is not None:
        assert {"method", "dt", "rtol", "atol", "device", "dtype"} <= declared_settings(torch_solver)


def test_cli_passes_only_declared_settings(solver_host):
    class Plugin:
        @nx.hookimpl
        def register_solvers(self, register):
            register(DtOnly)

    solver_host.add_plugin(Plugin(), "dt-plugin")
    result = CliRunner().invoke(cli_module.cli, ["simulate", "qif", "--solver", "dt-only", "--method", "rk4",
                                                 "--dtype", "float32"])
    assert result.exit_code == 1
    assert result.output.strip() == ("error: solver 'dt-only' (plugin 'dt-plugin') does not take --method, --dtype; "
                                     "its constructor takes: dt")
    # the example solver takes method, device and dtype: --dtype reaches it as a torch dtype
    result = CliRunner().invoke(cli_module.cli, ["simulate", "qif", "--solver", "example-euler", "--dtype", "float32",
                                                 "--t-end", "1", "--points", "3"])
    assert result.exit_code == 0, result.output


def test_simulate_refuses_an_undeclared_setting_naming_what_the_solver_takes(solver_host):
    """The Python API applies the CLI's check: a clear error, not ``__init__() got an unexpected
    keyword argument`` (found repeating the plugin author's journey from the docs)."""
    class Plugin:
        @nx.hookimpl
        def register_solvers(self, register):
            register(DtOnly)

    solver_host.add_plugin(Plugin(), "dt-plugin")
    decay = nx.ModelIR("decay", states=[nx.State("x", 1.0)], derivatives={"x": "-x"})
    with pytest.raises(nx.NeuroplexError) as info:
        nx.simulate(decay, 1.0, solver="dt-only", rtol=1e-6, dt=0.1)
    assert str(info.value) == "solver 'dt-only' (plugin 'dt-plugin') does not take rtol; its constructor takes: dt"


def test_a_plugin_added_in_process_is_named_without_a_distribution():
    class Clash:
        @nx.hookimpl
        def register_commands(self, cli):
            cli.add_command(click.Command("simulate", callback=lambda: None))

    host = PluginHost(entry_points=[], strict=True).load()
    with pytest.raises(PluginConflictError) as info:
        host.add_plugin(Clash(), "clash")
        host.add_commands(group_with_builtins())
    assert str(info.value).startswith("neuroplex plugin clash failed at register_commands: ")
    assert "?" not in str(info.value)


def test_solvers_lists_settings_and_supported_features(solver_host):
    out = CliRunner().invoke(cli_module.cli, ["solvers"]).output.splitlines()
    assert out == ["example-euler [example] simulate; methods: euler",
                   "             settings: device, dt, dtype, method; supports: events, spikes; devices: cpu, cuda; "
                   "dtypes: float32, float64"]


def test_progress_bar_only_on_a_terminal(solver_host, monkeypatch):
    seen = {}

    def fake_simulate(model, t_span, **kwargs):
        seen.update(kwargs)
        raise nx.NeuroplexError("stop here")

    monkeypatch.setattr("neuroplex.api.simulate", fake_simulate)
    CliRunner().invoke(cli_module.cli, ["simulate", "qif", "--solver", "example-euler"])
    assert seen["progress"] is False  # CliRunner's stderr is not a terminal


# --------------------------------------------------- item 7 (CLI side): neurons' aliases and units
def test_neurons_lists_aliases_and_units(solver_host):
    out = CliRunner().invoke(cli_module.cli, ["neurons"]).output.splitlines()
    assert out[1:] == ["                      aliases: quadratic-if",
                       "                      time in ms; v [mV]"]


def test_simulate_warns_when_a_si_neuron_gets_a_millisecond_span(host, monkeypatch):
    def lif():
        """A leaky unit in SI seconds."""
        return nx.ModelIR("lif", states=[nx.State("v", 0.0, unit="volt")], derivatives={"v": "-v"},
                          time_unit="second")

    class Plugin:
        @nx.hookimpl
        def register_neurons(self, register):
            register(lif)

    host.add_plugin(Plugin(), "si")
    monkeypatch.setattr("neuroplex.api.simulate", lambda *a, **k: (_ for _ in ()).throw(nx.NeuroplexError("stop")))
    result = CliRunner().invoke(cli_module.cli, ["simulate", "lif", "--t-end", "200"])
    assert "note: lif runs in seconds: --t-end 200 is 200 s of simulated time (for 200 ms use --t-end 0.2)" \
        in result.output


# --------------------------------------------------- item 5: a broken plugin under strict mode
BROKEN = {"np_broken": "raise ImportError('needs libfoo')"}


def run(args: list[str], site: str, cwd: Path, strict: str = "1") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": site, "NEUROPLEX_STRICT_PLUGINS": strict}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


@pytest.fixture
def broken_site(fake_dist) -> str:
    eps = fake_dist("np-broken", "0.3", {"broken": "np_broken"}, BROKEN)
    return str(Path(eps[0].dist._path).parent)


def test_strict_mode_still_runs_the_commands_that_show_the_failure(broken_site, tmp_path: Path):
    failure = "neuroplex plugin broken (np-broken 0.3) failed at import: ImportError: needs libfoo"
    listed = run(["plugins", "--all", "--json"], broken_site, tmp_path)
    assert listed.returncode == 0, listed.stderr
    (record,) = [r for r in json.loads(listed.stdout) if r["name"] == "broken"]
    assert record["status"] == "failed" and record["error"] == "ImportError: needs libfoo"
    assert failure in listed.stderr
    version = run(["--version"], broken_site, tmp_path)
    assert version.returncode == 0 and "  broken 0.3 (np-broken) failed" in version.stdout.splitlines()
    helped = run(["--help"], broken_site, tmp_path)
    assert helped.returncode == 0 and "Plugins that failed to load" in helped.stdout
    assert "broken" in helped.stdout and "needs libfoo" in helped.stdout
    stopped = run(["solvers"], broken_site, tmp_path)
    assert stopped.returncode == 1 and failure in stopped.stderr and stopped.stdout == ""


def test_errors_mention_a_plugin_that_failed_to_load(broken_site, tmp_path: Path):
    note = "note: a plugin failed to load, which may provide it: broken (np-broken 0.3): ImportError: needs libfoo"
    unknown = run(["no-such-command"], broken_site, tmp_path, strict="0")
    assert unknown.returncode == 2 and "No such command 'no-such-command'" in unknown.stderr
    assert note in unknown.stderr
    missing = run(["simulate", "no-such-model"], broken_site, tmp_path, strict="0")
    assert missing.returncode == 1 and "no-such-model: no such file, shipped model or neuron" in missing.stderr
    assert note in missing.stderr
