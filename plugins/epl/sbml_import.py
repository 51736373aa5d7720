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
-Mperp^T g = ``irreversible_drop`` + ln(prod(s^P)/prod(s^R)) where positive, s the typical amounts
(:func:`_drops`): its reverse flux is e^{-drop} prod(x^P)/prod(x^R) of the forward flux, so
e^-irreversible_drop of it at those amounts (reported, and checked against the rates). Each irreversible step also consumes its own external fuel node
``fuel_<reaction>`` held at x = 1 (the paper's External System, like ATP held by homeostasis), so
the drops stay exact even around futile cycles and source/sink pairs that no potential of the
species alone could order. Laws that are not mass action (Michaelis-Menten, Hill, any rational
or non-polynomial law), negative or varying stoichiometries, conversion factors other than 1,
rate rules, events, assignment rules that vary in time, varying compartments and what the SBML
reader refuses raise :class:`EPLImportError` naming the element. Real stoichiometries are kept.
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
    compartment_size: dict[str, float] = field(default_factory=dict)  # of each node's compartment
    fuel: list[str] = field(default_factory=list)  # external fuel nodes added for irreversible steps

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
    from neuroplex.sbml import SBMLImportError, SBMLModel, read_sbml

    if isinstance(source, SBMLModel):
        return source
    try:
        return read_sbml(source)
    except SBMLImportError as exc:  # what no solver runs (algebraic rules, delays, fast reactions...)
        raise EPLImportError(f"{source}: the SBML reader refuses the model: {exc}") from exc


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
    subs = {sympy.Symbol(nm): sympy.Float(float(v)) for nm, v in zip(model.parameter_names, pvals.tolist())}
    # states that never change and are no species (a parameter set by an initial assignment): constants
    species_states = {sp["amount_state"] for sp in sb["species"].values()}
    subs.update({sympy.Symbol(nm): sympy.Float(float(y0[i])) for i, nm in enumerate(model.state_names)
                 if nm not in species_states and model.derivatives.get(nm, 0) == 0})
    states = {nm: sympy.Symbol(nm) for nm in model.state_names}
    # assignments (species concentrations, assignment rules) expanded; any that vary in time
    # other than through species amounts cannot be expressed
    assigned: dict[sympy.Symbol, Any] = {}
    for nm, expr in model.assignments.items():
        if nm in sb["reactions"]:
            continue
        e = sympy.sympify(expr).xreplace(assigned).xreplace(subs)
        if model.time in e.free_symbols:
            raise EPLImportError(f"{where}: assignment rule {nm!r} depends on time (law: {expr})")
        assigned[sympy.Symbol(nm)] = e
    for sid, sp in sb["species"].items():
        if sp["compartment"] in model.state_names:
            raise EPLImportError(f"{where}: compartment {sp['compartment']!r} of species {sid!r} varies in time")
        cf = sp.get("conversion_factor")
        if cf and sp["amount_state"] in model.state_names and not sp["boundary_condition"] and not sp["constant"]:
            value = _number(sympy.Symbol(cf).xreplace(assigned).xreplace(subs), f"conversion factor {cf!r}", where)
            if value != 1.0:
                raise EPLImportError(f"{where}: species {sid!r} has conversion factor {cf!r} = {value:g}: the DS "
                                     "ties a reaction's effect on a species to its order in the law (mass action)")
    # nodes: species with amount states
    nodes: list[str] = []
    node_state: list[str] = []
    to_value: dict[str, float] = {}
    report_sizes: dict[str, float] = {}
    external: list[str] = []
    for sid, sp in sb["species"].items():
        amt = sp["amount_state"]
        if amt is None or amt not in states:
            continue  # constant species: a number folded into the rate constants
        nodes.append(sid)
        node_state.append(amt)
        csize = 1.0 if sp["dimensionless_compartment"] else _number(
            sympy.Symbol(sp["compartment"]).xreplace(assigned).xreplace(subs), f"size of compartment {sp['compartment']!r}", where)
        report_sizes[sid] = csize
        to_value[sid] = csize if sp["quantity"] == "concentration" else 1.0
        if sp["boundary_condition"] or sp["constant"] or model.derivatives.get(amt, 0) == 0:
            external.append(sid)
    if not nodes:
        raise EPLImportError(f"{where}: no species that vary (the reactions {', '.join(sb['reactions'])} move no "
                             "species): nothing to map onto nodes")
    syms = [states[s] for s in node_state]
    index = {s: i for i, s in enumerate(node_state)}
    # external nodes are constant: where the law's order in one differs from its stoichiometry
    # (e.g. a placeholder "EmptySet" source) its amount folds into the rate constant instead
    ext_value = {index_i: float(y0[model.state_names.index(s)]) for index_i, (s, sid) in
                 enumerate(zip(node_state, nodes)) if sid in external}
    n, rids = len(nodes), list(sb["reactions"])
    Mperp = torch.zeros(n, len(rids), dtype=torch.float64)
    K = torch.zeros(n, len(rids), dtype=torch.float64)
    kf = torch.zeros(len(rids), dtype=torch.float64)
    kb = torch.zeros(len(rids), dtype=torch.float64)
    report = ImportReport(model=model.name, source=where, species=nodes, external=external, to_sbml_value=to_value,
                          compartment_size=report_sizes)
    for j, rid in enumerate(rids):
        meta = sb["reactions"][rid]
        law = sympy.sympify(model.assignments[rid])
        rate = sympy.expand(law.xreplace(assigned).xreplace(subs))
        R = [0.0] * n
        P = [0.0] * n
        for key, side in (("reactants", R), ("products", P)):
            for sid, st in meta[key]:
                try:
                    stoich = float(sympy.sympify(st).xreplace(subs))
                except (TypeError, ValueError):
                    raise EPLImportError(f"{where}: reaction {rid!r}: stoichiometry of {sid!r} is not a constant "
                                         f"number ({st}: set by a rule or stoichiometryMath that varies)") from None
                amt = sb["species"][sid]["amount_state"]
                if amt in index:
                    side[index[amt]] += stoich
        bad_syms = rate.free_symbols - set(syms)
        if bad_syms:
            raise EPLImportError(f"{where}: reaction {rid!r} (law: {law}): the rate depends on "
                                 f"{', '.join(sorted(map(str, bad_syms)))}, which the DS cannot express")
        neg = [f"{nodes[i % n]}: {v:g}" for i, v in enumerate(R + P) if v < 0]
        if neg:
            raise EPLImportError(f"{where}: reaction {rid!r} has a negative stoichiometry ({', '.join(neg)}), "
                                 "which mass action in the DS cannot express")
        terms = _mass_action_terms(rate, syms, law, rid, where)
        terms = _fold_external(terms, R, P, ext_value)
        if terms and terms[0][1] <= 0:  # only a backward term: the reaction runs the other way
            R, P = P, R
            terms = [(mon, -c) for mon, c in terms]
        cat = [0.0] * n
        for t_, (mon, coef) in enumerate(terms):
            side, name = (R, "reactants") if coef > 0 else (P, "products")
            order = [float(e_) for e_ in mon]
            extra = [order[i] - side[i] for i in range(n)]
            low = [i for i in range(n) if extra[i] < 0]
            if low:
                i = low[0]
                raise EPLImportError(
                    f"{where}: reaction {rid!r} has a kinetic law ({law}) that is not mass action: its "
                    f"{'forward' if coef > 0 else 'backward'} term has order {order[i]:g} in {nodes[i]!r} where "
                    f"the {name} have stoichiometry {side[i]:g}")
            if t_ == 0:
                cat = extra
            elif extra != cat:
                diff = [nodes[i] for i in range(n) if extra[i] != cat[i]]
                raise EPLImportError(
                    f"{where}: reaction {rid!r} has a kinetic law ({law}) that is not mass action: the forward and "
                    f"backward terms have different extra factors (catalysts) in {', '.join(diff)}")
        for i in range(n):
            Mperp[i, j] = P[i] - R[i]
            K[i, j] = min(R[i], P[i]) + cat[i]
        equation = " + ".join(f"{_st(R[i] + cat[i])}{nodes[i]}" for i in range(n) if R[i] + cat[i]) or "0"
        equation += (" <-> " if meta["reversible"] else " -> ")
        equation += " + ".join(f"{_st(P[i] + cat[i])}{nodes[i]}" for i in range(n) if P[i] + cat[i]) or "0"
        kf[j] = terms[0][1] if terms else 0.0
        kb[j] = -terms[1][1] if len(terms) > 1 else 0.0
        report.reactions.append({"id": rid, "equation": equation, "law": str(law), "kf": float(kf[j]),
                                 "kb": float(kb[j]), "approximation": ""})
    zero = (kf == 0) & (kb == 0)
    # every irreversible step burns its own external fuel node (clamped at x = 1, the paper's
    # External System, like ATP held by homeostasis): its potential absorbs the energy drop
    irr = [j for j in range(len(rids)) if float(kb[j]) == 0.0 and not bool(zero[j])]
    if irr:
        fuel = torch.zeros(len(irr), len(rids), dtype=torch.float64)
        for r_, j in enumerate(irr):
            fuel[r_, j] = -1.0
        Mperp = torch.cat([Mperp, fuel], 0)
        K = torch.cat([K, torch.zeros_like(fuel)], 0)
        for j in irr:
            name = f"fuel_{rids[j]}"
            while name in nodes or name in sb["species"]:
                name += "_"
            nodes.append(name)
            external.append(name)
            report.fuel.append(name)
            to_value[name] = report_sizes[name] = 1.0
            report.reactions[j]["equation"] = f"{name} + " + report.reactions[j]["equation"]
    x0 = torch.tensor([float(y0[model.state_names.index(s)]) for s in node_state] + [1.0] * len(irr),
                      dtype=torch.float64)
    drops = _drops(Mperp, K, x0, len(node_state), irreversible_drop)
    g = _potentials(Mperp, kf, kb, drops, report, strict, where, irreversible_drop)
    Rm = (-Mperp).clamp(min=0) + K
    k = kf * torch.exp(-(g.unsqueeze(-1) * Rm).sum(0))
    free = torch.tensor([0.0 if s in external else 1.0 for s in nodes], dtype=torch.float64)
    system = EnergySystem(Mperp=Mperp, a=g - 1.0, k=k, x0=x0, free=free, flows=Flows.only("chemical"),
                          node_names=list(nodes), catalysis=K)
    _check_rates(model, dyn, pvals, y0, system, node_state, report, where)
    return system, report


def _fold_external(terms: list[tuple[tuple[int, ...], float]], R: list[float], P: list[float],
                   ext_value: dict[int, float]) -> list[tuple[tuple[int, ...], float]]:
    """External (constant) node i whose order in the law is not its stoichiometry on the term's
    side: drop it from the reaction (R_i = P_i = 0) and fold x_i^order into the coefficients."""
    out = [[list(mon), coef] for mon, coef in terms]
    for i, value in ext_value.items():
        if all(mon[i] == (R[i] if coef > 0 else P[i]) for mon, coef in out):
            continue
        R[i] = P[i] = 0.0
        for t in out:
            t[1] *= value ** t[0][i]
            t[0][i] = 0
    return [(tuple(mon), coef) for mon, coef in out if coef != 0]


def _mass_action_terms(rate: sympy.Expr, syms: list[sympy.Symbol], law: sympy.Expr, rid: str,
                       where: str) -> list[tuple[tuple[int, ...], float]]:
    """The law as at most one positive (forward) and one negative (backward) monomial in the
    free species, forward first: ``[(exponents, coefficient), ...]``; [] for a zero law."""
    if rate == 0:
        return []
    try:
        poly = sympy.Poly(rate, *syms) if syms else None
    except sympy.PolynomialError:
        poly = None
    if poly is None and not rate.is_number:
        full = "" if str(rate) == str(law) else f"; with rules and values substituted: {str(rate)[:200]}"
        raise EPLImportError(f"{where}: reaction {rid!r} has a {_law(rate, set(syms))} kinetic law ({law}{full}): "
                             "not mass action")
    terms = [(tuple(int(e) for e in mon), float(c)) for mon, c in poly.terms()] if poly is not None \
        else [((), float(rate))]
    pos = [t for t in terms if t[1] > 0]
    neg = [t for t in terms if t[1] < 0]
    if len(pos) > 1 or len(neg) > 1:
        raise EPLImportError(f"{where}: reaction {rid!r} has a kinetic law ({law}) that is not mass action: "
                             f"{len(pos)} positive and {len(neg)} negative terms (mass action has at most one "
                             "forward and one backward term)")
    return pos + neg


def _check_rates(model: Any, dyn: Any, pvals: torch.Tensor, y0: torch.Tensor, system: EnergySystem,
                 node_state: list[str], report: ImportReport, where: str) -> None:
    """The importer's self-check: the DS rates equal the SBML rates (the model's own compiled
    right-hand side) at the initial state and at two perturbed states, up to the reported
    approximations. A mismatch is an :class:`EPLImportError` (never a silently wrong DS)."""
    idx = [model.state_names.index(s) for s in node_state]
    g = torch.Generator().manual_seed(0)
    base = y0.to(torch.float64).reshape(1, -1).repeat(3, 1)
    xs = base[:, idx]
    scale = float(xs.abs().mean()) or 1.0
    noise = torch.exp(0.3 * torch.randn(2, len(idx), generator=g, dtype=torch.float64))
    xs[1:] = xs[1:].abs() * noise + 0.1 * scale
    ext = torch.tensor([s in report.external for s in report.species[:len(idx)]])
    xs[:, ext] = base[:, idx][:, ext]
    base[:, idx] = xs
    sbml_rate = dyn.rhs(torch.zeros(3, dtype=base.dtype), base, pvals.reshape(1, -1).expand(3, -1))[:, idx]
    n_fuel = system.n - len(idx)
    x = torch.cat([xs, torch.ones(3, n_fuel, dtype=xs.dtype)], -1).clamp_min(1e-300)
    ds_rate = system.rhs(x, torch.zeros_like(x))[0][:, :len(idx)]
    # allowance for the reported approximations: |kb achieved - kb SBML| prod(x^P)
    kb_ach = torch.tensor([r["kf"] * math.exp(-r.get("energy_drop", 0.0)) if r["kf"] else 0.0
                           for r in report.reactions], dtype=x.dtype)
    kb_sbml = torch.tensor([r["kb"] for r in report.reactions], dtype=x.dtype)
    Pm = system.Mperp.clamp(min=0) + system.catalysis
    dev = (kb_ach - kb_sbml).abs() * torch.pow(x.unsqueeze(-1), Pm).prod(-2)
    allow = (system.Mperp.abs() @ dev.unsqueeze(-1)).squeeze(-1)[:, :len(idx)]
    err = (ds_rate - sbml_rate).abs()
    small = 1e-6 * (sbml_rate.abs() + ds_rate.abs()) + 1e-9 * sbml_rate.abs().amax(-1, keepdim=True) + 1e-300
    # the irreversible steps' reverse flux must stay negligible (it is an approximation of
    # kb = 0, not a change of the model): else refuse, naming the step
    irr = torch.tensor([kb == 0 and r["kf"] > 0 for r, kb in zip(report.reactions, kb_sbml.tolist())])
    moving = (system.Mperp.abs() * system.free.unsqueeze(-1))[:len(idx)]  # clamped nodes do not change
    part = moving.unsqueeze(0) * (dev * irr).unsqueeze(-2)  # (3, species, reactions)
    over = part.sum(-1) > small + 1e-9 * sbml_rate.abs().max()  # (a state may have every rate 0)
    if bool(over.any()):
        b, i = [int(v) for v in torch.nonzero(over)[0]]
        j = int(part[b, i].argmax())
        r = report.reactions[j]
        raise EPLImportError(f"{where}: reaction {r['id']!r} ({r['law']}): the reverse flux of its irreversible "
                             f"approximation (energy drop {r['energy_drop']:.3g}) changes the rate of species "
                             f"{report.species[i]!r} by {float(part[b, i].sum()):.3g} (rate {float(sbml_rate[b, i]):.3g}); "
                             "a larger irreversible_drop is needed")
    tol = small + 1.01 * allow
    if bool((err > tol).any()):
        b, i = [int(v) for v in torch.nonzero(err > tol)[0]]
        raise EPLImportError(f"{where}: the imported DS does not reproduce the SBML rate of species "
                             f"{report.species[i]!r} (DS {float(ds_rate[b, i]):.6g}, SBML {float(sbml_rate[b, i]):.6g} "
                             f"at test state {b}): a kinetics the importer cannot express")


def _number(expr: Any, what: str, where: str) -> float:
    """A constant of the model as a float, or :class:`EPLImportError` naming it."""
    try:
        value = float(expr)
    except (TypeError, ValueError):
        raise EPLImportError(f"{where}: the {what} is not a constant number ({expr})") from None
    if not math.isfinite(value):
        raise EPLImportError(f"{where}: the {what} is {value}")
    return value


def _st(v: float) -> str:
    return "" if v == 1 else f"{v:g} "


def _drops(Mperp: torch.Tensor, K: torch.Tensor, x0: torch.Tensor, n_species: int, drop: float) -> torch.Tensor:
    """Energy drop per reaction for irreversible steps: ``drop`` plus ln(prod(s^P) / prod(s^R))
    where that is positive, s the typical amount of each species (its initial amount, at least the
    geometric mean of the positive initial amounts). The reverse flux is e^{-drop} prod(x^P) /
    prod(x^R) of the forward one, so without the second term a binding step A + B -> C on amounts
    of 1e-20 mol (BIOMD0000000183) would run backwards 1e9 times faster than forwards."""
    xs = x0[:n_species]
    pos = xs[xs > 0]
    typical = float(torch.exp(torch.log(pos).mean())) if pos.numel() else 1.0
    s = torch.cat([xs.clamp(min=typical), torch.ones(Mperp.shape[0] - n_species, dtype=x0.dtype)])
    P = Mperp.clamp(min=0) + K
    R = (-Mperp).clamp(min=0) + K
    log_ratio = (torch.log(s).unsqueeze(-1) * (P - R)).sum(0)
    return drop + log_ratio.clamp(min=0)


def _potentials(Mperp: torch.Tensor, kf: torch.Tensor, kb: torch.Tensor, drop: torch.Tensor, report: ImportReport,
                strict: bool, where: str, base: float = IRREVERSIBLE_DROP) -> torch.Tensor:
    """g = 1 + a solving Mperp^T g = ln(kb/kf) (reversible, weighted 1e3) and = -drop (irreversible,
    per reaction: :func:`_drops`)."""
    rev = kb > 0
    target = torch.where(rev, torch.log(kb.clamp_min(1e-300) / kf.clamp_min(1e-300)), -drop)
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
                                  f"x prod(products)/prod(reactants) of the forward flux, e^-{base:.3g} of it at the "
                                  "typical amounts)")
    if strict and report.approximations:
        first = report.approximations[0]
        raise EPLImportError(f"{where}: reaction {first['id']!r} ({first['law']}) needs an approximation: "
                             f"{first['approximation']}")
    return g
