"""SBML import/export (python-libsbml), SBML Test Suite runner."""
from .reader import SBMLImportError, SBMLModel, read_sbml, read_sbml_string  # noqa: E402,F401
from .writer import write_sbml  # noqa: E402,F401
