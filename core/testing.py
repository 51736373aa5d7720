"""Test helpers for neuroplex and for plugin authors' own test suites."""
from __future__ import annotations

from pathlib import Path

from .config import data_dir


def require_data(*parts: str) -> Path:
    """The shared test-data path ``parts`` or a pytest skip naming what is missing
    (``$NEUROPLEX_DATA``, default ``../shared/data``)."""
    import pytest

    path = data_dir().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data missing: {path} (set NEUROPLEX_DATA)")
    return path
