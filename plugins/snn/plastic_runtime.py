"""Plastic synapses on the torch engine: per-synapse variables in tensors, ``on_pre`` and
``on_post`` run on the synapses of the neurons that spiked this step.

Clock-driven traces decay every step on every synapse (:meth:`PlasticSynapses.advance`, at the
start of the step, Brian2's ``groups`` slot). For an event at time ``t`` on synapses ``s`` (all synapses of the spiking neurons, over every
network of the batch), in Brian2's order: each event-driven trace decays from the synapse's
``lastupdate``, ``X = X exp(-(t - lastupdate)/tau)``; the statements run in order, each on all
of ``s`` at once (a synapse variable is written back at once, a post-synaptic ``+=`` is an
``index_add_`` so that synapses onto one neuron add up); then ``lastupdate = t``. A neuron
spikes at most once per step, so a synapse sees at most one event per pathway and step and the
vectorised statements give what Brian2's loop over synapses gives.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import sympy
import torch

from neuroplex.errors import ModelError

from .plan import PlasticGroup, PopulationPlan


def _clip(x: Any, low: Any, high: Any) -> Any:
    """Brian2's ``clip``: ``min(max(x, low), high)``."""
    if isinstance(x, torch.Tensor):
        return torch.clamp(x, min=low, max=high)
    return min(max(x, low), high)


_MODULES = [{"clip": _clip, "exp": torch.exp, "sqrt": torch.sqrt, "Abs": torch.abs}, "math"]


@dataclass
class _Compiled:
    target: str
    op: str
    fn: Callable[..., Any]
    args: list[str]
    post_row: int  # >= 0: the statement adds to this post state row


def _padded(owner: torch.Tensor, size: int) -> torch.Tensor:
    """``(size, K)`` synapse ids per owner neuron, padded with -1."""
    counts = torch.bincount(owner, minlength=size)
    K = max(int(counts.max()) if counts.numel() else 0, 1)
    order = torch.argsort(owner, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    col = torch.arange(owner.numel()) - torch.repeat_interleave(starts, counts)
    out = torch.full((size, K), -1, dtype=torch.int64)
    out[owner[order], col] = order
    return out


class PlasticSynapses:
    """The runtime of one :class:`~.plan.PlasticGroup` (see the module docstring)."""

    def __init__(self, group: PlasticGroup, pre: PopulationPlan, post: PopulationPlan, dtype: torch.dtype,
                 device: torch.device, dt: float):
        model = group.model
        self.name, self.dtype, self.device = group.name, dtype, device
        self.post_size = post.size
        #: the variables as rows of one ``(V, synapses)`` tensor (one gather and one scatter per event)
        self.names = list(group.init)
        self.row = {k: r for r, k in enumerate(self.names)}
        self.X = torch.stack([group.init[k] for k in self.names]).to(device=device, dtype=dtype).contiguous()
        self.vars = {k: self.X[r] for k, r in self.row.items()}  # views
        self.lastupdate = torch.zeros(group.pre_flat.numel(), dtype=torch.float64, device=device)
        self.by_pre = _padded(group.pre_flat, pre.size).to(device)
        self.by_post = _padded(group.post_flat, post.size).to(device)
        self.full = {id(self.by_pre): bool((self.by_pre >= 0).all()), id(self.by_post): bool((self.by_post >= 0).all())}
        self.post_flat = group.post_flat.to(device)
        self.params = dict(model.params)
        self.trace_rows = torch.tensor([self.row[k] for k in model.traces], dtype=torch.int64, device=device)
        self.trace_taus = torch.tensor([[model.params[tau]] for tau in model.traces.values()],
                                       dtype=torch.float64, device=device)
        #: clock-driven traces: rows and their one-step factors exp(-dt/tau)
        self.clock_rows = torch.tensor([self.row[k] for k in model.clock_driven], dtype=torch.int64, device=device)
        self.clock_factors = torch.tensor([[math.exp(-dt / model.params[tau])] for tau in model.clock_driven.values()],
                                          dtype=dtype, device=device)
        post_states = {s: r for r, s in enumerate(post.states)}
        self.post_reads: dict[str, int] = {}
        where = f"synapses {group.name!r}"
        target = post.states[group.target]
        self.pre = [self._compile(sympy.Symbol("w"), target, "+=", "pre", post_states, where)]
        self.pre += [self._compile(st.expr, st.target, st.op, "pre", post_states, where)
                     for st in model.statements("pre")]
        self.post = [self._compile(st.expr, st.target, st.op, "post", post_states, where)
                     for st in model.statements("post")]

    # ----------------------------------------------------------------- compile
    def _post_name(self, name: str, post_states: dict[str, int]) -> str | None:
        base = name[:-5] if name.endswith("_post") else name
        return base if base in post_states and base not in self.vars and base not in self.params else None

    def _compile(self, expr: Any, target: str, op: str, pathway: str, post_states: dict[str, int],
                 where: str) -> _Compiled:
        names = sorted(s.name for s in expr.free_symbols)
        for name in names:
            if name in self.vars or name in self.params or name == "t":
                continue
            state = self._post_name(name, post_states)
            if state is None:
                raise ModelError(f"{where}: on_{pathway} uses {name!r}, which is neither a synapse variable, "
                                 f"a parameter, 't' nor a post-synaptic state ({', '.join(post_states)})")
            self.post_reads[name] = post_states[state]
        post_row = -1
        if target not in self.vars:
            state = self._post_name(target, post_states)
            if target in self.params:
                raise ModelError(f"{where}: on_{pathway} assigns the parameter {target!r}")
            if state is None:
                raise ModelError(f"{where}: on_{pathway} assigns {target!r}, which is neither a synapse variable "
                                 f"nor a post-synaptic state")
            if pathway != "pre" or op not in ("+=", "-="):
                raise ModelError(f"{where}: a post-synaptic state ({target!r}) can only be changed with += or -= "
                                 f"in on_pre (several synapses may share one neuron)")
            post_row = post_states[state]
        fn = sympy.lambdify([sympy.Symbol(n) for n in names], expr, modules=_MODULES)
        return _Compiled(target, op, fn, names, post_row)

    # --------------------------------------------------------------------- run
    def advance(self) -> None:
        """One step of the clock-driven traces (every synapse)."""
        self.X.index_copy_(0, self.clock_rows, self.X.index_select(0, self.clock_rows) * self.clock_factors)

    def on_pre(self, t: float, spiking: torch.Tensor, Y: torch.Tensor) -> None:
        """The pre-synaptic pathway for the neurons ``spiking`` (flat indices) at time ``t``;
        ``Y``: the post population's state (updated in place)."""
        if spiking.numel():
            self._event(self.by_pre, spiking, t, self.pre, Y)

    def on_post(self, t: float, spiking: torch.Tensor, Y: torch.Tensor) -> None:
        """The post-synaptic pathway for the post neurons ``spiking`` at time ``t``."""
        if spiking.numel():
            self._event(self.by_post, spiking, t, self.post, Y)

    def _event(self, table: torch.Tensor, spiking: torch.Tensor, t: float, program: list[_Compiled],
               Y: torch.Tensor) -> None:
        syn = table.index_select(0, spiking).view(-1)
        if not self.full[id(table)]:
            syn = syn[syn >= 0]
            if not syn.numel():
                return
        block = self.X.index_select(1, syn)  # (V, m): this event's copy of the variables
        if self.trace_rows.numel():
            back = self.lastupdate.index_select(0, syn) - t  # -(t - lastupdate)
            decay = torch.exp(back.unsqueeze(0) / self.trace_taus).to(self.dtype)
            block.index_copy_(0, self.trace_rows, block.index_select(0, self.trace_rows) * decay)
        local = {k: block[r] for k, r in self.row.items()}
        post = self.post_flat.index_select(0, syn)
        for st in program:
            values = []
            for name in st.args:
                if name in local:
                    values.append(local[name])
                elif name in self.params:
                    values.append(self.params[name])
                elif name == "t":
                    values.append(t)
                else:
                    values.append(Y.index_select(0, self.post_reads[name] * self.post_size + post))
            value = st.fn(*values)
            if st.post_row >= 0:
                Y.index_add_(0, st.post_row * self.post_size + post, value if st.op == "+=" else -value)
                continue
            old = local[st.target]
            new = (value if st.op == "=" else old + value if st.op == "+=" else old - value if st.op == "-="
                   else old * value)
            local[st.target] = torch.as_tensor(new, dtype=self.dtype, device=self.device).expand(syn.numel())
        self.X.index_copy_(1, syn, torch.stack([local[k] for k in self.names]))
        self.lastupdate.index_fill_(0, syn, t)

    # ------------------------------------------------------------------- state
    def state(self) -> dict[str, torch.Tensor]:
        """The per-synapse variables and ``lastupdate`` (clones)."""
        return {**{k: self.X[r].clone() for k, r in self.row.items()}, "lastupdate": self.lastupdate.clone()}

    def load(self, state: dict[str, torch.Tensor]) -> None:
        """Continue from :meth:`state`'s values."""
        for k, v in state.items():
            target = self.lastupdate if k == "lastupdate" else self.X[self.row[k]]
            target.copy_(v)
