"""Built-in tasks plugin: the classification data sets of :mod:`neuroplex.datasets`.

Registered as tasks ``digits``, ``iris`` and ``mnist``; each is a factory taking the
loader's options, e.g. ``get_task("digits")(split="random", seed=0)`` or
``get_task("mnist")(path)``.
"""
from __future__ import annotations

from typing import Any

from . import datasets
from .hookspecs import hookimpl


@hookimpl
def register_tasks(register: Any) -> None:
    register(datasets.digits, name="digits", kind="dataset")
    register(datasets.iris, name="iris", kind="dataset")
    register(datasets.mnist, name="mnist", kind="dataset")
