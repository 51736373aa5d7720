"""Batched torch dynamics: the form every solver integrates or drives to equilibrium.

Shapes: ``y`` is ``(..., n_states)``, ``p`` is ``(..., n_params)``, ``u`` is
``(..., n_inputs)`` or None (defaults), ``t`` a tensor broadcastable to the leading
dimensions. Leading dimensions are the batch: N parameter sets or N initial states run in
one call. Learning networks may subclass :class:`Dynamics` directly with native torch code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Sequence

import sympy
import torch

from .codegen import TorchPrinter, build_function
from .compiler import CompiledProgram
from .errors import ModelError, SolverError
from .integration import Rhs
from .ir import ModelIR, is_delayed


@dataclass
class EventFunction:
    """A compiled event.

    ``trigger(t, y, p, u)`` is a bool tensor over the batch; ``root(t, y, p, u)`` (when the
    trigger is a single relation) is continuous and crosses zero upwards when the trigger
    turns true, which lets a solver locate the crossing inside a step; ``apply(t, y, p, u)``
    returns the state after the assignments (all evaluated with pre-event values).
    """

    name: str
    trigger: Callable[..., torch.Tensor]
    apply: Callable[..., torch.Tensor]
    root: Callable[..., torch.Tensor] | None = None
    terminal: bool = False
    options: dict[str, Any] = field(default_factory=dict)


class Dynamics:
    """Interface of batched dynamics (subclass for hand-written torch models)."""

    #: the model kind (see :mod:`neuroplex.kinds`)
    kind: ClassVar[str] = "dynamics"

    state_names: Sequence[str] = ()
    param_names: Sequence[str] = ()
    input_names: Sequence[str] = ()
    events: Sequence[EventFunction] = ()
    name: str = "dynamics"

    @property
    def n_states(self) -> int:
        return len(self.state_names)

    def rhs(self, t: torch.Tensor, y: torch.Tensor, p: torch.Tensor | None = None,
            u: torch.Tensor | None = None) -> torch.Tensor:
        """dy/dt, shape of ``y``."""
        raise NotImplementedError

    def rhs_bound(self, p: torch.Tensor, u: torch.Tensor | None = None) -> Rhs:
        """``f(t, y) = rhs(t, y, p, u)`` for an integrator, parameters and inputs fixed for the run.
        Compiled models bind their parameter-only work once here and attach their symbolic
        Jacobian (``f.jacobian``) and batch selection (``f.select``), see
        :meth:`neuroplex.compiler.CompiledProgram.rhs_bound`."""
        def f(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return self.rhs(t, y, p, u)

        return f

    def energy(self, y: torch.Tensor, p: torch.Tensor | None = None) -> torch.Tensor:
        """Scalar energy per sample, shape ``y.shape[:-1]`` (models without one raise)."""
        raise ModelError(f"{self.name} defines no energy")

    def fixed_point_map(self, y: torch.Tensor, p: torch.Tensor | None = None,
                        u: torch.Tensor | None = None) -> torch.Tensor:
        """The map ``y -> F(y)`` whose fixed point is the equilibrium; default ``y + rhs``."""
        t = torch.zeros(y.shape[:-1], dtype=y.dtype, device=y.device)
        return y + self.rhs(t, y, p, u)

    def default_params(self, batch: int | None = None, *, dtype: Any = None, device: Any = None) -> torch.Tensor:
        """Default parameter values, ``(n_params,)`` or ``(batch, n_params)``."""
        p = torch.zeros(len(self.param_names), dtype=dtype or torch.get_default_dtype(), device=device)
        return p if batch is None else p.expand(batch, -1).clone()

    def initial_state(self, p: torch.Tensor | None = None, batch: int | None = None, *,
                      dtype: Any = None, device: Any = None) -> torch.Tensor:
        """Initial state for parameters ``p``: ``(n_states,)`` or ``(batch, n_states)``."""
        y = torch.zeros(self.n_states, dtype=dtype or torch.get_default_dtype(), device=device)
        return y if batch is None else y.expand(batch, -1).clone()

    def observe(self, t: torch.Tensor, y: torch.Tensor, p: torch.Tensor | None = None,
                u: torch.Tensor | None = None) -> torch.Tensor:
        """Values of the observable (assigned) variables, ``(..., n_observables)``."""
        return y[..., :0]

    observable_names: Sequence[str] = ()


def check_event_options(dyn: Dynamics, solver: str) -> None:
    """Refuse the SBML event options a solver's own event loop does not implement (it fires each
    event at its trigger time, simultaneous ones in list order): a delay or a priority, named."""
    for ev in dyn.events:
        options = ev.options or {}
        delay, priority = options.get("delay"), options.get("priority")
        if is_delayed(delay):
            what = "a delay: the solver fires events at their trigger time"
        elif priority is not None:
            what = "a priority: the solver runs simultaneous events in list order"
        else:
            continue
        raise SolverError(f"event {ev.name!r} of model {getattr(dyn, 'name', '?')!r} has {what} ({solver} "
                          f"solver; SBML models with delays and priorities run through the SBML driver: load "
                          f"the .xml/.ant file)")


class CompiledDynamics(Dynamics):
    """Torch dynamics generated from a :class:`~neuroplex.ir.ModelIR`. The right-hand side is the
    core compiler's (:class:`~neuroplex.compiler.CompiledProgram`, the one SBML models use too:
    pruned assignments, parameter-only work bound once, symbolic Jacobian), with the model's
    inputs as parameter columns after the parameters; observables, energy, events and initial
    values are generated here."""

    def __init__(self, model: ModelIR, *, dtype: Any = None, device: Any = None):
        self.model = model
        self.name = model.name
        self.dtype = dtype or torch.float64
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.state_names = model.state_names
        self.param_names = model.parameter_names
        self.input_names = list(model.inputs)
        self.observable_names = list(model.assignments)
        self._names: dict[str, str] = {model.time.name: "t"}
        bind: list[str] = []
        for i, s in enumerate(self.state_names):
            self._names[s] = f"_s{i}"
            bind.append(f"_s{i} = y[..., {i}]")
        pbind: list[str] = []
        for i, s in enumerate(self.param_names):
            self._names[s] = f"_p{i}"
            pbind.append(f"_p{i} = p[..., {i}]")
        ubind: list[str] = []
        for i, (s, default) in enumerate(model.inputs.items()):
            self._names[s] = f"_u{i}"
            ubind.append(f"_u{i} = _rt.const(_default_u[{i}], y) if u is None else u[..., {i}]")
        abind: list[str] = []
        printer = TorchPrinter(self._names)
        for i, (s, expr) in enumerate(model.assignments.items()):
            self._names[s] = f"_a{i}"
            printer.names[s] = f"_a{i}"
            abind.append(f"_a{i} = {printer(expr)}")
        self._printer = printer
        self._default_u = [float(v) for v in model.inputs.values()]
        #: the right-hand side, compiled by the core compiler over parameters then inputs
        self.program = CompiledProgram(model.name, model.time, self.state_names,
                                       [*self.param_names, *self.input_names],
                                       {s: model.derivatives[s] for s in self.state_names}, model.assignments)
        self.program.build_rhs()  # an expression torch cannot take fails here, at compile time
        prelude = ["t = _rt_time(t, y)", *bind, *pbind, *ubind, *abind]
        ns = {"_default_u": self._default_u, "_rt_time": _as_time, "_stack": _stack}
        args = ["t", "y", "p", "u=None"]

        obs_terms = [f"_a{i}" for i in range(len(model.assignments))]
        self._observe = build_function("observe", args, [*prelude, f"return _stack([{', '.join(obs_terms)}], y)"], ns)
        if model.energy is not None:
            self._energy = build_function("energy", ["y", "p"], [
                "t = torch.zeros(y.shape[:-1], dtype=y.dtype, device=y.device)", "u = None", *prelude[1:],
                f"return {printer(model.energy)} + torch.zeros(y.shape[:-1], dtype=y.dtype, device=y.device)"], ns)
        else:
            self._energy = None
        init_names = dict(self._names)
        init_body = ["t = torch.zeros(p.shape[:-1], dtype=p.dtype, device=p.device)", *pbind]
        init_body += [f"_u{i} = _rt.const({v!r}, p)" for i, v in enumerate(self._default_u)]
        self._init = self._compile_initial(model, init_names, init_body, ns)
        self.events = [self._compile_event(ev, prelude, args, ns) for ev in model.events]

    # ------------------------------------------------------------- compilation
    def _compile_event(self, ev: Any, prelude: list[str], args: list[str], ns: dict) -> EventFunction:
        p = self._printer
        trig = build_function(f"trigger_{_safe(ev.name)}", args, [*prelude, f"return _rt.as_bool({p(ev.trigger)}, y)"], ns)
        root = None
        if isinstance(ev.trigger, sympy.Rel) and ev.trigger.rel_op in (">", ">=", "<", "<="):
            g = ev.trigger.lhs - ev.trigger.rhs if ev.trigger.rel_op in (">", ">=") else ev.trigger.rhs - ev.trigger.lhs
            root = build_function(f"root_{_safe(ev.name)}", args, [*prelude, f"return {p(g)} + 0.0 * y[..., 0]"], ns)
        new = [p(ev.assignments[s]) if s in ev.assignments else f"_s{i}" for i, s in enumerate(self.state_names)]
        apply = build_function(f"apply_{_safe(ev.name)}", args, [*prelude, f"return _stack([{', '.join(new)}], y)"], ns)
        options = {"delay": ev.delay, "priority": ev.priority, "persistent": ev.persistent,
                   "initial_value": ev.initial_value, "use_values_from_trigger_time": ev.use_values_from_trigger_time}
        return EventFunction(ev.name, trig, apply, root, ev.terminal, options)

    def _compile_initial(self, model: ModelIR, names: dict[str, str], body: list[str], ns: dict) -> Callable:
        """Initial values may depend on parameters, on assignments and on each other
        (SBML initial assignments): evaluate in dependency order."""
        printer = TorchPrinter(names)
        pending = {s.name: s.initial for s in model.states}
        pending.update({k: v for k, v in model.assignments.items()})
        done: set[str] = {model.time.name, *model.parameter_names, *model.inputs}
        order: list[str] = []
        while pending:
            ready = [k for k, e in pending.items() if {s.name for s in getattr(e, "free_symbols", ())} <= done | {k}]
            ready = [k for k in ready if k not in {s.name for s in getattr(pending[k], "free_symbols", ())}]
            if not ready:
                raise ModelError(f"model {model.name!r}: circular initial values among {', '.join(sorted(pending))}")
            for k in ready:
                order.append(k)
                done.add(k)
                del pending[k]
        local = {s: f"_s{i}" for i, s in enumerate(self.state_names)}
        local.update({s: f"_a{i}" for i, s in enumerate(model.assignments)})
        printer.names.update(local)
        inits = {s.name: s.initial for s in model.states}
        for k in order:
            expr = inits.get(k, model.assignments.get(k))
            body.append(f"{local[k]} = _rt.const({printer(expr)}, p)")
        body.append(f"return _stack([{', '.join(local[s] for s in self.state_names)}], p)")
        return build_function("initial", ["p"], body, ns)

    # ----------------------------------------------------------------- runtime
    def rhs(self, t, y, p=None, u=None):
        return self.program.rhs(_as_time(t, y), y, self._with_inputs(self._p(p, y), u))

    def rhs_bound(self, p: torch.Tensor, u: torch.Tensor | None = None) -> Rhs:
        return self.program.rhs_bound(self._with_inputs(p, u))

    def _with_inputs(self, p: torch.Tensor, u: torch.Tensor | None) -> torch.Tensor:
        """The compiler's parameter columns: ``p`` then the inputs ``u`` (their defaults if None)."""
        if not self.input_names:
            return p
        if u is None:
            u = torch.tensor(self._default_u, dtype=p.dtype, device=p.device).expand(*p.shape[:-1], -1)
        shape = torch.broadcast_shapes(p.shape[:-1], u.shape[:-1])
        return torch.cat([p.expand(*shape, -1), u.to(p.dtype).expand(*shape, -1)], -1)

    def observe(self, t, y, p=None, u=None):
        return self._observe(t, y, self._p(p, y), u)

    def energy(self, y, p=None):
        if self._energy is None:
            raise ModelError(f"model {self.name!r} defines no energy")
        return self._energy(y, self._p(p, y))

    def default_params(self, batch=None, *, dtype=None, device=None):
        values = [prm.value for prm in self.model.parameters]
        p = torch.tensor(values, dtype=dtype or self.dtype, device=device or self.device)
        return p if batch is None else p.expand(batch, -1).clone()

    def initial_state(self, p=None, batch=None, *, dtype=None, device=None):
        if p is None:
            p = self.default_params(batch, dtype=dtype, device=device)
        elif batch is not None and p.dim() == 1:
            p = p.expand(batch, -1)
        y0 = self._init(p)
        return y0.to(dtype=dtype or p.dtype)

    def _p(self, p, y):
        if p is None:
            return self.default_params(dtype=y.dtype, device=y.device)
        return p

    def source(self) -> str:
        """The generated right-hand-side source code (for debugging): its parameter-only part
        ``bind_rhs(p)``, then ``rhs(t, y, k)``."""
        return self.program._bind.__source__ + self.program._rhs.__source__


def _as_time(t: Any, y: torch.Tensor) -> torch.Tensor:
    if isinstance(t, torch.Tensor):
        return t
    return torch.as_tensor(t, dtype=y.dtype, device=y.device)


def _stack(values: list[Any], like: torch.Tensor) -> torch.Tensor:
    shape = like.shape[:-1]
    if not values:
        return like.new_zeros((*shape, 0))
    out = like.new_empty((*shape, len(values)))
    for i, v in enumerate(values):
        out[..., i] = v
    return out


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)
