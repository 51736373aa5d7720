"""A fixed-step forward-Euler solver: the smallest complete neuroplex solver plugin."""
from __future__ import annotations

import math
from typing import Any

import torch

from neuroplex import Dynamics, ModelIR, Solution, Solver, SpikeTrain, Status
from neuroplex.batching import batch_size
from neuroplex.errors import SolverError


class ForwardEuler(Solver):
    """Fixed-step forward Euler, y <- y + dt f(t, y); events fire at the end of a step."""

    name = "example-euler"
    capabilities = frozenset({"simulate"})
    methods = ("euler",)
    supports = frozenset({"events", "spikes"})  # threshold/reset events, spikes recorded; no refractory periods
    devices = frozenset({"cpu", "cuda"})  # whatever torch runs on
    dtypes = frozenset({"float32", "float64"})

    def __init__(self, dt: float = 0.01, method: str = "euler", device: str = "cpu",
                 dtype: torch.dtype = torch.float64):
        if method != "euler":
            raise ValueError(f"example-euler has one method, 'euler' (got {method!r})")
        if not dt > 0:
            raise ValueError(f"dt must be positive (got {dt})")
        self.dt, self.method = float(dt), method
        self.device, self.dtype = torch.device(device), dtype

    def simulate(self, model: Any, t_span: tuple[float, float], *, y0=None, params=None, t_eval=None,
                 inputs=None, progress: bool = False) -> Solution:
        if getattr(model, "refractory", None) is not None:  # refuse rather than return a wrong trajectory
            raise SolverError(f"solver {self.name!r} does not implement refractory periods, and model "
                              f"{model.name!r} has one; use a solver that does (e.g. solver='torch')")
        dyn: Dynamics = model.compile(dtype=self.dtype, device=self.device) if isinstance(model, ModelIR) else model
        t0, t1 = t_span
        p = dyn.default_params(dtype=self.dtype, device=self.device) if params is None else params.to(self.dtype)
        batch = batch_size(params=p, y0=y0, inputs=inputs)  # the core's one broadcasting rule
        p = p.expand(batch, -1)
        y = dyn.initial_state(p) if y0 is None else y0.to(self.dtype).expand(batch, -1).clone()
        u = None if inputs is None else inputs.to(self.dtype).expand(batch, -1)
        ts = torch.tensor([t0, t1], dtype=torch.float64) if t_eval is None else t_eval.to(torch.float64)
        n_steps = max(1, math.ceil((t1 - t0) / self.dt - 1e-9))
        h = (t1 - t0) / n_steps
        out = torch.empty(batch, len(ts), dyn.n_states, dtype=self.dtype)
        k_out, spikes = 0, []
        for step in range(n_steps + 1):
            t = t0 + step * h
            while k_out < len(ts) and ts[k_out] <= t + 1e-12 * max(1.0, abs(t)):
                out[:, k_out] = y  # state at the first grid time at or after t_eval[k]
                k_out += 1
            if step == n_steps:
                break
            tt = torch.full((batch,), t, dtype=self.dtype)
            y = y + h * dyn.rhs(tt, y, p, u)
            for i, ev in enumerate(dyn.events):
                fired = ev.trigger(tt + h, y, p, u)
                if fired.any():
                    y = torch.where(fired[:, None], ev.apply(tt + h, y, p, u), y)
                    for b in torch.nonzero(fired).flatten().tolist():
                        spikes.append((b, i, t + h))
        out[:, k_out:] = y[:, None]
        status = torch.where(torch.isfinite(out).all(dim=(1, 2)), Status.SUCCESS, Status.NONFINITE)
        s = torch.tensor(spikes, dtype=torch.float64).reshape(-1, 3)
        train = SpikeTrain(s[:, 0].long(), s[:, 1].long(), s[:, 2], names=[e.name for e in dyn.events])
        return Solution(ys=out, ts=ts, names=list(dyn.state_names), status=status.to(torch.long),
                        stats={"n_steps": torch.full((batch,), n_steps)}, spikes=train,
                        solver=self.name, method=self.method)
