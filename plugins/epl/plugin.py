"""EPL plugin: the ``epl`` neuron (the energy DS as a model), the ``epl`` learning rule and
``neuroplex epl``."""
from __future__ import annotations

from typing import Any

from neuroplex.hookspecs import hookimpl


@hookimpl
def register_neurons(register: Any) -> None:
    from .model import epl_model

    register(epl_model, name="epl")


@hookimpl
def register_learning_rules(register: Any) -> None:
    from .rule import EPLRule

    register(EPLRule, name="epl")


@hookimpl
def register_commands(cli: Any) -> None:
    from .cli import add_commands

    add_commands(cli)
