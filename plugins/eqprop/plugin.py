"""EqProp plugin: the ``eqprop`` learning rule, its energies (as tasks) and ``neuroplex eqprop``."""
from __future__ import annotations

from typing import Any

from neuroplex.hookspecs import hookimpl

from .energies import ENERGIES


@hookimpl
def register_learning_rules(register: Any) -> None:
    from .rule import EqPropRule

    register(EqPropRule, name="eqprop")


@hookimpl
def register_tasks(register: Any) -> None:
    # energies as model factories: get_task("restr_hopfield")(dims, nonlinearity)
    for name, cls in ENERGIES.items():
        register(cls, name=name, kind="energy")


@hookimpl
def register_commands(cli: Any) -> None:
    from .cli import add_commands

    add_commands(cli)
