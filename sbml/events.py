"""SBML L3 event semantics on a functional integrator: one sample's run with events.

**Events.** Each trigger is a boolean formula over relational atoms ``lhs op rhs``; every atom
gives two continuous root columns ``lhs - rhs`` and ``rhs - lhs``, so the integrator stops
where any atom changes sign (``and`` of a narrow window such as ``0.18 < S < 0.19`` is seen
as soon as its first side is crossed, unlike a ``min``-of-sides root). At a stop an atom
that crossed takes the truth value of the side it crossed into (exact at a root, where the
strict relation would still read false); other atoms are evaluated. A trigger going from
false to true fires its event: the delay (and, with ``useValuesFromTriggerTime``, the
assigned values) are evaluated at trigger time and an execution is queued. Executions due
now run one at a time by descending priority (evaluated at execution; events without one go
last, ties in document order); after each, triggers are re-evaluated, so cascades fire at
the same time and non-persistent events whose trigger turned false are dropped from the
queue. ``initialValue=false`` triggers true at ``t0`` fire at ``t0``. Outputs at an event
time show the state after the events. Assignment rules are functions of the state, so they
hold after every event.
"""
from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import torch

from neuroplex.errors import SolverError
from neuroplex.integration import Integrator, Rhs
from neuroplex.solution import Status

from .program import SBMLProgram


def _relation(op: str, g: float) -> bool:
    if math.isnan(g):
        return op == "!="
    return {">": g > 0, ">=": g >= 0, "<": g < 0, "<=": g <= 0, "==": g == 0, "!=": g != 0}[op]


# ======================================================================= running
@dataclass(order=True)
class _Pending:
    time: float
    seq: int
    event: int = field(compare=False)
    values: torch.Tensor | None = field(compare=False, default=None)


class SampleRun:
    """One sample's run with events (SBML L3 section 4.12 semantics)."""

    MAX_EVENTS_AT_ONE_TIME = 10_000
    MAX_STOPS = 1_000_000
    #: zero-progress stops at one time (rounding noise at a root) before giving up
    MAX_STALLS = 4

    def __init__(self, prog: SBMLProgram, p: torch.Tensor, integrate: Integrator, settings: dict[str, Any],
                 atom_values: Callable[[float, torch.Tensor], list[float]] | None = None,
                 rhs: Rhs | None = None):
        """``atom_values(t, y (1, n))``: the trigger atoms' ``lhs - rhs`` at a point, for an
        integrator that computes its event columns itself (compiled code: the run then reads
        the atoms as that integrator sees them); default ``prog.atom_g``. Such an integrator's
        columns are ``[g, -g] - zero_shift`` (:attr:`zero_shift`, set before every segment).
        ``rhs``: the right-hand side handed to the integrator (default ``prog.rhs_bound(p)``)."""
        self.prog, self.p, self.integrate, self.settings = prog, p, integrate, settings
        self.atom_values = atom_values
        self.rhs = rhs
        self.queue: list[_Pending] = []
        self.seq = 0
        self.atom_val: list[bool] = []
        self.atom_g: list[float] = []
        self.trig: list[bool] = []
        self.n_steps = 0
        self.n_events = 0
        self.zero_shift: Any = 0.0
        self.rng = random.Random(0)
        self.dt0: float | None = None

    # -- atoms and triggers
    def _g(self, t: float, y: torch.Tensor) -> list[float]:
        if self.prog.atom_g is None:
            return []
        if self.atom_values is not None:
            return self.atom_values(t, y)
        tt = torch.full((1,), t, dtype=y.dtype, device=y.device)
        return [float(v) for v in self.prog.atom_g(tt, y, self.p)[0]]

    def _atoms(self, t: float, y: torch.Tensor, crossed: dict[int, bool] | None = None) -> list[bool]:
        g = self._g(t, y)
        out = []
        for i, (op, gi) in enumerate(zip(self.prog.atom_ops, g)):
            if crossed and i in crossed:
                out.append(crossed[i])
            elif self.atom_g and self.atom_g[i] == gi:
                out.append(self.atom_val[i])  # unchanged value: keep its truth (exact roots)
            else:
                out.append(_relation(op, gi))
        self.atom_g, self.atom_val = g, out
        return out

    def _update_triggers(self, t: float, y: torch.Tensor, crossed: dict[int, bool] | None = None) -> None:
        atoms = self._atoms(t, y, crossed)
        for k, ev in enumerate(self.prog.events):
            now = ev.trigger(atoms)
            if now and not self.trig[k]:
                self._schedule(k, t, y)
            elif self.trig[k] and not now and not ev.persistent:
                self.queue = [q for q in self.queue if q.event != k]
                heapq.heapify(self.queue)
            self.trig[k] = now

    def _schedule(self, k: int, t: float, y: torch.Tensor) -> None:
        ev = self.prog.events[k]
        tt = torch.full((1,), t, dtype=y.dtype, device=y.device)
        delay = float(ev.delay(tt, y, self.p)[0, 0]) if ev.delay is not None else 0.0
        values = ev.values(tt, y, self.p)[0].clone() if ev.use_trigger_values and ev.values is not None else None
        heapq.heappush(self.queue, _Pending(t + delay, self.seq, k, values))
        self.seq += 1

    def _execute_due(self, t: float, y: torch.Tensor) -> torch.Tensor:
        count = 0
        while True:
            due = [q for q in self.queue if q.time <= t]
            if not due:
                return y
            count += 1
            if count > self.MAX_EVENTS_AT_ONE_TIME:
                raise SolverError(f"model {self.prog.model.name!r}: more than {self.MAX_EVENTS_AT_ONE_TIME} "
                                  f"event executions at t={t} (an event loop?)")
            tt = torch.full((1,), t, dtype=y.dtype, device=y.device)

            prios = []
            for q in due:
                ev = self.prog.events[q.event]
                prio = float(ev.priority(tt, y, self.p)[0, 0]) if ev.priority is not None else -math.inf
                prios.append(-math.inf if math.isnan(prio) else prio)
            top = max(prios)
            tied = [q for q, pr in zip(due, prios) if pr == top]
            # equal explicit priorities: SBML leaves the order random (seeded, reproducible);
            # events without priorities run in the order they were triggered
            chosen = self.rng.choice(tied) if len(tied) > 1 and top > -math.inf else min(tied)
            self.queue.remove(chosen)
            heapq.heapify(self.queue)
            ev = self.prog.events[chosen.event]
            if ev.values is not None:
                vals = chosen.values if chosen.values is not None else ev.values(tt, y, self.p)[0]
                y = y.clone()
                y[0, ev.targets] = vals.to(y.dtype)
            self.n_events += 1
            self._update_triggers(t, y)

    # -- the run
    def run(self, t0: float, t1: float, t_eval: torch.Tensor, y0: torch.Tensor) -> tuple[torch.Tensor, int]:
        prog = self.prog
        ys = torch.full((t_eval.numel(), prog.n), math.nan, dtype=y0.dtype, device=y0.device)
        y = y0[None].clone()
        atoms = self._atoms(t0, y)
        self.trig = [ev.initial_value for ev in prog.events]
        for k, ev in enumerate(prog.events):  # initialValue=false and true at t0: fires at t0
            now = ev.trigger(atoms)
            if now and not self.trig[k]:
                self._schedule(k, t0, y)
            self.trig[k] = now
        y = self._execute_due(t0, y)
        t = t0
        spacing = float(t_eval[1:].sub(t_eval[:-1]).max()) if t_eval.numel() > 1 else t1 - t0
        self.max_quiet_step = max(min(spacing, (t1 - t0) / 100.0), 1e-12) if t1 > t0 else 1.0
        status = int(Status.SUCCESS)
        ys[t_eval == t] = y[0]
        event_fn = self._event_fn if prog.atom_g is not None else None
        rhs = self.rhs if self.rhs is not None or prog.constant_state else prog.rhs_bound(self.p)
        stops = 0
        stalls, noise_t, noise_shift = 0, None, None
        while t < t1:
            stops += 1
            if stops > self.MAX_STOPS:
                raise SolverError(f"model {prog.model.name!r}: more than {self.MAX_STOPS} event stops before t={t1}")
            g_now = torch.tensor(self.atom_g + [-x for x in self.atom_g], dtype=y.dtype, device=y.device)
            self.zero_shift = torch.where(g_now == 0, 1e-300, 0.0).to(y.dtype)
            if noise_t == t:
                self.zero_shift = torch.where(noise_shift != 0, noise_shift, self.zero_shift)
            t_next = min(t1, self.queue[0].time) if self.queue else t1
            sel = (t_eval > t) & (t_eval <= t_next)
            # start each segment with the step size the previous one ended with (events
            # every few steps would otherwise pay the start-up heuristic each time)
            if prog.constant_state:
                t_stop, y_stop, found = self._quiet_segment(t, t_next, y)
                ys[sel & (t_eval <= t_stop)] = y[0]
                crossed = self._crossings(t_stop, y_stop) if found else {}
                t, y = t_stop, y_stop
                self._update_triggers(t, y, crossed)
                y = self._execute_due(t, y)
                ys[t_eval == t] = y[0]
                continue
            settings = dict(self.settings)
            carried = settings["control"].dt0 is None and bool(self.dt0)  # a fixed step (dt) wins
            if carried:
                settings["control"] = replace(settings["control"], dt0=self.dt0)
            res = self.integrate(rhs, t, t_next, y, t_eval=t_eval[sel] if bool(sel.any()) else None,
                                 event_fn=event_fn, **settings)
            steps = int(res.n_steps.sum())
            self.n_steps += steps
            if carried and int(res.status[0]) == Status.DT_MIN:
                # the carried step came from a segment a few ulps long (an event, then its trigger
                # re-crossing at once): below the integrator's floor of ~10 ulps of t, it failed
                # before growing; run the segment again from its own start-up step
                self.dt0 = None
                continue
            if steps > 0 and float(res.t_end[0]) > t:
                self.dt0 = min((float(res.t_end[0]) - t) / steps * 2.0, t1 - t)
            t_stop = float(res.t_end[0])
            y_stop = res.y_end[:1]
            if res.ys is not None:
                got = res.ys[0]
                tsel = t_eval[sel]
                keep = tsel <= t_stop
                idx = torch.nonzero(sel).flatten()[keep]
                ys[idx] = got[keep]
            if int(res.status[0]) != Status.SUCCESS:
                return ys, int(res.status[0])
            if t_stop <= t:  # a root at the start point: rounding noise around an atom just crossed
                stalls += 1
                if stalls > self.MAX_STALLS:
                    raise SolverError(f"model {prog.model.name!r}: event detection stalled at t={t}")
                noise_shift = self._noise_shift(int(res.event_index[0]), g_now, t_stop, y_stop, stalls, noise_shift)
                noise_t = t
                continue
            stalls = 0
            crossed = self._crossings(t_stop, y_stop) if int(res.event_index[0]) >= 0 else {}
            t, y = t_stop, y_stop
            self._update_triggers(t, y, crossed)
            y = self._execute_due(t, y)
            ys[t_eval == t] = y[0]
        return ys, status

    def _noise_shift(self, col: int, g_start: torch.Tensor, t_stop: float, y_stop: torch.Tensor, stalls: int,
                     shift: torch.Tensor | None) -> torch.Tensor:
        """Column shifts that stop an atom from re-crossing in its own rounding noise.

        An atom located at its root sits within a few ulps of zero; the next segment can see it
        flip back and forth there without moving (the integrator then stops where it started).
        The column that did so is moved down by ``10**(3 k)`` times its noise (``k`` the stalls
        at this time so far): it arms once the atom moves clearly away and fires when it comes
        back, within that margin of the true root."""
        g = self._g_columns(t_stop, y_stop)
        shift = torch.zeros_like(g_start) if shift is None else shift.clone()
        noise = max(abs(float(g_start[col])), abs(float(g[col])), torch.finfo(g_start.dtype).tiny)
        shift[col] = min(float(g_start[col]), 0.0) - 10.0 ** (3 * stalls) * noise
        return shift

    def _g_columns(self, t: float, y: torch.Tensor) -> torch.Tensor:
        g = torch.tensor(self._g(t, y), dtype=y.dtype, device=y.device)
        return torch.cat([g, -g])

    def _crossings(self, t_stop: float, y_stop: torch.Tensor) -> dict[int, bool]:
        """Atoms that changed sign since the segment start, with the truth value of the side
        they crossed into."""
        g_start, g_stop = self.atom_g, self._g(t_stop, y_stop)
        crossed: dict[int, bool] = {}
        for i, (a, b) in enumerate(zip(g_start, g_stop)):
            up = a < 0 <= b
            down = -a < 0 <= -b
            if up or down:
                crossed[i] = _crossed_value(self.prog.atom_ops[i], up)
        return crossed

    def _quiet_segment(self, t: float, t_next: float, y: torch.Tensor) -> tuple[float, torch.Tensor, bool]:
        """Where no state moves between events, find the first trigger-atom crossing in
        ``(t, t_next]`` by scanning time on a grid (step ``max_quiet_step``) and refining
        the bracket to ~1e-13 relative; no integrator is needed."""
        if self.prog.atom_g is None or t_next <= t:
            return t_next, y, False
        dtype = y.dtype

        def cols(ts: torch.Tensor) -> torch.Tensor:
            n = ts.numel()
            g = self.prog.atom_g(ts, y.expand(n, -1), self.p.expand(n, -1))
            return torch.cat([g, -g], dim=-1) - self.zero_shift

        def first_hit(ts: torch.Tensor, armed0: torch.Tensor) -> tuple[int, torch.Tensor]:
            vals = cols(ts)
            neg = vals < 0
            # a column arms once it has been negative (at the start or at an earlier point)
            before = torch.cat([armed0[None], neg[:-1]], dim=0).cummax(dim=0).values | armed0[None]
            hit = (before & (vals >= 0)).any(-1)
            idx = int(torch.nonzero(hit)[0]) if bool(hit.any()) else -1
            return idx, (neg.any(0) | armed0)

        armed = cols(torch.tensor([t], dtype=dtype))[0] < 0
        lo = t
        n_total = max(1, math.ceil((t_next - t) / self.max_quiet_step - 1e-9))
        chunk = 4096
        done = 0
        while done < n_total:
            n = min(chunk, n_total - done)
            ts = t + (t_next - t) * torch.arange(done + 1, done + n + 1, dtype=dtype) / n_total
            ts[-1] = t_next if done + n == n_total else ts[-1]
            idx, armed_after = first_hit(ts, armed)
            if idx >= 0:
                hi = float(ts[idx])
                lo = float(ts[idx - 1]) if idx > 0 else lo
                if idx > 0:
                    armed = armed | (cols(ts[:idx]) < 0).any(0)
                hi = self._refine(cols, lo, hi, armed)
                return hi, y, True
            armed = armed_after
            lo = float(ts[-1])
            done += n
        return t_next, y, False

    @staticmethod
    def _refine(cols: Callable[[torch.Tensor], torch.Tensor], lo: float, hi: float, armed: torch.Tensor) -> float:
        """Shrink ``(lo, hi]`` around the first crossing of an armed column (Illinois on the
        largest armed column, which is < 0 at ``lo`` and >= 0 at ``hi``)."""
        dtype = armed.dtype if armed.is_floating_point() else torch.float64

        # only the columns that crossed inside the bracket (a flat column near zero would
        # stall the secant steps)
        crossed = armed & (cols(torch.tensor([hi], dtype=dtype))[0] >= 0)

        def H(x: float) -> float:
            v = cols(torch.tensor([x], dtype=dtype))[0]
            return float(torch.where(crossed, v, torch.full_like(v, -math.inf)).max())

        f_lo, f_hi = H(lo), H(hi)
        side = 0
        for it in range(200):
            if hi - lo <= 1e-13 * max(1.0, abs(hi)) or not (f_lo < 0 <= f_hi):
                break
            secant = it < 60 and math.isfinite(f_lo) and math.isfinite(f_hi) and f_hi != f_lo
            x = (lo * f_hi - hi * f_lo) / (f_hi - f_lo) if secant else 0.5 * (lo + hi)
            if not (lo < x < hi):
                x = 0.5 * (lo + hi)
            fx = H(x)
            if fx >= 0:
                hi, f_hi = x, fx
                if fx == 0:
                    break
                if side > 0:
                    f_lo *= 0.5
                side = 1
            else:
                lo, f_lo = x, fx
                if side < 0:
                    f_hi *= 0.5
                side = -1
        return hi

    def _event_fn(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        g = self.prog.atom_g(t, y, self.p.expand(y.shape[0], -1))
        # an atom exactly at zero where a segment starts must still be seen leaving zero (the
        # integrator only arms negative columns): shift such columns down by the tiniest amount
        return torch.cat([g, -g], dim=-1) - self.zero_shift


def _crossed_value(op: str, up: bool) -> bool:
    """The truth of ``lhs op rhs`` just after ``lhs - rhs`` crossed zero upwards (``up``) or
    downwards."""
    if op in (">", ">="):
        return up
    if op in ("<", "<="):
        return not up
    return op == "!="  # right after passing through equality
