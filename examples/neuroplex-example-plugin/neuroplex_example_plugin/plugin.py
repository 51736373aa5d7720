"""Entry-point module: the host imports it and calls each ``register_*`` hook on its own."""
from __future__ import annotations

from neuroplex import hookimpl

from .euler import ForwardEuler
from .qif import qif


@hookimpl
def register_neurons(register):
    register(qif, name="qif", aliases=("quadratic-if",))


@hookimpl
def register_solvers(register):
    register(ForwardEuler)
