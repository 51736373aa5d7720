"""Exception types that name what went wrong (file, element, plugin, sample)."""
from __future__ import annotations


class NeuroplexError(Exception):
    """Base class of every error neuroplex raises on purpose; the CLI prints it as one line."""


class PluginError(NeuroplexError):
    """A plugin failed to import, validate or register (strict mode) or misbehaved."""


class PluginConflictError(PluginError):
    """Two plugins registered the same name for the same kind of item."""


class UnknownNameError(NeuroplexError, KeyError):
    """A solver, neuron, importer, learning rule or task name that no plugin registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelError(NeuroplexError):
    """A model definition is invalid (unknown symbol, bad equation, missing value)."""


class NotPrintableError(ModelError):
    """An expression the code printer cannot print for its target (an undefined symbol, a function
    the target has no translation of); the message names it."""


class SolverError(NeuroplexError):
    """A solve failed; ``throw=True`` raises this naming the failed samples."""
