"""SBML import/export (python-libsbml), SBML Test Suite runner."""
