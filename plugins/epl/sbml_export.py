"""An EPL energy DS back to SBML as a reaction network (the project's SBML writer), so that
tellurium / COPASI run it and :func:`~.sbml_import.from_sbml` reads it back.

Each column j of Mperp becomes a reaction with reactants r(-Mperp) + K and products r(Mperp) + K
(K = ``catalysis``) and the chemical flux of eqn:Dynamical_System as its kinetic law,
k_j exp(psi^T R_j) prod(x^R_j) - k_j exp(psi^T P_j) prod(x^P_j) with psi = 1 + a (mass action in the
node amounts: the rate constants stay visible as the paper's k and a). Nodes are species with
only substance units in one compartment ``cell`` of size 1; external nodes (free = 0) are
boundary species. Only the chemical flow has this form: a system whose other flows act (V, p,
Hamiltonian, homeostasis) raises :class:`~neuroplex.errors.ModelError`; write it with
``write_sbml(to_ir(system))`` (rate rules) instead.
"""
from __future__ import annotations

from pathlib import Path

import sympy

from neuroplex.errors import ModelError
from neuroplex.ir import ModelIR, Parameter, State
from neuroplex.sbml import write_sbml

from .system import EnergySystem

COMPARTMENT = "cell"


def _sid(name: str, taken: set[str]) -> str:
    sid = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name)
    if not sid or not (sid[0].isalpha() or sid[0] == "_"):
        sid = f"s_{sid}"
    while sid in taken:
        sid += "_"
    taken.add(sid)
    return sid


def _pure_chemical(system: EnergySystem) -> str:
    """Why ``system`` is not a pure mass-action network ('' when it is)."""
    if not system.flows.chemical:
        return "its chemical flow is off"
    if bool((system.V != 0).any()):
        return "V is not 0 (the electric potential makes the law non-mass-action)"
    if bool((system.p0 != 0).any()) and (system.flows.hamiltonian or system.flows.collision):
        return "it has momenta"
    if system.flows.hamiltonian and bool((system.v != 0).any()):
        return "its Hamiltonian flow acts (v != 0)"
    if system.flows.homeostasis and bool((system.h != 0).any()):
        return "its homeostasis flow acts (h != 0)"
    return ""


def to_reaction_ir(system: EnergySystem, *, name: str = "epl") -> ModelIR:
    """The chemical DS as a ModelIR whose SBML metadata lists species and reactions, so that
    ``neuroplex.sbml.write_sbml`` writes reactions with kinetic laws (not rate rules)."""
    if system.batch_shape:
        raise ModelError("to_reaction_ir takes one system, not a batch")
    why = _pure_chemical(system)
    if why:
        raise ModelError(f"EPL system {name!r} is not a mass-action network ({why}): export it with "
                         "write_sbml(to_ir(system)) as rate rules")
    n, e = system.n, system.e
    taken = {COMPARTMENT}
    sids = [_sid(s, taken) for s in (system.node_names or [f"n{i}" for i in range(n)])]
    X = [sympy.Symbol(s) for s in sids]
    params = [Parameter(COMPARTMENT, 1.0)]
    a = []
    for i, s in enumerate(sids):
        a.append(sympy.Symbol(_sid(f"a_{s}", taken)))
        params.append(Parameter(a[-1].name, float(system.a[i])))
    Mp, K, free = system.Mperp.tolist(), system.catalysis.tolist(), system.free.tolist()
    reactions: dict[str, dict] = {}
    laws: dict[str, sympy.Expr] = {}
    dx: list[sympy.Expr] = [sympy.Integer(0)] * n
    for j in range(e):
        if float(system.k[j]) == 0.0:
            continue  # a column with no flux
        rid = _sid(f"r{j}", taken)
        k = sympy.Symbol(_sid(f"k_{rid}", taken))
        params.append(Parameter(k.name, float(system.k[j])))
        R = [max(-Mp[i][j], 0.0) + K[i][j] for i in range(n)]
        P = [max(Mp[i][j], 0.0) + K[i][j] for i in range(n)]

        def term(side: list[float]) -> sympy.Expr:
            used = [i for i in range(n) if side[i]]
            psi = sum((_num(side[i]) * (1 + a[i]) for i in used), sympy.Integer(0))
            return k * sympy.exp(psi) * sympy.Mul(*[X[i] ** _num(side[i]) for i in used])

        laws[rid] = term(R) - term(P)
        reactions[rid] = {"reversible": True, "modifiers": [], "local_parameters": {},
                          "reactants": [[sids[i], repr(float(R[i]))] for i in range(n) if R[i]],
                          "products": [[sids[i], repr(float(P[i]))] for i in range(n) if P[i]]}
        for i in range(n):
            if Mp[i][j] and free[i]:
                dx[i] += _num(Mp[i][j]) * sympy.Symbol(rid)
    species = {sid: {"compartment": COMPARTMENT, "has_only_substance_units": True,
                     "boundary_condition": not free[i], "constant": False, "quantity": "amount",
                     "amount_state": sid, "dimensionless_compartment": False, "conversion_factor": None}
               for i, sid in enumerate(sids)}
    states = [State(sid, float(system.x0[i])) for i, sid in enumerate(sids)]
    meta = {"species": species, "compartments": [COMPARTMENT], "reactions": reactions, "species_references": [],
            "parameters": [p.name for p in params], "ids": [*sids, *reactions]}
    return ModelIR(name=name, states=states, parameters=params, derivatives=dict(zip(sids, dx)),
                   assignments=laws, metadata={"sbml": meta, "epl": {"nodes": sids}})


def _num(v: float) -> sympy.Expr:
    return sympy.Integer(int(v)) if float(v).is_integer() else sympy.Float(v)


def to_sbml(system: EnergySystem, path: str | Path | None = None, *, name: str = "epl") -> str:
    """SBML text of the chemical DS as reactions (written atomically to ``path`` when given)."""
    return write_sbml(to_reaction_ir(system, name=name), path)
