"""The C source of an SBML model's right-hand side, for the native integrator (``integrator.c``).

:func:`model_source` prints ``model_bind(p, k)`` (what only the parameters decide, once per
run: :func:`neuroplex.codegen.split_static`, common sub-expressions once) and
``model_rhs(t, y, p, k, dy)`` (the rest, every call) with the core printer's C target
(:class:`neuroplex.codegen.ExpressionPrinter`, numbers folded and logic as 0/1 values), from
the model's ``derivatives`` and the assignment rules they use; ``model_jac(t, y, p, k, J, ft)``,
the dense Jacobian ``df/dy`` and ``df/dt`` from symbolic derivatives (chain rule through the
assignment rules, only non-zero entries computed; where sympy finds no closed form the
integrator differences numerically); and ``model_sizes`` (states, bound values, whether a
Jacobian is there); ``model_n_atoms()``; for models with events ``model_atoms(t, y, p, k, g)``, the
values ``lhs - rhs`` of the relational atoms of their triggers
(:attr:`neuroplex.sbml.program.SBMLProgram.atoms`, in that order), whose sign changes the
integrator's event-aware entry stops at. The integrator is its own library (built once per machine) that calls these
through function pointers, so a model's library is small and quick to compile. The model's parameters arrive as the vector ``p`` in
``model.parameter_names`` order and its states as ``y`` in ``model.state_names`` order, the
layouts of :class:`neuroplex.sbml.program.SBMLProgram`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Sequence

import sympy
import torch

from neuroplex import codegen, functions
from neuroplex.codegen import ExpressionPrinter, c_helpers, split_static
from neuroplex.errors import NotPrintableError
from neuroplex.ir import ModelIR

#: bump when the generated code's layout changes (part of the cache key)
FORMAT = "neuroplex-native-2"

#: the helpers the printed expressions call (np_min/np_max/np_sign/np_exprel), in double
PRELUDE = "typedef double real;\n" + c_helpers(torch.float64)


@dataclass(frozen=True)
class ModelSource:
    """A model's C source and its sizes."""

    text: str
    n_states: int
    n_params: int


def integrator_source() -> str:
    """The integrator's C source (``integrator.c`` beside this module)."""
    return resources.files(__package__).joinpath("integrator.c").read_text(encoding="utf-8")


def _needed(model: ModelIR, exprs: list[sympy.Basic]) -> list[str]:
    """Assignment rules (in order) that ``exprs`` use, directly or not."""
    need: set[str] = set()
    stack = [s.name for e in exprs for s in e.free_symbols]
    while stack:
        name = stack.pop()
        if name in model.assignments and name not in need:
            need.add(name)
            stack.extend(s.name for s in sympy.sympify(model.assignments[name]).free_symbols)
    return [a for a in model.assignments if a in need]


@lru_cache(maxsize=1)
def _generator_version() -> bytes:
    """The generator's own code (this module, the core printer and the special functions' C
    definitions): a change to any gives new library names, so no library printed by an older
    generator is reused."""
    return b"".join(Path(module.__file__).read_bytes() for module in (codegen, functions)) + \
        Path(__file__).read_bytes()


def model_key(model: ModelIR, atoms: Sequence[sympy.Basic] = ()) -> str:
    """A hash of what the generated code depends on (the generator's code, states, parameters,
    time, derivatives, assignment rules, trigger atoms): two models with equal keys get the same
    library, so a warm cache skips generating the source."""
    h = hashlib.sha256(FORMAT.encode())
    h.update(_generator_version())
    for part in (model.time.name, *model.state_names, "|", *model.parameter_names, "|"):
        h.update(part.encode() + b"\0")
    for s in model.state_names:
        h.update(_serial(model.derivatives[s]).encode() + b"\0")
    for a, e in model.assignments.items():
        h.update(a.encode() + b"=" + _serial(e).encode() + b"\0")
    for g in atoms:
        h.update(b"atom:" + _serial(g).encode() + b"\0")
    return h.hexdigest()[:32]


def _serial(expr: object) -> str:
    """An expression tree as text, for the cache key: class names, symbol names, numbers and
    arguments in sympy's own (canonical) order; as exact as ``sympy.srepr`` and several times
    faster (no printing order to sort out)."""
    out: list[str] = []
    stack: list[object] = [expr]
    while stack:
        e = stack.pop()
        if isinstance(e, str):
            out.append(e)
        elif not isinstance(e, sympy.Basic):
            out.append(repr(e))
        elif e.is_Symbol:
            out.append(f"S:{e.name}")
        elif not e.args:
            out.append(sympy.srepr(e))  # numbers and constants: exact and short
        else:
            out.append(f"{type(e).__name__}(")
            stack.append(")")
            stack.extend(reversed(e.args))
    return " ".join(out)


def merge_powers(expr: sympy.Basic, memo: dict[sympy.Basic, sympy.Basic]) -> sympy.Basic:
    """``expr`` with the powers of one base in a product merged (``n*x**n/x`` -> ``n*x**(n - 1)``,
    which sympy's derivative of ``x**n`` leaves apart and which is 0/0 at ``x = 0``): what
    ``sympy.powsimp(expr, combine="exp")`` does for this, in one pass (powsimp's general
    search took most of the generation time of models with many Hill terms)."""
    if not expr.args or expr.is_Atom:
        return expr
    done = memo.get(expr)
    if done is not None:
        return done
    args = [merge_powers(a, memo) for a in expr.args]
    if isinstance(expr, sympy.Mul):
        exps: dict[sympy.Basic, list[sympy.Basic]] = {}
        rest = []
        for a in args:
            base, e = a.as_base_exp()
            if base.free_symbols and not base.is_Number:
                exps.setdefault(base, []).append(e)
            else:
                rest.append(a)
        if any(len(v) > 1 for v in exps.values()):
            out = sympy.Mul(*rest, *(sympy.Pow(b, sympy.Add(*v)) for b, v in exps.items()))
            memo[expr] = out
            return out
    out = expr.func(*args) if any(a is not b for a, b in zip(args, expr.args)) else expr
    memo[expr] = out
    return out


def jacobian_entries(model: ModelIR, derivs: list[sympy.Basic]) -> list[tuple[int, int, sympy.Basic]]:
    """The non-zero entries ``(row, column, expression)`` of ``[df/dy | df/dt]`` (``n x (n + 1)``)
    by the chain rule through the assignment rules (which stay symbols in the entries); raises
    ``ValueError`` where sympy leaves a derivative unevaluated."""
    states = [sympy.Symbol(s) for s in model.state_names]
    position = {v: j for j, v in enumerate([*states, model.time])}
    grad: dict[str, dict[int, sympy.Basic]] = {}

    def gradient(e: sympy.Basic) -> dict[int, sympy.Basic]:
        out: dict[int, sympy.Basic] = {}
        for sym in e.free_symbols:
            if sym in position:
                j = position[sym]
                out[j] = out.get(j, 0) + sympy.diff(e, sym)
            elif sym.name in grad:
                outer = sympy.diff(e, sym)
                for j, inner in grad[sym.name].items():
                    out[j] = out.get(j, 0) + outer * inner
        return {j: v for j, v in out.items() if v != 0}

    for a in _needed(model, derivs):
        grad[a] = gradient(sympy.sympify(model.assignments[a]))
    entries = []
    for i, e in enumerate(derivs):
        for j, v in sorted(gradient(e).items()):
            # a step's derivative is zero almost everywhere; n*x**n/x is 0/0 at x = 0
            v = merge_powers(v.replace(sympy.DiracDelta, lambda *_: sympy.Integer(0)), {})
            if v.has(sympy.Derivative, sympy.Subs):
                raise ValueError(f"no closed-form derivative of d{model.state_names[i]}/dt")
            if v != 0:
                entries.append((i, j, v))
    return entries


def _function(model: ModelIR, exprs: list[sympy.Basic], k_offset: int, prefix: str,
              base: dict[str, str]) -> tuple[list[str], list[str]]:
    """C lines binding the parameter-only part (into ``k[k_offset...]``) and computing ``exprs``
    (``out{i}`` locals) of one function, common sub-expressions once."""
    needed = _needed(model, exprs)
    split = split_static(exprs, {a: model.assignments[a] for a in needed},
                         {model.time.name, *model.state_names}, prefix=f"_{prefix}")
    names = dict(base)
    names.update({sym.name: f"k[{k_offset + j}]" for j, (sym, _) in enumerate(split.static)})
    names.update({sym.name: f"{prefix}{j}" for j, (sym, _) in enumerate(split.dynamic)})
    printer = ExpressionPrinter(names, target="c", fold_numbers=True, numeric_logic=True)
    bind = [f"    k[{k_offset + j}] = {printer(e)};" for j, (_, e) in enumerate(split.static)]
    body = [f"    const double {prefix}{j} = {printer(e)};" for j, (_, e) in enumerate(split.dynamic)]
    body += [f"    const double out{i} = {printer(e)};" for i, e in enumerate(split.outputs)]
    return bind, body


def model_source(model: ModelIR, atoms: Sequence[sympy.Basic] = ()) -> ModelSource:
    """The C source of ``model``'s right-hand side (and of its trigger atoms ``g = lhs - rhs``,
    ``atoms``); raises :class:`~neuroplex.errors.NotPrintableError` where an expression has no
    C form."""
    states = list(model.state_names)
    n = len(states)
    derivs = [sympy.sympify(model.derivatives[s]) for s in states]
    base: dict[str, str] = {model.time.name: "t"}
    base.update({s: f"y[{i}]" for i, s in enumerate(states)})
    base.update({s: f"p[{i}]" for i, s in enumerate(model.parameter_names)})
    bind, body = _function(model, derivs, 0, "v", base)
    rhs = [*body, *(f"    dy[{i}] = out{i};" for i in range(n))]
    try:
        entries = jacobian_entries(model, derivs)
        jbind, jbody = _function(model, [e for _, _, e in entries], len(bind), "w", base)
        jac = [f"    memset(J, 0, sizeof(double) * {n * n});", f"    memset(ft, 0, sizeof(double) * {n});", *jbody]
        jac += [f"    J[{i * n + j}] = out{m};" if j < n else f"    ft[{i}] = out{m};"
                for m, (i, j, _) in enumerate(entries)]
        has_jac = 1
    except (ValueError, NotPrintableError):  # no closed form: the integrator differences numerically
        jbind, jac, has_jac = [], [], 0
    gbind, gbody = _function(model, [sympy.sympify(g) for g in atoms], len(bind) + len(jbind), "u", base) \
        if atoms else ([], [])
    text = "\n".join([
        "#include <math.h>", "#include <stdint.h>", "#include <string.h>", PRELUDE,
        "void model_sizes(int64_t *out) {", f"    out[0] = {n};", f"    out[1] = {len(bind) + len(jbind) + len(gbind)};",
        f"    out[2] = {has_jac};", "}",
        f"int64_t model_n_atoms(void) {{ return {len(atoms)}; }}",
        "void model_bind(const double *p, double *k) {", "    (void)p; (void)k;", *bind, *jbind, *gbind, "}",
        "void model_rhs(double t, const double *y, const double *p, const double *k, double *dy) {",
        "    (void)t; (void)y; (void)p; (void)k; (void)dy;", *rhs, "}",
        "void model_jac(double t, const double *y, const double *p, const double *k, double *J, double *ft) {",
        "    (void)t; (void)y; (void)p; (void)k; (void)J; (void)ft;", *jac, "}",
        "void model_atoms(double t, const double *y, const double *p, const double *k, double *g) {",
        "    (void)t; (void)y; (void)p; (void)k; (void)g;", *gbody,
        *(f"    g[{i}] = out{i};" for i in range(len(atoms))), "}", ""])
    return ModelSource(text, len(states), len(model.parameter_names))
