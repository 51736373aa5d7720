"""Compiled C integration of single SBML trajectories (solver ``"native"``)."""
from .solver import NativeSolver, refusal

__all__ = ["NativeSolver", "refusal"]
