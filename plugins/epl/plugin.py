"""EPL plugin: the ``epl`` neuron (the energy DS as a model), and later rule and commands."""
from __future__ import annotations

from typing import Any

from neuroplex.hookspecs import hookimpl


@hookimpl
def register_neurons(register: Any) -> None:
    from .model import epl_model

    register(epl_model, name="epl")
