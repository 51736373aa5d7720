"""The generated code's runtime for one sample on the CPU: numpy float64 scalars in place of
tensors.

A right-hand side printed by :class:`neuroplex.codegen.TorchPrinter` calls ``torch.<fn>`` and
``_rt.<fn>``; executed with :data:`TORCH` and this module in their place (see
:func:`scalar_function`), the same source computes one sample with numpy scalars. Each torch
call on a one-element tensor costs microseconds of dispatch; a numpy scalar operation costs a
tenth of that, so a single simulation (a batch of one) of a model with a hundred operations per
right-hand side runs several times faster. numpy scalars follow IEEE arithmetic like tensors
(``1/0 = inf``, ``0/0 = nan``; callers silence the warnings with :func:`quiet`), so results
agree with the torch path up to the last bits of the math functions.
"""
from __future__ import annotations

import math
import re
import sys
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import torch

from .codegen import build_function
from .functions import exprel_scalar
from .runtime import rel  # noqa: F401 - plain comparisons: the same for scalars

NAN = math.nan
INF = math.inf
f64 = np.float64


def _erf(x: Any) -> Any:
    return f64(math.erf(x))


#: ``torch.<fn>`` names the printer emits, as numpy scalar functions
TORCH = SimpleNamespace(
    exp=np.exp, log=np.log, sqrt=np.sqrt, sin=np.sin, cos=np.cos, tan=np.tan, asin=np.arcsin,
    acos=np.arccos, atan=np.arctan, sinh=np.sinh, cosh=np.cosh, tanh=np.tanh, asinh=np.arcsinh,
    acosh=np.arccosh, atanh=np.arctanh, abs=np.abs, floor=np.floor, ceil=np.ceil, sign=np.sign, erf=_erf,
)


def quiet() -> Any:
    """Context in which IEEE special values (inf, nan) pass without numpy warnings."""
    return np.errstate(all="ignore")


def power(a: Any, b: Any) -> Any:
    return np.power(f64(a), b)


def where(cond: Any, a: Any, b: Any) -> Any:
    return a if cond else b


def logical_and(a: Any, b: Any) -> bool:
    return bool(a) and bool(b)


def logical_or(a: Any, b: Any) -> bool:
    return bool(a) or bool(b)


def logical_xor(a: Any, b: Any) -> bool:
    return bool(a) != bool(b)


def logical_not(a: Any) -> bool:
    return not bool(a)


def minimum(a: Any, b: Any) -> Any:
    return np.minimum(a, b)  # NaN propagates, as torch.minimum


def maximum(a: Any, b: Any) -> Any:
    return np.maximum(a, b)


def fmod(a: Any, b: Any) -> Any:
    a, b = f64(a), f64(b)
    return a - b * np.floor(a / b)


#: NaN stays NaN, as :func:`neuroplex.runtime.sign`
sign = np.sign

#: :mod:`neuroplex.functions`' scalar form
exprel = exprel_scalar


def _reciprocal_of(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda x: 1.0 / fn(x)


def _of_reciprocal(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda x: fn(1.0 / f64(x))


#: sec, csc, cot and their hyperbolic forms: 1 / cos(x), ...; the inverses: acos(1 / x), ...
sec, csc, cot, sech, csch, coth = map(_reciprocal_of, (np.cos, np.sin, np.tan, np.cosh, np.sinh, np.tanh))
asec, acsc, acot, asech, acsch, acoth = map(_of_reciprocal, (np.arccos, np.arcsin, np.arctan, np.arccosh,
                                                             np.arcsinh, np.arctanh))


def _lgamma(x: Any) -> Any:
    try:
        return f64(math.lgamma(x))
    except (ValueError, OverflowError):  # poles at 0, -1, -2, ...: torch.lgamma gives inf
        return f64(INF)


def factorial(x: Any) -> Any:
    return np.exp(_lgamma(x + 1.0)) * (NAN if x < -0.0 else 1.0)


def gamma(x: Any) -> Any:
    return np.exp(_lgamma(x))


def stack(values: list[Any], like: Any) -> torch.Tensor:
    """The values of one sample as a ``(1, len(values))`` float64 tensor."""
    return torch.from_numpy(np.array(values, dtype=np.float64))[None]


def jacobian_out(values: list[Any], like: Any, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """``(J (1, n, n), df/dt (1, n))`` of one sample from the non-zero entries at ``index`` of
    ``(n, n + 1)`` (the scalar form of the driver's ``_jacobian_out``)."""
    n = like.shape[-1]
    out = np.zeros(n * (n + 1))
    if values:
        out[index] = values
    full = torch.from_numpy(out).view(1, n, n + 1)
    return full[..., :n], full[..., n]


_CALLS = re.compile(r"\b(torch|_rt)\.(\w+)")


def supports(source: str) -> bool:
    """Whether every ``torch.``/``_rt.`` name ``source`` uses has a scalar form here."""
    return all(hasattr(TORCH if mod == "torch" else _SELF, name) for mod, name in _CALLS.findall(source))


def scalar_function(fn: Callable[..., Any], namespace: dict[str, Any]) -> Callable[..., Any] | None:
    """The generated function ``fn`` (its source on ``fn.__source__``) rebuilt over numpy
    scalars, or None where it uses something without a scalar form. ``namespace`` adds or
    replaces names (e.g. the scalar ``_stack``)."""
    source = getattr(fn, "__source__", None)
    if source is None or not supports(source):
        return None
    return build_function(fn.__name__, fn.__args__, fn.__body__, {"torch": TORCH, "_rt": _SELF, **namespace})


_SELF = sys.modules[__name__]
