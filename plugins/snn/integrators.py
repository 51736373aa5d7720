"""Brian2's clock-driven integration methods, generated symbolically from a ModelIR.

Each method turns the IR's derivatives into the update of one fixed step ``dt``:

* ``exact`` - for linear equations ``x' = A x + b`` (constant A): the propagator
  ``exp(A dt)`` and the affine term derived with sympy from the matrix exponential of the
  augmented system ``[[A, b], [0, 0]]`` (as Brian2's ``exact``/``linear`` state updater).
  Inputs (constant within a step) enter as extra constant states.
* ``euler`` - ``x + dt f(x, t)``.
* ``exponential_euler`` - Brian2's definition: each variable ``x`` must be linear in itself,
  ``f = A + B x`` with every other variable frozen at its old value, and
  ``x' = -A/B + (x + A/B) exp(B dt)`` (Euler where ``B = 0``).
* ``rk2`` - Brian2's midpoint method ``x + dt f(x + dt/2 f(x, t), t + dt/2)``.
* ``rk4`` - classical Runge-Kutta.

States Brian marks ``(unless refractory)`` have their derivative multiplied by the
symbol ``_notref`` (1 or 0) in the explicit methods, exactly as Brian does; ``exact``
returns a second propagator with those rows zeroed, and ``exponential_euler`` keeps the
old value of a clamped state while refractory. Assignments (intermediate expressions)
are substituted into the derivatives first.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import sympy

from neuroplex.errors import ModelError
from neuroplex.ir import ModelIR

METHODS = ("exact", "euler", "exponential_euler", "rk2", "rk4")
DT = sympy.Symbol("dt")
NOTREF = sympy.Symbol("_notref")


@dataclass
class LinearStep:
    """``x_new = P x + c`` (``exact``); ``P_ref``/``c_ref`` apply while refractory.

    ``P`` is ``S x S`` and ``c`` a length-``S`` list of sympy expressions in parameters,
    inputs and ``dt``."""

    states: list[str]
    P: list[list[sympy.Expr]]
    c: list[sympy.Expr]
    P_ref: list[list[sympy.Expr]] | None = None
    c_ref: list[sympy.Expr] | None = None


@dataclass
class ExplicitStep:
    """Temporaries computed in order (``lines``), then ``new[state]`` from old values and
    temporaries. ``clamp_after`` lists states to hold at their old value while refractory."""

    states: list[str]
    lines: list[tuple[str, sympy.Expr]] = field(default_factory=list)
    new: dict[str, sympy.Expr] = field(default_factory=dict)
    clamp_after: list[str] = field(default_factory=list)
    #: inputs read at a stage time ``t + shift``: ``{symbol name: (input, shift)}``
    #: (Brian evaluates time-dependent inputs such as a TimedArray at each stage's time)
    input_at: dict[str, tuple[str, sympy.Expr]] = field(default_factory=dict)

    def uses_notref(self) -> bool:
        """Whether a line reads ``_notref`` (a state frozen while refractory)."""
        exprs = [e for _, e in self.lines] + list(self.new.values())
        return any(NOTREF in sympy.sympify(e).free_symbols for e in exprs)


def _assignment_values(model: ModelIR) -> dict[sympy.Symbol, sympy.Expr]:
    subs: dict[sympy.Symbol, sympy.Expr] = {}
    for name, expr in model.assignments.items():
        subs[sympy.Symbol(name)] = sympy.sympify(expr).xreplace(subs)
    return subs


def substitute_assignments(model: ModelIR, expr: Any) -> Any:
    """``expr`` (a threshold, reset or refractory expression) with the model's assignments substituted."""
    return sympy.sympify(expr).xreplace(_assignment_values(model)) if model.assignments else sympy.sympify(expr)


def derivatives(model: ModelIR) -> dict[str, sympy.Expr]:
    """The derivatives with every assignment substituted (in definition order)."""
    subs = _assignment_values(model)
    return {s: sympy.sympify(model.derivatives[s]).xreplace(subs) for s in model.state_names}


def clamped_states(model: ModelIR) -> list[str]:
    """States held while refractory (Brian's ``(unless refractory)``); none without a refractory period."""
    if model.refractory is None:
        return []
    return [s.name for s in model.states if s.clamped_when_refractory]


def build_step(model: ModelIR, method: str) -> LinearStep | ExplicitStep:
    """The symbolic one-step update of ``model`` with ``method``."""
    if method not in METHODS:
        raise ModelError(f"unknown integration method {method!r} for model {model.name!r}; "
                         f"methods: {', '.join(METHODS)}")
    f = derivatives(model)
    clamp = clamped_states(model)
    if method == "exact":
        return _exact(model.name, model.state_names, f, clamp, tuple(model.inputs), model.time.name)
    if method == "exponential_euler":
        return _exponential_euler(model.name, model.state_names, f, clamp)
    fc = {s: (NOTREF * e if s in clamp else e) for s, e in f.items()}
    if method == "euler":
        return ExplicitStep(model.state_names, [], {s: sympy.Symbol(s) + DT * fc[s] for s in model.state_names})
    return _runge_kutta(model.state_names, fc, model.time, 2 if method == "rk2" else 4, tuple(model.inputs))


def _runge_kutta(states: list[str], f: dict[str, sympy.Expr], t: sympy.Symbol, order: int,
                 inputs: tuple[str, ...] = ()) -> ExplicitStep:
    syms = {s: sympy.Symbol(s) for s in states}
    lines: list[tuple[str, sympy.Expr]] = []
    input_at: dict[str, tuple[str, sympy.Expr]] = {}

    def stage(tag: str, at: dict[str, sympy.Expr], t_shift: sympy.Expr) -> dict[str, sympy.Symbol]:
        # arguments of this stage as temporaries, then its slopes
        repl: dict[sympy.Symbol, sympy.Expr] = {}
        for s in states:
            if at[s] != syms[s]:
                name = f"_{tag}_x_{s}"
                lines.append((name, at[s]))
                repl[syms[s]] = sympy.Symbol(name)
        if t_shift != 0:
            repl[t] = t + t_shift
            for u in inputs:
                name = f"{u}__{tag}"
                input_at[name] = (u, t_shift)
                repl[sympy.Symbol(u)] = sympy.Symbol(name)
        out = {}
        for s in states:
            name = f"_{tag}_k_{s}"
            lines.append((name, f[s].xreplace(repl)))
            out[s] = sympy.Symbol(name)
        return out

    k1 = stage("s1", {s: syms[s] for s in states}, 0)
    if order == 2:
        k2 = stage("s2", {s: syms[s] + DT / 2 * k1[s] for s in states}, DT / 2)
        return ExplicitStep(states, lines, {s: syms[s] + DT * k2[s] for s in states}, input_at=input_at)
    k2 = stage("s2", {s: syms[s] + DT / 2 * k1[s] for s in states}, DT / 2)
    k3 = stage("s3", {s: syms[s] + DT / 2 * k2[s] for s in states}, DT / 2)
    k4 = stage("s4", {s: syms[s] + DT * k3[s] for s in states}, DT)
    new = {s: syms[s] + DT / 6 * (k1[s] + 2 * k2[s] + 2 * k3[s] + k4[s]) for s in states}
    return ExplicitStep(states, lines, new, input_at=input_at)


def _exponential_euler(name: str, states: list[str], f: dict[str, sympy.Expr], clamp: list[str]) -> ExplicitStep:
    lines: list[tuple[str, sympy.Expr]] = []
    new: dict[str, sympy.Expr] = {}
    for s in states:
        x = sympy.Symbol(s)
        expr = f[s]
        B = sympy.diff(expr, x)
        if x in B.free_symbols:
            raise ModelError(f"model {name!r}: exponential_euler needs d{s}/dt linear in {s} "
                             f"(Brian2's condition); use euler or rk4")
        A = expr.xreplace({x: 0})
        if B == 0:
            new[s] = x + DT * A
            continue
        lines.append((f"_B_{s}", B))
        lines.append((f"_BA_{s}", A / B))
        Bs, BAs = sympy.Symbol(f"_B_{s}"), sympy.Symbol(f"_BA_{s}")
        new[s] = -BAs + (BAs + x) * sympy.exp(Bs * DT)
    return ExplicitStep(states, lines, new, clamp_after=list(clamp))


def _exact(name: str, states: list[str], f: dict[str, sympy.Expr], clamp: list[str],
           inputs: tuple[str, ...], time: str) -> LinearStep:
    P, c = _propagator(name, tuple(states), tuple(f[s] for s in states), inputs, time)
    if not clamp:
        return LinearStep(states, P, c)
    # while refractory the clamped states are constants: propagate the others with the
    # clamped ones entering like inputs
    free = [s for s in states if s not in clamp]
    n = len(states)
    P_ref = [[sympy.Integer(1 if i == j else 0) for j in range(n)] for i in range(n)]
    c_ref = [sympy.Integer(0)] * n
    if free:
        Pf, cf = _propagator(name, tuple(free), tuple(f[s] for s in free), (*inputs, *clamp), time)
        for a, s in enumerate(free):
            i = states.index(s)
            for b, s2 in enumerate(free):
                P_ref[i][states.index(s2)] = Pf[a][b]
            rest = sympy.expand(cf[a])
            for s2 in clamp:
                P_ref[i][states.index(s2)] = sympy.diff(rest, sympy.Symbol(s2))
            c_ref[i] = rest.xreplace({sympy.Symbol(s2): 0 for s2 in clamp})
    return LinearStep(states, P, c, P_ref, c_ref)


@lru_cache(maxsize=64)
def _propagator(name: str, states: tuple[str, ...], f: tuple[sympy.Expr, ...], inputs: tuple[str, ...],
                time: str) -> tuple[list[list[sympy.Expr]], list[sympy.Expr]]:
    xs = [sympy.Symbol(s) for s in states]
    us = [sympy.Symbol(u) for u in inputs if any(sympy.Symbol(u) in e.free_symbols for e in f)]
    if any(sympy.Symbol(time) in e.free_symbols for e in f):
        raise ModelError(f"model {name!r}: 'exact' needs time-independent equations; use euler or rk4")
    n = len(xs)
    # augmented linear system on (x, 1, u): constant and inputs have zero derivative
    size = n + 1 + len(us)
    M = sympy.zeros(size, size)
    for i, e in enumerate(f):
        e = sympy.expand(e)
        for j, x in enumerate(xs):
            coef = sympy.diff(e, x)
            if coef.free_symbols & set(xs):
                raise ModelError(f"model {name!r}: 'exact' needs linear equations, d{states[i]}/dt is "
                                 f"not linear in {x}; use exponential_euler, euler or rk4")
            M[i, j] = coef
        rest = e.xreplace({x: 0 for x in xs})
        for k, u in enumerate(us):
            coef = sympy.diff(rest, u)
            if coef.free_symbols & set(us):
                raise ModelError(f"model {name!r}: 'exact' needs equations linear in input {u}")
            M[i, n + 1 + k] = coef
        M[i, n] = rest.xreplace({u: 0 for u in us})
    A = M[:n, :n]
    triangular = A.is_upper or A.is_lower
    if triangular and len(set(A[i, i] for i in range(n))) == n and all(A[i, i] != 0 for i in range(n)):
        # distinct non-zero eigenvalues on the diagonal: Parlett's recurrence for exp(A dt),
        # affine part A^-1 (exp(A dt) - I) b (fast; sympy's Jordan route takes seconds)
        Pm = _parlett(A * DT) if A.is_upper else _parlett((A * DT).T).T
        rhs = M[:n, n:]
        aff = A.inv() * (Pm - sympy.eye(n)) * rhs
        P = [[Pm[i, j] for j in range(n)] for i in range(n)]
        c = [aff[i, 0] + sum(aff[i, 1 + k] * us[k] for k in range(len(us))) for i in range(n)]
        return P, c
    E = _expm(M * DT)
    P = [[sympy.simplify(E[i, j]) for j in range(n)] for i in range(n)]
    c = [sympy.simplify(E[i, n] + sum(E[i, n + 1 + k] * us[k] for k in range(len(us)))) for i in range(n)]
    return P, c


def _parlett(T: sympy.Matrix) -> sympy.Matrix:
    """exp(T) of an upper-triangular matrix with distinct diagonal (Parlett 1976)."""
    n = T.shape[0]
    F = sympy.zeros(n, n)
    for i in range(n):
        F[i, i] = sympy.exp(T[i, i])
    for d in range(1, n):
        for i in range(n - d):
            j = i + d
            s = T[i, j] * (F[j, j] - F[i, i])
            for k in range(i + 1, j):
                s += F[i, k] * T[k, j] - T[i, k] * F[k, j]
            F[i, j] = s / (T[j, j] - T[i, i]) if s != 0 else sympy.Integer(0)
    return F


def _expm(M: sympy.Matrix) -> sympy.Matrix:
    """Symbolic matrix exponential; block-triangular systems (the usual synaptic-current
    neuron) are handled by sympy's Jordan decomposition."""
    try:
        return M.exp()
    except Exception as exc:  # noqa: BLE001 - sympy raises a variety here
        raise ModelError(f"cannot derive the exact propagator symbolically: {exc}; use exponential_euler") from exc
