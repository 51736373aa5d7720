"""The ``brian2`` plugin: the Brian2 solver and the ``compare-snn`` command.

Registering must not import brian2 (an optional dependency): the solver imports it when
a model is run, the command when it is invoked.
"""
from __future__ import annotations

from typing import Any

from neuroplex.hookspecs import hookimpl

from .solver import Brian2Solver


@hookimpl
def register_solvers(register: Any) -> None:
    register(Brian2Solver)


@hookimpl
def register_commands(cli: Any) -> None:
    from .cli import add_commands

    add_commands(cli)
