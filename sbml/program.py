"""SBML models compiled for simulation: :class:`SBMLProgram`.

:class:`SBMLProgram` compiles an :class:`~neuroplex.sbml.reader.SBMLModel` once into torch
functions: the right-hand side ``rhs(t, y, p)`` by the core compiler that every model uses
(:class:`neuroplex.compiler.CompiledProgram`: parameter-only sub-expressions bound once per
parameter set, a generated symbolic Jacobian checked once against autograd), the initial state
at ``t0`` (initial assignments and assignment rules in dependency order), output expressions,
and for events the *atoms* of their triggers (see :mod:`.events` for how they run).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import sympy
import torch

from neuroplex.codegen import TorchPrinter, build_function
from neuroplex.compiler import COLUMN_MAJOR_MIN, CompiledProgram, column_major


from .errors import SBMLImportError

if TYPE_CHECKING:
    from .reader import SBMLModel

#: the compiler's layout rule, used by the runner (and other readers of this module)
__all__ = ["COLUMN_MAJOR_MIN", "SBMLProgram", "column_major"]

_REL_OPS = (">", ">=", "<", "<=", "==", "!=")
#: species starting below this size (in the file's units) get tolerances that follow their size
#: (:meth:`SBMLProgram.atol_scale`)
SMALL_SPECIES = 1e-3


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


class SBMLProgram(CompiledProgram):
    """An SBML model compiled to torch functions (see the module docstring): the core compiler's
    right-hand side (:class:`neuroplex.compiler.CompiledProgram`: pruning, parameter-only
    binding, symbolic Jacobian) plus SBML's initial values, outputs and events."""

    def __init__(self, model: SBMLModel, outputs: Sequence[tuple[str, Any]] | None = None):
        self.model = model
        super().__init__(model.name, model.time, model.state_names, model.parameter_names,
                         {s: model.derivatives[s] for s in model.state_names}, model.assignments,
                         error=SBMLImportError)
        self._init = self._initial()
        if outputs is None:
            outputs = [(sid, model.value_expression(sid)) for sid in model.default_outputs()]
        self.output_names = [name for name, _ in outputs]
        self.observe = self._function("observe", [expr for _, expr in outputs])
        self._compile_events()

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

    def atol_scale(self, p: torch.Tensor, y_init: torch.Tensor, by_magnitude: bool = True) -> torch.Tensor | None:
        """``(B, n)`` factors that turn an absolute tolerance meant for concentrations of order 1
        into one for the states; None when no state needs one. For each species state:

        * ``min(1, |V|)`` (``V`` the compartment's initial size) for species the reader
          integrates as amounts: species in a compartment of size 1e-16 have amounts near 1e-23,
          where a concentration tolerance would accept any value (BIOMD0000000001 does this);
        * with ``by_magnitude``, times ``min(1, m / SMALL_SPECIES)``, ``m`` the species' own
          starting value (its concentration, or its amount where the file declares amounts), or,
          for a species that starts at 0, the smallest non-zero starting value of the model's
          species (species of 1e-3 and more keep the tolerance as given): a model whose
          concentrations are all far below the tolerance (BIOMD0000000183: 1e-16..1e-7 M) would
          otherwise get noise of the tolerance's size, and ratios of its species (assignment
          rules) would be wrong by orders of magnitude.

        Like roadrunner, whose absolute tolerance follows each species' own size, the tolerance
        only ever shrinks, never grows; other states (rate rules) keep it as given."""
        species = (self.model.metadata.get("sbml") or {}).get("species") or {}
        held = {v["amount_state"]: v for v in species.values() if v.get("amount_state")}
        rows = torch.ones_like(y_init)
        size_of = torch.ones_like(y_init)  # compartment sizes (1 where the value is the amount)
        moving: list[int] = []
        for i, name in enumerate(self.state_names):
            if name not in held:
                continue
            moving.append(i)
            c = None if held[name].get("has_only_substance_units") else held[name].get("compartment")
            if c in self.param_names:
                size = p[:, self.param_names.index(c)]
            elif c in self.state_names:
                size = y_init[:, self.state_names.index(c)]
            else:
                continue
            size = size.detach().abs().expand(rows.shape[0])
            usable = torch.isfinite(size) & (size > 0)
            size_of[:, i] = torch.where(usable, size, torch.ones_like(size))
            rows[:, i] = torch.where(usable, size.clamp(max=1.0), torch.ones_like(size))
        if by_magnitude and moving:
            cols = torch.tensor(moving)
            value = (y_init.detach()[:, cols] / size_of[:, cols]).abs()
            value = torch.where(torch.isfinite(value), value, torch.zeros_like(value))
            smallest = torch.where(value > 0, value, torch.full_like(value, math.inf)).amin(-1, keepdim=True)
            fallback = torch.where(torch.isfinite(smallest), smallest, torch.ones_like(smallest))
            m = torch.where(value > 0, value, fallback.expand_as(value))
            rows[:, cols] = rows[:, cols] * (m / SMALL_SPECIES).clamp(max=1.0)
        return rows if bool((rows != 1.0).any()) else None

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
