"""BioModels into the EPL energy DS through SBML (the paper's "importing BioModels via SBML").

A mass-action network maps onto the chemical flow of eqn:Dynamical_System with V = 0, p = 0:
species amounts are the nodes x, compartments the spaces, each reaction a column of Mperp
(products +, reactants -), boundary species external nodes (free = 0). With
g = dH/dx - ln x = 1 + a, the flux k (exp(dH/dx R) - exp(dH/dx P)) is
k e^{R g} prod(x^R) - k e^{P g} prod(x^P), so matching the SBML law kf prod(x^R) - kb prod(x^P)
(in amounts: compartment sizes fold into kf, kb) needs

    Mperp^T g = ln(kb / kf)   (reversible),      k = kf e^{-R g}.

That linear system is solvable exactly iff the equilibrium constants obey the Wegscheider cycle
conditions (detailed balance); otherwise the least-squares g is used, kf is kept and kb is
approximated (reported per reaction). An irreversible step (kb = 0) gets a large energy drop
-Mperp^T g = ``irreversible_drop``: its reverse flux is e^{-drop} prod(x^P)/prod(x^R) of the
forward flux (reported). Each irreversible step also consumes its own external fuel node
``fuel_<reaction>`` held at x = 1 (the paper's External System, like ATP held by homeostasis), so
the drops stay exact even around futile cycles and source/sink pairs that no potential of the
species alone could order. Laws that are not mass action (Michaelis-Menten, Hill, any rational
or non-polynomial law, modifiers in the law), rate rules, events, assignment rules that
vary in time, and varying compartments raise :class:`EPLImportError` naming the element.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sympy
import torch

from neuroplex.errors import ModelError

from .system import EnergySystem, Flows

IRREVERSIBLE_DROP = 30.0


class EPLImportError(ModelError):
    """An SBML model (or one of its reactions) the EPL energy DS cannot express; the message
    names the element and its law."""


@dataclass
class ImportReport:
    """What :func:`from_sbml` did: per reaction its law, kf, kb, and the approximation made."""

    model: str
    source: str
    reactions: list[dict[str, Any]] = field(default_factory=list)
    wegscheider_residual: float = 0.0
    consistent: bool = True
    species: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    to_sbml_value: dict[str, float] = field(default_factory=dict)  # divide an amount by this

    @property
    def approximations(self) -> list[dict[str, Any]]:
        return [r for r in self.reactions if r["approximation"]]

    def text(self) -> str:
        lines = [f"model {self.model} ({self.source}): {len(self.species)} nodes "
                 f"({len(self.external)} external), {len(self.reactions)} reactions",
                 f"thermodynamic consistency (detailed balance / Wegscheider): "
                 f"{'yes' if self.consistent else 'NO'} (max |Mperp^T g - ln(kb/kf)| over reversible "
                 f"reactions {self.wegscheider_residual:.3g})"]
        for r in self.reactions:
            lines.append(f"  {r['id']}: {r['equation']}  kf={r['kf']:.4g} kb={r['kb']:.4g}"
                         + (f"  APPROX: {r['approximation']}" if r["approximation"] else ""))
        return "\n".join(lines)


def _law(expr: sympy.Expr, species: set[sympy.Symbol]) -> str:
    """A short name for a kinetic law that is not mass action."""
    num, den = sympy.fraction(sympy.together(expr))
    if den.free_symbols & species:
        pw = [p for p in den.atoms(sympy.Pow) if p.base.free_symbols & species and p.exp != 1]
        return "Hill-type (rational, with powers)" if pw else "Michaelis-Menten-type (rational)"
    if any(f.free_symbols & species for f in expr.atoms(sympy.Function)):
        return "non-polynomial (function of a species)"
    if any(p.base.free_symbols & species and not (p.exp.is_Integer and p.exp > 0) for p in expr.atoms(sympy.Pow)):
        return "power law with non-integer exponent"
    return "not of the form kf prod(reactants) - kb prod(products)"


def _read(source: Any) -> Any:
    from neuroplex.sbml import SBMLModel, read_sbml

    if isinstance(source, SBMLModel):
        return source
    return read_sbml(source)


def from_sbml(source: str | Path | Any, *, irreversible_drop: float = IRREVERSIBLE_DROP,
              strict: bool = False) -> tuple[EnergySystem, ImportReport]:
    """The energy DS of a mass-action SBML model (a path or a ``neuroplex.sbml.SBMLModel``)
    and the import report. ``strict=True`` also refuses thermodynamically inconsistent or
    irreversible networks instead of approximating them."""
    model = _read(source)
    sb = model.sbml
    where = f"{model.metadata.get('source', model.name)}"
    if sb["rate_rules"]:
        raise EPLImportError(f"{where}: rate rules for {', '.join(sb['rate_rules'])} (law: rate rule) have no EPL flow")
    if model.events:
        raise EPLImportError(f"{where}: events ({', '.join(e.name for e in model.events)}) have no EPL flow")
    if not sb["reactions"]:
        raise EPLImportError(f"{where}: no reactions to map onto chemical flows")
    dyn = model.compile()
    pvals = dyn.default_params()
    y0 = dyn.initial_state(pvals).reshape(-1)
    subs = {sympy.Symbol(nm): float(v) for nm, v in zip(model.parameter_names, pvals.tolist())}
    states = {nm: sympy.Symbol(nm) for nm in model.state_names}
    # assignments (species concentrations, assignment rules) expanded; any that vary in time
    # other than through species amounts cannot be expressed
    assigned: dict[sympy.Symbol, Any] = {}
    for nm, expr in model.assignments.items():
        if nm in sb["reactions"]:
            continue
        e = expr.xreplace(assigned).xreplace(subs)
        if model.time in e.free_symbols:
            raise EPLImportError(f"{where}: assignment rule {nm!r} depends on time (law: {expr})")
        assigned[sympy.Symbol(nm)] = e
    for sid, sp in sb["species"].items():
        if sp["compartment"] in model.state_names:
            raise EPLImportError(f"{where}: compartment {sp['compartment']!r} of species {sid!r} varies in time")
    # nodes: species with amount states
    nodes: list[str] = []
    node_state: list[str] = []
    to_value: dict[str, float] = {}
    external: list[str] = []
    for sid, sp in sb["species"].items():
        amt = sp["amount_state"]
        if amt is None or amt not in states:
            continue  # constant species: a number folded into the rate constants
        nodes.append(sid)
        node_state.append(amt)
        size = 1.0
        if sp["quantity"] == "concentration" and not sp["dimensionless_compartment"]:
            size = float(sympy.Symbol(sp["compartment"]).xreplace(subs))
        to_value[sid] = size
        if sp["boundary_condition"] or sp["constant"] or model.derivatives.get(amt, 0) == 0:
            external.append(sid)
    syms = [states[s] for s in node_state]
    index = {s: i for i, s in enumerate(node_state)}
    n, rids = len(nodes), list(sb["reactions"])
    Mperp = torch.zeros(n, len(rids), dtype=torch.float64)
    kf = torch.zeros(len(rids), dtype=torch.float64)
    kb = torch.zeros(len(rids), dtype=torch.float64)
    report = ImportReport(model=model.name, source=where, species=nodes, external=external, to_sbml_value=to_value)
    for j, rid in enumerate(rids):
        meta = sb["reactions"][rid]
        law = model.assignments[rid]
        rate = sympy.expand(law.xreplace(assigned).xreplace(subs))
        R = [0] * n
        P = [0] * n
        for key, side in (("reactants", R), ("products", P)):
            for sid, st in meta[key]:
                try:
                    stoich = float(sympy.sympify(st).xreplace(subs))
                except (TypeError, ValueError):
                    raise EPLImportError(f"{where}: reaction {rid!r}: stoichiometry of {sid!r} is not a number") from None
                amt = sb["species"][sid]["amount_state"]
                if amt in index:
                    side[index[amt]] += stoich
        for i in range(n):
            Mperp[i, j] = P[i] - R[i]
        equation = " + ".join(f"{_st(R[i])}{nodes[i]}" for i in range(n) if R[i]) or "0"
        equation += (" <-> " if meta["reversible"] else " -> ")
        equation += " + ".join(f"{_st(P[i])}{nodes[i]}" for i in range(n) if P[i]) or "0"
        bad_syms = rate.free_symbols - set(syms)
        if bad_syms:
            raise EPLImportError(f"{where}: reaction {rid!r} (law: {law}): the rate depends on "
                                 f"{', '.join(sorted(map(str, bad_syms)))}, which the DS cannot express")
        if rate == 0:  # a law that is 0 with these parameter values: a column with k = 0
            report.reactions.append({"id": rid, "equation": equation, "law": str(law), "kf": 0.0, "kb": 0.0,
                                     "approximation": ""})
            continue
        try:
            poly = sympy.Poly(rate, *syms) if syms else None
        except sympy.PolynomialError:
            poly = None
        if poly is None:
            raise EPLImportError(f"{where}: reaction {rid!r} has a {_law(rate, set(syms))} kinetic law ({law}): "
                                 "not mass action")
        terms = poly.terms()
        fwd = tuple(int(round(r)) for r in R)
        bwd = tuple(int(round(p)) for p in P)
        got: dict[tuple[int, ...], float] = {tuple(mon): float(coef) for mon, coef in terms}
        if any(abs(r - round(r)) > 1e-12 for r in R + P) or set(got) - {fwd, bwd} or \
                got.get(fwd, 0.0) < 0 or got.get(bwd, 0.0) > 0 or (fwd == bwd):
            modifiers = [m for m in meta["modifiers"] if m in law.free_symbols or sympy.Symbol(m) in law.free_symbols]
            why = f"modifier(s) {', '.join(modifiers)} in the law" if modifiers else _law(rate, set(syms))
            raise EPLImportError(f"{where}: reaction {rid!r} ({equation}) has a kinetic law ({law}) that is not "
                                 f"mass action in its reactants and products: {why}")
        kf[j], kb[j] = got.get(fwd, 0.0), -got.get(bwd, 0.0)
        report.reactions.append({"id": rid, "equation": equation, "law": str(law), "kf": float(kf[j]),
                                 "kb": float(kb[j]), "approximation": ""})
    zero = (kf == 0) & (kb == 0)
    if bool(((kf <= 0) & ~zero).any()):
        j = int(torch.nonzero((kf <= 0) & ~zero)[0])
        raise EPLImportError(f"{where}: reaction {rids[j]!r} has no forward rate (kf = 0): reverse it in the file")
    # every irreversible step burns its own external fuel node (clamped at x = 1, the paper's
    # External System, like ATP held by homeostasis): its potential absorbs the energy drop
    irr = [j for j in range(len(rids)) if float(kb[j]) == 0.0 and not bool(zero[j])]
    if irr:
        fuel = torch.zeros(len(irr), len(rids), dtype=torch.float64)
        for r_, j in enumerate(irr):
            fuel[r_, j] = -1.0
        Mperp = torch.cat([Mperp, fuel], 0)
        for j in irr:
            nodes.append(f"fuel_{rids[j]}")
            external.append(nodes[-1])
            to_value[nodes[-1]] = 1.0
            report.reactions[j]["equation"] = f"fuel_{rids[j]} + " + report.reactions[j]["equation"]
    g = _potentials(Mperp, kf, kb, irreversible_drop, report, strict, where)
    Rm = (-Mperp).clamp(min=0)
    k = kf * torch.exp(-(g.unsqueeze(-1) * Rm).sum(0))
    x0 = torch.tensor([float(y0[model.state_names.index(s)]) for s in node_state] + [1.0] * len(irr),
                      dtype=torch.float64)
    free = torch.tensor([0.0 if s in external else 1.0 for s in nodes], dtype=torch.float64)
    system = EnergySystem(Mperp=Mperp, a=g - 1.0, k=k, x0=x0, free=free, flows=Flows.only("chemical"),
                          node_names=list(nodes))
    return system, report


def _st(v: float) -> str:
    return "" if v == 1 else f"{v:g} "


def _potentials(Mperp: torch.Tensor, kf: torch.Tensor, kb: torch.Tensor, drop: float, report: ImportReport,
                strict: bool, where: str) -> torch.Tensor:
    """g = 1 + a solving Mperp^T g = ln(kb/kf) (reversible, weighted 1e3) and = -drop (irreversible)."""
    rev = kb > 0
    target = torch.where(rev, torch.log(kb.clamp_min(1e-300) / kf.clamp_min(1e-300)), torch.full_like(kf, -drop))
    w = torch.where(rev, 1e3, 1.0).to(kf.dtype) * (kf > 0)  # zero-rate reactions constrain nothing
    A = Mperp.T * w[:, None]
    g = torch.linalg.lstsq(A, (target * w)[:, None], driver="gelsd").solution[:, 0] if Mperp.numel() else \
        torch.zeros(Mperp.shape[0], dtype=kf.dtype)
    achieved = Mperp.T @ g
    resid = (achieved - target).abs()
    report.wegscheider_residual = float(resid[rev].max()) if bool(rev.any()) else 0.0
    report.consistent = report.wegscheider_residual < 1e-9
    for j, r in enumerate(report.reactions):
        r["energy_drop"] = -float(achieved[j])
        if bool(rev[j]) and float(resid[j]) >= 1e-9:
            r["approximation"] = (f"Wegscheider cycle condition violated: kb becomes {math.exp(float(achieved[j])) * r['kf']:.4g} "
                                  f"(x{math.exp(float(achieved[j] - target[j])):.4g})")
        elif r["kf"] == 0.0:
            r["approximation"] = ""
        elif not bool(rev[j]):
            d = -float(achieved[j])
            r["approximation"] = (f"irreversible: energy drop {d:.3g} (reverse flux e^-{d:.3g} = {math.exp(-d):.2g} "
                                  "x prod(products)/prod(reactants) of the forward flux)")
    if strict and report.approximations:
        first = report.approximations[0]
        raise EPLImportError(f"{where}: reaction {first['id']!r} ({first['law']}) needs an approximation: "
                             f"{first['approximation']}")
    return g
