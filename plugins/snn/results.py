"""A clock-driven run's output as a :class:`~neuroplex.solution.Solution`.

Spikes become a :class:`~neuroplex.solution.SpikeTrain` (``sample``, global ``index`` =
population offset + neuron, ``time = step * dt``) sorted by sample, step and index; monitored
traces become ``ys`` of shape ``(batch, records, traces)`` named ``"<population>.<state>[<j>]"``;
``meta`` holds the final state per population, the loop and build times and which code ran.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from neuroplex.errors import NeuroplexError
from neuroplex.solution import Solution, SpikeTrain, Status

from .plan import NetworkPlan


@dataclass
class RunOutput:
    """What a run produced: per population, the steps and flat neuron indices (``sample*n + j``)
    of its recorded spikes; per monitor, its ``(records, batch*width)`` buffer; per neuron
    population, its final ``(S, size)`` state."""

    n_steps: int
    spikes: dict[int, tuple[list[torch.Tensor], list[torch.Tensor]]] = field(default_factory=dict)
    monitors: list[torch.Tensor] = field(default_factory=list)
    final: dict[int, torch.Tensor] = field(default_factory=dict)
    first: int = 0
    synapses: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)


def solution(plan: NetworkPlan, out: RunOutput, *, dtype: torch.dtype, device: torch.device,
             meta: dict[str, Any]) -> Solution:
    """The :class:`Solution` of one run of ``plan`` (``meta`` is added to its ``meta``)."""
    dt, B = plan.dt, plan.batch
    samples, index, steps = [], [], []
    for pop in plan.pops:
        ks, flats = out.spikes.get(pop.index, ([], []))
        if not ks:
            continue
        flat = torch.cat(flats).to(torch.int64).cpu()
        samples.append(flat // pop.n)
        index.append(flat % pop.n + pop.offset)
        steps.append(torch.cat(ks).to(torch.int64).cpu())
    if steps:
        s, i, k = torch.cat(samples), torch.cat(index), torch.cat(steps)
        order = torch.from_numpy(np.lexsort((i.numpy(), k.numpy(), s.numpy())))
        s, i, k = s[order], i[order], k[order]
    else:
        s = i = k = torch.zeros(0, dtype=torch.int64)
    spikes = SpikeTrain(s, i, k.to(torch.float64) * dt)

    names: list[str] = []
    traces, ts = [], None
    for mon, buf in zip(plan.monitors, out.monitors):
        names += mon.labels
        traces.append(buf.view(buf.shape[0], B, mon.width).permute(1, 0, 2))
        t_mon = torch.arange(buf.shape[0], dtype=torch.float64) * mon.every * dt
        if ts is None:
            ts = t_mon
        elif ts.shape != t_mon.shape:
            raise NeuroplexError("state monitors with different 'every' cannot share one Solution")
    if traces:
        ys = torch.cat(traces, dim=-1)
    else:
        ys = torch.zeros((B, 0, 0), dtype=dtype)
        ts = torch.zeros(0, dtype=torch.float64)

    finite = torch.ones(B, dtype=torch.bool)
    final = {}
    for pop in plan.pops:
        if pop.index in out.final:
            y = out.final[pop.index].view(len(pop.states), B, pop.n)
            final[pop.name] = y
            finite &= torch.isfinite(y).all(dim=2).all(dim=0).cpu()
    status = torch.where(finite, int(Status.SUCCESS), int(Status.NONFINITE)).to(torch.int64)
    counts = torch.bincount(s, minlength=B) if s.numel() else torch.zeros(B, dtype=torch.int64)
    methods = ",".join(sorted({pop.method for pop in plan.pops if pop.method}))
    by_pop = population_spikes(spikes, dict(plan.offsets))
    rates = {name: population_rate(by_pop[name], plan.offsets[name][1], B, out.first, out.n_steps, dt)
             for name in plan.rate_monitors}
    synapses = {name: {k: v.to(torch.float64).cpu() for k, v in state.items()} for name, state in out.synapses.items()}
    return Solution(
        ys=ys, ts=ts, names=names, status=status,
        stats={"n_steps": torch.full((B,), out.n_steps, dtype=torch.int64), "n_spikes": counts},
        spikes=spikes, solver="torch", method=methods,
        meta={"model": plan.name, "dt": dt, "populations": dict(plan.offsets), "final_state": final,
              "spikes": by_pop, "rates": rates, "synapses": synapses,
              "dtype": str(dtype).replace("torch.", ""), "device": str(device), **meta},
    )


def population_spikes(spikes: SpikeTrain, offsets: dict[str, tuple[int, int]]) -> dict[str, SpikeTrain]:
    """The spikes of each population (``{name: (offset, n)}``) with indices local to it."""
    out = {}
    for name, (offset, n) in offsets.items():
        keep = (spikes.index >= offset) & (spikes.index < offset + n)
        out[name] = SpikeTrain(spikes.sample[keep], spikes.index[keep] - offset, spikes.time[keep])
    return out


def population_rate(spikes: SpikeTrain, n: int, batch: int, first: int, n_steps: int, dt: float) -> torch.Tensor:
    """Brian2's ``PopulationRateMonitor``: ``(batch, n_steps)`` spikes per step of one population
    divided by ``n dt`` (Hz), for the steps ``first .. first + n_steps - 1``."""
    rate = torch.zeros(batch, n_steps, dtype=torch.float64)
    if len(spikes):
        k = torch.round(spikes.time / dt).to(torch.int64) - first
        keep = (k >= 0) & (k < n_steps)
        rate.index_put_((spikes.sample[keep], k[keep]), torch.ones(int(keep.sum()), dtype=torch.float64),
                        accumulate=True)
    return rate / (n * dt)
