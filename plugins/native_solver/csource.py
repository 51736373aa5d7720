"""The C source of an SBML model's right-hand side, for the native integrator (``integrator.c``).

:func:`model_source` prints ``model_bind(p, k)`` (what only the parameters decide, once per
run: :func:`neuroplex.codegen.split_static`, common sub-expressions once) and
``model_rhs(t, y, p, k, dy)`` (the rest, every call) with :class:`.cprinter.CPrinter`, from
the model's ``derivatives`` and the assignment rules they use, and ``model_sizes`` (states,
bound values). The integrator is its own library (built once per machine) that calls these
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

import sympy

from neuroplex.codegen import split_static
from neuroplex.ir import ModelIR

from .cprinter import PRELUDE, CPrinter

#: bump when the generated code's layout changes (part of the cache key)
FORMAT = "neuroplex-native-1"


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
    """The generator's own code (this module and the printer): a change to either gives new
    library names, so no library printed by an older generator is reused."""
    here = Path(__file__).parent
    return b"".join((here / name).read_bytes() for name in ("csource.py", "cprinter.py"))


def model_key(model: ModelIR) -> str:
    """A hash of what the generated code depends on (the generator's code, states, parameters,
    time, derivatives, assignment rules): two models with equal keys get the same library, so a
    warm cache skips generating the source."""
    h = hashlib.sha256(FORMAT.encode())
    h.update(_generator_version())
    for part in (model.time.name, *model.state_names, "|", *model.parameter_names, "|"):
        h.update(part.encode() + b"\0")
    for s in model.state_names:
        h.update(sympy.srepr(model.derivatives[s]).encode() + b"\0")
    for a, e in model.assignments.items():
        h.update(a.encode() + b"=" + sympy.srepr(e).encode() + b"\0")
    return h.hexdigest()[:32]


def model_source(model: ModelIR) -> ModelSource:
    """The C source of ``model``'s right-hand side; raises
    :class:`.cprinter.NotCompilable` where an expression has no C form."""
    states = list(model.state_names)
    derivs = [sympy.sympify(model.derivatives[s]) for s in states]
    needed = _needed(model, derivs)
    split = split_static(derivs, {a: model.assignments[a] for a in needed}, {model.time.name, *states})
    names: dict[str, str] = {model.time.name: "t"}
    names.update({s: f"y[{i}]" for i, s in enumerate(states)})
    names.update({s: f"p[{i}]" for i, s in enumerate(model.parameter_names)})
    names.update({sym.name: f"k[{j}]" for j, (sym, _) in enumerate(split.static)})
    names.update({sym.name: f"v{j}" for j, (sym, _) in enumerate(split.dynamic)})
    printer = CPrinter(names)
    bind = [f"    k[{j}] = {printer(e)};" for j, (_, e) in enumerate(split.static)]
    body = [f"    const double v{j} = {printer(e)};" for j, (_, e) in enumerate(split.dynamic)]
    body += [f"    dy[{i}] = {printer(e)};" for i, e in enumerate(split.outputs)]
    text = "\n".join([
        "#include <math.h>", "#include <stdint.h>", PRELUDE,
        "void model_sizes(int64_t *out) {", f"    out[0] = {len(states)};", f"    out[1] = {len(split.static)};", "}",
        "void model_bind(const double *p, double *k) {", "    (void)p; (void)k;", *bind, "}",
        "void model_rhs(double t, const double *y, const double *p, const double *k, double *dy) {",
        "    (void)t; (void)y; (void)p; (void)k; (void)dy;", *body, "}", ""])
    return ModelSource(text, len(states), len(model.parameter_names))
