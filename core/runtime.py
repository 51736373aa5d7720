"""Element-wise helpers that generated code calls where torch has no one-call equivalent
or where an argument may be a Python number (folded constants) rather than a tensor."""
from __future__ import annotations

import math
from typing import Any

import torch

from .functions import exprel_torch

NAN = math.nan
INF = math.inf


def _t(x: Any, like: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    ref = like if isinstance(like, torch.Tensor) else None
    if ref is None:
        return torch.as_tensor(x, dtype=torch.get_default_dtype())
    if isinstance(x, bool):
        return torch.as_tensor(x, device=ref.device)
    return torch.as_tensor(x, dtype=ref.dtype if ref.is_floating_point() else torch.get_default_dtype(), device=ref.device)


def const(x: Any, like: torch.Tensor) -> torch.Tensor:
    """A number as a tensor on ``like``'s dtype and device (a tensor passes through), so that
    values bound to plain numbers (constant initial values, default inputs) can feed torch calls."""
    if isinstance(x, torch.Tensor):
        return x
    return torch.as_tensor(x, dtype=like.dtype, device=like.device)


def where(cond: Any, a: Any, b: Any) -> torch.Tensor:
    if not isinstance(cond, torch.Tensor):
        return a if cond else b
    ref = a if isinstance(a, torch.Tensor) and a.is_floating_point() else b if isinstance(b, torch.Tensor) else None
    if ref is None:  # two folded constants: keep full precision, the caller casts on stacking
        ref = torch.empty((), dtype=torch.float64, device=cond.device)
    return torch.where(cond, _t(a, ref).to(ref.dtype), _t(b, ref).to(ref.dtype))


def rel(a: Any, b: Any, op: str) -> Any:
    if isinstance(a, torch.Tensor) and a.dtype == torch.bool:
        a = a.to(torch.get_default_dtype())
    if isinstance(b, torch.Tensor) and b.dtype == torch.bool:
        b = b.to(torch.get_default_dtype())
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    if op == ">=":
        return a >= b
    if op == "==":
        return a == b
    return a != b


def _bool(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x if x.dtype == torch.bool else x != 0
    return bool(x)


def logical_and(a: Any, b: Any) -> Any:
    a, b = _bool(a), _bool(b)
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return torch.logical_and(_t(a, b), _t(b, a))
    return a and b


def logical_or(a: Any, b: Any) -> Any:
    a, b = _bool(a), _bool(b)
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return torch.logical_or(_t(a, b), _t(b, a))
    return a or b


def logical_xor(a: Any, b: Any) -> Any:
    a, b = _bool(a), _bool(b)
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return torch.logical_xor(_t(a, b), _t(b, a))
    return a != b


def logical_not(a: Any) -> Any:
    a = _bool(a)
    return torch.logical_not(a) if isinstance(a, torch.Tensor) else not a


def power(a: Any, b: Any) -> Any:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        a_t = _t(a, b)
        return torch.pow(a_t, _t(b, a_t))
    try:
        return float(a) ** float(b)
    except (OverflowError, ZeroDivisionError):
        return math.inf
    except ValueError:
        return math.nan


def minimum(a: Any, b: Any) -> Any:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        a_t = _t(a, b)
        return torch.minimum(a_t, _t(b, a_t))
    return min(a, b)


def maximum(a: Any, b: Any) -> Any:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        a_t = _t(a, b)
        return torch.maximum(a_t, _t(b, a_t))
    return max(a, b)


def fmod(a: Any, b: Any) -> Any:
    a_t = _t(a, b)
    return a_t - _t(b, a_t) * torch.floor(a_t / _t(b, a_t))


#: (exp(x)-1)/x, equal to 1 at x = 0 (Brian2's ``exprel``): :mod:`neuroplex.functions`
exprel = exprel_torch


def sign(x: torch.Tensor) -> torch.Tensor:
    """-1, 0 or 1; NaN stays NaN (``torch.sign`` gives 0 there; numpy, C and Brian2 give NaN)."""
    return torch.where(torch.isnan(x), x, torch.sign(x))


def sec(x: torch.Tensor) -> torch.Tensor:
    return 1.0 / torch.cos(x)


def csc(x: torch.Tensor) -> torch.Tensor:
    return 1.0 / torch.sin(x)


def cot(x: torch.Tensor) -> torch.Tensor:
    return 1.0 / torch.tan(x)


def asec(x: torch.Tensor) -> torch.Tensor:
    return torch.acos(1.0 / x)


def acsc(x: torch.Tensor) -> torch.Tensor:
    return torch.asin(1.0 / x)


def acot(x: torch.Tensor) -> torch.Tensor:
    return torch.atan(1.0 / x)


def sech(x: torch.Tensor) -> torch.Tensor:
    return 1.0 / torch.cosh(x)


def csch(x: torch.Tensor) -> torch.Tensor:
    return 1.0 / torch.sinh(x)


def coth(x: torch.Tensor) -> torch.Tensor:
    return 1.0 / torch.tanh(x)


def asech(x: torch.Tensor) -> torch.Tensor:
    return torch.acosh(1.0 / x)


def acsch(x: torch.Tensor) -> torch.Tensor:
    return torch.asinh(1.0 / x)


def acoth(x: torch.Tensor) -> torch.Tensor:
    return torch.atanh(1.0 / x)


def factorial(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(torch.lgamma(x + 1.0)) * torch.where(x < -0.0, torch.nan, 1.0)


def gamma(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(torch.lgamma(x))


def as_bool(x: Any, y: torch.Tensor) -> torch.Tensor:
    """A bool tensor over the batch dimensions of ``y``."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(bool(x), device=y.device)
    elif x.dtype != torch.bool:
        x = x != 0
    return x.expand(y.shape[:-1])
