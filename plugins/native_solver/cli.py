"""``neuroplex native build MODEL``: compile a model's library (or find it cached) and report
the compile time, or say why the native solver refuses the model."""
from __future__ import annotations

import time

import click

from neuroplex.api import load_model

from .solver import model_library, refusal


@click.group("native")
def native_group() -> None:
    """The compiled SBML path (solver ``native``)."""


@native_group.command("build")
@click.argument("model")
def build_command(model: str) -> None:
    """Build MODEL's C library into the cache (an SBML/Antimony file or a shipped model name)
    and print the time it took, whether it was cached, and where it is."""
    start = time.perf_counter()
    m = load_model(model)
    reason = refusal(m)
    if reason is not None:
        raise click.ClickException(f"the native solver does not take it: {reason}")
    lib = model_library(m)
    state = "cached" if lib.cached else f"compiled in {lib.build_s:.2f} s"
    click.echo(f"{getattr(m, 'name', model)}: {state} ({time.perf_counter() - start:.2f} s in all, with loading) "
               f"{lib.path}")


def add_commands(cli: click.Group) -> None:
    """Register ``neuroplex native``."""
    cli.add_command(native_group)
