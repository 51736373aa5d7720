"""The ``neurons`` plugin: registers the built-in spiking neuron models (see
:mod:`neuroplex.plugins.neurons.models`) as factories ``f(**params) -> ModelIR``, and
``equations``: a neuron from Brian2-style equation strings
(:mod:`neuroplex.plugins.neurons.equations`)."""
from __future__ import annotations

from typing import Any

from neuroplex.hookspecs import hookimpl

from .equations import from_equations
from .models import NEURONS

ALIASES = {"izhikevich": ("izh",), "adex": ("aeif",), "traub_miles": ("cobahh_hh",)}


@hookimpl
def register_neurons(register: Any) -> None:
    for name, factory in NEURONS.items():
        register(factory, name=name, aliases=ALIASES.get(name, ()))
    register(from_equations, name="equations")
