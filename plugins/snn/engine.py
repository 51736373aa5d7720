"""The clock-driven engine: a network's step loop as generated code, run chunk by chunk.

:class:`Engine` resolves a :class:`~neuroplex.plugins.snn.network.Network` into a plan
(:mod:`.plan`), generates the code of a whole chunk of steps from it and runs that code:

* ``backend="c"``: C (:mod:`.ccode`), built by the system compiler and cached on disk
  (:mod:`.cbuild`), called through ``ctypes`` on the data of torch tensors; the loop over steps,
  neurons and synapses runs in compiled code, as Brian2's ``cpp_standalone`` does. CPU only.
* ``backend="torch"``: torch operations (:mod:`.torchcode`), run eagerly: any torch device,
  no compiler needed.
* ``backend="auto"`` (default): ``c`` on the CPU when a C compiler works, else ``torch``
  (Brian2's own policy: compiled code where it can, else an interpreted fallback).

Both follow Brian2's schedule (see :mod:`.plan`) and write a :class:`~neuroplex.solution.Solution`
(:mod:`.results`); ``meta["engine"]`` says which code ran, ``meta["loop_time"]`` times the step
loop and ``meta["build_time"]`` planning plus code generation and compilation (or the cache load).
Poisson groups draw their random numbers from a torch generator (``seed``), chunk by chunk, so
both backends see the same numbers.
"""
from __future__ import annotations

import ctypes
import time
from typing import TYPE_CHECKING, Any

import torch

from neuroplex.errors import NeuroplexError
from neuroplex.solution import Solution

from . import cbuild, ccode, torchcode
from .elements import timestep
from .plan import NEVER, NetworkPlan, make_plan
from .plastic_runtime import PlasticSynapses
from .results import RunOutput, solution

if TYPE_CHECKING:
    from .network import Network

BACKENDS = ("auto", "c", "torch")
#: room in the C engine's spike buffers beyond one step's worst case (entries per population);
#: a full buffer ends the call early, the engine empties it and calls again
SPIKE_BUFFER = 1 << 18


def choose_backend(backend: str, device: torch.device) -> str:
    """The code a run uses: ``backend`` itself, or for ``auto`` C on the CPU when a compiler works."""
    if backend not in BACKENDS:
        raise NeuroplexError(f"engine backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend == "c" and device.type != "cpu":
        raise NeuroplexError(f"the C engine runs on the CPU, not {device}; use backend='torch' (or 'auto')")
    if backend == "auto":
        return "c" if device.type == "cpu" and cbuild.compiler_available() else "torch"
    return backend


class Engine:
    """A network compiled for clock-driven runs (see the module docstring)."""

    def __init__(self, net: Network, *, dt: float | None = None, method: str | None = None,
                 dtype: Any = torch.float64, device: Any = "cpu", backend: str = "auto"):
        start = time.perf_counter()
        self.net = net
        self.dtype = dtype if isinstance(dtype, torch.dtype) else getattr(torch, str(dtype).replace("torch.", ""))
        if self.dtype not in (torch.float64, torch.float32):
            raise NeuroplexError(f"the spiking engine computes in float64 or float32, not {self.dtype}")
        self.device = torch.device(device)
        self.plan: NetworkPlan = make_plan(net, dt=dt, method=method)
        self.dt = self.plan.dt
        self.B = net.batch
        self.backend = choose_backend(backend, self.device)
        only = self.plan.torch_only
        if only and self.backend == "c":
            if backend == "c":
                raise NeuroplexError(f"the C engine does not run {only[0]}; use backend='torch' (or 'auto')")
            self.backend = "torch"
        self.end_state: dict[str, Any] | None = None
        if self.backend == "c":
            self._c = ccode.generate(self.plan, self.dtype, vector_math=cbuild.vector_math())
            self.source = self._c.text
            self._fn, self.cached = cbuild.build(self.source)
            self._const = {b.name: b.tensor for b in self._c.buffers if b.role == "const"}
        else:
            self._torch = torchcode.generate(self.plan, self.dtype, self.device)
            self.source = self._torch.source
            self.cached = False
        self.build_time = time.perf_counter() - start

    # -------------------------------------------------------------------- run
    def run(self, duration: float, *, progress: bool = False, seed: int | None = None,
            chunk: int | None = None, start: dict[str, object] | None = None) -> Solution:
        """Run ``timestep(duration, dt)`` steps (Brian2's count: the step holding ``duration``
        included) from the initial state, or from ``start`` (an :attr:`end_state` of an earlier
        run of the same network: the torch code only); a Solution. Afterwards :attr:`end_state`
        holds where the run ended."""
        n_steps = timestep(float(duration), self.dt)
        if n_steps < 0:
            raise NeuroplexError(f"duration must be >= 0, not {duration}")
        plan, dev = self.plan, self.device
        state = self._start(n_steps)
        first = 0
        if start is not None:
            if self.backend != "torch":
                raise NeuroplexError("continuing a run needs the torch code (backend='torch' or 'auto')")
            first = self._load(state, start)
        state["KS"] = first
        gen = torch.Generator(device=dev)
        gen.manual_seed(int(seed) if seed is not None else int(torch.randint(0, 2 ** 62, (1,))))
        state["gen"] = gen
        chunk = int(chunk or (1000 if plan.poisson else 10000))
        out = RunOutput(n_steps, {P.index: ([], []) for P in plan.pops if P.record})
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_steps, unit="step", desc=plan.name)
        t0 = time.perf_counter()
        k0, n_steps = first, first + n_steps
        while k0 < n_steps:
            n = min(chunk, n_steps - k0)
            inputs = {f"R{P.index}": torch.rand((n, P.size), generator=gen, device=dev, dtype=self.dtype)
                      for P in plan.poisson}
            rows = [torch.from_numpy(slot.rows(k0, n, self.dt)) for slot in plan.timed]
            done = 0
            while done < n:
                step = self._advance(state, k0 + done, n - done, inputs, rows, done)
                self._drain(state, out)
                done += step
            k0 += n
            if bar is not None:
                bar.update(n)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        loop_time = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        out.monitors = [state[f"M{m}"] for m in range(len(plan.monitors))]
        out.final = {P.index: state[f"Y{P.index}"] for P in plan.pops if P.neurons}
        out.first = first
        out.synapses = {g.name: state[f"PL{q}"].state() for q, g in enumerate(plan.plastic)}
        self.end_state = self._end(state, n_steps)
        return solution(plan, out, dtype=self.dtype, device=dev,
                        meta={"engine": self.backend, "loop_time": loop_time, "build_time": self.build_time,
                              "cached": self.cached, "units_of": self.net.units_of(), "time_unit": "second"})

    def _end(self, state: dict[str, Any], step: int) -> dict[str, Any]:
        """Where the run ended: neuron states and last spikes per population, plastic synapse
        variables, delay buffers and the next step."""
        out: dict[str, Any] = {"step": step, "dt": self.dt, "pops": {}, "synapses": {}, "delays": {}}
        for P in self.plan.pops:
            if P.neurons:
                out["pops"][P.name] = (state[f"Y{P.index}"].clone(), state[f"L{P.index}"].clone())
        for q, g in enumerate(self.plan.plastic):
            out["synapses"][g.name] = state[f"PL{q}"].state()
        for g in range(len(self.plan.synapses)):
            if f"D{g}" in state:
                out["delays"][g] = state[f"D{g}"].clone()
        return out

    def _load(self, state: dict[str, Any], start: dict[str, Any]) -> int:
        """Put an :attr:`end_state` into the run's buffers; the step to continue from."""
        if abs(float(start["dt"]) - self.dt) > 1e-12 * self.dt:
            raise NeuroplexError(f"cannot continue a run made with dt={start['dt']} at dt={self.dt}")
        for P in self.plan.pops:
            if P.neurons:
                Y, L = start["pops"][P.name]
                state[f"Y{P.index}"].copy_(Y)
                state[f"L{P.index}"].copy_(L)
        for q, g in enumerate(self.plan.plastic):
            state[f"PL{q}"].load(start["synapses"][g.name])
        for g, buf in start["delays"].items():
            state[f"D{g}"].copy_(buf)
        return int(start["step"])

    def _start(self, n_steps: int) -> dict[str, Any]:
        """The run's buffers: states, lastspike, monitors (and the C engine's scratch)."""
        plan, dev, dt = self.plan, self.device, self.dtype
        state: dict[str, Any] = {}
        for P in plan.pops:
            if P.neurons:
                state[f"Y{P.index}"] = P.y0.to(device=dev, dtype=dt).reshape(-1).clone()
                state[f"L{P.index}"] = torch.full((P.size,), NEVER, dtype=torch.int32, device=dev)
        for m, mon in enumerate(plan.monitors):
            rows = (n_steps + mon.every - 1) // mon.every
            state[f"M{m}"] = torch.zeros((rows, mon.select.numel()), dtype=dt, device=dev)
        for g, group in enumerate(plan.synapses):
            if group.delay is not None:
                span = len(plan.pops[group.post].states) * plan.pops[group.post].size
                state[f"D{g}"] = torch.zeros(group.slots * span, dtype=dt, device=dev)
        for q, group in enumerate(plan.plastic):
            state[f"PL{q}"] = PlasticSynapses(group, plan.pops[group.pre], plan.pops[group.post], dt, dev, self.dt)
        if self.backend == "torch":
            return state
        counts = []
        for P in plan.pops:
            state[f"S{P.index}"] = torch.zeros(P.size, dtype=torch.int32)
            if P.neurons and P.threshold is not None:  # threshold flags, zero-padded for 8-byte reads
                state[f"SP{P.index}"] = torch.zeros(P.size + 8, dtype=torch.uint8)
            if any(group.gated and group.post == P.index for group in plan.synapses):
                state[f"NR{P.index}"] = torch.ones(P.size, dtype=torch.uint8)  # not_refractory after the threshold
            if P.record:
                capacity = P.size + max(P.size, SPIKE_BUFFER)
                state[f"OI{P.index}"] = torch.zeros(capacity, dtype=torch.int32)
                state[f"OK{P.index}"] = torch.zeros(capacity, dtype=torch.int64)
                counts += [0, capacity]
        state["count"] = torch.tensor(counts or [0], dtype=torch.int64)
        return state

    def _advance(self, state: dict[str, Any], k0: int, n: int, inputs: dict[str, torch.Tensor],
                 rows: list[torch.Tensor], skip: int) -> int:
        """Run up to ``n`` steps from step ``k0`` (``skip`` rows of the chunk's inputs are used up)."""
        if self.backend == "torch":
            rec = {P.index: ([], []) for P in self.plan.pops if P.record}
            R = [inputs[f"R{P.index}"][skip:] for P in self.plan.poisson]
            TIX = [r[skip:].tolist() for r in rows]
            self._torch.fn(k0, n, state, self._torch.consts, R, TIX, rec)
            state["rec"] = rec
            return n
        call = {**inputs, **{f"TIX{s}": r for s, r in enumerate(rows)}}
        ptrs = []
        for b in self._c.buffers:
            if b.role == "const":
                t = self._const[b.name]
            elif b.role == "call":
                t = call[b.key][skip:]
            else:
                t = state[b.key]
            ptrs.append(t.data_ptr())
        array = (ctypes.c_void_p * len(ptrs))(*ptrs)
        return int(self._fn(k0, n, array, state["count"].data_ptr()))

    def _drain(self, state: dict[str, Any], out: RunOutput) -> None:
        """Move the spikes recorded so far into ``out`` (the C engine's buffers are emptied)."""
        if self.backend == "torch":
            for p, (ks, idx) in state.pop("rec", {}).items():
                if ks:
                    out.spikes[p][0].append(torch.repeat_interleave(
                        torch.tensor(ks, dtype=torch.int64), torch.tensor([x.numel() for x in idx])))
                    out.spikes[p][1].append(torch.cat(idx).cpu())
            return
        count = state["count"]
        for c, p in enumerate(self._c.recorded):
            m = int(count[2 * c])
            if m:
                out.spikes[p][0].append(state[f"OK{p}"][:m].clone())
                out.spikes[p][1].append(state[f"OI{p}"][:m].to(torch.int64))
                count[2 * c] = 0
