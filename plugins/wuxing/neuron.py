"""The Wuxing (five-element) neuron: ring equations, rest point, stability, IR model.

Framework paper (``002``), eq 2.2 / 3.2, for element ``i`` of an ``N``-element ring (indices
cyclic; ``N = 5``: J, S, M, H, T = metal, water, wood, fire, earth)::

    dE_i/dt = K1_i E_{i-1} - K2_i E_i - K3_i E_i E_{i-2} + I_i            (forward)

The generating cycle is the ``E_{i-1}`` term, the controlling cycle the ``E_{i-2}`` term
("previous" convention, see ``docs/wuxing.md``). ``N = 1`` is the logistic equation (eq 3.3).
The reversed (backward) equation, eq 4.3, with its re-indexed K, is the transpose of the
forward linearisation::

    dE_i/dt = K1_{i+1} E_{i+1} - K2_i E_i - K3_{i+2} E_i E_{i+2} + I_i    (reversed)

With K uniform in a neuron the rest point is ``B0 = (K1 - K2) / K3`` for every element; else
it is found by relaxation. The signal is ``D = E - B0``. Linearised around ``B0`` the ring
is a circulant with eigenvalues ``K1 (w^-m - 1 - (1 - r) w^-2m)``, ``w = exp(2 pi i / N)``,
``r = K2 / K1``: stable iff ``r_min(N) < r < 1`` (``r_min(5) = (7 - 3 sqrt 5) / 2 ~ 0.1459``).
"""
from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import sympy
import torch

from neuroplex.errors import ModelError, NeuroplexError
from neuroplex.fixed_step import heun
from neuroplex.ir import ModelIR, Parameter, State

ELEMENTS = ("J", "S", "M", "H", "T")
DIRECTIONS = ("forward", "reversed")


class StabilityError(NeuroplexError):
    """K2 / K1 outside the stable interval of the ring (the rest point would be unstable)."""


def element_names(n: int) -> tuple[str, ...]:
    """State names of an ``n``-element ring: J, S, M, H, T for 5, else E0 .. E(n-1)."""
    if n < 1:
        raise ModelError(f"wuxing: a ring needs at least 1 element (got {n})")
    return ELEMENTS if n == 5 else tuple(f"E{i}" for i in range(n))


def max_growth_rate(ratio: float, n: int = 5) -> float:
    """Largest real part of the linearised ring's eigenvalues, in units of K1 (uniform K)."""
    m = np.arange(n)
    w = np.exp(-2j * np.pi * m / n)
    lam = w - 1.0 - (1.0 - ratio) * w ** 2
    return float(lam.real.max())


@functools.lru_cache(maxsize=None)
def min_stable_ratio(n: int = 5) -> float:
    """Smallest K2/K1 for which the rest point of an ``n``-ring is stable (bisection;
    ``(7 - 3 sqrt 5) / 2`` for ``n = 5``, 0 when every ratio in (0, 1) is stable)."""
    if max_growth_rate(1e-12, n) < 0:
        return 0.0
    lo, hi = 0.0, 1.0 - 1e-12
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if max_growth_rate(mid, n) >= 0 else (lo, mid)
    return hi


def check_stability(k1: Any, k2: Any, k3: Any, *, where: str = "wuxing neuron") -> None:
    """Raise :class:`StabilityError` naming the first neuron/element whose K2/K1 is outside
    ``(min_stable_ratio(N), 1)`` or whose K1, K3 is not positive. Tensors have shape ``(..., N)``."""
    k1, k2, k3 = (torch.as_tensor(v, dtype=torch.float64) for v in (k1, k2, k3))
    k1, k2, k3 = torch.broadcast_tensors(k1, k2, k3)
    n = k1.shape[-1] if k1.dim() else 1
    lo = min_stable_ratio(n)
    ratio = k2 / k1
    bad = ~((k1 > 0) & (k3 > 0) & (ratio > lo) & (ratio < 1.0))
    if bool(bad.any()):
        idx = tuple(int(i) for i in bad.nonzero()[0])
        names = element_names(n)
        el = names[idx[-1]] if k1.dim() else names[0]
        neuron = f" neuron {idx[:-1][-1]}" if len(idx) > 1 else ""
        raise StabilityError(
            f"{where}{neuron} element {el}: K1={float(k1[idx]):.4g}, K2={float(k2[idx]):.4g}, K3={float(k3[idx]):.4g}, "
            f"K2/K1={float(ratio[idx]):.4g} is outside the stable interval ({lo:.4f}, 1) of a {n}-element ring "
            f"(and K1, K3 must be > 0)")


def ring_rhs(e: torch.Tensor, k1: torch.Tensor, k2: torch.Tensor, k3: torch.Tensor,
             inp: torch.Tensor | float = 0.0, direction: str = "forward") -> torch.Tensor:
    """``dE/dt`` of eq 2.2 (``forward``) or eq 4.3 (``reversed``) on the last axis of ``e``."""
    if direction == "forward":
        return k1 * torch.roll(e, 1, -1) - k2 * e - k3 * e * torch.roll(e, 2, -1) + inp
    if direction == "reversed":
        return (torch.roll(k1, -1, -1) * torch.roll(e, -1, -1) - k2 * e
                - torch.roll(k3, -2, -1) * e * torch.roll(e, -2, -1) + inp)
    raise ModelError(f"wuxing: direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")


def rest_point(k1: torch.Tensor, k2: torch.Tensor, k3: torch.Tensor, *, direction: str = "forward",
               start: torch.Tensor | None = None, dt: float = 0.2, tol: float | None = None,
               max_steps: int = 20_000) -> torch.Tensor:
    """Rest point of each neuron (shape ``(..., N)``) with zero input.

    Closed form ``B0 = (K1 - K2) / K3`` when that ratio is the same on every element of a
    neuron; otherwise Heun relaxation (chunks of 100 steps) from ``start`` (e.g. the rest
    point before a small K change; default: the elementwise formula) until the largest
    ``|dE/dt|`` is below ``tol`` (default ``1e-9``, ``1e-5`` in float32)."""
    k1, k2, k3 = torch.broadcast_tensors(k1, k2, k3)
    if tol is None:
        tol = 1e-5 if k1.dtype == torch.float32 else 1e-9
    b0 = (k1 - k2) / k3
    if bool(torch.all((b0 - b0[..., :1]).abs() <= 1e-12 * b0.abs().clamp(min=1.0))):
        return b0.clone()
    f = lambda t, y: ring_rhs(y, k1, k2, k3, 0.0, direction)  # noqa: E731
    e = (start if start is not None else b0).clone()
    for _ in range(0, max_steps, 100):
        e = heun(f, e, dt, 100, stage_hook=lambda y: y.clamp(min=0.0)).y
        if float(f(0.0, e).abs().max()) < tol:
            return e
    res = float(f(0.0, e).abs().max())
    if not math.isfinite(res) or res > 1e3 * tol:
        raise StabilityError(f"wuxing: rest point did not settle ({direction}, max |dE/dt| = {res:.3g} after "
                             f"{max_steps} steps); check K2/K1 and K3")
    return e


def _values(value: Any, n: int, name: str) -> list[float]:
    vals = [float(value)] * n if np.ndim(value) == 0 else [float(v) for v in value]
    if len(vals) != n:
        raise ModelError(f"wuxing: {name} needs {n} values (one per element), got {len(vals)}")
    return vals


def wuxing(*, n: int = 5, direction: str = "forward", K1: Any = 1.0, K2: Any = 0.5, K3: Any = 0.5,
           initial: Any = None, check: bool = True, **params: float) -> ModelIR:
    """Wuxing five-element neuron (eq 2.2; ``direction="reversed"``: eq 4.3) as an IR model.

    ``n``: ring size (``n = 1``: logistic equation, eq 3.3). ``K1``, ``K2``, ``K3``: one value
    or one per element; single ones override with ``K1_J=...`` (element names). Inputs
    ``I_<element>`` (default 0). ``initial``: one value or one per element (default 0.5 B0).
    ``check``: reject an unstable K2/K1 (:class:`StabilityError`).
    """
    if direction not in DIRECTIONS:
        raise ModelError(f"wuxing: direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    names = element_names(n)
    ks = {"K1": _values(K1, n, "K1"), "K2": _values(K2, n, "K2"), "K3": _values(K3, n, "K3")}
    for key, value in params.items():
        kind, _, el = key.partition("_")
        if kind not in ks or el not in names:
            raise ModelError(f"wuxing: unknown parameter {key!r} (use K1, K2, K3 or K1_<element> with elements "
                             f"{', '.join(names)})")
        ks[kind][names.index(el)] = float(value)
    k1, k2, k3 = (torch.tensor(ks[k], dtype=torch.float64) for k in ("K1", "K2", "K3"))
    if check:
        check_stability(k1, k2, k3, where=f"wuxing neuron ({direction})")
    rest = rest_point(k1, k2, k3, direction=direction) if check else (k1 - k2) / k3
    init = [0.5 * float(b) for b in rest] if initial is None else _values(initial, n, "initial")
    sym = {name: sympy.Symbol(name) for name in names}
    par = {f"{k}_{el}": sympy.Symbol(f"{k}_{el}") for k in ks for el in names}
    inp = {el: sympy.Symbol(f"I_{el}") for el in names}
    sign = 1 if direction == "forward" else -1
    derivs = {}
    for i, el in enumerate(names):
        a, b = names[(i - sign) % n], names[(i - 2 * sign) % n]
        k1_el = names[i] if direction == "forward" else names[(i + 1) % n]
        k3_el = names[i] if direction == "forward" else names[(i + 2) % n]
        derivs[el] = (par[f"K1_{k1_el}"] * sym[a] - par[f"K2_{el}"] * sym[el]
                      - par[f"K3_{k3_el}"] * sym[el] * sym[b] + inp[el])
    return ModelIR(
        name="wuxing" if direction == "forward" else "wuxing_reversed",
        states=[State(el, init[i], "1", f"element {el}") for i, el in enumerate(names)],
        parameters=[Parameter(f"{k}_{el}", ks[k][i], "1", learnable=(k == "K3"), description=f"{k} of element {el}")
                    for k in ("K1", "K2", "K3") for i, el in enumerate(names)],
        derivatives=derivs,
        inputs={f"I_{el}": 0.0 for el in names},
        time_unit="1",
        metadata={"rest": [float(b) for b in rest], "direction": direction, "factory": "wuxing",
                  "factory_kwargs": {"n": n, "direction": direction, **ks}},
    )


def wuxing_reversed(**kwargs: Any) -> ModelIR:
    """Reversed (backward) Wuxing neuron, eq 4.3 (K1 and K3 re-indexed to i+1, i+2)."""
    return wuxing(direction="reversed", **kwargs)

