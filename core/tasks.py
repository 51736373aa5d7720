"""Built-in tasks plugin: data sets and environments (filled in by its owner)."""
from .hookspecs import hookimpl  # noqa: F401
