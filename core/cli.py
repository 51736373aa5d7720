"""The ``neuroplex`` command line. Plugins add sub-commands through ``register_commands``.

Errors print one clear line and exit non-zero; ``--debug`` shows the traceback.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
from . import api
from . import neuron_docs
from .compare import compare as run_compare
from .compare import parse_solver_options, write_json
from .cli_solver import declared_settings, solver_settings
from .errors import NeuroplexError, PluginError, UnknownNameError
from .features import solver_devices, solver_dtypes, solver_supports
from .host import PluginHost, PluginRecord, get_host, reset_host
from .solution import Status
from .sweeps import summary as sweep_summary
from .sweeps import sweep as run_sweep


def _failed_plugins() -> list[PluginRecord]:
    """Plugins that failed to load (empty when the host itself cannot load, in strict mode)."""
    try:
        return [r for r in get_host().plugins() if r.status == "failed"]
    except NeuroplexError:
        return []


def _failed_note() -> str:
    """``"; note: plugin X failed to load ..."`` when one did, else ``""``."""
    failed = _failed_plugins()
    if not failed:
        return ""
    names = "; ".join(f"{r.display_name}: {r.error}" for r in failed)
    return (f" (note: {'a plugin' if len(failed) == 1 else 'plugins'} failed to load, which may provide it: "
            f"{names}; see `neuroplex plugins --all`)")


class NeuroplexGroup(click.Group):
    """A click group that turns errors into one line unless ``--debug`` is given, and names a
    plugin that failed to load in errors and in ``--help``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - the CLI's one error boundary
            if ctx.obj and ctx.obj.get("debug"):
                raise
            kind = "" if isinstance(exc, NeuroplexError) else f"{type(exc).__name__}: "
            click.echo(f"error: {kind}{exc}{_failed_note()}", err=True)
            ctx.exit(1)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            exc.message += _failed_note()
            raise

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        failed = _failed_plugins()
        if failed:
            with formatter.section("Plugins that failed to load (see `neuroplex plugins --all`)"):
                formatter.write_dl([(r.name, f"{r.dist or '?'} {r.version or '?'}: {r.error}") for r in failed])


def _version_text() -> str:
    lines = [f"neuroplex {__version__}", "plugins:"]
    for rec in get_host().plugins():
        lines.append(f"  {rec.name} {rec.version or '?'} ({rec.dist or '?'}) {rec.status}")
    return "\n".join(lines)


def _print_version(ctx: click.Context, _param: Any, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(_version_text())
        ctx.exit()


@click.group(cls=NeuroplexGroup)
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version and every plugin's version.")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """neuroplex: neuromorphic simulation on one batched PyTorch solver."""
    ctx.ensure_object(dict)["debug"] = debug


@cli.command()
@click.option("--all", "show_all", is_flag=True, help="Include the built-in plugins.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(show_all: bool, as_json: bool) -> None:
    """List installed plugins, their versions, status and what each provides."""
    records = get_host().plugins(include_builtin=show_all)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in records], indent=2))
        return
    if not records:
        click.echo("no third-party plugins installed (use --all to list the built-ins)")
        return
    click.echo(f"{'name':<16} {'version':<9} {'status':<9} provides")
    for r in records:
        provides = "; ".join(f"{k}: {', '.join(v)}" for k, v in r.provides.items())
        click.echo(f"{r.name:<16} {r.version or '?':<9} {r.status:<9} {r.error if r.status == 'failed' else provides}")


@cli.command()
def solvers() -> None:
    """List registered solvers: methods, constructor settings and declared features."""
    host = get_host()
    for name in host.names("solvers"):
        entry = host.get("solvers", name)
        info = entry.obj.describe()
        methods = f" methods: {', '.join(info['methods'])}" if info["methods"] else ""
        click.echo(f"{name:<12} [{entry.plugin}] {', '.join(info['capabilities'])};{methods}")
        settings = declared_settings(entry.obj)
        declared = {"supports": solver_supports(entry.obj), "devices": solver_devices(entry.obj),
                    "dtypes": solver_dtypes(entry.obj)}
        click.echo(f"{'':<13}settings: {'any' if settings is None else ', '.join(sorted(settings)) or 'none'}; "
                   + "; ".join(f"{key}: {'undeclared' if values is None else ', '.join(sorted(values)) or 'none'}"
                               for key, values in declared.items()))


@cli.command()
@click.option("--verbose", "-v", is_flag=True,
              help="Also list each neuron's parameters: default, unit, allowed range, meaning, and the source of the defaults.")
def neurons(verbose: bool) -> None:
    """List registered neuron models: aliases, time unit, state units and a summary."""
    host = get_host()
    for name in host.names("neurons"):
        entry = host.get("neurons", name)
        doc = (getattr(entry.obj, "__doc__", "") or "").strip().splitlines()
        click.echo(f"{name:<20} [{entry.plugin}] {doc[0] if doc else ''}")
        if entry.aliases:
            click.echo(f"{'':<22}aliases: {', '.join(entry.aliases)}")
        click.echo(f"{'':<22}{_units_line(entry.obj)}")
        if verbose:
            try:
                lines = neuron_docs.render_text(neuron_docs.describe_neuron(name, entry.obj))
            except Exception as exc:  # noqa: BLE001 - a listing never fails on one neuron
                lines = [f"parameters unknown ({type(exc).__name__}: {exc})"]
            for line in lines:
                click.echo(f"{'':<22}{line}")


def _units_line(factory: Any) -> str:
    """``time in ms; v [mV], w [pA]`` from the neuron's default model."""
    try:
        model = factory()
    except TypeError:  # a factory with required arguments (the neuron `equations`)
        return "units: those of the arguments it is given"
    except Exception as exc:  # noqa: BLE001 - a listing never fails on one neuron
        return f"units unknown ({type(exc).__name__}: {exc})"
    states = ", ".join(f"{s.name} [{s.unit or '1'}]" for s in getattr(model, "states", []))
    return f"time in {getattr(model, 'time_unit', None) or '?'}; {states}"


def _time_hint(model: str, t_start: float, t_end: float) -> str | None:
    """A note when a neuron in SI seconds is asked for a span that reads like milliseconds."""
    try:
        factory = get_host().get("neurons", model).obj
    except NeuroplexError:
        return None
    try:
        unit = getattr(factory(), "time_unit", None)
    except Exception:  # noqa: BLE001 - a hint never stops a run; simulate reports the error
        return None
    if unit in ("second", "s") and t_end - t_start > 10:
        return (f"note: {model} runs in {unit}s: --t-end {t_end:g} is {t_end - t_start:g} s of simulated time "
                f"(for {t_end:g} ms use --t-end {t_end / 1000:g})")
    return None


@cli.command()
@click.argument("model")
@click.option("--solver", default="torch", show_default=True, help="Registered solver name.")
@click.option("--method", default=None, help="Integration method of the solver (e.g. dopri5, rk4).")
@click.option("--t-end", type=float, default=100.0, show_default=True,
              help="End time, in the model's time unit (`neuroplex neurons` lists it: the built-in neurons use seconds).")
@click.option("--t-start", type=float, default=0.0, show_default=True, help="Start time (model units).")
@click.option("--dt", type=float, default=None, help="Step size for fixed-step methods.")
@click.option("--points", type=int, default=1001, show_default=True, help="Output points.")
@click.option("--rtol", type=float, default=None, help="Relative tolerance of adaptive methods.")
@click.option("--atol", type=float, default=None, help="Absolute tolerance of adaptive methods.")
@click.option("--device", default=None, help="cpu | cuda | auto")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default=None, help="Floating-point precision.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write the trajectory (.csv or .npz).")
@click.option("--plot", type=click.Path(path_type=Path), default=None, help="Write a PNG plot.")
@click.option("--param", "params", multiple=True, metavar="ID=VALUE", help="Set a parameter by id (repeatable).")
@click.option("--init", "inits", multiple=True, metavar="ID=VALUE",
              help="Set an initial value by id, in the quantity the file declares (repeatable).")
@click.option("--select", default=None, metavar="ID,ID", help="Variables to print, write and plot.")
def simulate(model: str, solver: str, method: str | None, t_end: float, t_start: float, dt: float | None,
             points: int, rtol: float | None, atol: float | None, device: str | None, dtype: str | None,
             out: Path | None, plot: Path | None, params: tuple[str, ...], inits: tuple[str, ...],
             select: str | None) -> None:
    """Simulate MODEL (a file, a shipped model name or a neuron name).

    Each of --method, --dt, --rtol, --atol, --device, --dtype goes to the solver's constructor
    only when given, and only if the solver declares that setting (an error names it otherwise).
    """

    given = dict(method=method, dt=dt, rtol=rtol, atol=atol, device=device, dtype=dtype)
    options = {k: v for k, v in given.items() if v is not None}
    try:
        options = solver_settings(get_host().get("solvers", solver), options)
    except UnknownNameError:
        pass  # simulate names the unknown solver, after checking the model
    hint = _time_hint(model, t_start, t_end)
    if hint:
        click.echo(hint, err=True)
    named = dict(params=_assignments(params, "--param") or None, initial=_assignments(inits, "--init") or None)
    sol = api.simulate(model, (t_start, t_end), solver=solver, n_points=points, throw=True,
                         progress=sys.stderr.isatty(), **{k: v for k, v in named.items() if v is not None},
                         **options)
    if select:
        sol = sol.select([s.strip() for s in select.split(",") if s.strip()])
    click.echo(f"{sol.meta.get('model', model)}: {len(sol.names)} variables, {sol.ys.shape[-2]} points, "
               f"solver {sol.solver} {sol.method}".rstrip())
    for name in sol.names[:12]:
        click.echo(f"  {name:<20} final {float(sol[name][0, -1]):.6g}")
    if out is not None:
        click.echo(f"wrote {sol.save(out, sample=0)}")
    if plot is not None:
        sol.plot(path=plot)
        click.echo(f"wrote {plot}")


@cli.command("steady-state")
@click.argument("model")
@click.option("--param", "params", multiple=True, metavar="ID=VALUE", help="Set a parameter by id (repeatable).")
@click.option("--init", "inits", multiple=True, metavar="ID=VALUE", help="Set an initial value by id (repeatable).")
@click.option("--select", default=None, metavar="ID,ID", help="Variables to print and write.")
@click.option("--tol", type=float, default=None, help="Largest relative distance to the steady state accepted.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write the steady state (.csv or .npz).")
def steady_state(model: str, params: tuple[str, ...], inits: tuple[str, ...], select: str | None,
                 tol: float | None, out: Path | None) -> None:
    """The steady state of MODEL (an SBML/Antimony file): conservation laws, Newton, continuation,
    stiff integration. Exits non-zero, with the reason, where there is none."""

    options = {"tol": tol} if tol is not None else {}
    sol = api.steady_state(model, params=_assignments(params, "--param") or None, initial=_assignments(inits, "--init") or None,
               **options)
    code = Status(int(sol.status[0]))
    if code != Status.SUCCESS:
        reason = sol.meta.get("reasons", {}).get(0, code.name.lower())
        raise NeuroplexError(f"{sol.meta.get('model', model)}: no steady state ({code.name.lower()}): {reason}")
    if select:
        sol = sol.select([s.strip() for s in select.split(",") if s.strip()])
    click.echo(f"{sol.meta.get('model', model)}: steady state, residual {float(sol.stats['residual'][0]):.2g}, "
               f"{len(sol.meta.get('moieties', []))} conservation law(s)")
    for name in sol.names if select else sol.names[:40]:
        click.echo(f"  {name:<20} {float(sol[name][0]):.10g}")
    if out is not None:
        click.echo(f"wrote {sol.save(out, sample=0)}")


def _assignments(items: tuple[str, ...], option: str) -> dict[str, float]:
    """``("a=1", "b=2.5")`` -> ``{"a": 1.0, "b": 2.5}``, naming a malformed item."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise NeuroplexError(f"{option} {item!r}: write ID=NUMBER, e.g. {option} n=2.5") from None
    return out


_COMMANDS_ADDED = False
_BUILTIN_COMMANDS: dict[str, click.Command] | None = None
#: what still runs when a plugin fails to load in strict mode: the commands that show the failure
DIAGNOSTIC = frozenset({"plugins", "--version", "--help", "-h"})


def build_cli() -> click.Group:
    """The CLI group with every plugin's commands added."""
    global _COMMANDS_ADDED, _BUILTIN_COMMANDS
    if _BUILTIN_COMMANDS is None:
        _BUILTIN_COMMANDS = dict(cli.commands)
    if not _COMMANDS_ADDED:
        cli.commands.clear()
        cli.commands.update(_BUILTIN_COMMANDS)  # a failed earlier try leaves nothing behind
        get_host().add_commands(cli)
        _COMMANDS_ADDED = True
    return cli


def _is_diagnostic(args: list[str]) -> bool:
    rest = [a for a in args if a != "--debug"]
    return not rest or rest[0] in DIAGNOSTIC


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point.

    In strict mode a plugin that fails to load stops every command with one line naming it,
    except ``plugins``, ``--version`` and ``--help``, which run on a lenient host and show it.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        group = build_cli()
    except PluginError as exc:
        if not _is_diagnostic(args):
            if "--debug" in args:
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        click.echo(f"warning (strict mode): {exc}", err=True)
        quiet = logging.getLogger("neuroplex.plugins")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # the line above already says it
        try:
            reset_host(PluginHost(strict=False).load())
            group = build_cli()
        finally:
            quiet.setLevel(level)
    group.main(args=args, prog_name="neuroplex")


@cli.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--executor", type=click.Choice(["auto", "ray", "local"]), default=None,
              help="Where trials run: Ray Tune, here one after another, or Ray when installed [default: the config's, "
                   "else auto].")
@click.option("--workers", type=int, default=None, help="Trials at once on Ray [default: the config's, else its CPUs].")
@click.option("--progress/--no-progress", default=True, help="Show the progress bar (local trials).")
def sweep(config: Path, executor: str | None, workers: int | None, progress: bool) -> None:
    """Run the hyperparameter sweep described in the TOML file CONFIG (grid or random search over a
    training command's options; see docs/distributed.md). Trials already done are skipped and an
    interrupted one resumes from its checkpoint; one row per trial goes to OUT/trials.csv."""
    click.echo(sweep_summary(run_sweep(config, executor=executor, workers=workers, progress=progress)))


@cli.command()
@click.argument("model")
@click.option("--solvers", default="torch,roadrunner", show_default=True, help="Comma-separated solver names.")
@click.option("--reference", default=None, help="Reference solver (default: roadrunner if listed, else the first).")
@click.option("--t-end", type=float, default=100.0, show_default=True, help="End time (model units).")
@click.option("--t-start", type=float, default=0.0, show_default=True)
@click.option("--points", type=int, default=1001, show_default=True, help="Output points.")
@click.option("--rtol", type=float, default=None, help="Relative tolerance given to every solver.")
@click.option("--atol", type=float, default=None, help="Absolute tolerance given to every solver.")
@click.option("--option", "options", multiple=True, metavar="SOLVER.KEY=VALUE",
              help="A setting of one solver, e.g. torch.method=rosenbrock (repeatable).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write the overlay plot (PNG).")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Write the differences as JSON.")
@click.option("--limit", type=int, default=30, show_default=True, help="Rows printed (largest differences first).")
def compare(model: str, solvers: str, reference: str | None, t_end: float, t_start: float, points: int,
            rtol: float | None, atol: float | None, options: tuple[str, ...], out: Path | None,
            json_out: Path | None, limit: int) -> None:
    """Simulate MODEL on several solvers; print per-variable max absolute and relative differences."""

    names = [s.strip() for s in solvers.split(",") if s.strip()]
    result = run_compare(model, names, t_span=(t_start, t_end), n_points=points, rtol=rtol, atol=atol,
                         solver_options=parse_solver_options(options), reference=reference, plot=out)
    click.echo(result.table(limit=limit))
    if out is not None:
        click.echo(f"wrote {out}")
    if json_out is not None:
        click.echo(f"wrote {write_json(result.to_dict(), json_out)}")
