"""SBML simulation semantics (events, delays, priorities, rules) on a functional integrator.

:class:`SBMLProgram` compiles an :class:`~neuroplex.sbml.reader.SBMLModel` once into torch
functions: the right-hand side ``rhs(t, y, p)``, the initial state at ``t0`` (initial
assignments and assignment rules in dependency order), output expressions, and for events
the *atoms* of their triggers. :func:`run` then integrates with SBML L3 event semantics.

**Integrator interface** (any backend can drive this module; the torch solver's
:func:`neuroplex.plugins.torch_solver.integrate` is the default)::

    integrator(f, t0, t1, y0, *, method, rtol, atol, t_eval, event_fn, max_steps) -> result
    # f(t, y): t (B,), y (B, n) -> (B, n)
    # atol: a float or a (B, n) tensor (per-state tolerances, see SBMLProgram.atol_scale)
    # event_fn(t, y) -> (B, k): stop a sample at the first column that crosses from < 0 to
    #   >= 0 (columns >= 0 at t0 arm once they go negative)
    # result.ys (B, len(t_eval), n) (NaN after a stop), result.t_end (B,), result.y_end (B, n),
    #   result.status (B,) Status codes, result.event_index (B,) (-1 when t1 was reached)

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

**Batches.** Models without events run a whole batch of parameter sets / initial states in
one integrator call; models with events run sample by sample.
"""
from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import sympy
import torch

from neuroplex import scalar_runtime
from neuroplex.codegen import TorchPrinter, build_function, split_static
from neuroplex.errors import SolverError
from neuroplex.solution import Solution, Status

from .errors import SBMLImportError

_REL_OPS = (">", ">=", "<", "<=", "==", "!=")


#: batches of more elements than this keep their state columns contiguous (see :func:`_stack`)
COLUMN_MAJOR_MIN = 4096


def _stack(values: list[Any], like: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``(..., len(values))`` from per-column values (tensors of ``like``'s batch shape, or
    anything that broadcasts to it). Small batches: one ``torch.stack``. Large ones: each column
    contiguous in memory (a ``(len(values), ...)`` block seen through a transpose), which a
    last-dimension stack would interleave at 8x the cost; element-wise solver arithmetic keeps
    that layout, so the generated code's ``y[..., i]`` reads stay contiguous too. Under
    ``torch.compile`` (fused steps) always the latter: one layout for every batch size. ``out``:
    the ``(len(values), ...)`` block to write the columns into (the result is its transpose)."""
    shape = like.shape[:-1]
    if torch.compiler.is_compiling():
        columns = [v.expand(shape) if isinstance(v, torch.Tensor) else like.new_full(shape, v) for v in values]
        return torch.stack(columns).movedim(0, -1)
    if out is None and like.numel() <= COLUMN_MAJOR_MIN and all(isinstance(v, torch.Tensor) and v.shape == shape
                                                                for v in values):
        return torch.stack(values, -1) if values else like.new_empty((*shape, 0))
    out = like.new_empty((len(values), *shape)) if out is None else out
    for i, v in enumerate(values):
        out[i] = v
    return out.movedim(0, -1)


def column_major(y: torch.Tensor) -> torch.Tensor:
    """``y (B, n)`` with each state's column contiguous where the batch is large (the layout
    :func:`_stack` gives the right-hand side's values), else ``y`` itself."""
    return y.T.contiguous().T if y.dim() == 2 and y.numel() > COLUMN_MAJOR_MIN else y


def _jacobian_out(values: list[Any], like: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(J (B, n, n), df/dt (B, n))`` from the non-zero entries at ``index`` of ``(n, n + 1)``."""
    b, n = like.shape
    out = like.new_zeros((b, n * (n + 1)))
    if values:
        out[:, index.to(like.device)] = _stack(values, like.new_empty((b, len(values))))
    out = out.view(b, n, n + 1)
    return out[..., :n], out[..., n]


def _one_sample(k: list[Any], p: torch.Tensor) -> list[Any] | None:
    """The bound values ``k`` of a single parameter set as numpy scalars (for the scalar
    right-hand side), or None where the torch path must run: a batch, another device or dtype,
    or parameters that carry gradients."""
    if p.shape[0] != 1 or p.device.type != "cpu" or p.dtype != torch.float64 or p.requires_grad:
        return None
    out = []
    for v in k:
        if isinstance(v, torch.Tensor):
            if v.numel() != 1 or v.requires_grad:
                return None
            v = v.item()
        out.append(v if isinstance(v, bool) else scalar_runtime.f64(v))
    return out


def _scalar_ready(t: torch.Tensor, y: torch.Tensor) -> bool:
    """Whether ``f(t, y)`` may run on numpy scalars: one float64 CPU sample, no autograd."""
    return (y.shape[0] == 1 and y.dtype == torch.float64 and y.device.type == "cpu" and t.numel() == 1
            and not (y.requires_grad or t.requires_grad))


def _agrees_with_autograd(f: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], t: torch.Tensor, y: torch.Tensor,
                         jac_y: torch.Tensor, jac_t: torch.Tensor) -> bool:
    """The generated ``df/dy (n, n)`` and ``df/dt (n,)`` of one sample at ``t (1,)``, ``y (1, n)``
    equal autograd's (to 1e-6 relative, entries both give as finite)."""
    with torch.enable_grad():
        d_t, d_y = torch.autograd.functional.jacobian(lambda tt, yy: f(tt, yy)[0], (t.detach(), y.detach()))
    ref = torch.cat([d_y[:, 0, :], d_t.reshape(-1, 1)], -1)
    got = torch.cat([jac_y, jac_t[:, None]], -1)
    both = torch.isfinite(ref) & torch.isfinite(got)
    if not bool(both.any()):
        return True
    scale = float(ref[both].abs().max())
    return bool(((got - ref).abs()[both] <= 1e-6 * ref.abs()[both] + 1e-9 * scale).all())


# ===================================================================== compilation
@dataclass
class _EventCode:
    name: str
    trigger: Callable[[list[bool]], bool]
    targets: list[int]
    values: Callable[..., torch.Tensor] | None
    delay: Callable[..., torch.Tensor] | None
    priority: Callable[..., torch.Tensor] | None
    persistent: bool
    initial_value: bool
    use_trigger_values: bool


class SBMLProgram:
    """An SBML model compiled to torch functions (see the module docstring)."""

    def __init__(self, model: Any, outputs: Sequence[tuple[str, Any]] | None = None):
        self.model = model
        self.state_names = list(model.state_names)
        self.param_names = list(model.parameter_names)
        self.n = len(self.state_names)
        self.time = model.time
        self.names: dict[str, str] = {model.time.name: "t"}
        for i, s in enumerate(self.state_names):
            self.names[s] = f"_s{i}"
        for i, s in enumerate(self.param_names):
            self.names[s] = f"_p{i}"
        self.assign_order = list(model.assignments)
        for i, s in enumerate(self.assign_order):
            self.names[s] = f"_a{i}"
        self.printer = TorchPrinter(self.names)
        self.ns = {"_stack": _stack}
        self._bind, self._rhs = self._bound_function("rhs", [model.derivatives[s] for s in self.state_names])
        #: the same right-hand side over numpy scalars, for batches of one on the CPU
        self._rhs_one = scalar_runtime.scalar_function(self._rhs, {"_stack": scalar_runtime.stack})
        self._jac_one: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None
        self._jac: tuple[Any, ...] | None = None  # built on first use (stiff methods)
        self._jac_checked = False
        #: no state changes between events (only events move the model)
        self.constant_state = all(model.derivatives[s] == 0 for s in self.state_names)
        self._init = self._initial()
        if outputs is None:
            outputs = [(sid, model.value_expression(sid)) for sid in model.default_outputs()]
        self.output_names = [name for name, _ in outputs]
        self.observe = self._function("observe", [expr for _, expr in outputs])
        self._compile_events()

    # -------------------------------------------------------------- generation
    def _needed(self, exprs: Sequence[Any]) -> list[str]:
        """Assignments (in order) that ``exprs`` depend on, directly or not."""
        need: set[str] = set()
        stack = [s.name for e in exprs if isinstance(e, sympy.Basic) for s in e.free_symbols]
        assigns = self.model.assignments
        while stack:
            name = stack.pop()
            if name in assigns and name not in need:
                need.add(name)
                stack.extend(s.name for s in assigns[name].free_symbols)
        return [a for a in self.assign_order if a in need]

    def _prelude(self, exprs: Sequence[Any]) -> list[str]:
        used = {s.name for e in exprs if isinstance(e, sympy.Basic) for s in e.free_symbols}
        needed = self._needed(exprs)
        for a in needed:
            used |= {s.name for s in self.model.assignments[a].free_symbols}
        lines = []
        for i, s in enumerate(self.state_names):
            if s in used:
                lines.append(f"_s{i} = y[..., {i}]")
        for i, s in enumerate(self.param_names):
            if s in used:
                lines.append(f"_p{i} = p[..., {i}]")
        for a in needed:
            lines.append(f"{self.names[a]} = {self.printer(self.model.assignments[a])}")
        return lines

    def _function(self, name: str, exprs: Sequence[Any]) -> Callable[..., torch.Tensor]:
        body = self._prelude(exprs)
        body.append(f"return _stack([{', '.join(self.printer(e) for e in exprs)}], y, _block)")
        try:
            return build_function(name, ["t", "y", "p", "_block=None"], body, self.ns)
        except Exception as exc:  # pragma: no cover - a printer gap is a model we cannot run
            raise SBMLImportError(f"model {self.model.name!r}: cannot compile {name}: {exc}") from exc

    def _bound_function(self, name: str, exprs: Sequence[Any],
                        ret: Callable[[list[str]], str] | None = None) -> tuple[Callable[..., list[Any]], Callable[..., torch.Tensor]]:
        """``bind(p) -> k`` and ``fn(t, y, k)``: what only the parameters decide is computed
        once by ``bind`` (see :func:`neuroplex.codegen.split_static`), the rest every call.
        ``fn`` returns the values stacked as ``(..., len(exprs))``, or ``ret(printed values)``."""
        needed = self._needed(exprs)
        split = split_static(exprs, {a: self.model.assignments[a] for a in needed},
                             {self.time.name, *self.state_names})
        names = dict(self.names)
        for sym, _ in (*split.static, *split.dynamic):
            names.setdefault(sym.name, sym.name)
        printer = TorchPrinter(names)
        static_syms = [sym for sym, _ in split.static]
        used = set().union(*(getattr(e, "free_symbols", set()) for _, e in split.dynamic),
                           *(getattr(e, "free_symbols", set()) for e in split.outputs))
        params = [sympy.Symbol(s) for s in self.param_names]
        kept = [s for s in static_syms + params if s in used]
        static_used = used.union(*(getattr(e, "free_symbols", set()) for _, e in split.static))
        # parameter columns as contiguous vectors: every later use reads them densely
        bind = [f"_p{i} = p[..., {i}].contiguous()" for i, s in enumerate(params) if s in static_used]
        bind += [f"{names[sym.name]} = {printer(e)}" for sym, e in split.static]
        bind.append(f"return [{', '.join(names[s.name] for s in kept)}]")
        body = [f"{', '.join(names[s.name] for s in kept)}, = k"] if kept else []
        dyn_used = used | set().union(*(getattr(e, "free_symbols", set()) for _, e in split.dynamic))
        body += [f"_s{i} = y[..., {i}]" for i, s in enumerate(self.state_names) if sympy.Symbol(s) in dyn_used]
        body += [f"{names[sym.name]} = {printer(e)}" for sym, e in split.dynamic]
        values = [printer(e) for e in split.outputs]
        body.append(ret(values) if ret is not None else f"return _stack([{', '.join(values)}], y)")
        try:
            return (build_function(f"bind_{name}", ["p"], bind, self.ns),
                    build_function(name, ["t", "y", "k"], body, self.ns))
        except Exception as exc:  # pragma: no cover - a printer gap is a model we cannot run
            raise SBMLImportError(f"model {self.model.name!r}: cannot compile {name}: {exc}") from exc

    def jacobian_code(self) -> tuple[Callable[..., list[Any]], Callable[..., tuple[torch.Tensor, torch.Tensor]]] | None:
        """``(bind, jac)`` with ``jac(t, y, k) -> (df/dy (B, n, n), df/dt (B, n))`` from
        symbolic derivatives (chain rule through the assignment rules; only non-zero entries
        are computed), built on first use; None where sympy or the printer cannot do it
        (the stiff method then falls back to autograd)."""
        if self._jac is not None:
            return self._jac or None
        try:
            self._jac = self._build_jacobian()
        except Exception:  # noqa: BLE001 - any gap means: use autograd instead
            self._jac = ()
            return None
        self._jac_one = scalar_runtime.scalar_function(self._jac[1], {
            "_jac_out": scalar_runtime.jacobian_out, "_jac_index": self.ns["_jac_index"].numpy()})
        return self._jac

    def _build_jacobian(self) -> tuple[Callable[..., list[Any]], Callable[..., tuple[torch.Tensor, torch.Tensor]]]:
        m = self.model
        states = [sympy.Symbol(s) for s in self.state_names]
        position = {v: j for j, v in enumerate([*states, m.time])}  # columns of (n, n + 1)
        derivs = [sympy.sympify(m.derivatives[s]) for s in self.state_names]
        assigns = {a: sympy.sympify(m.assignments[a]) for a in self._needed(derivs)}
        grad: dict[str, dict[int, Any]] = {}  # assignment -> {variable index: d a / d variable}

        def gradient(e: Any) -> dict[int, Any]:
            out: dict[int, Any] = {}
            for sym in e.free_symbols:
                if sym in position:
                    j = position[sym]
                    out[j] = out.get(j, 0) + sympy.diff(e, sym)
                elif sym.name in grad and grad[sym.name]:
                    outer = sympy.diff(e, sym)
                    for j, inner in grad[sym.name].items():
                        out[j] = out.get(j, 0) + outer * inner
            return {j: v for j, v in out.items() if v != 0}

        for a in self.assign_order:
            if a in assigns:
                grad[a] = gradient(assigns[a])
        n = self.n
        flat_index: list[int] = []
        entries: list[Any] = []
        for i, e in enumerate(derivs):
            for j, v in sorted(gradient(e).items()):
                # a step's derivative is zero almost everywhere, as autograd has it
                v = v.replace(sympy.DiracDelta, lambda *_: sympy.Integer(0))
                # d(x**n)/dx comes as n*x**n/x, which is 0/0 at x = 0: write it n*x**(n - 1)
                v = sympy.powsimp(v, combine="exp")
                if v.has(sympy.Derivative, sympy.Subs):
                    raise ValueError(f"no closed-form derivative of d{self.state_names[i]}/dt")
                if v != 0:
                    flat_index.append(i * (n + 1) + j)  # rows of (n, n + 1): J then df/dt
                    entries.append(v)
        self.ns["_jac_index"] = torch.tensor(flat_index, dtype=torch.long)

        def ret(values: list[str]) -> str:
            return f"return _jac_out([{', '.join(values)}], y, _jac_index)"

        self.ns["_jac_out"] = _jacobian_out
        return self._bound_function("jacobian", entries, ret)

    def rhs(self, t: torch.Tensor, y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """``dy/dt`` at ``t (B,)``, ``y (B, n)`` for parameters ``p (B, P)``."""
        return self._rhs(t, y, self._bind(p))

    def _initial(self) -> Callable[..., torch.Tensor]:
        """``y0 = init(t, p)``: initial values, initial assignments and assignment rules
        at ``t0`` in dependency order (SBML L3 section 4.8.1)."""
        m = self.model
        nodes: dict[str, Any] = {s.name: s.initial for s in m.states}
        nodes.update(m.assignments)
        local = {s: f"_s{i}" for i, s in enumerate(self.state_names)}
        local.update({a: self.names[a] for a in self.assign_order})
        deps = {k: {s.name for s in getattr(v, "free_symbols", ())} & set(nodes) for k, v in nodes.items()}
        order: list[str] = []
        done: set[str] = set()
        pending = dict(deps)
        while pending:
            ready = [k for k, d in pending.items() if d - {k} <= done and k not in d]
            if not ready:
                raise SBMLImportError(f"model {m.name!r}: initial values depend on each other in a cycle: "
                                      f"{', '.join(sorted(pending))}")
            for k in ready:
                order.append(k)
                done.add(k)
                del pending[k]
        printer = TorchPrinter({**self.names, **local})
        body = [f"_p{i} = p[..., {i}]" for i in range(len(self.param_names))]
        for k in order:
            body.append(f"{local[k]} = _rt.const({printer(nodes[k])}, p)")  # constants become tensors
        body.append(f"return _stack([{', '.join(local[s] for s in self.state_names)}], p)")
        return build_function("initial", ["t", "p"], body, self.ns)

    def initial_state(self, t0: float, p: torch.Tensor) -> torch.Tensor:
        """The state at ``t0`` for parameters ``p (B, P)``."""
        t = torch.full(p.shape[:-1], float(t0), dtype=p.dtype, device=p.device)
        return self._init(t, p)

    def _compile_events(self) -> None:
        atoms: list[Any] = []
        index: dict[Any, int] = {}

        def collect(e: Any) -> Any:
            if isinstance(e, (sympy.And, sympy.Or, sympy.Xor, sympy.Not)):
                return type(e)(*[collect(a) for a in e.args])
            if e is sympy.true or e is sympy.false or isinstance(e, (bool,)):
                return e
            if isinstance(e, sympy.core.relational.Relational) and e.rel_op in _REL_OPS:
                if e not in index:
                    index[e] = len(atoms)
                    atoms.append(e)
                return sympy.Symbol(f"_atom{index[e]}")
            raise SBMLImportError(f"model {self.model.name!r}: trigger part {e} is not a condition")

        self.events: list[_EventCode] = []
        for ev in self.model.events:
            formula = collect(ev.trigger)
            trig = _boolean_function(formula)
            targets = [self.state_names.index(k) for k in ev.assignments]
            values = self._function(f"values_{len(self.events)}", list(ev.assignments.values())) if targets else None
            delay = self._function(f"delay_{len(self.events)}", [ev.delay]) if ev.delay is not None else None
            prio = self._function(f"priority_{len(self.events)}", [ev.priority]) if ev.priority is not None else None
            self.events.append(_EventCode(ev.name, trig, targets, values, delay, prio, bool(ev.persistent),
                                          bool(ev.initial_value), bool(ev.use_values_from_trigger_time)))
        self.atoms = atoms
        self.atom_ops = [a.rel_op for a in atoms]
        if atoms:
            g = [sympy.sympify(a.lhs) - sympy.sympify(a.rhs) for a in atoms]
            self.atom_g = self._function("atoms", g)
        else:
            self.atom_g = None

    # ------------------------------------------------------------------ running
    def rhs_bound(self, p: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """``f(t, y)`` for the integrator, with parameters ``p (B, P)`` (or ``(1, P)``) bound."""
        rhs, k = self._rhs, self._bind(p)
        rhs_one, k_one = self._rhs_one, _one_sample(k, p) if self._rhs_one is not None else None

        def f(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if k_one is not None and _scalar_ready(t, y):
                with scalar_runtime.quiet():
                    return rhs_one(scalar_runtime.f64(t.item()), y[0].numpy(), k_one)
            return rhs(t, y, k)

        f.traceable = (rhs, (k,))  # type: ignore[attr-defined]  # f(t, y) == rhs(t, y, k): fused steps
        cache: dict[str, Any] = {}
        f.jacobian = lambda t, y: self._symbolic_jacobian(p, cache, t, y)  # type: ignore[attr-defined]
        # lets an ensemble drop finished samples from its working batch
        f.select = lambda index: self.rhs_bound(p if p.shape[0] == 1 else p[index])  # type: ignore[attr-defined]
        return f

    def _symbolic_jacobian(self, p: torch.Tensor, cache: dict[str, Any], t: torch.Tensor,
                           y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``f.jacobian`` of :meth:`rhs_bound`: the generated derivatives (their parameter part
        bound once per parameter set in ``cache``), checked against autograd at their first use.
        None (the stiff method then uses autograd) where they cannot be evaluated, disagree with
        autograd, or are not finite at this point (a removable singularity the printed form keeps)."""
        code = self.jacobian_code()
        if code is None:
            return None
        bind, jac = code
        try:
            if "k" not in cache:
                cache["k"] = bind(p)
                cache["k_one"] = _one_sample(cache["k"], p) if self._jac_one is not None else None
            if cache["k_one"] is not None and _scalar_ready(t, y):
                with scalar_runtime.quiet():
                    jac_y, jac_t = self._jac_one(scalar_runtime.f64(t.item()), y[0].numpy(), cache["k_one"])
            else:
                jac_y, jac_t = jac(t, y, cache["k"])
        except Exception:  # noqa: BLE001 - a printed derivative torch cannot evaluate
            self._jac = ()
            return None
        if not self._jac_checked:
            self._jac_checked = True
            if not _agrees_with_autograd(self.rhs_bound(p[:1]), t[:1], y[:1], jac_y[0], jac_t[0]):
                self._jac = ()
                return None
        return (jac_y, jac_t) if bool(torch.isfinite(jac_y).all()) else None

    def atol_scale(self, p: torch.Tensor, y_init: torch.Tensor) -> torch.Tensor | None:
        """``(B, n)`` factors that turn an absolute tolerance meant for concentrations into one
        for the states: ``min(1, |V|)`` (``V`` the compartment's initial size) for species the
        reader integrates as amounts, 1 elsewhere; None when no state needs one.

        Species in a compartment of size 1e-16 have amounts near 1e-23, where a concentration
        tolerance would accept any value (BIOMD0000000001 does this); like roadrunner, the
        tolerance follows the compartment size down, never up."""
        species = (self.model.metadata.get("sbml") or {}).get("species") or {}
        comp_of = {v["amount_state"]: v["compartment"] for v in species.values()
                   if v.get("amount_state") and not v.get("has_only_substance_units")}
        scale = torch.ones_like(y_init)
        found = False
        for i, name in enumerate(self.state_names):
            c = comp_of.get(name)
            if c in self.param_names:
                size = p[:, self.param_names.index(c)]
            elif c in self.state_names:
                size = y_init[:, self.state_names.index(c)]
            else:
                continue
            size = size.detach().abs().expand(scale.shape[0])
            usable = torch.isfinite(size) & (size > 0)
            scale[:, i] = torch.where(usable, size.clamp(max=1.0), torch.ones_like(size))
            found = True
        return scale if found and bool((scale != 1.0).any()) else None

    def default_params(self, dtype: torch.dtype = torch.float64, device: Any = None) -> torch.Tensor:
        return torch.tensor([p.value for p in self.model.parameters], dtype=dtype, device=device)


def _boolean_function(formula: Any) -> Callable[[list[bool]], bool]:
    def pr(e: Any) -> str:
        if e is sympy.true or e is True:
            return "True"
        if e is sympy.false or e is False:
            return "False"
        if isinstance(e, sympy.Symbol):
            return f"a[{int(e.name[5:])}]"
        if isinstance(e, sympy.Not):
            return f"(not {pr(e.args[0])})"
        if isinstance(e, sympy.And):
            return "(" + " and ".join(pr(x) for x in e.args) + ")"
        if isinstance(e, sympy.Or):
            return "(" + " or ".join(pr(x) for x in e.args) + ")"
        if isinstance(e, sympy.Xor):
            return "(" + " ^ ".join(f"bool({pr(x)})" for x in e.args) + ")"
        raise SBMLImportError(f"cannot compile trigger part {e}")

    return eval(f"lambda a: bool({pr(formula)})")  # noqa: S307 - our own generated code


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


class _SampleRun:
    """One sample's run with events (SBML L3 section 4.12 semantics)."""

    MAX_EVENTS_AT_ONE_TIME = 10_000
    MAX_STOPS = 1_000_000
    #: zero-progress stops at one time (rounding noise at a root) before giving up
    MAX_STALLS = 4

    def __init__(self, prog: SBMLProgram, p: torch.Tensor, integrate: Callable[..., Any], settings: dict[str, Any]):
        self.prog, self.p, self.integrate, self.settings = prog, p, integrate, settings
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
            settings["dt0"] = settings.get("dt0") or self.dt0  # a fixed step (dt) wins
            res = self.integrate(prog.rhs_bound(self.p), t, t_next, y, t_eval=t_eval[sel] if bool(sel.any()) else None,
                                 event_fn=event_fn, **settings)
            steps = int(res.n_steps.sum())
            self.n_steps += steps
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


# ======================================================================= front door
#: ``method="auto"``: dopri5 steps per integrator call within which a sample that its stiffness
#: test flags must be on pace to finish, else it is stiff and rerun with rosenbrock
AUTO_STEP_BUDGET = 2000


def _batch_inputs(prog: SBMLProgram, t_span: tuple[float, float], params: Any, y0: Any) -> tuple[torch.Tensor, torch.Tensor]:
    p = prog.default_params() if params is None else torch.as_tensor(params, dtype=torch.float64)
    p = p[None] if p.dim() == 1 else p
    batch = p.shape[0] if y0 is None else max(p.shape[0], torch.as_tensor(y0).reshape(-1, prog.n).shape[0])
    p = p.expand(batch, -1).contiguous()
    if y0 is None:
        return p, prog.initial_state(float(t_span[0]), p)
    return p, torch.as_tensor(y0, dtype=torch.float64).reshape(-1, prog.n).expand(batch, -1).clone()


#: fewest samples per shard worth a worker process
MIN_SHARD = 64


def _run_sharded(prog: SBMLProgram, t_span: tuple[float, float], workers: int, *, params: Any, y0: Any,
                 progress: bool, **options: Any) -> Solution:
    """:func:`run` over contiguous shards of the batch in ``workers`` processes, joined in order."""
    p_all, y_all = _batch_inputs(prog, t_span, params, y0)
    n_shards = min(workers, p_all.shape[0] // MIN_SHARD)
    if n_shards <= 1:
        return run(prog, t_span, params=params, y0=y0, progress=progress, **options)
    from neuroplex.shards import map_shards, shared_empty

    bounds = [int(rows[0]) for rows in torch.tensor_split(torch.arange(p_all.shape[0]), n_shards)] + [p_all.shape[0]]
    t_eval = options.get("t_eval")
    n_t = 2 if t_eval is None else int(torch.as_tensor(t_eval).numel())
    # the shards write their outputs in place, column by column (the layout of one run's
    # outputs): nothing large is pickled back or joined
    block = shared_empty((len(prog.output_names), p_all.shape[0], n_t))

    if (options.get("extra") or {}).get("fused"):
        _warm_up(prog, t_span, p_all, y_all if y0 is not None else None, options)

    def task(i: int) -> Solution:
        lo, hi = bounds[i], bounds[i + 1]
        part = run(prog, t_span, params=p_all[lo:hi], y0=None if y0 is None else y_all[lo:hi],
                   progress=progress and i == 0, block=block[:, lo:hi], **options)
        part.ys = part.ys.new_empty((hi - lo, n_t, 0))  # not a view: that would pickle the whole block
        return part

    return _concat(map_shards(task, n_shards), block.movedim(0, -1))


def _warm_up(prog: SBMLProgram, t_span: tuple[float, float], p_all: torch.Tensor, y_all: torch.Tensor | None,
             options: dict[str, Any]) -> None:
    """Run two samples over a sliver of the span, on one thread as the shards run, so that the
    compiled steps of a fused run are built (or loaded from the disk cache) in this process,
    which forked workers inherit, rather than in every worker of every call."""
    from neuroplex.shards import one_thread

    t0, t1 = float(t_span[0]), float(t_span[1])
    sliver = (t0, t0 + (t1 - t0) * 1e-9)
    with one_thread():
        run(prog, sliver, **{**options, "t_eval": torch.tensor(sliver, dtype=torch.float64)}, params=p_all[:2],
            y0=None if y_all is None else y_all[:2])


def _concat(parts: list[Solution], ys: torch.Tensor) -> Solution:
    """One solution of outputs ``ys`` from per-shard solutions of the same program and times
    (samples in order)."""
    first = parts[0]
    stats = {key: torch.cat([part.stats[key] for part in parts]) for key in first.stats
             if all(key in part.stats for part in parts)}
    # shards of an "auto" run may differ in whether some sample needed the stiff method
    method = max((part.method for part in parts), key=len)
    return Solution(ys, first.ts, first.names, torch.cat([part.status for part in parts]), stats,
                    solver=first.solver, method=method, meta=first.meta)


def default_integrator() -> Callable[..., Any]:
    from neuroplex.plugins.torch_solver import integrate

    return integrate


def run(prog: SBMLProgram, t_span: tuple[float, float], *, t_eval: torch.Tensor | Sequence[float] | None = None,
        params: torch.Tensor | None = None, y0: torch.Tensor | None = None,
        integrator: Callable[..., Any] | None = None, method: str = "dopri5", rtol: float = 1e-8,
        atol: float = 1e-10, max_steps: int = 200_000, solver_name: str = "torch",
        progress: bool = False, extra: dict[str, Any] | None = None, workers: int = 1,
        block: torch.Tensor | None = None) -> Solution:
    """Simulate a compiled program; ``params (P,)|(B, P)``, ``y0 (n,)|(B, n)``.

    ``method="auto"`` runs ``dopri5`` with its stiffness test, which stops the samples it finds
    stiff unless they are on pace to finish within :data:`AUTO_STEP_BUDGET` steps, and reruns
    the stopped ones (and any out of ``max_steps``) with ``rosenbrock`` (``stats["n_steps"]``
    then counts both runs' steps). A sample that is not stiff finishes on dopri5 however many
    steps its tolerance needs. ``workers > 1`` splits the batch into that many contiguous
    shards run on as many CPU cores (:func:`neuroplex.shards.map_shards`); results are the same up
    to rounding. ``block``: a ``(n_outputs, batch, n_times)`` tensor the outputs are written into
    (the solution's ``ys`` is then its transpose)."""
    if workers > 1:
        return _run_sharded(prog, t_span, workers, t_eval=t_eval, params=params, y0=y0, integrator=integrator,
                            method=method, rtol=rtol, atol=atol, max_steps=max_steps, solver_name=solver_name,
                            progress=progress, extra=extra)
    if method == "auto":
        kw = dict(t_eval=t_eval, integrator=integrator, rtol=rtol, atol=atol, solver_name=solver_name,
                  progress=progress)
        first = run(prog, t_span, params=params, y0=y0, method="dopri5", max_steps=max_steps,
                    extra={**(extra or {}), "stiff_stop": True, "stiff_budget": AUTO_STEP_BUDGET}, block=block, **kw)
        bad = (first.status == Status.MAX_STEPS) | (first.status == Status.STIFF)
        if not bool(bad.any()):
            first.method = "auto (dopri5)"
            return first
        p_all, y_all = _batch_inputs(prog, t_span, params, y0)
        second = run(prog, t_span, params=p_all[bad], y0=y_all[bad], method="rosenbrock", max_steps=max_steps,
                     extra=extra, **kw)
        first.ys[bad] = second.ys
        first.status[bad] = second.status
        for key, value in second.stats.items():
            if key in first.stats:
                first.stats[key][bad] += value
        first.method = "auto (dopri5, rosenbrock for stiff samples)"
        return first
    integrator = integrator or default_integrator()
    t0, t1 = float(t_span[0]), float(t_span[1])
    dtype = torch.float64
    if t_eval is None:
        t_eval = torch.tensor([t0, t1], dtype=dtype)
    t_eval = torch.as_tensor(t_eval, dtype=dtype).flatten()
    p = prog.default_params(dtype) if params is None else torch.as_tensor(params, dtype=dtype)
    if p.dim() == 1:
        p = p[None]
    if p.shape[-1] != len(prog.param_names):
        raise SolverError(f"model {prog.model.name!r} has {len(prog.param_names)} parameters "
                          f"({', '.join(prog.param_names[:8])}{'...' if len(prog.param_names) > 8 else ''}), "
                          f"params has {p.shape[-1]}")
    batch = p.shape[0]
    if y0 is not None:
        y0 = torch.as_tensor(y0, dtype=dtype)
        if y0.dim() == 1:
            y0 = y0[None]
        if y0.shape[-1] != prog.n:
            raise SolverError(f"model {prog.model.name!r} has {prog.n} states, y0 has {y0.shape[-1]}")
        batch = max(batch, y0.shape[0])
    p = p.expand(batch, -1).contiguous()
    y_init = prog.initial_state(t0, p) if y0 is None else y0.expand(batch, -1).clone()
    scale = prog.atol_scale(p, y_init)
    atol_all: float | torch.Tensor = atol if scale is None else atol * scale
    settings = dict(method=method, rtol=rtol, atol=atol_all, max_steps=max_steps, **(extra or {}))

    def sample_settings(b: int) -> dict[str, Any]:
        return settings if scale is None else {**settings, "atol": atol_all[b:b + 1]}

    n_t = t_eval.numel()
    stats: dict[str, Any] = {}
    if prog.n == 0:
        ys = torch.zeros((batch, n_t, 0), dtype=dtype)
        status = torch.zeros(batch, dtype=torch.long)
        if prog.events:
            outs = []
            for b in range(batch):
                run_ = _SampleRun(prog, p[b:b + 1], integrator, sample_settings(b))
                out, _ = run_.run(t0, t1, t_eval, y_init[b])
                outs.append(out)
            ys = torch.stack(outs)
    elif prog.constant_state and not prog.events:  # nothing moves (values may be INF/NaN)
        ys = y_init[:, None, :].expand(batch, n_t, prog.n).clone()
        status = torch.zeros(batch, dtype=torch.long)
    elif not prog.events:
        res = integrator(prog.rhs_bound(p), t0, t1, column_major(y_init), t_eval=t_eval, progress=progress, **settings)
        ys = res.ys
        status = res.status.clone()
        stats["n_steps"] = res.n_steps
    else:
        outs, codes, steps, events = [], [], [], []
        for b in range(batch):
            run_ = _SampleRun(prog, p[b:b + 1], integrator, sample_settings(b))
            out, code = run_.run(t0, t1, t_eval, y_init[b])
            outs.append(out)
            codes.append(code)
            steps.append(run_.n_steps)
            events.append(run_.n_events)
        ys = torch.stack(outs)
        status = torch.tensor(codes, dtype=torch.long)
        stats["n_steps"] = torch.tensor(steps)
        stats["n_events"] = torch.tensor(events)
    tt = t_eval[None, :].expand(batch, -1)
    values = prog.observe(tt, ys, p[:, None, :], block) if prog.output_names else ys[..., :0]
    return Solution(values, t_eval, list(prog.output_names), status, stats, solver=solver_name, method=method,
                    meta={"model": prog.model.name})


def simulate(model: Any, t_span: tuple[float, float] | float, *, solver: Any = None,
             t_eval: torch.Tensor | Sequence[float] | None = None, params: torch.Tensor | None = None,
             y0: torch.Tensor | None = None, inputs: Any = None, progress: bool = False,
             variables: Sequence[str] | None = None, method: str | None = None, rtol: float | None = None,
             atol: float | None = None, max_steps: int | None = None,
             integrator: Callable[..., Any] | None = None, workers: int | None = None) -> Solution:
    """Simulate an SBML model with SBML semantics (the torch solver's path for SBML models).

    ``solver``: a solver instance whose ``requested_method``/``rtol``/``atol``/``max_steps``
    attributes are used unless given here. The method is ``auto`` by default (dopri5, and
    rosenbrock for the samples that exhaust dopri5's step budget: stiff ones), or ``dopri5`` /
    ``rosenbrock`` / any simulate method of the torch solver.
    ``variables``: SBML ids to report (default: :meth:`SBMLModel.default_outputs`).
    ``params``: ``(P,)`` or ``(B, P)`` in ``model.parameter_names`` order; a batch without
    events runs in one integrator call. ``workers``: CPU processes the batch is split over
    (default: the solver's ``workers``, else 1).
    """
    if not isinstance(t_span, (tuple, list)):
        t_span = (0.0, float(t_span))
    if inputs is not None:
        raise SolverError("SBML models take no inputs")
    method = method or getattr(solver, "requested_method", None) or "auto"
    rtol = rtol if rtol is not None else getattr(solver, "rtol", None) or 1e-8
    atol = atol if atol is not None else getattr(solver, "atol", None) or 1e-10
    max_steps = max_steps or getattr(solver, "max_steps", None) or 200_000
    extra = {k: v for k, v in (("dt0", getattr(solver, "dt", None)), ("dt_max", getattr(solver, "dt_max", None)),
                               ("fused", getattr(solver, "fused", None) or None)) if v is not None}
    outputs = None if variables is None else [(v, model.value_expression(v)) for v in variables]
    prog = compiled(model, outputs)
    workers = workers or getattr(solver, "workers", None) or 1
    return run(prog, tuple(t_span), t_eval=t_eval, params=params, y0=y0, integrator=integrator, method=method,
               rtol=float(rtol), atol=float(atol), max_steps=int(max_steps), progress=progress, extra=extra,
               workers=int(workers))


def compiled(model: Any, outputs: Sequence[tuple[str, Any]] | None = None) -> SBMLProgram:
    """The compiled program of ``model`` (cached on the model for its default outputs)."""
    if outputs is not None:
        return SBMLProgram(model, outputs)
    cache = model.__dict__.get("_sbml_program")
    if cache is None:
        cache = SBMLProgram(model)
        model.__dict__["_sbml_program"] = cache
    return cache
