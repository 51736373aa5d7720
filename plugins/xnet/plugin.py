"""X-Net plugin: the ``xnet`` learning rule (classification through the trainer) and ``neuroplex xnet``."""
from __future__ import annotations

from typing import Any

from neuroplex.hookspecs import hookimpl


@hookimpl
def register_learning_rules(register: Any) -> None:
    from .rule import XNetRule

    register(XNetRule, name="xnet")


@hookimpl
def register_commands(cli: Any) -> None:
    from .cli import add_commands

    add_commands(cli)
