"""The special functions of the IR, each defined once, with its torch, numpy and generated-C
forms, which agree (on NaN, 0, tiny and large inputs: ``tests/core/test_core_functions.py``).

``exprel(x) = (exp(x) - 1) / x`` with its limit 1 at ``x = 0`` (Brian2's ``exprel``): below
``|x| <`` :data:`EXPREL_SMALL` the series ``1 + x/2`` (its error there is ``x**2/6``, below
double rounding), else ``expm1(x) / x``; NaN gives NaN.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

#: below this ``|x|``, exprel is its series ``1 + x/2``
EXPREL_SMALL = 1e-6


def exprel_torch(x: torch.Tensor) -> torch.Tensor:
    """exprel on a tensor (element-wise)."""
    small = x.abs() < EXPREL_SMALL
    safe = torch.where(small, torch.ones_like(x), x)
    return torch.where(small, 1.0 + x / 2.0, torch.expm1(safe) / safe)


def exprel_scalar(x: float) -> float:
    """exprel on one float (the generated scalar code's form)."""
    x = np.float64(x)
    return 1.0 + x / 2.0 if abs(x) < EXPREL_SMALL else np.expm1(x) / x


def exprel_numpy(x: np.ndarray | float) -> np.ndarray:
    """exprel on a numpy array (element-wise)."""
    a = np.asarray(x, dtype=np.float64)
    small = np.abs(a) < EXPREL_SMALL
    safe = np.where(small, 1.0, a)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(small, 1.0 + a / 2.0, np.expm1(safe) / safe)


#: the C form, a template: ``{real}`` the C type, ``{fabs}``/``{expm1}`` its functions, ``{small}``,
#: ``{one}``, ``{two}`` literals of that type
EXPREL_C = ("static inline {real} np_exprel({real} x) {{\n"
            "    return {fabs}(x) < {small} ? {one} + x / {two} : {expm1}(x) / x;\n"
            "}}\n")


@dataclass(frozen=True)
class SpecialFunction:
    """One special function's forms (``c`` a template as :data:`EXPREL_C`)."""

    name: str
    torch: Callable[[torch.Tensor], torch.Tensor]
    numpy: Callable[[np.ndarray | float], np.ndarray]
    scalar: Callable[[float], float]
    c: str


FUNCTIONS: dict[str, SpecialFunction] = {
    "exprel": SpecialFunction("exprel", exprel_torch, exprel_numpy, exprel_scalar, EXPREL_C),
}
