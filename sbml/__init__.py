"""SBML import/export (python-libsbml), the SBML runners and the SBML Test Suite runner.

The package's public names, for other plugins (which import these, not the submodules):
:func:`read_sbml`, :func:`read_sbml_string`, :func:`write_sbml`, :func:`changes`, :func:`antimony_to_sbml`,
:func:`read_antimony`, :class:`SBMLModel`, :class:`SBMLImportError`, :class:`SBMLProgram` (a model
compiled for simulation), :func:`compiled` (a model's cached program) and :class:`SampleRun` (one
sample's run with SBML event semantics on a given integrator). They load on first use (python-libsbml is an optional dependency).
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

_PUBLIC = {"read_sbml": ".reader", "read_sbml_string": ".reader", "write_sbml": ".writer", "changes": ".values",
           "SBMLModel": ".reader", "SBMLImportError": ".errors",
           "antimony_to_sbml": ".antimony_loader", "read_antimony": ".antimony_loader",
           "SBMLProgram": ".program", "compiled": ".runner", "SampleRun": ".events"}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'neuroplex.sbml' has no attribute {name!r}")
    return getattr(import_module(_PUBLIC[name], __name__), name)
