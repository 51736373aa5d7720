"""Clock-driven spiking engine: one generated TorchScript loop per network.

:class:`Engine` turns a :class:`~neuroplex.plugins.snn.network.Network` into Python source
for a whole multi-step chunk (every population's update, threshold, propagation, reset,
monitors), compiles it with ``torch.jit.CompilationUnit`` and runs it chunk by chunk. The
step loop runs in TorchScript's interpreter, so a step costs a handful of small kernels
and no Python: this is what closes most of the gap to Brian2's generated code.

Per step ``k`` (Brian2's default schedule):

1. ``not_refractory`` from the old state (``k - lastspike >= timestep(refractory)``, or
   ``not cond(old state)`` for a condition);
2. state update of every population (``exact``: ``Y <- P Y + c`` as one ``addmm``, the
   refractory propagator selected by ``torch.where``; explicit methods: generated
   element-wise code);
3. threshold on the updated state (``and not_refractory``);
4. propagation: spiking rows of a padded out-adjacency (flat post indices, zero-weight
   padding) gathered and ``index_add_``-ed into the post state (delays via a ring buffer);
5. reset of spiking neurons, ``lastspike = k``.

State layout per population: ``Y[n_states, B*n]`` (batch-major within a state), so a
post-synaptic target ``(state s, sample b, neuron j)`` is the flat index
``s*B*n + b*n + j``. Spike times are ``k*dt``.
"""
from __future__ import annotations

import math
import time as _time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy
import torch

from neuroplex.errors import ModelError, NeuroplexError
from neuroplex.ir import ModelIR, exprel
from neuroplex.solution import Solution, SpikeTrain, Status

from .integrators import DT, NOTREF, ExplicitStep, LinearStep, build_step, derivatives
from .network import Network, PoissonGroup, Population, TimedArray

NEVER = -(2 ** 30)


# --------------------------------------------------------------------------- printing
_UNARY = {sympy.exp: "exp", sympy.log: "log", sympy.Abs: "abs", sympy.sin: "sin", sympy.cos: "cos",
          sympy.tan: "tan", sympy.sinh: "sinh", sympy.cosh: "cosh", sympy.tanh: "tanh", sympy.asin: "asin",
          sympy.acos: "acos", sympy.atan: "atan", sympy.floor: "floor", sympy.ceiling: "ceil",
          sympy.sign: "sign", sympy.erf: "erf"}

class _Printer:
    """sympy -> TorchScript expression text; numbers are folded before printing."""

    def __init__(self, names: dict[str, str]):
        self.names = names

    def __call__(self, e: Any) -> str:  # noqa: C901 - one dispatch table
        if isinstance(e, (bool, sympy.logic.boolalg.BooleanAtom)):
            return "True" if bool(e) else "False"
        if isinstance(e, sympy.Symbol):
            try:
                return self.names[e.name]
            except KeyError:
                raise ModelError(f"undefined symbol {e.name!r} in generated step") from None
        if e.is_number and not e.free_symbols:
            return repr(float(e))
        if isinstance(e, sympy.Add):
            # negative terms as subtractions: one kernel each instead of a negation and an add
            pos = [a for a in e.args if not _negative(a)]
            neg = [-a for a in e.args if _negative(a)]
            if not pos:
                return "(-" + " - ".join(self(a) for a in neg) + ")" if len(neg) == 1 else \
                    "(-(" + " + ".join(self(a) for a in neg) + "))"
            text = " + ".join(self(a) for a in pos)
            if neg:
                text += " - " + " - ".join(self(a) for a in neg)
            return "(" + text + ")"
        if isinstance(e, sympy.Mul):
            num, den = [], []
            for a in e.args:
                if isinstance(a, sympy.Pow) and a.exp.is_number and a.exp.is_negative:
                    den.append(self(a.base) if a.exp == -1 else self(sympy.Pow(a.base, -a.exp)))
                elif a == -1:
                    num.append("-1.0")
                else:
                    num.append(self(a))
            text = " * ".join(num) if num else "1.0"
            if den:
                text = f"{text} / ({' * '.join(den)})"
            return "(" + text + ")"
        if isinstance(e, sympy.Pow):
            base, ex = e.args
            if ex == sympy.Rational(1, 2):
                return f"torch.sqrt({self(base)})"
            if ex == -1:
                return f"(1.0 / {self(base)})"
            return f"torch.pow({self(base)}, {float(ex) if ex.is_number else self(ex)})"
        if isinstance(e, exprel):
            return f"_exprel({self(e.args[0])})"
        for cls, fn in _UNARY.items():
            if isinstance(e, cls) and len(e.args) == 1:
                return f"torch.{fn}({self(e.args[0])})"
        if isinstance(e, sympy.Rel):
            return f"({self(e.lhs)} {e.rel_op} {self(e.rhs)})"
        if isinstance(e, sympy.And):
            return "(" + " & ".join(self(a) for a in e.args) + ")"
        if isinstance(e, sympy.Or):
            return "(" + " | ".join(self(a) for a in e.args) + ")"
        if isinstance(e, sympy.Not):
            return f"(~{self(e.args[0])})"
        if isinstance(e, sympy.Piecewise):
            out = None
            for value, cond in reversed(e.args):
                out = self(value) if cond is sympy.true or out is None else \
                    f"torch.where({self(cond)}, {self(value)}, {out})"
            return out or "0.0"
        raise ModelError(f"the spiking engine cannot compile {type(e).__name__} expression {e}")


# exprel(x) = (exp(x) - 1)/x; expm1 keeps it exact near 0 and only x == 0 gives 0/0
_HELPERS = '''
def _exprel(x: torch.Tensor) -> torch.Tensor:
    return torch.nan_to_num(torch.expm1(x) / x, nan=1.0)
'''


def _negative(e: Any) -> bool:
    """A term printed better as a subtraction (``-x``, ``-2*x``)."""
    return isinstance(e, sympy.Mul) and e.args[0].is_number and bool(e.args[0] < 0)


def _cse_symbols(prefix: str, counter: list[int]) -> Any:
    while True:
        counter[0] += 1
        yield sympy.Symbol(f"{prefix}{counter[0]}")


def _torch_exprel(x: Any) -> Any:
    x = torch.as_tensor(x, dtype=torch.float64)
    return torch.where(x.abs() < 1e-16, torch.ones_like(x), torch.expm1(x) / x)


# --------------------------------------------------------------------------- plans
@dataclass
class _Pop:
    index: int
    name: str
    n: int
    kind: str
    record: bool
    offset: int
    source: Population | PoissonGroup
    model: ModelIR | None = None
    method: str = ""
    states: list[str] = field(default_factory=list)
    y0: torch.Tensor | None = None
    refractory: str = "none"  # none | duration | condition
    names: dict[str, str] = field(default_factory=dict)  # symbol -> generated code
    fold: dict[Any, Any] = field(default_factory=dict)  # scalar symbol -> value
    nr_expr: str = ""  # code computing 'not refractory' (from the old state)
    rf_expr: str = ""  # code computing 'refractory'
    threshold_needs_nr: bool = False
    has_idx: bool = False  # the step computes the spiking indices i<p>
    rand_slot: int = -1  # Poisson groups: index of their random numbers


class Engine:
    """A network compiled for the torch engine (see the module docstring)."""

    def __init__(self, net: Network, *, dt: float | None = None, method: str | None = None,
                 dtype: Any = torch.float64, device: Any = "cpu"):
        if not net.populations:
            raise NeuroplexError(f"network {net.name!r} has no populations")
        self.net = net
        self.dt = float(dt or net.dt)
        self.B = net.batch
        self.dtype = dtype if isinstance(dtype, torch.dtype) else getattr(torch, str(dtype))
        self.device = torch.device(device)
        self.method = method
        self.consts: list[torch.Tensor] = []
        self.timed: list[tuple[int, float, int]] = []  # (const index, dt_in, length)
        self.pops: list[_Pop] = []
        self._rand_pops: list[_Pop] = []
        offset = 0
        for i, src in enumerate(net.populations.values()):
            kind = "poisson" if isinstance(src, PoissonGroup) else "neurons"
            self.pops.append(_Pop(i, src.name, src.n, kind, src.record_spikes, offset, src))
            offset += src.n
        t0 = _time.perf_counter()
        self.source = self._generate()
        try:
            self._cu = torch.jit.CompilationUnit(self.source)
        except Exception as exc:  # pragma: no cover - a generator bug
            raise ModelError(f"generated network step does not compile: {exc}\n{self.source}") from exc
        self.build_time = _time.perf_counter() - t0

    # ----------------------------------------------------------------- helpers
    def _const(self, value: Any, dtype: Any = None) -> str:
        t = torch.as_tensor(value)
        t = t.to(device=self.device, dtype=dtype or (self.dtype if t.is_floating_point() else t.dtype))
        self.consts.append(t.contiguous())
        return f"C[{len(self.consts) - 1}]"

    def _per_neuron(self, value: Any, n: int, what: str) -> torch.Tensor:
        """A value given as scalar, (n,) or (B, n) as a flat (B*n,) float64 tensor."""
        t = torch.as_tensor(value, dtype=torch.float64)
        if t.dim() == 0:
            return t.expand(self.B * n).clone()
        if t.shape == (n,):
            return t.repeat(self.B)
        if t.shape == (self.B, n):
            return t.reshape(-1).clone()
        raise NeuroplexError(f"{what}: expected a scalar, ({n},) or ({self.B}, {n}) values, got {tuple(t.shape)}")

    # -------------------------------------------------------------- generation
    def _generate(self) -> str:
        pre: list[str] = []      # before the loop
        body: list[str] = []     # inside the loop
        post: list[str] = []     # after the loop
        ret_y, ret_l, ret_rec = [], [], []
        for P in self.pops:
            if P.kind == "poisson":
                self._gen_poisson(P, pre, body)
            else:
                self._gen_neurons(P, pre, body)
            ret_y.append(f"Y{P.index}" if P.kind == "neurons" else "C[0]")
            ret_l.append(f"L{P.index}" if P.kind == "neurons" else "C[0]")
        mon_lines: list[str] = []
        self._gen_monitors(pre, mon_lines)
        body = mon_lines + body
        body_thr: list[str] = []
        self._prealloc: list[str] = []
        for P in self.pops:
            if P.kind == "neurons":
                body_thr += self._threshold_lines(P)
            need_idx = P.record or any(s.pre == P.name for s in self.net.synapses.values())
            P.has_idx = need_idx
            if need_idx:
                body_thr.append(f"i{P.index} = torch.nonzero(sp{P.index}).view(-1)")
            if P.record:
                pre.append(f"rec{P.index}: List[torch.Tensor] = []")
                pre.append(f"rk{P.index}: List[int] = []")
                body_thr += [f"if i{P.index}.numel() > 0:",
                             f"    rec{P.index}.append(i{P.index})",
                             f"    rk{P.index}.append(k)"]
                ret_rec.append((f"rec{P.index}", f"rk{P.index}"))
            else:
                ret_rec.append(("_norec", "_nork"))
        pre += self._prealloc
        body_syn = self._gen_synapses(pre)
        body_reset: list[str] = []
        for P in self.pops:
            if P.kind == "neurons":
                body_reset += self._reset_lines(P)
        lines = ["def run(k0: int, n: int, Y: List[torch.Tensor], L: List[torch.Tensor], "
                 "C: List[torch.Tensor], R: List[torch.Tensor], M: List[torch.Tensor], "
                 "TIX: List[List[int]]):",
                 "    _norec: List[torch.Tensor] = []", "    _nork: List[int] = []"]
        lines += ["    " + x for x in pre]
        lines.append("    for kk in range(n):")
        lines.append("        k = k0 + kk")
        lines += ["        " + x for x in body + body_thr + body_syn + body_reset]
        lines += ["    " + x for x in post]
        recs = ", ".join(r for r, _ in ret_rec)
        rks = ", ".join(k for _, k in ret_rec)
        lines.append(f"    return [{', '.join(ret_y)}], [{', '.join(ret_l)}], [{recs}], [{rks}]")
        # C[0] is a placeholder tensor for Poisson slots in the returned lists
        return _HELPERS + "\n" + "\n".join(lines) + "\n"

    def _gen_poisson(self, P: _Pop, pre: list[str], body: list[str]) -> None:
        if not self.consts:
            self._const(torch.zeros(1))
        rates = self._per_neuron(P.source.rates, P.n, f"Poisson group {P.name!r} rates")
        if (rates < 0).any():
            raise NeuroplexError(f"Poisson group {P.name!r}: negative rate")
        thr = self._const(rates * self.dt)
        P.rand_slot = len(self._rand_pops)
        self._rand_pops.append(P)
        pre.append(f"thr{P.index} = {thr}")
        body.append(f"sp{P.index} = R[{P.rand_slot}][kk] < thr{P.index}")

    def _gen_neurons(self, P: _Pop, pre: list[str], body: list[str]) -> None:
        if not self.consts:
            self._const(torch.zeros(1))
        src: Population = P.source
        model = src.model
        P.model, P.states = model, model.state_names
        P.method = self.method or src.integration_method
        BN = self.B * P.n
        # parameters: scalars folded into the code, per-neuron values as tensors
        scalars: dict[str, float] = {}
        tensors: dict[str, torch.Tensor] = {}
        for prm in model.parameters:
            val = src.params.get(prm.name, prm.value)
            t = torch.as_tensor(val, dtype=torch.float64)
            if t.dim() == 0:
                scalars[prm.name] = float(t)
            else:
                tensors[prm.name] = self._per_neuron(t, P.n, f"population {P.name!r} parameter {prm.name!r}")
        names: dict[str, str] = {}
        for name, vals in tensors.items():
            names[name] = f"q{P.index}_{name}"
            pre.append(f"q{P.index}_{name} = {self._const(vals)}")
        # inputs: undriven/scalar folded; tensors passed; timed arrays indexed per step
        input_lines: list[str] = []
        timed_inputs: dict[str, tuple[str, float, int]] = {}
        for name, default in model.inputs.items():
            val = src.inputs.get(name, default)
            if isinstance(val, TimedArray):
                vals = val.values
                T = vals.shape[0]
                flat = torch.stack([self._per_neuron(vals[r], P.n, f"input {name!r}") for r in range(T)])
                ci = self._const(flat)
                slot = len(self.timed)
                self.timed.append((slot, val.dt, T, 0.0))
                pre.append(f"ta{P.index}_{name} = {ci}")
                input_lines.append(f"u{P.index}_{name} = ta{P.index}_{name}[TIX[{slot}][kk]]")
                names[name] = f"u{P.index}_{name}"
                timed_inputs[name] = (ci, val.dt, T)
            else:
                t = torch.as_tensor(val, dtype=torch.float64)
                if t.dim() == 0:
                    scalars[name] = float(t)
                else:
                    names[name] = f"u{P.index}_{name}"
                    pre.append(f"u{P.index}_{name} = {self._const(self._per_neuron(t, P.n, f'input {name!r}'))}")
        scalars[DT.name] = self.dt
        fold = {sympy.Symbol(k): sympy.Float(v) for k, v in scalars.items()}
        P.fold = fold
        # initial state from the IR (per neuron), then population overrides
        pmat = torch.stack([tensors[p.name] if p.name in tensors else torch.full((BN,), scalars[p.name],
                           dtype=torch.float64) for p in model.parameters], dim=-1) if model.parameters else \
            torch.zeros(BN, 0, dtype=torch.float64)
        y0 = model.compile(dtype=torch.float64).initial_state(pmat).T.contiguous()
        for key, val in src.init.items():
            y0[model.state_names.index(key)] = self._per_neuron(val, P.n, f"population {P.name!r} init {key!r}")
        P.y0 = y0
        # refractoriness
        i = P.index
        ref = model.refractory
        if ref is None:
            P.refractory = "none"
        elif isinstance(ref, (sympy.Rel, sympy.And, sympy.Or, sympy.Not)):
            P.refractory = "condition"
        else:
            P.refractory = "duration"
        for k, s in enumerate(P.states):
            names[s] = f"Y{i}r{k}"
        P.names = names
        names["t"] = f"tt{i}"
        pr = _Printer(names)
        uses_t = any(model.time in e.free_symbols for e in derivatives(model).values())
        pre.append(f"Y{i} = Y[{i}]")
        pre.append(f"L{i} = L[{i}]")
        pre.append(self._bind_views(i, "Y", len(model.state_names)))
        body.extend(input_lines)
        if uses_t:
            body.append(f"tt{i} = torch.full([1], float(k) * {self.dt!r}, dtype=Y{i}.dtype, device=Y{i}.device)")
        P.threshold_needs_nr = P.refractory != "none"
        if P.refractory == "duration":
            R = self._eval_numeric(ref, scalars, tensors)
            steps = (torch.as_tensor(R, dtype=torch.float64) + 1e-3 * self.dt) / self.dt
            steps = torch.floor(steps).to(torch.int64)
            if steps.dim() == 0:
                # not refractory  <=>  k - lastspike >= ref  <=>  lastspike <= k - ref
                pre.append(f"rf{i} = torch.empty_like(L{i}, dtype=torch.bool)")
                pre.append(f"nr{i} = torch.empty_like(L{i}, dtype=torch.bool)")
                P.nr_expr = f"torch.le(L{i}, k - {int(steps)}, out=nr{i})"
                P.rf_expr = f"torch.gt(L{i}, k - {int(steps)}, out=rf{i})"
            else:
                pre.append(f"ref{i} = {self._const(steps, torch.int32)}")
                P.nr_expr = f"(k - L{i}) >= ref{i}"
                P.rf_expr = f"(k - L{i}) < ref{i}"
        elif P.refractory == "condition":
            P.nr_expr = f"~({pr(ref.xreplace(fold))})"
            P.rf_expr = f"({pr(ref.xreplace(fold))})"
        step = build_step(model, P.method)
        if isinstance(step, LinearStep):
            upd = self._linear_lines(P, step, scalars, tensors, names, fold, pre)
        else:
            local = dict(names)
            upd = []
            for sym, (u, shift) in step.input_at.items():
                if u in timed_inputs:  # a timed input read at the stage's time t + shift
                    ci, tdt, T = timed_inputs[u]
                    slot = len(self.timed)
                    self.timed.append((slot, tdt, T, float(sympy.sympify(shift).subs(DT, self.dt))))
                    upd.append(f"u{i}_{sym} = {ci}[TIX[{slot}][kk]]")
                    local[sym] = f"u{i}_{sym}"
                else:
                    local[sym] = names.get(u, "")
                    if not local[sym]:
                        fold[sympy.Symbol(sym)] = fold[sympy.Symbol(u)]
            local.update({s: f"Y{i}r{k}" for k, s in enumerate(P.states)})
            upd += self._explicit_lines(P, step, local, fold)
        text = "\n".join(upd)
        for flag, expr in (("rf", P.rf_expr if P.refractory != "none" else ""),
                           ("nr", P.nr_expr if P.refractory != "none" else "")):
            needed = f"{flag}{i}" in text or (flag == "nr" and P.threshold_needs_nr)
            if needed:
                body.append(expr if expr.startswith("torch.") and "out=" in expr else f"{flag}{i} = {expr}")
        body += upd
        if not any(line.startswith(f"Y{i}, Y{i}f,") for line in upd):
            body.append(self._bind_views(i, "Y", len(P.states)))
        P.names, P.fold = names, fold

    def _eval_numeric(self, expr: Any, scalars: dict[str, float], tensors: dict[str, torch.Tensor]) -> Any:
        """Value of a parameter expression: a float, or a (B*n,) float64 tensor."""
        expr = sympy.sympify(expr).xreplace({sympy.Symbol(k): sympy.Float(v) for k, v in scalars.items()})
        syms = sorted(expr.free_symbols, key=lambda s: s.name)
        if not syms:
            return float(expr)
        missing = [s.name for s in syms if s.name not in tensors]
        if missing:
            raise ModelError(f"cannot evaluate {expr}: unknown {', '.join(missing)}")
        fn = sympy.lambdify(syms, expr, modules=[{"exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt,
                                                  "exprel": _torch_exprel}, "math"])
        return torch.as_tensor(fn(*[tensors[s.name] for s in syms]), dtype=torch.float64)

    def _linear_lines(self, P: _Pop, step: LinearStep, scalars: dict[str, float], tensors: dict[str, torch.Tensor],
                      names: dict[str, str], fold: dict, pre: list[str]) -> list[str]:
        i, S = P.index, len(P.states)
        inputs = [u for u in P.model.inputs if u not in scalars]

        def split(c_expr: Any) -> tuple[Any, dict[str, Any]]:
            e = sympy.expand(sympy.sympify(c_expr))
            coeffs = {u: self._eval_numeric(sympy.diff(e, sympy.Symbol(u)), scalars, tensors) for u in inputs}
            base = self._eval_numeric(e.xreplace({sympy.Symbol(u): 0 for u in inputs}), scalars, tensors)
            return base, {u: c for u, c in coeffs.items() if not (isinstance(c, float) and c == 0.0)}

        def matrices(Pm: list[list[Any]], cm: list[Any]) -> tuple[Any, Any, list[dict[str, Any]]]:
            Pv = [[self._eval_numeric(x, scalars, tensors) for x in row] for row in Pm]
            parts = [split(x) for x in cm]
            return Pv, [b for b, _ in parts], [u for _, u in parts]

        Pv, cv, cu = matrices(step.P, step.c)
        variants = [(Pv, cv, cu)]
        if step.P_ref is not None and P.refractory != "none":
            variants.append(matrices(step.P_ref, step.c_ref))
        bad = [x for V in variants for row in V[0] for x in row if isinstance(x, float) and not math.isfinite(x)]
        if bad:
            raise ModelError(f"population {P.name!r}: the exact propagator is singular for these parameters "
                             f"(e.g. equal time constants); use method='exponential_euler'")
        scalar_only = all(isinstance(x, float) for V in variants for row in V[0] for x in row) and \
            all(isinstance(x, float) for V in variants for x in V[1]) and not any(u for V in variants for u in V[2])
        out: list[str] = []
        if scalar_only:
            pre.append(f"Yb{i} = torch.empty_like(Y{i})")
        fill = self._fill_clamp(P, step, variants) if scalar_only else None
        if fill is not None:
            # refractory rows hold their (constant) reset value: one addmm and a fill
            Pv, cv, _ = variants[0]
            pre.append(f"Pm{i} = {self._const(torch.tensor(Pv, dtype=torch.float64))}")
            pre.append(f"cm{i} = {self._const(torch.tensor(cv, dtype=torch.float64).view(S, 1))}")
            out.append(f"torch.addmm(cm{i}, Pm{i}, Y{i}, out=Yb{i})")
            pre.append(self._bind_views(i, "Yb", S))
            out.append(self._swap(i, S))
            for k, value in fill:
                out.append(f"Y{i}r{k}.masked_fill_(rf{i}, {value!r})")
            return out
        results = []
        for n_var, (Pv, cv, cu) in enumerate(variants):
            tag = f"{i}_{n_var}"
            if scalar_only:
                pre.append(f"Pm{tag} = {self._const(torch.tensor(Pv, dtype=torch.float64))}")
                pre.append(f"cm{tag} = {self._const(torch.tensor(cv, dtype=torch.float64).view(S, 1))}")
                if n_var == 1:
                    pre.append(f"Yr{i} = torch.empty_like(Y{i})")
                    out.append(f"torch.addmm(cm{tag}, Pm{tag}, Y{i}, out=Yr{i})")
                    results.append(f"Yr{i}")
                else:
                    out.append(f"torch.addmm(cm{tag}, Pm{tag}, Y{i}, out=Yb{i})")
                    results.append(f"Yb{i}")
                continue
            rows = []
            for r in range(S):
                terms = []
                for c_ in range(S):
                    coef = Pv[r][c_]
                    if isinstance(coef, float) and coef == 0.0:
                        continue
                    terms.append(f"{self._coef(coef, pre)} * Y{i}[{c_}]")
                if not (isinstance(cv[r], float) and cv[r] == 0.0):
                    terms.append(self._coef(cv[r], pre) if not isinstance(cv[r], float) else repr(cv[r]))
                for u, coef in cu[r].items():
                    terms.append(f"{self._coef(coef, pre)} * {names[u]}")
                rows.append(" + ".join(terms) if terms else f"torch.zeros_like(Y{i}[0])")
            out.append(f"Yn{tag} = torch.stack([{', '.join(rows)}])")
            results.append(f"Yn{tag}")
        if scalar_only and len(results) == 1:
            pre.append(self._bind_views(i, "Yb", S))
            out.append(self._swap(i, S))
        elif scalar_only:
            out.append(f"torch.where(nr{i}, Yb{i}, Yr{i}, out=Y{i})")
        elif len(results) == 1:
            out.append(f"Y{i} = {results[0]}")
        else:
            out.append(f"Y{i} = torch.where(nr{i}, {results[0]}, {results[1]})")
        return out

    @staticmethod
    def _bind_views(i: int, buf: str, S: int) -> str:
        """One line binding the flat view and the row views of a state buffer."""
        names = [f"{buf}{i}f"] + [f"{buf}{i}r{k}" for k in range(S)]
        views = [f"{buf}{i}.view(-1)"] + [f"{buf}{i}[{k}]" for k in range(S)]
        return f"{', '.join(names)} = {', '.join(views)}"

    @staticmethod
    def _swap(i: int, S: int) -> str:
        """Swap the state buffer and its spare (after an ``out=`` update), views included."""
        a = [f"Y{i}", f"Y{i}f"] + [f"Y{i}r{k}" for k in range(S)]
        b = [f"Yb{i}", f"Yb{i}f"] + [f"Yb{i}r{k}" for k in range(S)]
        return f"{', '.join(a + b)} = {', '.join(b + a)}"

    def _fill_clamp(self, P: _Pop, step: LinearStep, variants: list) -> list[tuple[int, float]] | None:
        """Where refractoriness only freezes states whose reset is a constant (the LIF
        ``v = v_reset``), a refractory neuron's frozen value *is* that constant: the
        refractory propagator reduces to a fill. Returns ``[(row, value)]`` or None."""
        if len(variants) != 2 or P.refractory != "duration" or not P.model.events:
            return None
        (Pv, cv, _), (Pr, cr, _) = variants
        clamp = [P.states.index(x.name) for x in P.model.states if x.clamped_when_refractory]
        for r in range(len(P.states)):
            if r not in clamp and (Pv[r] != Pr[r] or cv[r] != cr[r]):
                return None
        fill = []
        assigns = P.model.events[0].assignments
        for r in clamp:
            e = assigns.get(P.states[r])
            if e is None:
                return None
            e = sympy.sympify(e).xreplace(P.fold)
            if not e.is_number:
                return None
            fill.append((r, float(e)))
        # a frozen neuron sits at its reset value: if that cannot cross the threshold,
        # the threshold test needs no 'and not refractory'
        trig = sympy.sympify(P.model.events[0].trigger).xreplace(P.fold)
        trig = trig.xreplace({sympy.Symbol(P.states[r]): sympy.Float(v) for r, v in fill})
        if trig in (sympy.false, False):
            P.threshold_needs_nr = False
        return fill

    def _coef(self, value: Any, pre: list[str]) -> str:
        if isinstance(value, float):
            return repr(value)
        name = f"k{len(self.consts)}"
        pre.append(f"{name} = {self._const(value)}")
        return name

    def _explicit_lines(self, P: _Pop, step: ExplicitStep, names: dict[str, str], fold: dict) -> list[str]:
        i = P.index
        out: list[str] = []
        pr = _Printer(names)
        if any(NOTREF in sympy.sympify(e).free_symbols for _, e in step.lines) or \
                any(NOTREF in sympy.sympify(e).free_symbols for e in step.new.values()):
            out.append(f"nrf{i} = nr{i}.to(Y{i}.dtype)")
            names[NOTREF.name] = f"nrf{i}"
        counter = [0]

        def emit(group: list[tuple[str, Any]]) -> list[str]:
            """Common subexpressions of a group of independent lines become temporaries."""
            exprs = [sympy.sympify(e).xreplace(fold) for _, e in group]
            for (name, _), e in zip(group, exprs):
                if e.is_number:  # constant (e.g. the linear synaptic decays): fold into later lines
                    fold[sympy.Symbol(name)] = e
            group = [(n, e) for (n, _), e in zip(group, exprs) if not e.is_number]
            exprs = [e for _, e in group]
            subs, reduced = sympy.cse(exprs, symbols=_cse_symbols(f"_c{i}_", counter))
            text = []
            for sym, e in subs:
                names[sym.name] = f"w{i}{sym.name}"
                text.append(f"w{i}{sym.name} = {pr(e)}")
            for (name, _), e in zip(group, reduced):
                names[name] = f"w{i}{name}"
                text.append(f"w{i}{name} = {pr(e)}")
            return text

        group: list[tuple[str, Any]] = []
        defined: set[str] = set()
        for name, expr in step.lines:
            if {x.name for x in sympy.sympify(expr).free_symbols} & defined:
                out += emit(group)
                group, defined = [], set()
            group.append((name, expr))
            defined.add(name)
        if group:
            out += emit(group)
        out += emit([(f"_new_{s}", step.new[s]) for s in P.states])
        out.append(f"Y{i} = torch.stack([{', '.join(f'w{i}_new_{s}' for s in P.states)}])")
        if P.refractory != "none":
            for s in step.clamp_after:
                k = P.states.index(s)
                out.append(f"Y{i}[{k}] = torch.where(nr{i}, Y{i}[{k}], Y{i}r{k})")
        return out

    def _threshold_lines(self, P: _Pop) -> list[str]:
        i = P.index
        events = P.model.events
        if not events:
            return [f"sp{i} = torch.zeros_like(Y{i}[0], dtype=torch.bool)"]
        if len(events) > 1:
            raise ModelError(f"population {P.name!r}: the spiking engine supports one threshold event, "
                             f"model {P.model.name!r} has {len(events)}")
        pr = _Printer(P.names)
        trig = sympy.sympify(events[0].trigger).xreplace(P.fold)
        ops = {">": "gt", ">=": "ge", "<": "lt", "<=": "le"}
        if isinstance(trig, sympy.Rel) and trig.rel_op in ops and trig.rhs.is_number:
            self._prealloc.append(f"sp{i} = torch.empty_like(Y{i}r0, dtype=torch.bool)")
            out = [f"torch.{ops[trig.rel_op]}({pr(trig.lhs)}, {float(trig.rhs)!r}, out=sp{i})"]
            if P.threshold_needs_nr:
                out.append(f"sp{i}.logical_and_(nr{i})")
            return out
        cond = pr(trig)
        if P.threshold_needs_nr:
            cond = f"{cond} & nr{i}"
        return [f"sp{i} = {cond}"]

    def _reset_lines(self, P: _Pop) -> list[str]:
        i = P.index
        out: list[str] = []
        if P.model.events:
            pr = _Printer(P.names)
            assigns = P.model.events[0].assignments
            tmp = []
            for s, expr in assigns.items():
                k = P.states.index(s)
                e = sympy.sympify(expr).xreplace(P.fold)
                if e.is_number and P.has_idx:
                    tmp.append(f"Y{i}r{k}.index_fill_(0, i{i}, {float(e)!r})")
                elif e.is_number:
                    tmp.append(f"Y{i}r{k}.masked_fill_(sp{i}, {float(e)!r})")
                else:
                    out.append(f"r{i}_{k} = torch.where(sp{i}, {pr(e)}, Y{i}r{k})")
                    tmp.append(f"Y{i}r{k}.copy_(r{i}_{k})")
            out += tmp
        if P.refractory == "duration":
            out.append(f"L{i}.index_fill_(0, i{i}, k)" if P.has_idx else
                       f"L{i}.masked_fill_(sp{i}, k)")
        if P.has_idx and out:
            # spike-proportional work only in steps with spikes
            out = [f"if i{i}.numel() > 0:"] + ["    " + line for line in out]
        return out

    def _gen_synapses(self, pre: list[str]) -> list[str]:
        """Group synapses by (pre, post, delayed?) into one padded adjacency each."""
        groups: dict[tuple[str, str, bool], list[Any]] = {}
        for syn in self.net.synapses.values():
            groups.setdefault((syn.pre, syn.post, syn.delay is not None and bool(syn.delay.size)
                               and int(syn.delay.max()) > 0), []).append(syn)
        out: list[str] = []
        pops = {P.name: P for P in self.pops}
        for g, ((pre_name, post_name, delayed), syns) in enumerate(groups.items()):
            a, b = pops[pre_name], pops[post_name]
            BNa, BNb = self.B * a.n, self.B * b.n
            S = len(b.states)
            rows_i, flat_j, weights, delays = [], [], [], []
            for syn in syns:
                s_idx = b.states.index(syn.target)
                rows_i.append(syn.sample * a.n + syn.i)
                flat_j.append(s_idx * BNb + syn.sample * b.n + syn.j)
                weights.append(syn.weight)
                delays.append(syn.delay if syn.delay is not None else np.zeros(len(syn), dtype=np.int64))
            rows = np.concatenate(rows_i)
            flat = np.concatenate(flat_j)
            w = np.concatenate(weights)
            d = np.concatenate(delays)
            dmax = int(d.max()) if d.size else 0
            span = S * BNb
            if delayed:
                flat = d * span + flat
            order = np.argsort(rows, kind="stable")
            rows, flat, w = rows[order], flat[order], w[order]
            counts = np.bincount(rows, minlength=BNa)
            K = max(int(counts.max()) if counts.size else 0, 1)
            start = np.concatenate([[0], np.cumsum(counts)[:-1]])
            col = np.arange(rows.size) - start[rows]
            T = np.zeros((BNa, K), dtype=np.int64)
            W = np.zeros((BNa, K), dtype=np.float64)
            T[rows, col] = flat
            W[rows, col] = w
            pre.append(f"T{g} = {self._const(torch.from_numpy(T), torch.int64)}")
            pre.append(f"W{g} = {self._const(torch.from_numpy(W))}")
            ia = f"i{a.index}"
            if delayed:
                slots = dmax + 1
                pre.append(f"D{g} = torch.zeros([{slots * span}], dtype=Y{b.index}.dtype, device=Y{b.index}.device)")
                out += [f"if {ia}.numel() > 0:",
                        f"    pos{g} = torch.remainder(T{g}.index_select(0, {ia}) + (k % {slots}) * {span}, {slots * span})",
                        f"    D{g}.index_add_(0, pos{g}.view(-1), W{g}.index_select(0, {ia}).view(-1))",
                        f"cur{g} = D{g}.narrow(0, (k % {slots}) * {span}, {span})",
                        f"Y{b.index}f.add_(cur{g})",
                        f"cur{g}.zero_()"]
            else:
                out += [f"if {ia}.numel() > 0:",
                        f"    Y{b.index}f.index_add_(0, T{g}.index_select(0, {ia}).view(-1), "
                        f"W{g}.index_select(0, {ia}).view(-1))"]
        return out

    def _gen_monitors(self, pre: list[str], body: list[str]) -> None:
        pops = {P.name: P for P in self.pops}
        self.monitor_plan = []
        for m, mon in enumerate(self.net.monitors):
            P = pops[mon.population]
            BN = self.B * P.n
            sel, labels = [], []
            for b in range(self.B):
                for var in mon.variables:
                    s = P.source.model.state_names.index(var)
                    for j in mon.indices:
                        sel.append(s * BN + b * P.n + j)
                        labels.append((b, f"{P.name}.{var}[{j}]"))
            pre.append(f"sel{m} = {self._const(torch.tensor(sel, dtype=torch.int64), torch.int64)}")
            body.append(f"if k % {mon.every} == 0:")
            body.append(f"    M[{m}][k // {mon.every}] = Y{P.index}f.index_select(0, sel{m})")
            self.monitor_plan.append((mon, len(sel) // self.B, labels[: len(sel) // self.B]))

    # -------------------------------------------------------------------- run
    def run(self, duration: float, *, progress: bool = False, seed: int | None = None,
            chunk: int | None = None) -> Solution:
        """Run ``round(duration/dt)`` steps from the initial state; a Solution."""
        n_steps = int(round(float(duration) / self.dt))
        if n_steps < 0:
            raise NeuroplexError(f"duration must be >= 0, not {duration}")
        dev, dt = self.device, self.dt
        Y = [P.y0.to(device=dev, dtype=self.dtype).clone() if P.kind == "neurons" else self.consts[0]
             for P in self.pops]
        L = [torch.full((self.B * P.n,), NEVER, dtype=torch.int32, device=dev) if P.kind == "neurons"
             else self.consts[0] for P in self.pops]
        M = []
        for mon, width, _ in self.monitor_plan:
            n_rec = (n_steps + mon.every - 1) // mon.every
            M.append(torch.zeros((n_rec, width * self.B), dtype=self.dtype, device=dev))
        rand_pops = self._rand_pops
        gen = torch.Generator(device=dev)
        gen.manual_seed(int(seed) if seed is not None else int(torch.randint(0, 2 ** 62, (1,))))
        chunk = int(chunk or (1000 if rand_pops else 10000))
        recs: list[list[torch.Tensor]] = [[] for _ in self.pops]
        ks: list[list[int]] = [[] for _ in self.pops]
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_steps, unit="step", desc=self.net.name)
        t0 = _time.perf_counter()
        k0 = 0
        while k0 < n_steps:
            n = min(chunk, n_steps - k0)
            R = [torch.rand((n, self.B * P.n), generator=gen, device=dev, dtype=self.dtype) for P in rand_pops]
            TIX = [[_timed_index((k0 + q) * dt + shift, tdt, dt, T) for q in range(n)]
                   for _, tdt, T, shift in self.timed]
            with torch.jit.optimized_execution(False):  # no profiling runs: the loop is op-bound
                Y, L, rec, rk = self._cu.run(k0, n, Y, L, self.consts, R, M, TIX)
            for p in range(len(self.pops)):
                recs[p] += rec[p]
                ks[p] += rk[p]
            k0 += n
            if bar is not None:
                bar.update(n)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        loop_time = _time.perf_counter() - t0
        if bar is not None:
            bar.close()
        return self._solution(n_steps, recs, ks, M, loop_time, Y)

    def _solution(self, n_steps: int, recs: list, ks: list, M: list, loop_time: float, Y: list) -> Solution:
        dt, B = self.dt, self.B
        samples, index, steps = [], [], []
        for P, rec, kk in zip(self.pops, recs, ks):
            if not rec:
                continue
            flat = torch.cat(rec).cpu()
            counts = torch.tensor([r.numel() for r in rec])
            st = torch.repeat_interleave(torch.tensor(kk, dtype=torch.int64), counts)
            samples.append(flat // P.n)
            index.append(flat % P.n + P.offset)
            steps.append(st)
        if steps:
            s, i, k = torch.cat(samples), torch.cat(index), torch.cat(steps)
            order = np.lexsort((i.numpy(), k.numpy(), s.numpy()))
            order = torch.from_numpy(order)
            s, i, k = s[order], i[order], k[order]
        else:
            s = i = k = torch.zeros(0, dtype=torch.int64)
        spikes = SpikeTrain(s, i, k.to(torch.float64) * dt)
        names: list[str] = []
        traces = []
        ts = None
        for (mon, width, labels), buf in zip(self.monitor_plan, M):
            names += [lab for _, lab in labels]
            traces.append(buf.view(buf.shape[0], B, width).permute(1, 0, 2))
            t_mon = torch.arange(buf.shape[0], dtype=torch.float64) * mon.every * dt
            if ts is None:
                ts = t_mon
            elif ts.shape != t_mon.shape:
                raise NeuroplexError("state monitors with different 'every' cannot share one Solution")
        if traces:
            ys = torch.cat(traces, dim=-1)
        else:
            ys = torch.zeros((B, 0, 0), dtype=self.dtype)
            ts = torch.zeros(0, dtype=torch.float64)
        finite = torch.ones(B, dtype=torch.bool)
        for P, y in zip(self.pops, Y):
            if P.kind == "neurons":
                finite &= torch.isfinite(y.view(len(P.states), B, P.n)).all(dim=2).all(dim=0).cpu()
        status = torch.where(finite, int(Status.SUCCESS), int(Status.NONFINITE)).to(torch.int64)
        counts = torch.bincount(s, minlength=B) if s.numel() else torch.zeros(B, dtype=torch.int64)
        final = {P.name: y.view(len(P.states), B, P.n) for P, y in zip(self.pops, Y) if P.kind == "neurons"}
        return Solution(
            ys=ys, ts=ts, names=names, status=status,
            stats={"n_steps": torch.full((B,), n_steps, dtype=torch.int64), "n_spikes": counts},
            spikes=spikes, solver="torch", method=",".join(sorted({P.method for P in self.pops if P.method})),
            meta={"model": self.net.name, "dt": dt, "populations": self.net.population_offsets(),
                  "loop_time": loop_time, "build_time": self.build_time, "final_state": final,
                  "dtype": str(self.dtype).replace("torch.", ""), "device": str(self.device)},
        )


def _timed_index(t: float, tdt: float, dt: float, n_values: int) -> int:
    """The TimedArray row Brian2 reads at time ``t``: time is rounded on the simulation clock
    (K clock steps per TimedArray step, ``epsilon = tdt/K``), then floor-divided by K, clipped
    (brian2/input/timedarray.py). A fixed ``1e-3*tdt`` offset would read a long-step array one
    clock step early."""
    k = max(1, int(round(tdt / dt)))
    eps = tdt / k
    return min(max(int(round(t / eps)) // k, 0), n_values - 1)
