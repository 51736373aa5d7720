"""Distance acceptance of equilibria (``accept="distance"``, the default of ``equilibrate``).

A residual below ``tol`` says how fast a state still moves, not how far it is from the fixed
point: ``y' = -1e-7 (y - 5)`` at ``y = 0`` has residual ``5e-7``. So after a method returns,
each SUCCESS sample's Newton correction ``dy = -J^+ g`` (``g`` the residual function, ``J``
its Jacobian: the model's own where it has one, else autograd, one batched pass) must satisfy
``|dy_i| <= distance_atol + distance_rtol * |y_i|`` for every state ``i``. The correction is
the least-squares one of :func:`neuroplex.newton.least_squares_correction`, the SBML
steady-state solver's fallback: a conservation law or a state that never moves (a singular
``J``, ``c^T g = 0``) adds no distance, while a residual with a part outside the range of
``J`` beyond rounding (a drift with no fixed point nearby, or a mode slower than the dtype
resolves next to the fastest: singular values below ``n * eps * s_max`` count as zero) fails.

Samples that fail resume the method from where they are, with the residual tolerance scaled
down by how far off they were (at most ``ROUNDS`` times, within the iterations or steps left
of ``max_iter``/``max_steps``); those still failing end ``NOT_CONVERGED`` with the distance in
``meta["reasons"]``. The check is one Jacobian and one batched LU solve per call (not per
iteration), a truncated SVD only for the samples the LU solve does not settle; the resumed runs
keep the autograd graph, as the methods do.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import torch

from neuroplex.dynamics import Dynamics
from neuroplex.integration import Rhs
from neuroplex.newton import least_squares_correction
from neuroplex.solution import Status

from .equilibrium import EquilibriumProblem, EquilibriumResult, EquilibriumSettings
from .rosenbrock import batched_jacobian

#: the acceptance tests of ``TorchSolver(accept=...)``: residual and distance, or the residual alone
ACCEPT = ("distance", "residual")
#: resumptions of the samples whose distance is too large
ROUNDS = 3
#: the part of the residual outside the range of ``J`` counts as rounding (a conservation law)
#: up to this many ulps of ``(|J| |y|)_i + |g_i|`` per entry; above, no fixed point is near
NOISE_ULPS = 1e3

Solve = Callable[[EquilibriumProblem, torch.Tensor, EquilibriumSettings], EquilibriumResult]


def residual_function(dyn: Dynamics, p: torch.Tensor, u: torch.Tensor | None, method: str) -> Rhs:
    """``g(t, y)`` whose zero ``method`` looks for: ``rhs`` for ``ode`` and for the default map
    ``y + rhs`` (the model's analytic Jacobian rides along as ``g.jacobian``), else
    ``F(y) - y`` of the model's own ``fixed_point_map``."""
    if method == "ode" or type(dyn).fixed_point_map is Dynamics.fixed_point_map:
        return dyn.rhs_bound(p, u)

    def g(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return dyn.fixed_point_map(y, p, u) - y

    return g


def newton_distance(g: Rhs, y: torch.Tensor, rows: torch.Tensor, rtol: float, atol: float,
                    mode: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ratio, dist)`` per sample: ``max_i |dy_i| / (atol + rtol |y_i|)`` (accepted where
    ``<= 1``) and ``max_i |dy_i|``; both ``inf`` where ``J`` or ``g`` is not finite or ``g`` has
    a part outside the range of ``J`` beyond rounding; ``nan`` outside ``rows`` (a bool mask, the
    samples to check: ``g`` sees the whole batch). ``mode``: :func:`.rosenbrock.batched_jacobian`'s cache.

    An LU solve settles the rows where it gives a correction within bounds that solves
    ``J dy = -g`` up to rounding (any such ``dy`` bounds the distance); the others (too far,
    singular or ill-conditioned ``J``) get the least-squares correction of a truncated SVD,
    several times dearer (:func:`neuroplex.newton.least_squares_correction`)."""
    y = y.detach()
    t = torch.zeros(y.shape[0], dtype=y.dtype, device=y.device)
    jac = batched_jacobian(g, t, y, mode)[0].detach()
    with torch.no_grad():
        f = g(t, y)
        idx = torch.nonzero(rows).flatten()
        jac, f, yr = jac[idx], f[idx], y[idx]
        finite = torch.isfinite(jac).flatten(1).all(-1) & torch.isfinite(f).all(-1)
        jac, f = torch.nan_to_num(jac), torch.nan_to_num(f)
        # rounding of g_i: ulps of its terms, bounded by (|J| |y|)_i + |g_i| (mass-action terms)
        ulp = NOISE_ULPS * torch.finfo(y.dtype).eps
        noise = ulp * ((jac.abs() @ yr.abs()[..., None])[..., 0] + f.abs())
        bound = atol + rtol * yr.abs()
        dy, info = torch.linalg.solve_ex(jac, -f)
        solved = (info == 0) & torch.isfinite(dy).all(-1)
        dy = torch.nan_to_num(dy)
        off = ((jac @ dy[..., None])[..., 0] + f).abs() - ulp * (jac.abs() @ dy.abs()[..., None])[..., 0]
        ok = solved & (dy.abs() <= bound).all(-1) & (off <= noise).all(-1)
        ok, in_range = ok & finite, torch.ones_like(ok)
        hard = torch.nonzero(~ok & finite).flatten()
        if hard.numel():
            ls, consistent = least_squares_correction(jac[hard], f[hard], noise[hard])
            dy, in_range = dy.index_put((hard,), ls), in_range.index_put((hard,), consistent)
        valid = finite & in_range
        nan = torch.full_like(t, math.nan)
        ratio = nan.index_put((idx,), torch.where(valid, (dy.abs() / bound).amax(-1), math.inf))
        dist = nan.index_put((idx,), torch.where(valid, dy.abs().amax(-1), math.inf))
    return ratio, dist


def accept_by_distance(solve: Solve, problem: EquilibriumProblem, dyn: Dynamics, p: torch.Tensor,
                       u: torch.Tensor | None, method: str, s: EquilibriumSettings, out: EquilibriumResult) -> tuple[EquilibriumResult, dict[int, str]]:
    """``out`` with every SUCCESS sample's distance to the fixed point bounded (module docstring):
    the samples too far resumed with ``solve`` or, failing that, ``NOT_CONVERGED``; and why, per sample.

    Every call sees the whole batch (a model may hold per-sample data bound to it, as EqProp's
    input batch is): the resumed run gives the other samples ``tol = inf``, so they stop at once,
    and keeps only the rows it resumed."""
    if not dyn.n_states:
        return out, {}
    budget_name = "max_steps" if method == "ode" else "max_iter"
    budget = int(getattr(s, budget_name))
    y, iters, res, status = out.y, out.iterations.clone(), out.residual.clone(), out.status.clone()
    reasons: dict[int, str] = {}
    mode, tol = ["batched"], s.tol
    allowed = f"distance_atol {s.distance_atol:g} + distance_rtol {s.distance_rtol:g} * |y|"
    g = residual_function(dyn, p, u, method)
    resumed = torch.zeros_like(status, dtype=torch.bool)
    first = torch.full_like(res, math.nan)  # the distance when a sample was first found too far
    for round_ in range(ROUNDS + 1):
        success = status == Status.SUCCESS
        if not bool(success.any()):
            break
        ratio, dist = newton_distance(g, y, success, s.distance_rtol, s.distance_atol, mode)
        far = success & ~(ratio <= 1)
        if not bool(far.any()):
            break
        first = torch.where(far & ~resumed, dist.to(first.dtype), first)
        left = budget - int(iters[far].max())
        give_up = far & (~torch.isfinite(dist) | (round_ == ROUNDS or left <= 0))
        for b in torch.nonzero(give_up).flatten().tolist():
            if not math.isfinite(float(dist[b])):
                reasons[b] = (f"residual {float(res[b]):.3g} below tol but the Jacobian is singular and the residual "
                              f"lies outside its range: no fixed point near this state (a drift, or a mode too slow "
                              f"for the dtype to resolve)")
            else:
                reasons[b] = (f"residual {float(res[b]):.3g} below tol but the Newton correction puts the fixed "
                              f"point {float(dist[b]):.3g} away (more than {allowed}) after {int(iters[b])} "
                              f"iterations: a slow mode; raise {budget_name} or lower tol")
        status = torch.where(give_up, torch.full_like(status, Status.NOT_CONVERGED), status)
        again = far & ~give_up
        if not bool(again.any()):
            break
        tol = min(tol, float((res[again] / (2 * ratio[again])).min()))
        tols = torch.where(again, torch.full_like(res, tol), torch.full_like(res, math.inf))
        redo = solve(problem, y, dataclasses.replace(s, tol=tols, **{budget_name: left}))
        y = torch.where(again[:, None], redo.y, y)
        iters = torch.where(again, iters + redo.iterations, iters)
        res = torch.where(again, redo.residual.to(res.dtype), res)
        status = torch.where(again, redo.status, status)
        resumed |= again
    for b in torch.nonzero(resumed & (status != Status.SUCCESS)).flatten().tolist():
        reasons.setdefault(b, f"residual below tol but the Newton correction put the fixed point "
                              f"{float(first[b]):.3g} away (more than {allowed}): a slow mode; resumed with tol "
                              f"{tol:.3g}, it did not converge within {budget_name} {budget}: raise {budget_name} "
                              f"or use a faster method (anderson)")
    return EquilibriumResult(y, iters, res, status), reasons
