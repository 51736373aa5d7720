"""Entry point of the built-in ``torch`` solver plugin."""
from neuroplex.hookspecs import hookimpl

from .solver import TorchSolver


@hookimpl
def register_solvers(register):
    register(TorchSolver)
