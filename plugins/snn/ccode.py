"""C source of a whole chunk of clock-driven steps, generated from a :class:`~.plan.NetworkPlan`.

One function ``neuroplex_run(k0, n, A, count)`` runs steps ``k0 .. k0+n-1`` of every
population, synapse set and monitor in Brian2's order (module docstring of :mod:`.plan`) and
returns the number of steps it ran: fewer than ``n`` when a spike buffer has no room for one
more step (the caller empties it and calls again). ``A`` holds the data pointers of the
buffers listed in :attr:`CSource.buffers` (torch tensors the caller owns); ``count[2p]`` is
how many spikes population ``p``'s buffer holds, ``count[2p+1]`` its capacity.

Per step: monitors copy their states (``when='start'``); each population runs one loop over
its neurons computing ``not_refractory`` from the old state, the new state and a flag for the
threshold (vectorised), then a scan listing the flagged neurons; each synapse set adds the weights of
the spiking rows of its compressed adjacency into the post-synaptic state (delays through a
ring buffer of ``max delay + 1`` slots); the spiking neurons are reset and their
``lastspike`` set. Expressions are printed by the core's :class:`~neuroplex.codegen.CPrinter` (the C target of
the one sympy printer) in the run's precision (``double`` or ``float`` arithmetic, as torch computes in that dtype).
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Any, Callable

import sympy
import torch

from neuroplex.cbuild import VECTOR_MATH
from neuroplex.codegen import CPrinter, c_helpers
from neuroplex.errors import ModelError

from . import cbuild
from .plan import NEVER, ExplicitUpdate, LinearUpdate, NetworkPlan, PopulationPlan

#: C element type of each buffer role
CTYPES = {torch.int32: "int32_t", torch.int64: "int64_t", torch.uint8: "uint8_t"}

_HEADER = """#include <math.h>
#include <stdint.h>
#include <string.h>

typedef {real} real;

"""


@dataclass
class Buffer:
    """One pointer of ``A``: ``name`` in C, its element type, and where the caller finds the
    tensor: ``const`` buffers are bound at build time (``tensor``), ``state`` and ``call``
    buffers are looked up by ``key`` in the run's state and in each call's inputs."""

    name: str
    ctype: str
    role: str
    key: str
    tensor: torch.Tensor | None = None


@dataclass
class CSource:
    """The generated C file and the buffers its function reads and writes."""

    text: str
    buffers: list[Buffer] = field(default_factory=list)
    recorded: list[int] = field(default_factory=list)  # population indices with a spike buffer


def header(dtype: torch.dtype, vector_math: bool) -> str:
    """The includes, the ``real`` type and the helper functions every generated file starts with
    (:func:`neuroplex.codegen.c_helpers`: the special functions' one C definition)."""
    real_type = "float" if dtype == torch.float32 else "double"
    return _HEADER.format(real=real_type) + c_helpers(dtype) + (VECTOR_MATH if vector_math else "")


def elementwise(expr: Any, args: list[sympy.Symbol], dtype: torch.dtype) -> Callable[..., torch.Tensor]:
    """``expr`` of the symbols ``args`` as a compiled C loop over equally shaped tensors, printed,
    vectorized and built as the engine's neuron loops are: ``f(*tensors) -> tensor`` (CPU). It
    exposes the C forms of the special functions for checks against :mod:`neuroplex.runtime`."""
    names = {a.name: f"a{i}[j]" for i, a in enumerate(args)}
    vector = cbuild.vector_math()
    lines = [header(dtype, vector), "int64_t neuroplex_elementwise(int64_t n, void **A) {"]
    lines += [f"    const real *restrict a{i} = (const real *)A[{i}];" for i in range(len(args))]
    lines += [f"    real *restrict out = (real *)A[{len(args)}];", *(["#pragma omp simd"] if vector else []),
              f"    for (int64_t j = 0; j < n; ++j) out[j] = {CPrinter(names, dtype)(expr)};", "    return n;", "}", ""]
    fn, _ = cbuild.build("\n".join(lines), symbol="neuroplex_elementwise")
    fn.argtypes = [ctypes.c_int64, ctypes.c_void_p]

    def call(*tensors: torch.Tensor) -> torch.Tensor:
        xs = [torch.as_tensor(t, dtype=dtype).contiguous() for t in tensors]
        out = torch.empty_like(xs[0])
        ptrs = (ctypes.c_void_p * (len(xs) + 1))(*[x.data_ptr() for x in xs], out.data_ptr())
        fn(out.numel(), ptrs)
        return out

    return call


def generate(plan: NetworkPlan, dtype: torch.dtype, *, vector_math: bool = False) -> CSource:
    """The C source of ``plan`` computing in ``dtype`` (float64 or float32); ``vector_math``:
    declare the vector versions of ``exp``, ``expm1``, ``log`` (glibc's libmvec, see
    :func:`.cbuild.vector_math`) so that neuron loops calling them are vectorized."""
    return _Generator(plan, dtype, vector_math).source()


class _Generator:
    def __init__(self, plan: NetworkPlan, dtype: torch.dtype, vector_math: bool = False):
        self.vector_math = vector_math
        if dtype not in (torch.float64, torch.float32):
            raise ModelError(f"the C engine computes in float64 or float32, not {dtype}")
        self.plan = plan
        self.dtype = dtype
        self.real = "float" if dtype == torch.float32 else "double"
        self.buffers: list[Buffer] = []
        self.printer = CPrinter({}, dtype)

    # ----------------------------------------------------------------- helpers
    def buffer(self, name: str, role: str, key: str = "", tensor: torch.Tensor | None = None,
               ctype: str | None = None) -> str:
        if tensor is not None:
            tensor = tensor.contiguous()
            if tensor.is_floating_point():
                tensor = tensor.to(self.dtype)
            ctype = "real" if tensor.is_floating_point() else ctype or CTYPES[tensor.dtype]
        self.buffers.append(Buffer(name, ctype or "real", role, key or name, tensor))
        return name

    def number(self, value: float) -> str:
        return self.printer(sympy.Float(value, 17))

    def value(self, v: Any, name: str) -> str:
        """A number as a literal, a per-neuron tensor as a constant buffer read at ``j``."""
        if isinstance(v, float):
            return self.number(v)
        return f"{self.buffer(name, 'const', tensor=v)}[j]"

    # -------------------------------------------------------------- the file
    def source(self) -> CSource:
        plan = self.plan
        head = [header(self.dtype, self.vector_math), "int64_t neuroplex_run(int64_t k0, int64_t n, void **A, int64_t *count) {"]
        body: list[str] = []
        checks: list[str] = []
        recorded: list[int] = []
        for P in plan.pops:
            if P.neurons:
                self.buffer(f"Y{P.index}", "state", f"Y{P.index}")
                self.buffer(f"L{P.index}", "state", f"L{P.index}", ctype="int32_t")
                if P.threshold is not None:
                    self.buffer(f"SP{P.index}", "state", f"SP{P.index}", ctype="uint8_t")
                if P.index in self._gated_posts():
                    self.buffer(f"NR{P.index}", "state", f"NR{P.index}", ctype="uint8_t")
            else:
                self.buffer(f"R{P.index}", "call", f"R{P.index}")
                self.buffer(f"PR{P.index}", "const", tensor=P.spike_prob)
            self.buffer(f"S{P.index}", "state", f"S{P.index}", ctype="int32_t")
            if P.record:
                self.buffer(f"OI{P.index}", "state", f"OI{P.index}", ctype="int32_t")
                self.buffer(f"OK{P.index}", "state", f"OK{P.index}", ctype="int64_t")
                c = len(recorded)
                checks.append(f"if (count[{2 * c}] + {P.size} > count[{2 * c + 1}]) return kk;")
                recorded.append(P.index)
        for s, slot in enumerate(plan.timed):
            self.buffer(f"TV{s}", "const", tensor=slot.values.reshape(-1))
            self.buffer(f"TIX{s}", "call", f"TIX{s}", ctype="int64_t")
        if any(P.reads("time") for P in plan.pops if P.neurons):
            body.append(f"const real tk = (real)((double)k * {float(plan.dt)!r});")
        body += self._monitors()
        for P in plan.pops:
            body += self._population(P)
        for P in plan.pops:
            if P.record:
                c = recorded.index(P.index)
                body += [f"memcpy(OI{P.index} + count[{2 * c}], S{P.index}, (size_t)ns{P.index} * sizeof(int32_t));",
                         f"for (int64_t s = 0; s < ns{P.index}; ++s) OK{P.index}[count[{2 * c}] + s] = k;",
                         f"count[{2 * c}] += ns{P.index};"]
        for g, group in enumerate(plan.synapses):
            body += self._synapses(g, group)
        for P in plan.pops:
            if P.neurons:
                body += self._reset(P)
        decl = [f"    {b.ctype} *restrict {b.name} = ({b.ctype} *)A[{i}];" for i, b in enumerate(self.buffers)]
        loop = ["    for (int64_t kk = 0; kk < n; ++kk) {", "        const int64_t k = k0 + kk;"]
        loop += ["        " + line for line in checks + body]
        text = "\n".join(head + decl + loop + ["    }", "    return n;", "}", ""])
        return CSource(text, self.buffers, recorded)

    # ------------------------------------------------------------- monitors
    def _monitors(self) -> list[str]:
        out = []
        for m, mon in enumerate(self.plan.monitors):
            sel = self.buffer(f"MS{m}", "const", tensor=mon.select)
            self.buffer(f"M{m}", "state", f"M{m}")
            out += [f"if (k % {mon.every} == 0) {{",
                    f"    real *row = M{m} + (k / {mon.every}) * {mon.select.numel()};",
                    f"    for (int64_t c = 0; c < {mon.select.numel()}; ++c) row[c] = Y{mon.pop}[{sel}[c]];",
                    "}"]
        return out

    # ----------------------------------------------------------- populations
    def _names(self, P: PopulationPlan, states: str) -> dict[str, str]:
        """C names of a population's symbols; ``states``: the prefix of the state locals."""
        names = {}
        for sym, ref in P.symbols.items():
            if ref.kind == "state":
                names[sym] = f"{states}{ref.index}"
            elif ref.kind == "array":
                names[sym] = f"{self._array(P, ref.key)}[j]"
            elif ref.kind == "timed":
                names[sym] = f"TV{ref.index}[TIX{ref.index}[kk] * {P.size} + j]"
            elif ref.kind == "time":
                names[sym] = "tk"
            elif ref.kind == "notref":
                names[sym] = f"(({self.real})nr)"
        return names

    def _array(self, P: PopulationPlan, key: str) -> str:
        name = f"Q{P.index}_{list(P.arrays).index(key)}"
        if not any(b.name == name for b in self.buffers):
            self.buffer(name, "const", tensor=P.arrays[key])
        return name

    def _population(self, P: PopulationPlan) -> list[str]:
        i, size = P.index, P.size
        if not P.neurons:
            return [f"int64_t ns{i} = 0;",
                    f"for (int64_t j = 0; j < {size}; ++j) if (R{i}[kk * {size} + j] < PR{i}[j]) S{i}[ns{i}++] = (int32_t)j;"]
        S = len(P.states)
        old = self._names(P, "y")
        pr = CPrinter(old, self.dtype)
        out: list[str] = [f"int64_t ns{i} = 0;"] + (["#pragma omp simd"] if self.vector_math else [])
        loop = [f"for (int64_t j = 0; j < {size}; ++j) {{"]
        loop += [f"    const real y{r} = Y{i}[{r * size} + j];" for r in range(S)]
        if P.refractory == "duration":
            steps = P.ref_steps if isinstance(P.ref_steps, int) else \
                f"{self.buffer(f'RF{i}', 'const', tensor=P.ref_steps, ctype='int32_t')}[j]"
            loop.append(f"    const int nr = (k - (int64_t)L{i}[j]) >= {steps};")
        elif P.refractory == "condition":  # Brian2: not_refractory = not_refractory or not (cond),
            # False from a spike on; lastspike NEVER marks a neuron that has left refractoriness
            loop += [f"    const int nr = (L{i}[j] == {NEVER}) || !({pr(P.ref_condition)});",
                     f"    if (nr) L{i}[j] = {NEVER};"]
        if isinstance(P.update, LinearUpdate):
            loop += ["    " + x for x in self._linear(P, P.update, old)]
        else:
            loop += ["    " + x for x in self._explicit(P, P.update, pr)]
        loop += [f"    Y{i}[{r * size} + j] = n{r};" for r in range(S)]
        if P.threshold is None:
            return out + loop + ["}"]
        # the threshold on the new state, as a flag per neuron (in the vectorised loop), then
        # a scan listing the flagged neurons eight flags at a time
        cond = CPrinter(self._names(P, "n"), self.dtype)(P.threshold)
        test = f"nr && ({cond})" if P.refractory != "none" else cond
        loop += [f"    SP{i}[j] = (uint8_t)({test});"]
        if i in self._gated_posts():  # not_refractory after the threshold, read by the synapses
            loop.append(f"    NR{i}[j] = (uint8_t)(nr && !SP{i}[j]);")
        loop.append("}")
        scan = [f"for (int64_t j0 = 0; j0 < {size}; j0 += 8) {{", "    uint64_t flags;",
                f"    memcpy(&flags, SP{i} + j0, 8);", "    if (!flags) continue;",
                f"    for (int64_t j = j0; j < j0 + 8 && j < {size}; ++j) if (SP{i}[j]) S{i}[ns{i}++] = (int32_t)j;",
                "}"]
        return out + loop + scan

    def _linear(self, P: PopulationPlan, u: LinearUpdate, names: dict[str, str]) -> list[str]:
        S = len(P.states)

        def row(Pm: list, c: list, cu: list, r: int, tag: str) -> str:
            terms = []
            for col in range(S):
                v = Pm[r][col]
                if isinstance(v, float) and v == 0.0:
                    continue
                terms.append(f"{self.value(v, f'P{P.index}{tag}_{r}_{col}')} * y{col}")
            if not (isinstance(c[r], float) and c[r] == 0.0):
                terms.append(self.value(c[r], f"C{P.index}{tag}_{r}"))
            for name, v in cu[r].items():
                terms.append(f"{self.value(v, f'U{P.index}{tag}_{r}_{name}')} * {names[name]}")
            return " + ".join(terms) if terms else self.number(0.0)

        out = []
        for r in range(S):
            normal = row(u.P, u.c, u.cu, r, "")
            if not u.frozen_differs(r):
                out.append(f"const real n{r} = {normal};")
            else:
                frozen = row(u.P_ref, u.c_ref, u.cu_ref, r, "r")
                out.append(f"const real n{r} = nr ? ({normal}) : ({frozen});")
        return out

    def _explicit(self, P: PopulationPlan, u: ExplicitUpdate, pr: CPrinter) -> list[str]:
        out = []
        for t, (name, expr) in enumerate(u.assignments):
            local = f"w{t}"
            out.append(f"const real {local} = {pr(expr)};")
            pr.names[name] = local
        for r, s in enumerate(P.states):
            value = pr(u.new[s])
            out.append(f"const real n{r} = nr ? ({value}) : y{r};" if s in u.clamp_after else
                       f"const real n{r} = {value};")
        return out

    # --------------------------------------------------------------- synapses
    def _gated_posts(self) -> set[int]:
        """Populations whose synapses write a state clamped while refractory (:func:`.plan.gated_rows`)."""
        return {group.post for group in self.plan.synapses if group.gated}

    def _synapses(self, g: int, group: Any) -> list[str]:
        a, b = self.plan.pops[group.pre], self.plan.pops[group.post]
        rp = self.buffer(f"RP{g}", "const", tensor=group.rowptr)
        tg = self.buffer(f"TG{g}", "const", tensor=group.target)
        w = self.buffer(f"W{g}", "const", tensor=group.weight)
        gate = f"if (NR{b.index}[x % {b.size}]) " if group.gated else ""  # Brian2's conditional write
        loop = [f"for (int64_t s = 0; s < ns{a.index}; ++s) {{", f"    const int64_t i = S{a.index}[s];"]
        if group.delay is None:
            loop += [f"    for (int64_t e = {rp}[i]; e < {rp}[i + 1]; ++e) {{ const int64_t x = {tg}[e]; "
                     f"{gate}Y{b.index}[x] += {w}[e]; }}", "}"]
            return loop
        span = len(b.states) * b.size
        dl = self.buffer(f"DL{g}", "const", tensor=group.delay)
        self.buffer(f"D{g}", "state", f"D{g}")
        loop += [f"    for (int64_t e = {rp}[i]; e < {rp}[i + 1]; ++e)",
                 f"        D{g}[((k + {dl}[e]) % {group.slots}) * {span} + {tg}[e]] += {w}[e];", "}",
                 "{", f"    real *restrict cur = D{g} + (k % {group.slots}) * {span};",
                 f"    for (int64_t x = 0; x < {span}; ++x) {{ {gate}Y{b.index}[x] += cur[x]; cur[x] = 0; }}", "}"]
        return loop

    # ------------------------------------------------------------------ reset
    def _reset(self, P: PopulationPlan) -> list[str]:
        i, size = P.index, P.size
        if P.threshold is None:
            return []
        names = self._names(P, "y")
        pr = CPrinter(names, self.dtype)
        free = set().union(*[{s.name for s in sympy.sympify(e).free_symbols} for _, e in P.reset]) if P.reset else set()
        loads = [f"const real y{r} = Y{i}[{r * size} + j];" for r, s in enumerate(P.states) if s in free]
        news = [f"const real r{n} = {pr(e)};" for n, (_, e) in enumerate(P.reset)]
        writes = [f"Y{i}[{row * size} + j] = r{n};" for n, (row, _) in enumerate(P.reset)]
        lines = loads + news + writes + [f"L{i}[j] = (int32_t)k;"]
        return [f"for (int64_t s = 0; s < ns{i}; ++s) {{", f"    const int64_t j = S{i}[s];",
                *("    " + x for x in lines), "}"]

