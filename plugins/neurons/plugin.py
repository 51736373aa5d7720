"""Plugin module (entry point in pyproject.toml); filled in by its owner."""
from neuroplex.hookspecs import hookimpl  # noqa: F401
