"""Entry-point module: the host imports it and calls each ``register_*`` hook on its own."""
from __future__ import annotations

from neuroplex import hookimpl

from .blobs import blobs
from .delta import DeltaRule
from .euler import ForwardEuler
from .qif import qif


@hookimpl
def register_neurons(register):
    register(qif, name="qif", aliases=("quadratic-if",))


@hookimpl
def register_solvers(register):
    register(ForwardEuler)


@hookimpl
def register_learning_rules(register):
    register(DeltaRule, aliases=("widrow-hoff",))


@hookimpl
def register_tasks(register):
    register(blobs, kind="dataset")


@hookimpl
def register_commands(cli):
    from .commands import example

    cli.add_command(example)
