"""Values of an SBML model by SBML id: parameters and initial values as the file declares them.

* :func:`record_declared` keeps, at read time, the parameter values and initial-value
  expressions the file gives (``metadata["sbml"]["declared"]``), so a solver that runs the
  file itself (roadrunner) can tell what the user changed afterwards (:func:`changes`).
* :func:`parameter_name` / :func:`initial_target` resolve an id a user typed: a global
  parameter, compartment or stoichiometry id, a local parameter by ``reaction.id`` or by
  its own id where that is unambiguous, a species (in the quantity the file declares: a
  concentration or an amount). An id an assignment rule defines is an error naming the
  rule; an unknown id gets "did you mean" suggestions.
* :func:`with_initial`, :func:`parameter_values`, :func:`initial_values` are the
  :class:`~neuroplex.sbml.reader.SBMLModel` methods of the same names.
"""
from __future__ import annotations

import copy
import difflib
import math
from typing import Any, Mapping

import sympy
import torch

from neuroplex.ir import Parameter

from .runner import compiled
from .errors import SBMLImportError


class UnknownIdError(SBMLImportError, KeyError):
    """An SBML id the model does not have, or cannot set (with the reason)."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


def record_declared(model: Any) -> None:
    """Store the file's parameter values and initial-value expressions in the metadata."""
    model.metadata["sbml"]["declared"] = {
        "parameters": {p.name: float(p.value) for p in model.parameters},
        "initial": {s.name: str(s.initial) for s in model.states},
    }


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def changes(model: Any) -> tuple[dict[str, float], list[str]]:
    """What differs from the file: ``({parameter: file value}, [states whose initial value
    expression changed])``; both empty for a model not read from SBML."""
    declared = ((model.metadata.get("sbml") or {}).get("declared")) or {}
    pars = declared.get("parameters") or {}
    inits = declared.get("initial") or {}
    changed_p = {p.name: pars[p.name] for p in model.parameters
                 if p.name in pars and not _same(float(p.value), float(pars[p.name]))}
    changed_s = [s.name for s in model.states if s.name in inits and str(s.initial) != inits[s.name]]
    if declared and (set(pars) != set(model.parameter_names) or set(inits) != set(model.state_names)):
        changed_s = changed_s or [s for s in model.state_names if s not in inits] or ["<structure>"]
    return changed_p, changed_s


# ------------------------------------------------------------------- resolving
def _sbml(model: Any) -> dict[str, Any]:
    return model.metadata.get("sbml") or {}


def known_ids(model: Any) -> list[str]:
    """Every id a user may name: SBML ids, IR parameters and states, local parameters."""
    info = _sbml(model)
    local = {f"{r}.{lid}" for r, lid in (info.get("local_parameters") or {}).values()}
    return sorted({*info.get("ids", []), *model.parameter_names, *model.state_names, *local})


def _unknown(model: Any, name: str, what: str) -> UnknownIdError:
    close = difflib.get_close_matches(name, known_ids(model), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return UnknownIdError(f"model {model.name!r} has no {what} {name!r}{hint}")


def _rule_error(model: Any, name: str) -> UnknownIdError | None:
    info = _sbml(model)
    if name in (info.get("assignment_rules") or []):
        return UnknownIdError(f"model {model.name!r}: {name!r} is defined by an assignment rule "
                              f"(rule for {name!r}); set the values that rule uses instead")
    if name in (info.get("reactions") or {}):
        return UnknownIdError(f"model {model.name!r}: {name!r} is a reaction (its rate is computed), not a value")
    return None


def parameter_name(model: Any, name: str) -> str:
    """The IR parameter behind SBML id ``name`` (``reaction.local`` or a unique local id too)."""
    if name in model.parameter_names:
        return name
    # (reaction, id) -> IR name; the last one wins, as in the reader (an L3 kinetic law lists
    # its local parameters twice, and the later entry is the one its rate uses)
    by_key = {(r, lo): ir_name for ir_name, (r, lo) in (_sbml(model).get("local_parameters") or {}).items()}
    if "." in name and tuple(name.split(".", 1)) in by_key:
        return by_key[tuple(name.split(".", 1))]
    hits = sorted(key for key in by_key if key[1] == name)
    if len(hits) == 1:
        return by_key[hits[0]]
    if len(hits) > 1:
        options = ", ".join(f"{r}.{lo}" for r, lo in hits)
        raise UnknownIdError(f"model {model.name!r}: {name!r} is a local parameter of several reactions; "
                             f"name one of {options}")
    err = _rule_error(model, name)
    if err is not None:
        raise err
    if name in model.state_names:
        raise UnknownIdError(f"model {model.name!r}: {name!r} changes during a run (a rate rule, an event or an "
                             f"initial assignment sets it); set its initial value with initial={{{name!r}: ...}}")
    raise _unknown(model, name, "parameter")


def initial_target(model: Any, name: str) -> tuple[str, sympy.Expr]:
    """``(state, factor)``: setting the initial value of id ``name`` to ``v`` (in the
    quantity the file declares) sets ``state``'s initial value to ``v * factor``."""
    sp = (_sbml(model).get("species") or {}).get(name)
    if sp is not None and sp.get("amount_state") and sp["amount_state"] != name:
        if sp["quantity"] == "concentration" and not sp.get("dimensionless_compartment"):
            return sp["amount_state"], sympy.Symbol(sp["compartment"])
        return sp["amount_state"], sympy.Integer(1)
    if name in model.state_names:
        return name, sympy.Integer(1)
    err = _rule_error(model, name)
    if err is not None:
        raise err
    if name in model.parameter_names:
        raise UnknownIdError(f"model {model.name!r}: {name!r} is a constant; set it with params={{{name!r}: ...}}")
    raise _unknown(model, name, "species or variable")


# --------------------------------------------------------------------- changing
def _copy(model: Any) -> Any:
    """A deep copy without the compiled program cached on ``model`` (it is rebuilt on use)."""
    prog = model.__dict__.get("_sbml_program")
    out = copy.deepcopy(model, {id(prog): None} if prog is not None else None)
    out.__dict__.pop("_sbml_program", None)
    return out


def with_initial(model: Any, values: Mapping[str, Any]) -> Any:
    """A copy whose initial values of the named ids are the given numbers (or expressions),
    in the quantity the file declares (a concentration species: concentration)."""
    out = _copy(model)
    for name, value in values.items():
        state, factor = initial_target(out, name)
        val = value if isinstance(value, sympy.Basic) else sympy.Float(float(value))
        out.state(state).initial = val * factor if factor != 1 else val
    return out


def with_parameters(model: Any, values: Mapping[str, Any]) -> Any:
    """A copy with new parameter values, by SBML id (local parameters too)."""
    out = _copy(model)
    for name, value in values.items():
        out.parameter(parameter_name(out, name)).value = float(value)
    return out


# ---------------------------------------------------------------------- reading
def parameter_values(model: Any) -> dict[str, float]:
    """``{id: value}`` of every constant, by SBML id (local parameters as ``reaction.id``)."""
    locals_ = _sbml(model).get("local_parameters") or {}
    used = {(r, lo): ir_name for ir_name, (r, lo) in locals_.items()}
    out: dict[str, float] = {}
    for p in model.parameters:
        if p.name not in locals_:
            out[p.name] = float(p.value)
        elif used[tuple(locals_[p.name])] == p.name:
            rid, lid = locals_[p.name]
            out[f"{rid}.{lid}"] = float(p.value)
    return out


def initial_values(model: Any) -> dict[str, float]:
    """``{id: value}`` at the start: species in the quantity the file declares, then the
    compartments, parameters and stoichiometries that change during a run (initial
    assignments and assignment rules evaluated)."""
    prog = compiled(model)
    p = prog.default_params()[None]
    y = prog.initial_state(0.0, p)
    values = prog.observe(torch.zeros(1, 1, dtype=torch.float64), y[:, None, :], p[:, None, :])
    return {name: float(values[0, 0, i]) for i, name in enumerate(prog.output_names)}


# ----------------------------------------------------------------- batches by name
def _column(value: Any, name: str) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float64)
    if t.dim() > 1:
        raise UnknownIdError(f"{name!r}: give one number or a 1-D array of values, not shape {tuple(t.shape)}")
    return t.reshape(-1)


def _batch(columns: dict[str, torch.Tensor]) -> int:
    sizes = {n: int(c.numel()) for n, c in columns.items() if c.numel() != 1}
    if len(set(sizes.values())) > 1:
        raise UnknownIdError(f"value arrays of different lengths: {', '.join(f'{n}: {s}' for n, s in sizes.items())} "
                             f"(one length for all, single numbers broadcast)")
    if any(c.numel() == 0 for c in columns.values()):
        empty = [n for n, c in columns.items() if c.numel() == 0]
        raise UnknownIdError(f"empty value array for {', '.join(map(repr, empty))}")
    return next(iter(sizes.values()), 1)


def resolve_values(model: Any, params: Any = None, initial: Mapping[str, Any] | None = None
                   ) -> tuple[Any, torch.Tensor | None]:
    """``(model, params tensor)`` for values given by SBML id: ``params`` a dict (or the
    ``(P,)``/``(B, P)`` tensor form), ``initial`` a dict of initial values in the quantity the
    file declares. Single numbers and equal-length arrays broadcast to one batch. Scalar
    initial values make a copy (:func:`with_initial`); an array of initial values becomes a
    parameter ``init_<id>`` of the copy that the state's initial value reads, so initial
    assignments that use it follow it sample by sample."""
    init_cols = {name: _column(v, name) for name, v in (initial or {}).items()}
    scalars = {n: float(c[0]) for n, c in init_cols.items() if c.numel() == 1}
    arrays = {n: c for n, c in init_cols.items() if c.numel() != 1}
    if scalars:
        model = with_initial(model, scalars)
    added: dict[str, torch.Tensor] = {}
    if arrays:
        model = _copy(model)
        taken = set(known_ids(model))
        for name, col in arrays.items():
            state, factor = initial_target(model, name)
            pname = f"init_{name}"
            while pname in taken:
                pname = "_" + pname
            taken.add(pname)
            model.parameters.append(Parameter(pname, float(col[0])))
            added[pname] = col
            model.state(state).initial = sympy.Symbol(pname) * factor if factor != 1 else sympy.Symbol(pname)
    columns: dict[str, torch.Tensor] = {}
    base: torch.Tensor | None = None
    if isinstance(params, Mapping):
        columns = {parameter_name(model, n): _column(v, n) for n, v in params.items()}
    elif params is not None:
        base = torch.as_tensor(params, dtype=torch.float64)
        if arrays:  # the tensor form lists the file's parameters: append the new columns
            base = torch.cat([base, torch.zeros(*base.shape[:-1], len(arrays), dtype=torch.float64)], -1)
    columns.update(added)
    if not columns:
        return model, base
    b = _batch(columns)
    if base is not None and base.dim() == 2 and base.shape[0] not in (1, b) and b != 1:
        raise UnknownIdError(f"params has {base.shape[0]} rows and the named arrays {b} values")
    if base is None:
        base = torch.tensor([p.value for p in model.parameters], dtype=torch.float64)
    rows = max(b, base.shape[0] if base.dim() == 2 else 1)
    out = (base if base.dim() == 2 else base[None]).expand(rows, -1).clone()
    names = model.parameter_names
    for name, col in columns.items():
        out[:, names.index(name)] = col.expand(rows) if col.numel() == 1 else col
    return model, out

