"""Torch code of a chunk of clock-driven steps, generated from a :class:`~.plan.NetworkPlan`:
the engine's code where the C engine cannot run (a GPU device, no C compiler).

The same schedule as :mod:`.ccode`, one step at a time as element-wise tensor operations over
all neurons of a population (run eagerly, one kernel per operation): the update writes the new
state rows, the threshold lists the spiking neurons (``nonzero``), propagation gathers their
rows of a padded adjacency and ``index_add_``s them into the post-synaptic state (delays
through a ring buffer), reset writes the spiking neurons. Expressions are printed by
:class:`neuroplex.codegen.TorchPrinter` and call :mod:`neuroplex.runtime` (``exprel`` ...).
With the same operations in the same order as the C code (a sum of products, then the
constant), float64 runs of ``exact`` networks give the C engine's numbers bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import sympy
import torch

from neuroplex.codegen import TorchPrinter, build_function

from .plan import NEVER, ExplicitUpdate, LinearUpdate, NetworkPlan, PopulationPlan, gated_rows

__all__ = ["TorchProgram", "generate", "NEVER"]


@dataclass
class TorchProgram:
    """The generated step function ``fn(k0, n, S, C, R, TIX, REC)`` and its constants: ``S``
    maps state buffer names to tensors (updated in place), ``R``/``TIX`` are a chunk's random
    numbers and ``TimedArray`` rows, ``REC[p]`` collects population ``p``'s spikes as
    ``(steps, index tensors)``."""

    source: str
    fn: Callable[..., Any]
    consts: list[torch.Tensor] = field(default_factory=list)


def generate(plan: NetworkPlan, dtype: torch.dtype, device: torch.device) -> TorchProgram:
    """The torch step function of ``plan`` computing in ``dtype`` on ``device``."""
    return _Generator(plan, dtype, device).program()


def _mask(x: Any, size: int, device: torch.device) -> torch.Tensor:
    """A condition as a ``(size,)`` bool tensor (a folded constant becomes a full mask)."""
    if isinstance(x, torch.Tensor):
        return (x if x.dtype == torch.bool else x != 0).expand(size)
    return torch.full((size,), bool(x), dtype=torch.bool, device=device)


class _Generator:
    def __init__(self, plan: NetworkPlan, dtype: torch.dtype, device: torch.device):
        self.plan, self.dtype, self.device = plan, dtype, device
        self.consts: list[torch.Tensor] = []
        self.pre: list[str] = []

    def const(self, value: torch.Tensor, name: str) -> str:
        t = value.to(device=self.device)
        if t.is_floating_point():
            t = t.to(self.dtype)
        self.consts.append(t.contiguous())
        self.pre.append(f"{name} = C[{len(self.consts) - 1}]")
        return name

    def value(self, v: Any, name: str) -> str:
        return repr(float(v)) if isinstance(v, float) else self.const(v, name)

    def program(self) -> TorchProgram:
        plan = self.plan
        body: list[str] = []
        glob: dict[str, Any] = {"_mask": _mask, "DEVICE": self.device,
                                "EMPTY": torch.zeros(0, dtype=torch.int64, device=self.device)}
        for P in plan.pops:
            if P.neurons:
                self.pre += [f"Y{P.index} = S['Y{P.index}']", f"L{P.index} = S['L{P.index}']"]
            elif P.kind == "generator":
                glob[f"GEN{P.index}"] = {k: v.to(self.device) for k, v in P.events.items()}
            else:
                self.const(P.spike_prob, f"PR{P.index}")
        for s, slot in enumerate(plan.timed):
            self.const(slot.values, f"TV{s}")
        for m, mon in enumerate(plan.monitors):
            self.const(mon.select, f"MS{m}")
            self.pre.append(f"M{m} = S['M{m}']")
        if any(P.reads("time") for P in plan.pops if P.neurons):
            body.append(f"tk = torch.tensor(float(k) * {float(plan.dt)!r}, dtype={self.dtype}, device=DEVICE)")
        if plan.monitors:
            self.pre.append("KS = S['KS']")  # the run's first step (runs may continue a network)
        for m, mon in enumerate(plan.monitors):
            body += [f"if (k - KS) % {mon.every} == 0:",
                     f"    M{m}[(k - KS) // {mon.every}] = Y{mon.pop}.index_select(0, MS{m})"]
        for g, group in enumerate(plan.plastic):
            if group.model.clock_driven:  # Brian2's groups slot, with the state updates
                body.append(f"S['PL{g}'].advance()")
        for P in plan.pops:
            body += self._population(P)
        for P in plan.pops:
            if P.record:
                body += [f"if i{P.index}.numel() > 0:", f"    REC[{P.index}][0].append(k)",
                         f"    REC[{P.index}][1].append(i{P.index})"]
        gated = self._gated()
        for i, rows in gated.items():  # Brian2's conditional write: kept where refractory, below
            size = plan.pops[i].size
            body += [f"keep{i}_{r} = Y{i}[{r * size}:{(r + 1) * size}].clone()" for r in rows]
        for g, group in enumerate(plan.synapses):
            body += self._synapses(g, group)
        # Brian2's synapses slot: on_pre pathways (order -1), PoissonInput (0), on_post (+1)
        if plan.plastic:
            body.append(f"tt = float(k) * {float(plan.dt)!r}")
        for g, group in enumerate(plan.plastic):
            self.pre.append(f"PL{g} = S['PL{g}']")
            body += [f"if i{group.pre}.numel() > 0:", f"    PL{g}.on_pre(tt, i{group.pre}, Y{group.post})"]
        for q, inp in enumerate(plan.poisson_inputs):
            size = plan.pops[inp.pop].size
            self.const(inp.prob, f"PIP{q}")
            self.pre += [f"PIN{q} = torch.full(({size},), {float(inp.N)!r}, dtype=PIP{q}.dtype, device=DEVICE)",
                         "GENR = S['gen']"]
            body.append(f"Y{inp.pop}[{inp.row * size}:{(inp.row + 1) * size}].add_("
                        f"torch.binomial(PIN{q}, PIP{q}, generator=GENR) * {inp.weight!r})")
        for g, group in enumerate(plan.plastic):
            body += [f"if i{group.post}.numel() > 0:", f"    PL{g}.on_post(tt, i{group.post}, Y{group.post})"]
        for i, rows in gated.items():
            size = plan.pops[i].size
            body += [f"ok{i} = nr{i}.clone()", f"ok{i}[i{i}] = False"]  # a neuron that spiked now is refractory
            body += [f"Y{i}[{r * size}:{(r + 1) * size}] = torch.where(ok{i}, Y{i}[{r * size}:{(r + 1) * size}], "
                     f"keep{i}_{r})" for r in rows]
        for P in plan.pops:
            if P.neurons:
                body += self._reset(P)
        lines = self.pre + ["for kk in range(n):", "    k = k0 + kk"] + ["    " + x for x in body]
        fn = build_function("neuroplex_steps", ["k0", "n", "S", "C", "R", "TIX", "REC"], lines, glob)
        return TorchProgram(fn.__source__, fn, self.consts)

    def _gated(self) -> dict[int, list[int]]:
        """Population index -> the rows the synapses slot writes that are clamped while
        refractory (:func:`.plan.gated_rows`): static synapses, plastic ones, PoissonInputs."""
        plan = self.plan
        out: dict[int, list[int]] = {}
        for P in plan.pops:
            rows = set(gated_rows(P))
            if not rows:
                continue
            hit = {int(g.target[0]) // P.size for g in plan.synapses if g.post == P.index and g.gated and g.target.numel()}
            hit |= {inp.row for inp in plan.poisson_inputs if inp.pop == P.index}
            if any(g.post == P.index for g in plan.plastic):
                hit |= rows
            if rows & hit:
                out[P.index] = sorted(rows & hit)
        return out

    def _names(self, P: PopulationPlan, states: dict[int, str], at: str = "") -> dict[str, str]:
        names = {}
        for sym, ref in P.symbols.items():
            if ref.kind == "state":
                names[sym] = states[ref.index]
            elif ref.kind == "array":
                name = f"Q{P.index}_{list(P.arrays).index(ref.key)}"
                if not any(line.startswith(f"{name} = ") for line in self.pre):
                    self.const(P.arrays[ref.key], name)
                names[sym] = name + at
            elif ref.kind == "timed":
                names[sym] = f"TV{ref.index}[TIX[{ref.index}][kk]]{at}"
            elif ref.kind == "time":
                names[sym] = "tk"
            elif ref.kind == "notref":
                names[sym] = f"nrf{P.index}"
        return names

    def _population(self, P: PopulationPlan) -> list[str]:
        i, size = P.index, P.size
        if P.kind == "generator":
            return [f"i{i} = GEN{i}.get(k, EMPTY)"]
        if not P.neurons:
            return [f"i{i} = torch.nonzero(R[{P.rand_slot}][kk] < PR{i}).view(-1)"]
        S = len(P.states)
        out = [f"y{i}_{r} = Y{i}[{r * size}:{(r + 1) * size}]" for r in range(S)]
        old = self._names(P, {r: f"y{i}_{r}" for r in range(S)})
        pr = TorchPrinter(old)
        if P.refractory == "duration":
            steps = P.ref_steps if isinstance(P.ref_steps, int) else self.const(P.ref_steps, f"RF{i}")
            out.append(f"nr{i} = (k - L{i}) >= {steps}")
        elif P.refractory == "condition":
            # Brian2: not_refractory = not_refractory or not (cond), False from a spike on;
            # lastspike NEVER marks a neuron that has left refractoriness
            out.append(f"nr{i} = (L{i} == {NEVER}) | _mask(_rt.logical_not({pr(P.ref_condition)}), {size}, DEVICE)")
            out.append(f"L{i}.masked_fill_(nr{i}, {NEVER})")
        if P.reads("notref"):
            out.append(f"nrf{i} = nr{i}.to({self.dtype})")
        if isinstance(P.update, LinearUpdate):
            out += self._linear(P, P.update, old)
        else:
            out += self._explicit(P, P.update, pr)
        out += [f"Y{i}[{r * size}:{(r + 1) * size}] = n{i}_{r}" for r in range(S)]
        if P.threshold is None:
            return out + [f"i{i} = torch.zeros(0, dtype=torch.int64, device=DEVICE)"]
        new = self._names(P, {r: f"Y{i}[{r * size}:{(r + 1) * size}]" for r in range(S)})
        cond = f"_mask({TorchPrinter(new)(P.threshold)}, {size}, DEVICE)"
        if P.refractory != "none":
            cond = f"{cond} & nr{i}"
        return out + [f"i{i} = torch.nonzero({cond}).view(-1)"]

    def _linear(self, P: PopulationPlan, u: LinearUpdate, names: dict[str, str]) -> list[str]:
        i, S = P.index, len(P.states)

        def row(Pm: list, c: list, cu: list, r: int, tag: str) -> str:
            terms = []
            for col in range(S):
                v = Pm[r][col]
                if isinstance(v, float) and v == 0.0:
                    continue
                terms.append(f"{self.value(v, f'P{i}{tag}_{r}_{col}')} * y{i}_{col}")
            if not (isinstance(c[r], float) and c[r] == 0.0):
                terms.append(self.value(c[r], f"C{i}{tag}_{r}"))
            for name, v in cu[r].items():
                terms.append(f"{self.value(v, f'U{i}{tag}_{r}_{name}')} * {names[name]}")
            return " + ".join(terms) if terms else "0.0"

        out = []
        for r in range(S):
            normal = row(u.P, u.c, u.cu, r, "")
            if not u.frozen_differs(r):
                out.append(f"n{i}_{r} = {normal}")
            else:
                out.append(f"n{i}_{r} = torch.where(nr{i}, {normal}, {row(u.P_ref, u.c_ref, u.cu_ref, r, 'r')})")
        return out

    def _explicit(self, P: PopulationPlan, u: ExplicitUpdate, pr: TorchPrinter) -> list[str]:
        i = P.index
        out = []
        for t, (name, expr) in enumerate(u.assignments):
            out.append(f"w{i}_{t} = {pr(expr)}")
            pr.names[name] = f"w{i}_{t}"
        for r, s in enumerate(P.states):
            value = pr(u.new[s])
            out.append(f"n{i}_{r} = torch.where(nr{i}, _rt.const({value}, y{i}_{r}), y{i}_{r})"
                       if s in u.clamp_after else f"n{i}_{r} = {value}")
        return out

    def _synapses(self, g: int, group: Any) -> list[str]:
        a, b = self.plan.pops[group.pre], self.plan.pops[group.post]
        # padded rows: the compressed rows of the C engine, zero-weight padding at target 0
        counts = group.rowptr.diff()
        K = max(int(counts.max()) if counts.numel() else 0, 1)
        col = torch.arange(group.target.numel()) - torch.repeat_interleave(group.rowptr[:-1], counts)
        rows = torch.repeat_interleave(torch.arange(a.size), counts)
        span = len(b.states) * b.size
        flat = group.target if group.delay is None else group.delay * span + group.target
        T = torch.zeros((a.size, K), dtype=torch.int64)
        W = torch.zeros((a.size, K), dtype=torch.float64)
        T[rows, col], W[rows, col] = flat, group.weight
        self.const(T, f"T{g}")
        self.const(W, f"W{g}")
        ia = f"i{a.index}"
        if group.delay is None:
            return [f"if {ia}.numel() > 0:",
                    f"    Y{b.index}.index_add_(0, T{g}.index_select(0, {ia}).view(-1), W{g}.index_select(0, {ia}).view(-1))"]
        slots = group.slots
        self.pre.append(f"D{g} = S['D{g}']")
        return [f"if {ia}.numel() > 0:",
                f"    pos{g} = torch.remainder(T{g}.index_select(0, {ia}) + (k % {slots}) * {span}, {slots * span})",
                f"    D{g}.index_add_(0, pos{g}.view(-1), W{g}.index_select(0, {ia}).view(-1))",
                f"cur{g} = D{g}.narrow(0, (k % {slots}) * {span}, {span})",
                f"Y{b.index}.add_(cur{g})",
                f"cur{g}.zero_()"]

    def _reset(self, P: PopulationPlan) -> list[str]:
        i, size = P.index, P.size
        if P.threshold is None:
            return []
        S = len(P.states)
        names = self._names(P, {r: f"g{i}_{r}" for r in range(S)}, at=f"[i{i}]")
        pr = TorchPrinter(names)
        free = set().union(*[{s.name for s in sympy.sympify(e).free_symbols} for _, e in P.reset]) if P.reset else set()
        lines = [f"g{i}_{r} = Y{i}.index_select(0, i{i} + {r * size})" for r, s in enumerate(P.states) if s in free]
        lines += [f"r{i}_{n} = _rt.const({pr(e)}, Y{i}).expand_as(i{i})" for n, (_, e) in enumerate(P.reset)]
        lines += [f"Y{i}.index_copy_(0, i{i} + {row * size}, r{i}_{n})" for n, (row, _) in enumerate(P.reset)]
        lines.append(f"L{i}.index_fill_(0, i{i}, k)")
        return [f"if i{i}.numel() > 0:"] + ["    " + x for x in lines]

