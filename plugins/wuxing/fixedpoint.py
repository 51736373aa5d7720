"""Fixed-point training of one Wuxing neuron (framework paper, section 3.2, eq 3.5 / 3.6).

Store a target fixed point ``E*`` by repeating: relax the ring (Heun) from its current state,
compare ``E`` with ``E*``, adjust one parameter family elementwise. The paper's exact update
(eq 3.5 / 3.6) was not recoverable; the rules used (see ``docs/wuxing.md``) are

* ``K3``: ``K3_i <- K3_i E_i / E*_i`` (ratio rule: too high an element gets more damping),
* ``K1``: ``K1_i <- K1_i exp(+eta (E*_i - E_i))``, ``K2``: ``K2_i <- K2_i exp(-eta (E*_i - E_i))``.

Before iterating, the closed form of the adjusted parameter at ``E*`` (the other two fixed)
is computed from ``0 = K1_i a_i - K2_i E*_i - K3_i E*_i b_i`` with ``a, b`` = ``E*_{i-1},
E*_{i-2}`` (``prev``, eq 2.2) or ``E*_{i+1}, E*_{i+2}`` (``next``: the reversed equation's
indexing, each element with its own K). A target that needs a non-positive parameter, or
whose fixed point would be unstable, is reported ``infeasible`` with the reason, never
iterated into a stall.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from neuroplex.errors import NeuroplexError
from neuroplex.fixed_step import heun

from .neuron import _values, element_names

CONVENTIONS = ("prev", "next")
PARAMETERS = ("K1", "K2", "K3")


@dataclass
class FixedPointResult:
    """Outcome of :func:`train_fixed_point`: ``status`` is ``converged``, ``infeasible`` or
    ``not converged``; ``errors[k]`` the max ``|E - E*|`` after relaxation ``k`` (before
    adjustment ``k + 1``); ``trajectory`` ``(times, states)`` of every relaxation, for plots."""

    status: str
    reason: str
    target: torch.Tensor
    k: dict[str, torch.Tensor]
    state: torch.Tensor
    required: torch.Tensor
    errors: list[float] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    states: list[list[float]] = field(default_factory=list)

    @property
    def adjustments(self) -> int:
        """Parameter adjustments made (relaxations minus one when converged)."""
        return max(len(self.errors) - 1, 0) if self.status == "converged" else len(self.errors)


def _neighbours(e: torch.Tensor, convention: str) -> tuple[torch.Tensor, torch.Tensor]:
    s = 1 if convention == "prev" else -1
    return torch.roll(e, s, -1), torch.roll(e, 2 * s, -1)


def rhs(e: torch.Tensor, k1: torch.Tensor, k2: torch.Tensor, k3: torch.Tensor, convention: str) -> torch.Tensor:
    """``dE_i/dt = K1_i a_i - K2_i E_i - K3_i E_i b_i`` with the convention's neighbours."""
    a, b = _neighbours(e, convention)
    return k1 * a - k2 * e - k3 * e * b


def required_parameter(target: torch.Tensor, k: dict[str, torch.Tensor], param: str, convention: str) -> torch.Tensor:
    """The value of ``param`` (per element) that makes ``target`` a fixed point, the others fixed."""
    a, b = _neighbours(target, convention)
    if param == "K3":
        return (k["K1"] * a - k["K2"] * target) / (target * b)
    if param == "K1":
        return (k["K2"] * target + k["K3"] * target * b) / a
    return (k["K1"] * a - k["K3"] * target * b) / target


def _jacobian_growth(e: torch.Tensor, k: dict[str, torch.Tensor], convention: str) -> float:
    jac = torch.autograd.functional.jacobian(lambda y: rhs(y, k["K1"], k["K2"], k["K3"], convention), e)
    return float(torch.linalg.eigvals(jac).real.max())


def feasibility(target: torch.Tensor, k: dict[str, torch.Tensor], param: str, convention: str) -> tuple[bool, str, torch.Tensor]:
    """``(feasible, reason, required)``: can adjusting ``param`` alone store ``target``?"""
    names = element_names(target.shape[-1])
    need = required_parameter(target, k, param, convention)
    bad = [i for i in range(len(names)) if not (math.isfinite(float(need[i])) and float(need[i]) > 0)]
    if bad:
        i = bad[0]
        a, b = _neighbours(target, convention)
        return False, (f"element {names[i]} would need {param} = {float(need[i]):.4g} (must be > 0) to hold the target "
                       f"{float(target[i]):.4g} with {convention!r} indexing (neighbours {float(a[i]):.4g}, "
                       f"{float(b[i]):.4g})"), need
    growth = _jacobian_growth(target, {**k, param: need}, convention)
    if growth >= 0:
        return False, f"the target would be an unstable fixed point (largest growth rate {growth:.3g})", need
    return True, "", need


def train_fixed_point(target: Sequence[float], *, K1: Any = 1.0, K2: Any = 0.5, K3: Any = 0.5, param: str = "K3",
                      convention: str = "next", max_adjustments: int = 40, tol: float = 1e-2,
                      relax_time: float = 100.0, dt: float = 0.1, eta: float = 0.5, record_every: int = 10) -> FixedPointResult:
    """Store ``target`` as the fixed point of one ring by adjusting ``param`` (section 3.2)."""
    if param not in PARAMETERS:
        raise NeuroplexError(f"fixed-point training: param must be one of {', '.join(PARAMETERS)}, not {param!r}")
    if convention not in CONVENTIONS:
        raise NeuroplexError(f"fixed-point training: convention must be one of {', '.join(CONVENTIONS)}, not {convention!r}")
    tgt = torch.tensor([float(v) for v in target], dtype=torch.float64)
    n = tgt.numel()
    if n < 1 or bool((tgt <= 0).any()):
        raise NeuroplexError(f"fixed-point training: the target needs positive values, got {list(target)}")
    k = {name: torch.tensor(_values(v, n, name), dtype=torch.float64) for name, v in (("K1", K1), ("K2", K2), ("K3", K3))}
    ok, reason, need = feasibility(tgt, k, param, convention)
    state = (k["K1"] - k["K2"]) / k["K3"]
    result = FixedPointResult("infeasible", reason, tgt, k, state, need)
    if not ok:
        return result
    steps = max(1, round(relax_time / dt))
    f = lambda t, y: rhs(y, k["K1"], k["K2"], k["K3"], convention)  # noqa: E731
    t_off = 0.0

    def record(step: int, t: float, y: torch.Tensor) -> None:
        if step % record_every == 0:
            result.times.append(t_off + t)
            result.states.append(y.tolist())

    result.times.append(0.0)
    result.states.append(state.tolist())
    for adjustment in range(max_adjustments + 1):
        state = heun(f, state, dt, steps, step_hook=record).y
        t_off += steps * dt
        err = (state - tgt).abs()
        result.errors.append(float(err.max()))
        if not math.isfinite(result.errors[-1]):
            result.status, result.reason = "not converged", f"state became non-finite after {adjustment} adjustments"
            break
        if result.errors[-1] < tol:
            result.status, result.reason = "converged", f"max |E - E*| = {result.errors[-1]:.3g} < {tol}"
            break
        if adjustment == max_adjustments:
            result.status = "not converged"
            result.reason = f"max |E - E*| = {result.errors[-1]:.3g} after {max_adjustments} adjustments"
            break
        if param == "K3":
            k["K3"] = k["K3"] * state / tgt
        elif param == "K1":
            k["K1"] = k["K1"] * torch.exp(eta * (tgt - state))
        else:
            k["K2"] = k["K2"] * torch.exp(-eta * (tgt - state))
    result.state = state
    return result


def plot_fixed_point(result: FixedPointResult, path: Any, title: str = "") -> None:
    """The element trajectories converging to the target (framework paper, Fig. 2 style)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = element_names(result.target.numel())
    states = torch.tensor(result.states)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for i, name in enumerate(names):
        line, = ax.plot(result.times, states[:, i].numpy(), label=name, lw=1.2)
        ax.axhline(float(result.target[i]), color=line.get_color(), ls=":", lw=0.8)
    ax.set_xlabel("time (all relaxations)")
    ax.set_ylabel("E")
    ax.set_title(title or f"fixed-point training: {result.status} ({len(result.errors)} relaxations)", fontsize=9)
    ax.legend(ncol=len(names), fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
