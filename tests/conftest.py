"""Shared fixtures. Shared test data (SBML Test Suite, BioModels, SNN references) is found
through one setting, ``$NEUROPLEX_DATA`` (default ``../shared/data`` beside the checkout);
tests that need it skip with a message naming what is missing."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("NEUROPLEX_DATA", str((ROOT.parent / "shared" / "data").resolve()))
os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(1)

from neuroplex.testing import require_data  # noqa: E402


@pytest.fixture
def shared_data() -> Path:
    return require_data()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA GPU on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
