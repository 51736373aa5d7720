"""Entry point ``scipy_solver``: registers :class:`ScipySolver` as solver ``"scipy"``."""
from __future__ import annotations

from neuroplex.hookspecs import hookimpl


@hookimpl
def register_solvers(register):
    from .solver import ScipySolver

    register(ScipySolver)
