"""The ``sbml`` plugin: importers for SBML (``.xml``, ``.sbml``) and Antimony (``.ant``),
and the ``neuroplex sbml`` command group (``testsuite``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from neuroplex.api import Importer
from neuroplex.hookspecs import hookimpl

from .runner import RUNNERS


def _load_sbml(path: Path) -> Any:
    from .reader import read_sbml

    return read_sbml(path)


def _load_antimony(path: Path) -> Any:
    from .antimony_loader import read_antimony

    return read_antimony(path)


@hookimpl
def register_runners(register: Any) -> None:
    for runner in RUNNERS:
        register(runner)


@hookimpl
def register_importers(register: Any) -> None:
    register(Importer(name="sbml", suffixes=(".xml", ".sbml"), load=_load_sbml,
                      description="SBML Level 2/3 core (python-libsbml)"))
    register(Importer(name="antimony", suffixes=(".ant",), load=_load_antimony,
                      description="Antimony, translated to SBML"))


@click.group("sbml")
def sbml_group() -> None:
    """SBML tools: model summaries and the SBML Test Suite runner."""


@sbml_group.command("testsuite")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--solver", type=click.Choice(["torch", "scipy", "roadrunner", "native"]), default="torch", show_default=True,
              help="native: the compiled path (events included).")
@click.option("--jobs", type=int, default=1, show_default=True, help="Worker processes.")
@click.option("--only", default=None, help="Comma-separated case ids (e.g. 00001,01511).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write failing ids with reasons (JSON).")
def testsuite_command(directory: Path, solver: str, jobs: int, only: str | None, out: Path | None) -> None:
    """Run the SBML Test Suite semantic cases in DIRECTORY (or one case directory)."""
    from .testsuite import run_suite

    ids = [x for x in only.split(",") if x.strip()] if only else None
    result = run_suite(directory, solver, jobs=jobs, only=ids, progress=True)
    for r in result.failures():
        click.echo(f"FAIL {r.case_id}: {r.reason}")
    click.echo(f"PASS {result.passed}/{result.total} ({solver})")
    if out is not None:
        click.echo(f"wrote {result.write(out)}")
    if result.passed != result.total:
        raise SystemExit(1)


def _add_info_command() -> None:
    from .info import info

    sbml_group.add_command(info)


_add_info_command()


@hookimpl
def register_commands(cli: Any) -> None:
    cli.add_command(sbml_group)
