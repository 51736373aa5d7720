"""The built-in spiking neurons, and neurons written as Brian2-style equation strings."""
from .equations import from_equations, parse_equations

__all__ = ["from_equations", "parse_equations"]
