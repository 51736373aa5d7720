"""Model kinds: what a model is, as solvers and runners see it.

A model class declares its kind as a class attribute ``kind`` (``"ir"`` for
:class:`~neuroplex.ir.ModelIR`, ``"dynamics"`` for :class:`~neuroplex.dynamics.Dynamics`,
``"sbml"`` for models read from SBML, ``"network"`` for spiking networks, ...). A subclass
that declares its own kind keeps its bases' kinds as fallbacks: an SBML model is
``("sbml", "ir")``, so a solver without an SBML runner can still take it as an IR model.
"""
from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

from .errors import ModelError


@runtime_checkable
class Model(Protocol):
    """Anything a solver or runner can run: an object whose class declares its ``kind``."""

    kind: ClassVar[str]


def model_kinds(model: Any) -> tuple[str, ...]:
    """The kinds of ``model``, most specific first (from the ``kind`` attributes of its class
    and bases)."""
    kinds: list[str] = []
    for cls in type(model).__mro__:
        kind = cls.__dict__.get("kind")
        if isinstance(kind, str) and kind not in kinds:
            kinds.append(kind)
    if not kinds:
        raise ModelError(f"a {type(model).__name__} is no model: its class declares no `kind` "
                         f"(ModelIR, Dynamics, a model read from a file, or a registered model kind)")
    return tuple(kinds)


def model_kind(model: Any) -> str:
    """The most specific kind of ``model``."""
    return model_kinds(model)[0]


def has_kind(obj: Any) -> bool:
    """Whether ``obj``'s class declares a model kind."""
    return any(isinstance(cls.__dict__.get("kind"), str) for cls in type(obj).__mro__)
