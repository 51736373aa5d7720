"""Which command-line settings a solver takes: the constructor contract of solver plugins.

``neuroplex simulate`` passes ``--method``, ``--dt``, ``--rtol``, ``--atol``, ``--device`` and
``--dtype`` to the solver's constructor only when the user gives them, and only when the solver
declares that setting: either a ``settings`` class attribute naming the keyword arguments it
takes, or (without one) the keyword parameters of its ``__init__`` (a ``**kwargs`` takes all).
Anything else is a :class:`~neuroplex.errors.NeuroplexError` naming the solver, the flag and
what the solver does take, instead of a ``TypeError`` from deep inside the constructor.
``neuroplex.simulate(..., solver=NAME, **settings)`` applies the same check to its keyword
arguments (:func:`check_declared`).
"""
from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Iterable

from .errors import NeuroplexError

if TYPE_CHECKING:
    from .host import Entry


def declared_settings(cls: type) -> frozenset[str] | None:
    """The constructor keywords ``cls`` declares, or ``None`` when it takes any (``**kwargs``)."""
    declared = getattr(cls, "settings", None)
    if declared is not None and not callable(declared):
        return frozenset(declared)
    if cls.__init__ is object.__init__:
        return frozenset()  # no constructor: no settings
    params = inspect.signature(cls.__init__).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return frozenset(p.name for p in params if p.name != "self"
                     and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY))


def check_declared(entry: Entry, given: Iterable[str], *, flags: bool = False) -> None:
    """Raise naming the solver of registry ``entry``, its plugin, the settings in ``given`` it
    does not declare (as ``--flags`` for the command line) and those it does take."""
    accepted = declared_settings(entry.obj)
    refused = [k for k in given if accepted is not None and k not in accepted]
    if refused:
        names = ", ".join(f"--{k.replace('_', '-')}" if flags else k for k in refused)
        takes = ", ".join(sorted(accepted or ())) or "no settings"
        raise NeuroplexError(f"solver {entry.name!r} (plugin {entry.plugin!r}) does not take {names}; "
                             f"its constructor takes: {takes}")


def solver_settings(entry: Any, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` (setting -> value, only those the user set) checked against the solver of
    registry ``entry``; ``dtype`` names become ``torch.dtype``s."""
    check_declared(entry, given, flags=True)
    options = dict(given)
    if isinstance(options.get("dtype"), str):
        import torch

        options["dtype"] = getattr(torch, options["dtype"])
    return options
