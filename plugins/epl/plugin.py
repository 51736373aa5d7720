"""EPL plugin: the ``epl`` neuron (the energy DS as a model), the ``epl`` learning rule and
``neuroplex epl``."""
from __future__ import annotations

from typing import Any

from neuroplex.hookspecs import hookimpl
from .model import epl_model
from .rule import EPLRule
from .cli import add_commands


@hookimpl
def register_neurons(register: Any) -> None:

    register(epl_model, name="epl")


@hookimpl
def register_learning_rules(register: Any) -> None:

    register(EPLRule, name="epl")


@hookimpl
def register_commands(cli: Any) -> None:

    add_commands(cli)
