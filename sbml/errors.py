"""Errors of the SBML reader."""
from __future__ import annotations

from neuroplex.errors import ModelError


class SBMLImportError(ModelError):
    """An SBML file cannot be read faithfully: malformed XML, libsbml errors (with line
    numbers), or a feature neuroplex does not simulate (named with the element id)."""
