"""Wuxing plugin: the ``wuxing`` neuron (and its reversed form), the learning rules
``wuxing-k3``, ``wuxing-coupling``, ``wuxing-mixed`` and the ``neuroplex wuxing`` commands."""
from __future__ import annotations

from typing import Any

from neuroplex.hookspecs import hookimpl

from .neuron import wuxing, wuxing_reversed
from .cli import add_commands
from .rule import WuxingCouplingRule, WuxingK3Rule, WuxingMixedRule


@hookimpl
def register_neurons(register: Any) -> None:
    register(wuxing, name="wuxing")
    register(wuxing_reversed, name="wuxing_reversed")


@hookimpl
def register_commands(cli: Any) -> None:

    add_commands(cli)


@hookimpl
def register_learning_rules(register: Any) -> None:

    register(WuxingK3Rule, name="wuxing-k3")
    register(WuxingCouplingRule, name="wuxing-coupling")
    register(WuxingMixedRule, name="wuxing-mixed")
