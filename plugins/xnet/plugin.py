"""X-Net plugin: the ``xnet`` learning rule (classification through the trainer) and ``neuroplex xnet``."""
from __future__ import annotations

from typing import Any

from neuroplex.hookspecs import hookimpl
from .rule import XNetRule
from .cli import add_commands


@hookimpl
def register_learning_rules(register: Any) -> None:

    register(XNetRule, name="xnet")


@hookimpl
def register_commands(cli: Any) -> None:

    add_commands(cli)
