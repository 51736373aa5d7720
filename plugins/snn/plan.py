"""What one clock-driven run of a :class:`~neuroplex.plugins.snn.network.Network` computes,
independent of the code that computes it.

:func:`make_plan` resolves a network for a step ``dt``, a precision and a method choice into
plain data that a code generator (:mod:`.ccode` or :mod:`.torchcode`) turns into a step loop:

* per population, its state layout and initial values, the parameters and inputs folded to
  numbers (shared values) or kept as per-neuron arrays, the one-step update (the ``exact``
  propagator evaluated to numbers, or the explicit method's assignments with common
  sub-expressions shared), the threshold, reset and refractory rule as folded sympy
  expressions whose symbols are listed in :attr:`PopulationPlan.symbols`;
* per synapse set, one compressed-row adjacency: for each pre-synaptic neuron, the flat
  post-synaptic targets ``state*size + sample*n + j``, weights and delays;
* the state monitors, Poisson groups and ``TimedArray`` reads.

The order inside a step is Brian2's default schedule: state monitors (``when='start'``),
``not_refractory`` from the old state, state update, threshold, synaptic propagation, reset.
Arrays are flat over the batch: neuron ``j`` of sample ``b`` is ``b*n + j`` (``size = B*n``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import sympy
import torch

from neuroplex.errors import ModelError, NeuroplexError
from neuroplex.ir import ModelIR
from neuroplex.functions import exprel_torch as torch_exprel

from .elements import PoissonGroup, Population, SpikeGeneratorGroup, TimedArray
from .integrators import DT, NOTREF, ExplicitStep, LinearStep, build_step, clamped_states, substitute_assignments

from .plasticity import SynapseModel

if TYPE_CHECKING:
    from .network import Network

#: ``lastspike`` of a neuron that never spiked (in steps)
NEVER = -(2 ** 30)

#: a number, or a per-neuron float64 tensor of shape ``(size,)``
Value = Any


@dataclass(frozen=True)
class Ref:
    """What a symbol of a population's expressions stands for.

    ``kind``: ``state`` (row ``index`` of the population's state, its value before the
    update), ``array`` (per-neuron parameter or input ``key``), ``timed`` (the row of
    :attr:`NetworkPlan.timed` ``index`` read this step), ``time`` (``k*dt``) or ``notref``
    (1 when not refractory, else 0)."""

    kind: str
    index: int = -1
    key: str = ""


@dataclass
class LinearUpdate:
    """``y_new[r] = sum_c P[r][c] y[c] + c[r] + sum_u cu[r][u] u`` (``exact``); the
    ``*_ref`` variant applies while refractory (clamped rows frozen). Entries are numbers or
    per-neuron tensors; ``u`` names an array or timed input symbol."""

    P: list[list[Value]]
    c: list[Value]
    cu: list[dict[str, Value]]
    P_ref: list[list[Value]] | None = None
    c_ref: list[Value] | None = None
    cu_ref: list[dict[str, Value]] | None = None

    def frozen_differs(self, r: int) -> bool:
        """Whether row ``r`` of the refractory variant differs from the normal one."""
        if self.P_ref is None:
            return False
        return not (all(_same(x, y) for x, y in zip(self.P[r], self.P_ref[r])) and _same(self.c[r], self.c_ref[r])
                    and self.cu[r].keys() == self.cu_ref[r].keys()
                    and all(_same(v, self.cu_ref[r][k]) for k, v in self.cu[r].items()))


def _same(x: Value, y: Value) -> bool:
    if isinstance(x, float) or isinstance(y, float):
        return isinstance(x, float) and isinstance(y, float) and x == y
    return torch.equal(x, y)


@dataclass
class ExplicitUpdate:
    """Temporaries computed in order (``assignments``), then ``new[state]`` (an expression over
    old states and temporaries); ``clamp_after``: states kept at their old value while refractory."""

    assignments: list[tuple[str, sympy.Expr]]
    new: dict[str, sympy.Expr]
    clamp_after: list[str] = field(default_factory=list)


@dataclass
class TimedSlot:
    """A ``TimedArray`` read: ``values[(t + shift) -> row]`` of shape ``(T, size)``."""

    values: torch.Tensor
    dt: float
    shift: float

    def rows(self, k0: int, n: int, dt: float) -> np.ndarray:
        """The row read in steps ``k0 .. k0+n-1`` (Brian2's rule, see :func:`timed_row`)."""
        return np.array([timed_row((k0 + q) * dt + self.shift, self.dt, dt, self.values.shape[0])
                         for q in range(n)], dtype=np.int64)


@dataclass
class PopulationPlan:
    """One population (neurons or a Poisson group) resolved for the run."""

    index: int
    name: str
    n: int
    size: int
    offset: int
    record: bool
    kind: str  # neurons | poisson | generator
    spike_prob: torch.Tensor | None = None  # Poisson: rates*dt, (size,)
    events: dict[int, torch.Tensor] = field(default_factory=dict)  # generator: step -> flat indices
    rand_slot: int = -1
    model: ModelIR | None = None
    method: str = ""
    states: list[str] = field(default_factory=list)
    y0: torch.Tensor | None = None  # (S, size) float64
    arrays: dict[str, torch.Tensor] = field(default_factory=dict)  # per-neuron float64 (size,)
    symbols: dict[str, Ref] = field(default_factory=dict)
    refractory: str = "none"  # none | duration | condition
    ref_steps: int | torch.Tensor | None = None  # duration: steps (an int or int32 (size,))
    ref_condition: Any = None  # condition: folded sympy expression on the old state
    update: LinearUpdate | ExplicitUpdate | None = None
    threshold: Any = None  # folded sympy condition on the updated state, or None
    reset: list[tuple[int, Any]] = field(default_factory=list)  # (state row, expr of pre-reset values)

    @property
    def neurons(self) -> bool:
        return self.kind == "neurons"

    def expressions(self) -> list[Any]:
        """Every sympy expression the step evaluates for this population."""
        exprs = [self.threshold, self.ref_condition, *(e for _, e in self.reset)]
        if isinstance(self.update, ExplicitUpdate):
            exprs += [e for _, e in self.update.assignments] + list(self.update.new.values())
        return [e for e in exprs if isinstance(e, sympy.Basic)]

    def reads(self, kind: str) -> bool:
        """Whether the step reads a symbol of ``kind`` (``time``, ``notref``, ...)."""
        names = {name for name, ref in self.symbols.items() if ref.kind == kind}
        return any(s.name in names for e in self.expressions() for s in e.free_symbols)


@dataclass
class SynapseGroup:
    """One synapse set from ``pre`` to ``post`` as compressed rows over the pre-synaptic
    neurons: row ``i`` holds entries ``rowptr[i] .. rowptr[i+1]-1``, each a flat target in the
    post state (``state*size + sample*n + j``), a weight and, when ``delayed``, a delay in steps."""

    pre: int
    post: int
    rowptr: torch.Tensor  # int64 (pre size + 1,)
    target: torch.Tensor  # int64 (nnz,)
    weight: torch.Tensor  # float64 (nnz,)
    delay: torch.Tensor | None  # int64 (nnz,) or None
    slots: int = 1  # ring-buffer slots (max delay + 1)
    gated: bool = False  # the target is clamped while refractory: see :func:`gated_rows`


@dataclass
class PlasticGroup:
    """One plastic synapse set: per synapse its flat pre neuron (``sample*n_pre + i``), flat post
    neuron (``sample*n_post + j``) and the initial values of the model's variables (float64,
    ``w`` included); ``target``: the post state row ``on_pre`` adds ``w`` to."""

    name: str
    pre: int
    post: int
    target: int
    model: SynapseModel
    pre_flat: torch.Tensor
    post_flat: torch.Tensor
    init: dict[str, torch.Tensor]


@dataclass
class PoissonInputPlan:
    """Brian2's ``PoissonInput`` on state row ``row`` of population ``pop``: ``N`` sources
    spiking with probability ``prob`` (per neuron, ``(size,)``) per step, each adding ``weight``."""

    name: str
    pop: int
    row: int
    N: int
    prob: torch.Tensor
    weight: float


@dataclass
class MonitorPlan:
    """Record ``select`` (flat indices into the population's state, sample-major) every
    ``every`` steps; ``labels`` name the ``width`` traces of one sample."""

    pop: int
    every: int
    select: torch.Tensor  # int64 (B*width,)
    width: int
    labels: list[str]


@dataclass
class NetworkPlan:
    """A network resolved for one engine (see the module docstring)."""

    name: str
    dt: float
    batch: int
    pops: list[PopulationPlan]
    synapses: list[SynapseGroup]
    monitors: list[MonitorPlan]
    timed: list[TimedSlot]
    offsets: dict[str, tuple[int, int]]
    plastic: list[PlasticGroup] = field(default_factory=list)
    poisson_inputs: list[PoissonInputPlan] = field(default_factory=list)
    rate_monitors: list[str] = field(default_factory=list)

    @property
    def poisson(self) -> list[PopulationPlan]:
        return [p for p in self.pops if p.kind == "poisson"]

    def presynaptic(self, pop: PopulationPlan) -> bool:
        """Whether ``pop``'s spikes drive synapses."""
        return any(g.pre == pop.index for g in self.synapses)

    @property
    def torch_only(self) -> list[str]:
        """What only the torch code runs (plastic synapses, spike generators, PoissonInput)."""
        return ([f"plastic synapses {g.name!r}" for g in self.plastic]
                + [f"spike generator {p.name!r}" for p in self.pops if p.kind == "generator"]
                + [f"PoissonInput {q.name!r}" for q in self.poisson_inputs])


def make_plan(net: Network, *, dt: float | None = None, method: str | None = None) -> NetworkPlan:
    """Resolve ``net`` for a step ``dt`` (default the network's) and a method overriding every
    population's (default each population's own)."""
    if not net.populations:
        raise NeuroplexError(f"network {net.name!r} has no populations")
    step = float(dt or net.dt)
    plan = NetworkPlan(net.name, step, net.batch, [], [], [], [], net.population_offsets())
    rand_slot = 0
    for index, src in enumerate(net.populations.values()):
        offset = plan.offsets[src.name][0]
        if isinstance(src, PoissonGroup):
            pop = PopulationPlan(index, src.name, src.n, net.batch * src.n, offset, src.record_spikes, "poisson")
            rates = per_neuron(src.rates, src.n, net.batch, f"Poisson group {src.name!r} rates")
            if (rates < 0).any():
                raise NeuroplexError(f"Poisson group {src.name!r}: negative rate")
            pop.spike_prob, pop.rand_slot = rates * step, rand_slot
            rand_slot += 1
        elif isinstance(src, SpikeGeneratorGroup):
            pop = PopulationPlan(index, src.name, src.n, net.batch * src.n, offset, src.record_spikes, "generator")
            flat = src.sample * src.n + src.indices
            order = np.lexsort((flat, src.steps))
            steps, flat = src.steps[order], flat[order]
            cuts = np.flatnonzero(np.diff(steps)) + 1
            for ks, fs in zip(np.split(steps, cuts), np.split(flat, cuts)):
                if ks.size:
                    pop.events[int(ks[0])] = torch.from_numpy(fs.astype(np.int64))
        else:
            pop = _neuron_plan(index, src, offset, net.batch, step, method, plan.timed)
        plan.pops.append(pop)
    plan.synapses = _synapse_groups(net, plan)
    plan.plastic = _plastic_groups(net, plan)
    plan.poisson_inputs = _poisson_inputs(net, plan)
    plan.monitors = _monitors(net, plan)
    plan.rate_monitors = list(net.rate_monitors)
    return plan


# ----------------------------------------------------------------------------- neurons
def _neuron_plan(index: int, src: Population, offset: int, batch: int, dt: float, method: str | None,
                 timed: list[TimedSlot]) -> PopulationPlan:
    model = src.model
    size = batch * src.n
    pop = PopulationPlan(index, src.name, src.n, size, offset, src.record_spikes, "neurons", model=model,
                         method=method or src.integration_method, states=list(model.state_names))
    scalars: dict[str, float] = {DT.name: dt}
    for prm in model.parameters:
        value = torch.as_tensor(src.params.get(prm.name, prm.value), dtype=torch.float64)
        if value.dim() == 0:
            scalars[prm.name] = float(value)
        else:
            pop.arrays[prm.name] = per_neuron(value, src.n, batch, f"population {src.name!r} parameter {prm.name!r}")
    timed_inputs: dict[str, TimedArray] = {}
    for name, default in model.inputs.items():
        value = src.inputs.get(name, default)
        if isinstance(value, TimedArray):
            timed_inputs[name] = value
            continue
        t = torch.as_tensor(value, dtype=torch.float64)
        if t.dim() == 0:
            scalars[name] = float(t)
        else:
            pop.arrays[name] = per_neuron(t, src.n, batch, f"population {src.name!r} input {name!r}")
    fold = {sympy.Symbol(k): sympy.Float(v) for k, v in scalars.items()}
    symbols = pop.symbols
    symbols.update({s: Ref("state", r) for r, s in enumerate(pop.states)})
    symbols.update({k: Ref("array", key=k) for k in pop.arrays})
    symbols[model.time.name] = Ref("time")

    def timed_slot(array: TimedArray, shift: float, what: str) -> Ref:
        rows = torch.stack([per_neuron(array.values[r], src.n, batch, what) for r in range(array.values.shape[0])])
        timed.append(TimedSlot(rows, array.dt, shift))
        return Ref("timed", len(timed) - 1)

    for name, array in timed_inputs.items():
        symbols[name] = timed_slot(array, 0.0, f"population {src.name!r} input {name!r}")
    pop.y0 = _initial_state(src, model, scalars, pop.arrays, batch)

    ref = model.refractory
    if ref is not None:
        ref = substitute_assignments(model, ref)
        if isinstance(ref, (sympy.Rel, sympy.And, sympy.Or, sympy.Not)):
            pop.refractory, pop.ref_condition = "condition", ref.xreplace(fold)
        else:
            pop.refractory = "duration"
            duration = evaluate(ref, scalars, pop.arrays)
            # Brian2: not refractory <=> timestep(t - lastspike) >= timestep(refractory)
            steps = torch.floor((torch.as_tensor(duration, dtype=torch.float64) + 1e-3 * dt) / dt).to(torch.int64)
            pop.ref_steps = int(steps) if steps.dim() == 0 else steps.to(torch.int32)

    update = build_step(model, pop.method)
    if isinstance(update, LinearStep):
        pop.update = _linear_update(pop, update, scalars)
    else:
        for sym, (u, shift) in update.input_at.items():
            if u in timed_inputs:  # a TimedArray read at the stage's own time t + shift
                symbols[sym] = timed_slot(timed_inputs[u], float(sympy.sympify(shift).subs(DT, dt)),
                                          f"population {src.name!r} input {u!r}")
            elif u in symbols:
                symbols[sym] = symbols[u]
            else:
                fold[sympy.Symbol(sym)] = fold[sympy.Symbol(u)]
        if update.uses_notref():
            symbols[NOTREF.name] = Ref("notref")
        pop.update = _explicit_update(pop, update, fold)

    events = model.events
    if len(events) > 1:
        raise ModelError(f"population {src.name!r}: the spiking engine supports one threshold event, "
                         f"model {model.name!r} has {len(events)}")
    if events:
        pop.threshold = substitute_assignments(model, sympy.sympify(events[0].trigger)).xreplace(fold)
        pop.reset = [(pop.states.index(s), substitute_assignments(model, sympy.sympify(e)).xreplace(fold))
                     for s, e in events[0].assignments.items()]
    for expr in [pop.threshold, pop.ref_condition, *(e for _, e in pop.reset)]:
        _check_symbols(expr, symbols, f"population {src.name!r}")
    return pop


def _initial_state(src: Population, model: ModelIR, scalars: dict[str, float], arrays: dict[str, torch.Tensor],
                   batch: int) -> torch.Tensor:
    """``(S, size)`` initial values: the IR's initial-value expressions per neuron, then the
    population's ``init`` overrides."""
    size = batch * src.n
    columns = [arrays[p.name] if p.name in arrays else torch.full((size,), scalars[p.name], dtype=torch.float64)
               for p in model.parameters]
    pmat = torch.stack(columns, dim=-1) if columns else torch.zeros(size, 0, dtype=torch.float64)
    y0 = model.compile(dtype=torch.float64).initial_state(pmat).T.contiguous()
    for key, value in src.init.items():
        y0[model.state_names.index(key)] = per_neuron(value, src.n, batch, f"population {src.name!r} init {key!r}")
    return y0


def _linear_update(pop: PopulationPlan, step: LinearStep, scalars: dict[str, float]) -> LinearUpdate:
    inputs = [u for u in pop.model.inputs if u not in scalars]

    def split(expr: Any) -> tuple[Value, dict[str, Value]]:
        e = sympy.expand(sympy.sympify(expr))
        coeffs = {u: evaluate(sympy.diff(e, sympy.Symbol(u)), scalars, pop.arrays) for u in inputs}
        base = evaluate(e.xreplace({sympy.Symbol(u): 0 for u in inputs}), scalars, pop.arrays)
        return base, {u: c for u, c in coeffs.items() if not (isinstance(c, float) and c == 0.0)}

    def numbers(P: list[list[Any]], c: list[Any]) -> tuple[list[list[Value]], list[Value], list[dict[str, Value]]]:
        Pv = [[evaluate(x, scalars, pop.arrays) for x in row] for row in P]
        parts = [split(x) for x in c]
        bad = [x for row in Pv for x in row if not _finite(x)]
        if bad:
            raise ModelError(f"population {pop.name!r}: the exact propagator is singular for these parameters "
                             f"(e.g. equal time constants); use method='exponential_euler'")
        return Pv, [b for b, _ in parts], [u for _, u in parts]

    P, c, cu = numbers(step.P, step.c)
    update = LinearUpdate(P, c, cu)
    if step.P_ref is not None and pop.refractory != "none":
        update.P_ref, update.c_ref, update.cu_ref = numbers(step.P_ref, step.c_ref)
    return update


def _explicit_update(pop: PopulationPlan, step: ExplicitStep, fold: dict[Any, Any]) -> ExplicitUpdate:
    """The explicit method's assignments with numbers folded in; runs of independent lines
    share their common sub-expressions (``sympy.cse``)."""
    i = pop.index
    counter = iter(range(1 << 30))
    out: list[tuple[str, sympy.Expr]] = []

    def emit(group: list[tuple[str, Any]]) -> dict[str, sympy.Expr]:
        exprs = [sympy.sympify(e).xreplace(fold) for _, e in group]
        kept: list[tuple[str, sympy.Expr]] = []
        for (name, _), e in zip(group, exprs):
            if e.is_number:  # a constant (e.g. a linear synaptic decay): folded into later lines
                fold[sympy.Symbol(name)] = e
            else:
                kept.append((name, e))
        subs, reduced = sympy.cse([e for _, e in kept], symbols=_fresh(f"_cse{i}_", counter))
        out.extend((s.name, e) for s, e in subs)
        out.extend((name, e) for (name, _), e in zip(kept, reduced))
        return dict(zip((name for name, _ in kept), reduced))

    group: list[tuple[str, Any]] = []
    defined: set[str] = set()
    for name, expr in step.lines:
        if {x.name for x in sympy.sympify(expr).free_symbols} & defined:
            emit(group)
            group, defined = [], set()
        group.append((name, expr))
        defined.add(name)
    if group:
        emit(group)
    emit([(f"_new_{s}", step.new[s]) for s in pop.states])
    new = {s: fold.get(sympy.Symbol(f"_new_{s}"), sympy.Symbol(f"_new_{s}")) for s in pop.states}
    temps = {name for name, _ in out}
    for name, expr in out:
        _check_symbols(expr, {**pop.symbols, **{t: Ref("temp") for t in temps}}, f"population {pop.name!r}")
    return ExplicitUpdate(out, new, list(step.clamp_after) if pop.refractory != "none" else [])


def _fresh(prefix: str, counter: Any) -> Any:
    while True:
        yield sympy.Symbol(f"{prefix}{next(counter)}")


def _check_symbols(expr: Any, symbols: dict[str, Ref], where: str) -> None:
    if expr is None or not isinstance(expr, sympy.Basic):
        return
    missing = sorted(s.name for s in expr.free_symbols if s.name not in symbols)
    if missing:
        raise ModelError(f"{where}: undefined symbol {missing[0]!r} in the generated step")


def _finite(x: Value) -> bool:
    return math.isfinite(x) if isinstance(x, float) else bool(torch.isfinite(x).all())


# ------------------------------------------------------------------------------ values
def per_neuron(value: Any, n: int, batch: int, what: str) -> torch.Tensor:
    """A value given as scalar, ``(n,)`` or ``(batch, n)`` as a flat ``(batch*n,)`` float64 tensor."""
    t = torch.as_tensor(value, dtype=torch.float64)
    if t.dim() == 0:
        return t.expand(batch * n).clone()
    if t.shape == (n,):
        return t.repeat(batch)
    if t.shape == (batch, n):
        return t.reshape(-1).clone()
    if t.shape == (batch, 1):  # one value per network, broadcast over its neurons
        return t.expand(batch, n).reshape(-1).clone()
    raise NeuroplexError(f"{what}: expected a scalar, ({n},), ({batch}, 1) or ({batch}, {n}) values, "
                         f"got {tuple(t.shape)}")


def evaluate(expr: Any, scalars: dict[str, float], arrays: dict[str, torch.Tensor]) -> Value:
    """Value of a parameter expression: a float, or a ``(size,)`` float64 tensor."""
    expr = sympy.sympify(expr).xreplace({sympy.Symbol(k): sympy.Float(v) for k, v in scalars.items()})
    syms = sorted(expr.free_symbols, key=lambda s: s.name)
    if not syms:
        return float(expr)
    missing = [s.name for s in syms if s.name not in arrays]
    if missing:
        raise ModelError(f"cannot evaluate {expr}: unknown {', '.join(missing)}")
    fn: Callable[..., Any] = sympy.lambdify(syms, expr, modules=[
        {"exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt, "exprel": torch_exprel}, "math"])
    return torch.as_tensor(fn(*[arrays[s.name] for s in syms]), dtype=torch.float64).expand(
        next(iter(arrays.values())).shape).clone()


def timed_row(t: float, array_dt: float, dt: float, n_values: int) -> int:
    """The ``TimedArray`` row Brian2 reads at time ``t`` (brian2/input/timedarray.py, its C++
    and Cython code): time is rounded on a grid ``K`` times finer than the array's, ``K`` the
    power of two at or above ``8 * array_dt / dt`` (``_find_K``: at least 8 points per clock
    step, so a stage time ``t + dt/2`` never sits on a rounding tie), ``epsilon =
    array_dt / K``, row ``int((t / epsilon + 0.5) / K)``, clipped. A stage half a clock step
    before an array step therefore reads the row before it; a fixed ``1e-3*array_dt`` offset
    would read a long-step array one clock step early."""
    k = max(int(2 ** math.ceil(math.log2(8 / dt * array_dt))), 1)  # as _find_K writes it
    eps = array_dt / k
    return min(max(int((t / eps + 0.5) / k), 0), n_values - 1)


# ----------------------------------------------------------------------------- synapses
def _synapse_groups(net: Network, plan: NetworkPlan) -> list[SynapseGroup]:
    """One group per synapse set, in Brian2's order (objects of one schedule slot run sorted
    by name), each in compressed rows stable in the order its synapses were given: the
    additions to one target happen in Brian2's order."""
    pops = {p.name: p for p in plan.pops}
    out = []
    for syn in sorted(net.synapses.values(), key=lambda s: s.name):
        if not len(syn) or syn.model is not None:
            continue
        a, b = pops[syn.pre], pops[syn.post]
        rows = syn.sample * a.n + syn.i
        flat = b.states.index(syn.target) * b.size + syn.sample * b.n + syn.j
        order = np.argsort(rows, kind="stable")
        rowptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=a.size))]).astype(np.int64)
        group = SynapseGroup(a.index, b.index, torch.from_numpy(rowptr), torch.from_numpy(flat[order].astype(np.int64)),
                             torch.from_numpy(np.asarray(syn.weight, dtype=np.float64)[order]), None)
        group.gated = b.states.index(syn.target) in gated_rows(b)
        if syn.delay is not None and int(syn.delay.max()) > 0:
            group.delay = torch.from_numpy(syn.delay[order].astype(np.int64))
            group.slots = int(syn.delay.max()) + 1
        out.append(group)
    return out


def gated_rows(P: PopulationPlan) -> list[int]:
    """The state rows of ``P`` that the synapses slot may change only where the neuron is not
    refractory: the states clamped while refractory (Brian2's ``(unless refractory)``), which
    Brian2 gives a conditional write on ``not_refractory``, so that ``on_pre: v += w`` (and a
    ``PoissonInput`` or ``on_post`` onto ``v``) has no effect on a neuron that is refractory,
    or that spiked in this step."""
    if not P.neurons or P.refractory == "none" or P.model is None:
        return []
    clamped = set(clamped_states(P.model))
    return [r for r, s in enumerate(P.states) if s in clamped]


def _plastic_groups(net: Network, plan: NetworkPlan) -> list[PlasticGroup]:
    """The plastic synapse sets, sorted by name (Brian2's order inside a schedule slot)."""
    pops = {p.name: p for p in plan.pops}
    out = []
    for syn in sorted(net.synapses.values(), key=lambda s: s.name):
        if syn.model is None:
            continue
        a, b = pops[syn.pre], pops[syn.post]
        init = {"w": torch.from_numpy(np.asarray(syn.weight, dtype=np.float64).copy())}
        init.update({k: torch.from_numpy(np.asarray(v, dtype=np.float64).copy()) for k, v in syn.state.items()})
        out.append(PlasticGroup(syn.name, a.index, b.index, b.states.index(syn.target), syn.model,
                                torch.from_numpy(syn.sample * a.n + syn.i), torch.from_numpy(syn.sample * b.n + syn.j),
                                init))
    return out


def _poisson_inputs(net: Network, plan: NetworkPlan) -> list[PoissonInputPlan]:
    pops = {p.name: p for p in plan.pops}
    out = []
    for inp in net.poisson_inputs.values():
        P = pops[inp.population]
        rate = per_neuron(inp.rate, P.n, plan.batch, f"PoissonInput {inp.name!r} rate")
        if (rate < 0).any() or ((rate * plan.dt) > 1).any():
            raise NeuroplexError(f"PoissonInput {inp.name!r}: rate*dt must be in [0, 1]")
        out.append(PoissonInputPlan(inp.name, P.index, P.states.index(inp.target), inp.N, rate * plan.dt, inp.weight))
    return out


def _monitors(net: Network, plan: NetworkPlan) -> list[MonitorPlan]:
    pops = {p.name: p for p in plan.pops}
    out = []
    for mon in net.monitors:
        P = pops[mon.population]
        select, labels = [], []
        for b in range(plan.batch):
            for var in mon.variables:
                s = P.states.index(var)
                for j in mon.indices:
                    select.append(s * P.size + b * P.n + j)
                    if b == 0:
                        labels.append(f"{P.name}.{var}[{j}]")
        out.append(MonitorPlan(P.index, int(mon.every), torch.tensor(select, dtype=torch.int64), len(labels), labels))
    return out
