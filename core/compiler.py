"""One compiler for every model's right-hand side: :class:`CompiledProgram`.

A model's states, parameters, derivatives and assignments (assignment rules, observables)
compile once into torch functions, the same way for IR models (:class:`neuroplex.dynamics.CompiledDynamics`)
and SBML models (:class:`neuroplex.sbml.program.SBMLProgram`, which adds SBML's initial values,
events and compartments on top):

- **pruning**: each function evaluates only the assignments its expressions use, directly or not;
- **parameter-only binding**: ``bind(p) -> k`` computes once per parameter set what only the
  parameters decide (common sub-expressions and parameter-only factors hoisted, see
  :func:`neuroplex.codegen.split_static`); ``rhs(t, y, k)`` does the rest every call;
- **symbolic Jacobian**: ``df/dy`` and ``df/dt`` as generated derivatives (chain rule through the
  assignments, non-zero entries only), checked once against autograd; implicit methods read it
  from ``f.jacobian`` (:meth:`CompiledProgram.rhs_bound`);
- **one-sample path**: a batch of one float64 CPU sample runs the same source over numpy scalars
  (:mod:`neuroplex.scalar_runtime`).
"""
from __future__ import annotations

from functools import cached_property
from typing import Any, Callable, Mapping, Sequence

import sympy
import torch

from . import scalar_runtime
from .codegen import TorchPrinter, build_function, split_static
from .errors import ModelError

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


class CompiledProgram:
    """The right-hand side of a model compiled to torch functions (see the module docstring).

    ``time``: the time symbol; ``derivatives``: state name -> expression; ``assignments``:
    name -> expression in evaluation order (they may use each other, states, parameters and
    time). Parameters are the columns of ``p (..., len(param_names))``; callers with further
    fixed inputs (IR models' ``inputs``) pass them as extra columns. Compile failures raise
    ``error`` (a :class:`~neuroplex.errors.ModelError` unless given) naming the model."""

    def __init__(self, name: str, time: sympy.Symbol, state_names: Sequence[str], param_names: Sequence[str],
                 derivatives: Mapping[str, sympy.Basic], assignments: Mapping[str, sympy.Basic], *,
                 error: type[Exception] = ModelError):
        self.label = name
        self.error = error
        self.state_names = list(state_names)
        self.param_names = list(param_names)
        self.n = len(self.state_names)
        self.time = time
        self.derivatives = dict(derivatives)
        self.assignments = dict(assignments)
        self.names: dict[str, str] = {time.name: "t"}
        for i, s in enumerate(self.state_names):
            self.names[s] = f"_s{i}"
        for i, s in enumerate(self.param_names):
            self.names[s] = f"_p{i}"
        self.assign_order = list(self.assignments)
        for i, s in enumerate(self.assign_order):
            self.names[s] = f"_a{i}"
        self.printer = TorchPrinter(self.names)
        self.ns: dict[str, Any] = {"_stack": _stack}
        self._jac_one: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None
        self._jac: tuple[Any, ...] | None = None  # built on first use (stiff methods)
        self._jac_checked = False
        #: no state changes between events (only events move the model)
        self.constant_state = all(self.derivatives[s] == 0 for s in self.state_names)

    # ------------------------------------ the right-hand side, built on first use
    # (a caller that only needs the initial state and outputs, such as the compiled C path,
    # never pays for printing it)
    @cached_property
    def _rhs_pair(self) -> tuple[Callable[..., list[Any]], Callable[..., torch.Tensor]]:
        return self._bound_function("rhs", [self.derivatives[s] for s in self.state_names])

    @cached_property
    def _bind(self) -> Callable[..., list[Any]]:
        return self._rhs_pair[0]

    @cached_property
    def _rhs(self) -> Callable[..., torch.Tensor]:
        return self._rhs_pair[1]

    @cached_property
    def _rhs_one(self) -> Any:
        """The same right-hand side over numpy scalars, for batches of one on the CPU."""
        return scalar_runtime.scalar_function(self._rhs, {"_stack": scalar_runtime.stack})

    def build_rhs(self) -> None:
        """Print and build the right-hand side now (it is otherwise built on first use), so an
        expression the torch target cannot take raises here."""
        self._rhs_pair

    # -------------------------------------------------------------- generation
    def _needed(self, exprs: Sequence[Any]) -> list[str]:
        """Assignments (in order) that ``exprs`` depend on, directly or not."""
        need: set[str] = set()
        stack = [s.name for e in exprs if isinstance(e, sympy.Basic) for s in e.free_symbols]
        assigns = self.assignments
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
            used |= {s.name for s in self.assignments[a].free_symbols}
        lines = []
        for i, s in enumerate(self.state_names):
            if s in used:
                lines.append(f"_s{i} = y[..., {i}]")
        for i, s in enumerate(self.param_names):
            if s in used:
                lines.append(f"_p{i} = p[..., {i}]")
        for a in needed:
            lines.append(f"{self.names[a]} = {self.printer(self.assignments[a])}")
        return lines

    def _function(self, name: str, exprs: Sequence[Any]) -> Callable[..., torch.Tensor]:
        body = self._prelude(exprs)
        body.append(f"return _stack([{', '.join(self.printer(e) for e in exprs)}], y, _block)")
        try:
            return build_function(name, ["t", "y", "p", "_block=None"], body, self.ns)
        except Exception as exc:  # pragma: no cover - a printer gap is a model we cannot run
            raise self.error(f"model {self.label!r}: cannot compile {name}: {exc}") from exc

    def _bound_function(self, name: str, exprs: Sequence[Any],
                        ret: Callable[[list[str]], str] | None = None) -> tuple[Callable[..., list[Any]], Callable[..., torch.Tensor]]:
        """``bind(p) -> k`` and ``fn(t, y, k)``: what only the parameters decide is computed
        once by ``bind`` (see :func:`neuroplex.codegen.split_static`), the rest every call.
        ``fn`` returns the values stacked as ``(..., len(exprs))``, or ``ret(printed values)``."""
        needed = self._needed(exprs)
        split = split_static(exprs, {a: self.assignments[a] for a in needed},
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
            raise self.error(f"model {self.label!r}: cannot compile {name}: {exc}") from exc

    def jacobian_code(self) -> tuple[Callable[..., list[torch.Tensor]],
                                     Callable[..., tuple[torch.Tensor, torch.Tensor]]] | None:
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
        states = [sympy.Symbol(s) for s in self.state_names]
        position = {v: j for j, v in enumerate([*states, self.time])}  # columns of (n, n + 1)
        derivs = [sympy.sympify(self.derivatives[s]) for s in self.state_names]
        assigns = {a: sympy.sympify(self.assignments[a]) for a in self._needed(derivs)}
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

