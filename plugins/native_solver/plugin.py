"""Entry point ``native_solver``: registers :class:`NativeSolver` as solver ``"native"`` and the
``neuroplex native`` commands."""
from __future__ import annotations

from typing import Any

from neuroplex.hookspecs import hookimpl

from .cli import add_commands
from .solver import NativeSolver


@hookimpl
def register_solvers(register: Any) -> None:
    register(NativeSolver)


@hookimpl
def register_commands(cli: Any) -> None:
    add_commands(cli)
