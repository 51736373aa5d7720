"""Progress bars for long runs, decided in one place.

Every long loop of neuroplex (training epochs, ensembles sample by sample, the SBML test suite,
benchmarks) shows a :mod:`tqdm` bar through :func:`progress_bar`. A bar is drawn only where a
person watches it: when the caller asks for one *and* standard error is a terminal. Output
redirected to a file or a pipe (a CI log, ``2> run.log``) gets no bar characters. The
environment variable ``NEUROPLEX_PROGRESS`` overrides the terminal test: ``1`` always draws
the bar, ``0`` never does.
"""
from __future__ import annotations

import os
import sys
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

#: environment variable forcing progress bars on (``1``) or off (``0``)
PROGRESS_ENV = "NEUROPLEX_PROGRESS"


def progress_shown(requested: bool = True) -> bool:
    """Whether a bar the caller ``requested`` is drawn: ``NEUROPLEX_PROGRESS`` when set,
    otherwise only when standard error is a terminal."""
    if not requested:
        return False
    forced = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if forced in ("1", "true", "yes", "on"):
        return True
    if forced in ("0", "false", "no", "off"):
        return False
    stream = sys.stderr
    return bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())


def progress_bar(iterable: Iterable[T] | None = None, *, enabled: bool = True, desc: str | None = None,
                 total: int | None = None, unit: str = "it", initial: int = 0, leave: bool = True) -> "tqdm[T]":
    """A tqdm bar over ``iterable`` (or a manual one with ``total``), drawn per :func:`progress_shown`;
    a hidden bar still iterates, counts and accepts ``set_postfix``."""
    return tqdm(iterable, desc=desc, total=total, unit=unit, initial=initial, leave=leave,
                disable=not progress_shown(enabled), dynamic_ncols=True)
