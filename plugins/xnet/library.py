"""The activation library of X-Net neurons (paper section 4.1) with protected numerics (4.5).

Each :class:`Activation` has an arity (1 or 2), a protected torch function used in the forward
and backward passes, a sympy function used by the export, and a domain test: on samples where
every node's input lies in its activation's domain the protected function *is* the plain one,
so the exported formula equals the network there. Leaves are the input variables ``x``.
Plugins add activations with :func:`register_activation`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import sympy
import torch

from neuroplex.errors import NeuroplexError

#: outputs of every node are truncated to [-V, V] (section 4.5 (1))
OUTPUT_LIMIT = 1e8
_TINY = 1e-10
_EXP_MAX = 18.0  # exp(18) ~ 6.6e7 < OUTPUT_LIMIT


@dataclass(frozen=True)
class Activation:
    """One library function: ``torch_fn`` (protected), ``sympy_fn`` (plain), ``domain`` (bool mask)."""

    name: str
    arity: int
    torch_fn: Callable[..., torch.Tensor]
    sympy_fn: Callable[..., sympy.Expr]
    domain: Callable[..., torch.Tensor] | None = None
    #: binary only: the right operand the protection uses in place of a constant one outside
    #: the domain (the export's protected form, ``tree.to_sympy``)
    guard_const: Callable[[float], float] | None = None


def _div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    safe = torch.where(b.abs() < 1e-6, torch.where(b < 0, -1e-6, 1e-6) + 0 * b, b)
    return a / safe


def _div_guard(b: float) -> float:
    return -1e-6 if b < 0 else 1e-6


def _log(a: torch.Tensor) -> torch.Tensor:
    return torch.log(a.abs().clamp_min(_TINY))


def _sqrt(a: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(a.abs().clamp_min(_TINY))


def _exp(a: torch.Tensor) -> torch.Tensor:
    return torch.exp(a.clamp(max=_EXP_MAX))


_REGISTRY: dict[str, Activation] = {}


def register_activation(act: Activation) -> None:
    """Add ``act`` to the library names :class:`XNetRegressor` accepts (plugins call this)."""
    if act.arity not in (1, 2):
        raise NeuroplexError(f"activation {act.name!r}: arity must be 1 or 2, got {act.arity}")
    _REGISTRY[act.name] = act


for _a in (
    Activation("+", 2, lambda a, b: a + b, lambda a, b: a + b),
    Activation("-", 2, lambda a, b: a - b, lambda a, b: a - b),
    Activation("*", 2, lambda a, b: a * b, lambda a, b: a * b),
    Activation("/", 2, _div, lambda a, b: a / b, lambda a, b: b.abs() >= 1e-6, _div_guard),
    Activation("sin", 1, torch.sin, sympy.sin),
    Activation("cos", 1, torch.cos, sympy.cos),
    Activation("log", 1, _log, sympy.log, lambda a: a > _TINY),
    Activation("sqrt", 1, _sqrt, sympy.sqrt, lambda a: a > _TINY),
    Activation("exp", 1, _exp, sympy.exp, lambda a: a <= _EXP_MAX),
    Activation("square", 1, lambda a: a * a, lambda a: a**2),
    Activation("relu", 1, torch.relu, lambda a: sympy.Max(a, 0)),
    Activation("sigmoid", 1, torch.sigmoid, lambda a: 1 / (1 + sympy.exp(-a))),
):
    register_activation(_a)

#: the issue's default library (``x``, the variables, is always there as the leaves)
DEFAULT_LIBRARY: tuple[str, ...] = ("+", "-", "*", "/", "sin", "cos", "log", "sqrt", "exp", "square", "x")


def available() -> list[str]:
    """Names usable in a library (plus ``x``)."""
    return sorted(_REGISTRY) + ["x"]


def resolve(names: Sequence[str]) -> tuple[list[Activation], list[Activation]]:
    """Split a library given by names into (binary, unary) activations; ``x`` is implicit."""
    binary: list[Activation] = []
    unary: list[Activation] = []
    for n in names:
        if n == "x":
            continue
        if n not in _REGISTRY:
            raise NeuroplexError(f"unknown activation {n!r} in library; known: {', '.join(available())}")
        act = _REGISTRY[n]
        (binary if act.arity == 2 else unary).append(act)
    if not binary and not unary:
        raise NeuroplexError("the library needs at least one activation besides 'x'")
    return binary, unary
