"""Steady states of SBML models: Newton on the moiety-reduced system, then stiff integration.

1. Conservation laws come from the stoichiometry (:mod:`neuroplex.sbml.moieties`) and are
   held at the totals of the starting state; the reduced system (independent states only)
   has a non-singular Jacobian where the full one is singular (Reder 1988).
2. Damped Newton on the reduced system, with the model's generated symbolic Jacobian
   (autograd where there is none), all parameter sets of a batch at once.
3. A Newton result is accepted only if it is a steady state *reached from the start*: no
   reaction-driven species that started non-negative is negative, and linearly stable (every eigenvalue of the reduced Jacobian has a
   negative real part). Otherwise pseudo-transient continuation (implicit Euler steps that
   grow into Newton steps, Kelley & Keyes 1998) runs from the start; if that fails too, the model is integrated with the
   stiff method (rosenbrock) over growing horizons up to ``t_max``, and
   Newton polishes the end point of each horizon. A trajectory that keeps circling an
   unstable fixed point (an oscillation) or spends its step budget ends without a steady state.

Convergence is relative to each state's own scale: the Newton correction ``dy`` (the
distance to the steady state) must satisfy ``max_i |dy_i| / (|y_i| + a_i) <= tol``, with
``a_i = atol * min(1, |V|)`` for a species integrated as an amount in a compartment of size
``V`` (the absolute scale follows small compartments down, as the integrator's does), and
``a_i = atol`` elsewhere; this is the test of NLEQ2 (roadrunner) and KINSOL.
A sample is SUCCESS only when its returned state meets this test.
A model with events is refused, as roadrunner's ``steadyState()`` refuses it, unless
``ignore_events=True``: then Newton and the integration fallback ignore its events. A model
whose rates read the time (a time-dependent stimulus) has no steady state and is refused.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from neuroplex.errors import ModelError
from neuroplex.newton import least_squares_correction
from neuroplex.settings import StepControl
from neuroplex.solution import Solution, Status

from .program import SBMLProgram
from .runner import compiled, default_integrator
from .moieties import Moieties, find_moieties, symbolic_stoichiometry

#: growing integration horizons of the fallback, in model time units (up to ``t_max``)
HORIZONS = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7)


def _jacobian(prog: SBMLProgram, f: Any, t: torch.Tensor, y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``(B, n, n)``: the generated symbolic Jacobian, else autograd (one batched pass)."""
    got = f.jacobian(t, y)
    if got is not None:
        return got[0]
    b, n = y.shape
    rows = y.detach()[:, None, :].expand(b, n, n).reshape(b * n, n).clone().requires_grad_(True)
    rep = prog.rhs_bound(p.repeat_interleave(n, 0))
    with torch.enable_grad():
        out = rep(t.repeat_interleave(n, 0), rows).reshape(b, n, n)
        diag = torch.diagonal(out, dim1=1, dim2=2).sum()
        if not diag.requires_grad:
            return y.new_zeros(b, n, n)
        (grad,) = torch.autograd.grad(diag, rows)
    return grad.reshape(b, n, n)


class _Problem:
    """One batch of parameter sets with its moieties and scales."""

    def __init__(self, prog: SBMLProgram, mo: Moieties, p: torch.Tensor, y_start: torch.Tensor, atol: torch.Tensor,
                 tol: float, species: list[int]):
        self.prog, self.mo, self.p, self.atol, self.tol = prog, mo, p, atol, tol
        #: iterations go on to this, well inside ``tol``
        self.aim = tol * 1e-3
        self.y_base = y_start.clone()
        self.totals = mo.totals(y_start)
        self.species = species
        #: (B, len(species)): species that must stay non-negative (those that start so)
        self.nonneg = y_start[:, species] >= 0 if species else None
        self.f = prog.rhs_bound(p)
        self.t = torch.zeros(p.shape[0], dtype=torch.float64)
        self.moving = [i for i in range(prog.n) if i not in mo.fixed]

    def rate(self, y: torch.Tensor) -> torch.Tensor:
        """``max_i |f_i| / (|y_i| + a_i)`` per sample: the fastest relative change (inf where not finite)."""
        if not self.moving:
            return torch.zeros(y.shape[0], dtype=y.dtype)
        f = self.f(self.t, y)[:, self.moving]
        r = (f.abs() / (y[:, self.moving].abs() + self.atol[:, self.moving])).amax(-1)
        return torch.where(torch.isfinite(r), r, torch.full_like(r, math.inf))

    def _step(self, y: torch.Tensor) -> torch.Tensor:
        """The Newton correction ``-J_red^-1 f_ind`` (least squares where ``J_red`` is singular)."""
        jr = self.mo.reduce_jacobian(_jacobian(self.prog, self.f, self.t, y, self.p))
        fr = self.f(self.t, y)[:, self.mo.independent]
        step, info = torch.linalg.solve_ex(jr, -fr)
        bad = (info != 0) | ~torch.isfinite(step).all(-1)
        if bool(bad.any()):
            ls = least_squares_correction(torch.nan_to_num(jr), torch.nan_to_num(fr))[0]
            step = torch.where(bad[:, None], ls, step)
        return step

    def residual(self, y: torch.Tensor) -> torch.Tensor:
        """The scaled distance to the steady state, ``max_i |dy_i| / (|y_i| + a_i)`` over the
        moving states, ``dy`` the Newton correction (dependent states through the laws): the
        relative error of each state, the test NLEQ2 (roadrunner) and KINSOL use."""
        if not self.moving or not self.mo.independent:
            return self.rate(y)
        step = self._step(y)
        delta = torch.zeros_like(y)
        delta[:, self.mo.independent] = step
        if self.mo.dependent:
            delta[:, self.mo.dependent] = step @ self.mo._dep_map(y.dtype)[1].T
        r = (delta.abs() / (y.abs() + self.atol))[:, self.moving].amax(-1)
        ok = torch.isfinite(r) & torch.isfinite(self.f(self.t, y)).all(-1)
        return torch.where(ok, r, torch.full_like(r, math.inf))

    def _nonnegative(self, y: torch.Tensor) -> torch.Tensor:
        """No reaction-driven species that started non-negative is below ``-1000 a_i``."""
        if not self.species:
            return torch.ones(y.shape[0], dtype=torch.bool)
        above = y[:, self.species] >= -self.atol[:, self.species] * 1e3
        return (above | ~self.nonneg).all(-1)

    def acceptable(self, y: torch.Tensor) -> torch.Tensor:
        """Finite, no species below ``-a_i``, and linearly stable (reduced Jacobian)."""
        ok = torch.isfinite(y).all(-1)
        ok &= self._nonnegative(y)
        if self.mo.independent and bool(ok.any()):
            jr = self.mo.reduce_jacobian(_jacobian(self.prog, self.f, self.t, y, self.p))
            # (a small positive part is rounding around a zero eigenvalue of a slow mode)
            eig = torch.linalg.eigvals(torch.nan_to_num(jr)).real
            size = eig.abs().amax(-1).clamp(min=1e-300)
            ok &= (eig.amax(-1) <= 1e-9 * size) & torch.isfinite(jr).all(-1).all(-1)
        return ok

    def newton(self, y0: torch.Tensor, max_iter: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Damped Newton from ``y0`` (totals of the problem); returns ``(y, converged, iterations)``."""
        mo = self.mo
        x = y0[:, mo.independent].clone()
        y = mo.complete(x, self.y_base, self.totals)
        b = y.shape[0]
        iters = torch.zeros(b, dtype=torch.long)
        res = self.residual(y)
        done = res <= self.aim
        if not mo.independent:
            return y, res <= self.tol, iters
        for _ in range(max_iter):
            active = ~done & torch.isfinite(res)
            if not bool(active.any()):
                break
            step = torch.where(active[:, None], self._step(y), torch.zeros_like(x))
            step = torch.where(active[:, None], step, torch.zeros_like(step))
            alpha = torch.ones(b, dtype=y.dtype)
            merit = self._merit(y)
            for _ in range(12):  # halve the step until the scaled residual falls
                x_new = x + alpha[:, None] * step
                y_new = mo.complete(x_new, self.y_base, self.totals)
                better = self._merit(y_new) < merit
                if bool((better | ~active).all()):
                    break
                alpha = torch.where(better | ~active, alpha, alpha / 2)
            x = torch.where(active[:, None], x_new, x)
            y = mo.complete(x, self.y_base, self.totals)
            iters += active.long()
            res = self.residual(y)
            done = done | (res <= self.aim)
        return y, res <= self.tol, iters

    def continuation(self, y0: torch.Tensor, max_iter: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pseudo-transient continuation (Kelley & Keyes 1998): implicit Euler steps
        ``(I/dt - J) dx = f`` on the reduced system, ``dt`` growing as the scaled residual falls
        (switched evolution relaxation, at least doubling per accepted step), so the iterates follow the trajectory while far from
        the steady state and turn into Newton steps near it. A step that leaves a species
        negative or not finite is retried with ``dt / 4``. Returns ``(y, converged, iterations)``."""
        mo = self.mo
        x = y0[:, mo.independent].clone()
        y = mo.complete(x, self.y_base, self.totals)
        b, m = x.shape
        iters = torch.zeros(b, dtype=torch.long)
        res = self.residual(y)
        done = res <= self.aim
        if not m:
            return y, res <= self.tol, iters
        dt = 0.1 / self.rate(y).clamp(min=1e-12)
        merit = self._merit(y)
        eye = torch.eye(m, dtype=y.dtype)
        for _ in range(max_iter):
            active = ~done & torch.isfinite(merit)
            if not bool(active.any()):
                break
            jr = self.mo.reduce_jacobian(_jacobian(self.prog, self.f, self.t, y, self.p))
            fr = self.f(self.t, y)[:, mo.independent]
            step, info = torch.linalg.solve_ex(eye / dt[:, None, None] - jr, fr)
            x_new = x + step
            y_new = mo.complete(x_new, self.y_base, self.totals)
            ok = (info == 0) & torch.isfinite(y_new).all(-1)
            ok &= self._nonnegative(y_new)
            merit_new = self._merit(y_new)
            ok &= torch.isfinite(merit_new)
            take = active & ok
            x = torch.where(take[:, None], x_new, x)
            y = mo.complete(x, self.y_base, self.totals)
            growth = (merit / merit_new.clamp(min=1e-300)).sqrt().clamp(2.0, 10.0)
            dt = torch.where(take, (dt * growth).clamp(max=1e15), torch.where(active, dt / 4, dt))
            merit = torch.where(take, merit_new, merit)
            iters += active.long()
            res = self.residual(y)
            done = done | (res <= self.aim)
        return y, res <= self.tol, iters

    def _merit(self, y: torch.Tensor) -> torch.Tensor:
        f = self.f(self.t, y)[:, self.moving]
        m = (f / (y[:, self.moving].abs() + self.atol[:, self.moving])).square().sum(-1)
        return torch.where(torch.isfinite(m), m, torch.full_like(m, math.inf))


def _time_dependent(model: Any) -> list[str]:
    """The derivatives and assignments through which the rates read the time symbol."""
    uses = {k: {sym.name for sym in getattr(v, "free_symbols", ())} for k, v in model.assignments.items()}
    direct = [k for k, v in model.derivatives.items() if model.time in getattr(v, "free_symbols", ())]
    stack = [sym.name for v in model.derivatives.values() for sym in getattr(v, "free_symbols", ())]
    seen: set[str] = set()
    while stack:  # the assignments the rates use, directly or not
        name = stack.pop()
        if name in seen or name not in uses:
            continue
        seen.add(name)
        stack.extend(uses[name])
    return direct + [k for k in uses if k in seen and model.time.name in uses[k]]


def _species_states(model: Any) -> list[int]:
    """Species whose amounts only reactions change (not rate rules): these cannot cross zero."""
    info = (model.metadata.get("sbml") or {}).get("species") or {}
    names = {v["amount_state"] or sid for sid, v in info.items()}
    _, linear, fixed, _ = symbolic_stoichiometry(model)
    driven = set(linear) | set(fixed)
    return [i for i, s in enumerate(model.state_names) if s in names and i in driven]


def steady_state(model: Any, *, params: torch.Tensor | None = None, y0: torch.Tensor | None = None,
                 tol: float = 1e-9, atol: float = 1e-12, max_iter: int = 50, t_max: float = 1e7,
                 rtol: float = 1e-8, integrate: bool = True, max_steps: int = 3000,
                 ignore_events: bool = False,
                 continuation_iter: int = 300) -> Solution:
    """Steady states of SBML model ``model``, one per parameter set (see the module docstring).

    ``params``: ``(P,)`` or ``(B, P)`` in ``model.parameter_names`` order; ``y0``: starting
    states ``(n,)``/``(B, n)`` (default: the model's initial values), whose conserved totals
    are kept. ``tol``: the largest relative distance ``|dy_i| / (|y_i| + a_i)`` to the steady
    state accepted (``dy`` the Newton correction); ``atol``: the absolute scale ``a``
    (concentration units). ``integrate=False``
    skips the integration fallback, whose steps per sample ``max_steps`` bounds. A model with
    events is refused (as roadrunner does) unless ``ignore_events=True``. The result's ``ys`` is ``(B, n_names)``: SBML ids (species
    as the file declares them), then the integrated states (``*_amount``); ``stats`` holds
    ``residual`` (that distance), ``rate`` (``max_i |f_i| / (|y_i| + a_i)``), ``iterations``
    (Newton and continuation), ``t_integrated`` per sample; ``meta["moieties"]``
    the conservation laws, ``meta["reasons"]`` why a sample has no steady state.
    """
    if model.events and not ignore_events:
        raise ModelError(f"model {model.name!r} has events ({', '.join(e.name for e in model.events[:5])}): "
                              f"its steady state is not defined by its rates alone; "
                              f"steady_state(..., ignore_events=True) finds that of its continuous part")
    clock = _time_dependent(model)
    if clock:
        raise ModelError(f"model {model.name!r}: its rates depend on time explicitly (through "
                         f"{', '.join(clock[:5])}), so it has no steady state; simulate it instead")
    prog = compiled(model)
    p = prog.default_params() if params is None else torch.as_tensor(params, dtype=torch.float64)
    p = p[None] if p.dim() == 1 else p
    if y0 is not None:
        y0 = torch.as_tensor(y0, dtype=torch.float64).reshape(-1, prog.n)
        p = p.expand(max(p.shape[0], y0.shape[0]), -1)
    p = p.contiguous()
    b = p.shape[0]
    y_init = prog.initial_state(0.0, p) if y0 is None else y0.expand(b, -1).clone()
    scale = prog.atol_scale(p, y_init, by_magnitude=False)  # the convergence test's scale (module docstring)
    a = atol * (scale if scale is not None else torch.ones_like(y_init))
    species = _species_states(model)

    # conservation laws depend on parameters only through stoichiometries: group by those
    _, _, _, used = symbolic_stoichiometry(model)
    cols = [model.parameter_names.index(u) for u in sorted(used) if u in model.parameter_names]
    groups: dict[tuple[float, ...], list[int]] = {}
    for i in range(b):
        groups.setdefault(tuple(float(v) for v in p[i, cols]), []).append(i)

    y_out = y_init.clone()
    status = torch.full((b,), int(Status.NOT_CONVERGED), dtype=torch.long)
    iterations = torch.zeros(b, dtype=torch.long)
    t_done = torch.zeros(b, dtype=torch.float64)
    residual = torch.full((b,), math.inf, dtype=torch.float64)
    rate = residual.clone()
    laws: list[dict[str, float]] = []
    reasons: dict[int, str] = {}
    for key, rows in groups.items():
        idx = torch.tensor(rows)
        mo = find_moieties(model, {model.parameter_names[c]: v for c, v in zip(cols, key)} if cols else None)
        if not laws:
            laws = [{model.state_names[j]: float(c) for j, c in enumerate(row) if c != 0} for row in mo.laws]
        prob = _Problem(prog, mo, p[idx], y_init[idx], a[idx], tol, species)
        y, ok, its = prob.newton(y_init[idx], max_iter)
        ok = ok & prob.acceptable(y)
        iterations[idx] = its
        if not bool(ok.all()):  # continuation from the start for the others
            y2, ok2, its2 = prob.continuation(y_init[idx], continuation_iter)
            ok2 = ~ok & ok2 & prob.acceptable(y2)
            iterations[idx] += torch.where(ok, 0, its2)
            y = torch.where(ok2[:, None], y2, y)
            ok = ok | ok2
        y_out[idx] = torch.where(ok[:, None], y, y_out[idx])
        status[idx] = torch.where(ok, int(Status.SUCCESS), status[idx])
        if integrate and not bool(ok.all()):
            _integrate(prog, prob, idx, ~ok, y_init[idx], t_max, rtol, max_iter, max_steps, y_out, status,
                       iterations, t_done, reasons)
        residual[idx] = prob.residual(y_out[idx])
        rate[idx] = prob.rate(y_out[idx])
    # the promise: SUCCESS only where the returned state meets the test
    wrong = (status == Status.SUCCESS) & ~(residual <= tol)
    for i in torch.nonzero(wrong).flatten().tolist():
        reasons[i] = f"residual {float(residual[i]):.3g} above tol {tol:g}"
    status = torch.where(wrong, int(Status.NOT_CONVERGED), status)
    for i in torch.nonzero(status == Status.NOT_CONVERGED).flatten().tolist():
        reasons.setdefault(i, "Newton did not converge to a stable steady state (integration skipped)")
    status = torch.where((status != Status.SUCCESS) & ~torch.isfinite(y_out).all(-1), int(Status.NONFINITE), status)
    values = prog.observe(torch.zeros(b, 1, dtype=torch.float64), y_out[:, None, :], p[:, None, :])[:, 0]
    extra = [i for i, s in enumerate(prog.state_names) if s not in prog.output_names]
    names = [*prog.output_names, *(prog.state_names[i] for i in extra)]
    ys = torch.cat([values, y_out[:, extra]], -1)
    return Solution(ys=ys, ts=None, names=names, status=status,
                    stats={"residual": residual, "rate": rate, "iterations": iterations, "t_integrated": t_done},
                    solver="torch", method="steady-state (newton, rosenbrock)",
                    meta={"model": model.name, "moieties": laws, "tol": tol, "atol": atol, "reasons": reasons})


def _integrate(prog: SBMLProgram, prob: _Problem, idx: torch.Tensor, todo: torch.Tensor, y_start: torch.Tensor,
               t_max: float, rtol: float, max_iter: int, max_steps: int, y_out: torch.Tensor, status: torch.Tensor,
               iterations: torch.Tensor, t_done: torch.Tensor, reasons: dict[int, str]) -> None:
    """Integrate the samples ``todo`` (a mask over ``idx``) over growing horizons; after each,
    accept the end point if it is a steady state, else try Newton from it.

    A sample stops without a steady state when its step budget ``max_steps`` is spent, or
    when at two successive horizons Newton from its end point finds an unstable fixed point
    (a trajectory that settles reaches a stable one: this is an oscillation around it)."""
    integrator = default_integrator()
    y = y_start.clone()
    t = 0.0
    steps = torch.zeros(len(idx), dtype=torch.long)
    strikes = torch.zeros(len(idx), dtype=torch.long)
    for horizon in HORIZONS:
        if not bool(todo.any()) or t >= t_max:
            break
        t_next = min(horizon, t_max)
        sub = torch.nonzero(todo).flatten()
        budget = max(1, int(max_steps - int(steps[sub].max())))
        res_run = integrator(prog.rhs_bound(prob.p[sub]), t, t_next, y[sub].clone(), method="rosenbrock",
                             control=StepControl(rtol=rtol, max_steps=budget), atol=prob.atol[sub] * 100,
                             t_eval=torch.tensor([t, t_next], dtype=torch.float64))
        steps[sub] += res_run.n_steps.to(steps.dtype)
        y_end = res_run.ys[:, -1]
        good_run = (res_run.status == Status.SUCCESS) & torch.isfinite(y_end).all(-1)
        y[sub] = torch.where(good_run[:, None], y_end, y[sub])
        t = t_next
        t_done[idx[sub]] = t
        part = _Problem(prog, prob.mo, prob.p[sub], y_start[sub], prob.atol[sub], prob.tol, prob.species)
        res = part.residual(y[sub])
        settled = good_run & (res <= prob.tol) & part.acceptable(y[sub])
        polished, conv, its = part.newton(y[sub], max_iter)
        fine = part.acceptable(polished)
        iterations[idx[sub]] += its
        accept = settled | (good_run & conv & fine)
        y_final = torch.where(settled[:, None], y[sub], polished)
        rows = idx[sub][accept]
        y_out[rows] = y_final[accept]
        status[rows] = int(Status.SUCCESS)
        # near an unstable fixed point at two successive horizons (each 10 times longer)
        circling = good_run & conv & ~fine & ~accept
        strikes[sub] = torch.where(circling, strikes[sub] + 1, torch.zeros_like(strikes[sub]))
        out_of_steps = ~accept & ((res_run.status == Status.MAX_STEPS) | (steps[sub] >= max_steps))
        failed = ~good_run & ~out_of_steps
        gave_up = ~accept & (strikes[sub] >= 2)
        for j in torch.nonzero(out_of_steps | failed | gave_up).flatten().tolist():
            row = int(idx[sub][j])
            y_out[row] = y[sub][j]
            if bool(failed[j]):
                status[row] = int(Status.FAILED)
                reasons[row] = f"integration failed ({Status(int(res_run.status[j])).name.lower()}) by t={t:g}"
            elif bool(gave_up[j]):
                reasons[row] = (f"no stable steady state: the fixed point near the trajectory at two successive "
                                f"horizons (t={t / 10:g}, {t:g}) is unstable (an oscillation)")
            else:
                status[row] = int(Status.MAX_STEPS)
                reasons[row] = f"not settled after {int(steps[sub][j])} integration steps (t={t:g})"
        todo[sub[accept | out_of_steps | failed | gave_up]] = False
    for j in torch.nonzero(todo).flatten().tolist():
        row = int(idx[j])
        y_out[row] = y[j]
        reasons[row] = f"not settled by t={t:g} (t_max)"
