"""Entry point ``roadrunner``: registers :class:`RoadRunnerSolver` as solver ``"roadrunner"``
(libroadrunner is imported only when a simulation runs)."""
from __future__ import annotations

from neuroplex.hookspecs import hookimpl


@hookimpl
def register_solvers(register):
    from .solver import RoadRunnerSolver

    register(RoadRunnerSolver)
