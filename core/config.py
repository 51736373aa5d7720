"""Process-level settings: the shared test-data path and torch's thread count."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .errors import NeuroplexError

#: environment variable naming the shared test data folder (default ``../shared/data``)
DATA_ENV = "NEUROPLEX_DATA"


def data_dir() -> Path:
    """The shared test-data folder: ``$NEUROPLEX_DATA`` or ``../shared/data`` from the
    current directory. Test data (SBML Test Suite, BioModels, SNN references) is never
    shipped with the package."""
    return Path(os.environ.get(DATA_ENV, "../shared/data")).expanduser().resolve()


def data_path(*parts: str) -> Path:
    """A path inside :func:`data_dir`."""
    return data_dir().joinpath(*parts)


def set_threads(n: int | None = None) -> int:
    """Set torch's intra-op thread count on purpose (``$NEUROPLEX_THREADS`` or 1).

    On small batched runs per-op threading costs more than it gains: on a 2-core machine
    2 intra-op threads made small batched runs 5-50x slower than 1.
    """
    if n is None:
        n = int(os.environ.get("NEUROPLEX_THREADS", "1"))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"cpu" | "cuda" | "auto"`` to a torch device (``auto`` picks CUDA when present)."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise NeuroplexError("device 'cuda' requested but torch.cuda.is_available() is false")
    return dev
