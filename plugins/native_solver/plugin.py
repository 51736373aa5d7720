"""Entry point ``native_solver``: registers :class:`NativeSolver` as solver ``"native"``."""
from __future__ import annotations

from neuroplex.hookspecs import hookimpl

from .solver import NativeSolver


@hookimpl
def register_solvers(register):
    register(NativeSolver)
