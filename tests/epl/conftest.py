"""Fixtures shared by the EPL tests."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from neuroplex.sbml import antimony_to_sbml


@pytest.fixture
def sbml_file(tmp_path: Path) -> Callable[..., Path]:
    """Writes an Antimony model as an SBML file in the test's folder and returns its path."""
    def write(text: str, name: str = "m.xml") -> Path:
        pytest.importorskip("antimony")
        path = tmp_path / name
        path.write_text(antimony_to_sbml(text))
        return path
    return write
