"""``neuroplex sbml info FILE``: a summary of an SBML (or Antimony) model, read with python-libsbml.

:func:`summarize` returns a plain dict (level/version, model id and name, compartments,
species, reactions, parameters, rules, events, function definitions, initial
assignments, packages); the click command :data:`info` prints it as text or JSON.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from neuroplex.errors import ModelError

from .antimony_loader import antimony_to_sbml
from . import consistency


def _libsbml() -> Any:
    try:
        import libsbml
    except ImportError as exc:  # pragma: no cover - python-libsbml is in the sbml extra
        raise ModelError("reading SBML needs python-libsbml: pip install 'neuroplex[sbml]'") from exc
    return libsbml


def _formula(node: Any) -> str:
    if node is None:
        return ""
    return _libsbml().formulaToL3String(node) or ""


def _read(path: Path) -> Any:
    ls = _libsbml()
    if not path.is_file():
        raise ModelError(f"{path}: no such SBML file")
    if path.suffix.lower() in (".ant", ".antimony"):  # Antimony: converted to SBML first
        doc = ls.SBMLReader().readSBMLFromString(antimony_to_sbml(path.read_text(encoding="utf-8"), str(path)))
    else:
        doc = ls.SBMLReader().readSBMLFromFile(str(path))
    errors = [doc.getError(i) for i in range(doc.getNumErrors())
              if doc.getError(i).getSeverity() in (ls.LIBSBML_SEV_ERROR, ls.LIBSBML_SEV_FATAL)]
    if errors:
        e = errors[0]
        more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
        raise ModelError(f"{path}:{e.getLine()}: {' '.join(e.getMessage().split())}{more}")
    if doc.getModel() is None:
        raise ModelError(f"{path}: the SBML document has no model")
    return doc


def summarize(path: str | os.PathLike) -> dict[str, Any]:
    """A summary of the SBML file at ``path`` (``.ant`` files are converted with antimony);
    malformed files raise :class:`ModelError` with libsbml's line number."""
    path = Path(path)
    doc = _read(path)
    m = doc.getModel()
    level, version = doc.getLevel(), doc.getVersion()
    packages = [] if level < 3 else sorted({doc.getPlugin(i).getPackageName() for i in range(doc.getNumPlugins())
                       if doc.isPackageEnabled(doc.getPlugin(i).getPackageName())} - {"l3v2extendedmath", ""})

    def size(c: Any) -> float | None:
        return c.getSize() if c.isSetSize() else None

    compartments = [{"id": c.getId(), "name": c.getName(), "size": size(c), "constant": bool(c.getConstant()),
                     "spatial_dimensions": c.getSpatialDimensionsAsDouble()} for c in m.getListOfCompartments()]
    species = []
    for s in m.getListOfSpecies():
        if s.isSetInitialConcentration():
            initial, kind = s.getInitialConcentration(), "concentration"
        elif s.isSetInitialAmount():
            initial, kind = s.getInitialAmount(), "amount"
        else:
            initial, kind = None, None
        species.append({"id": s.getId(), "name": s.getName(), "compartment": s.getCompartment(),
                        "initial": initial, "initial_kind": kind,
                        "has_only_substance_units": bool(s.getHasOnlySubstanceUnits()),
                        "boundary_condition": bool(s.getBoundaryCondition()), "constant": bool(s.getConstant())})
    reactions = []
    for r in m.getListOfReactions():
        kl = r.getKineticLaw() if r.isSetKineticLaw() else None
        n_local = 0 if kl is None else kl.getNumParameters() + (kl.getNumLocalParameters() if level >= 3 else 0)

        def side(lst: Any) -> list[list[Any]]:
            return [[sr.getSpecies(), sr.getStoichiometry() if sr.isSetStoichiometry() else None] for sr in lst]

        reactions.append({"id": r.getId(), "name": r.getName(), "reversible": bool(r.getReversible()),
                          "reactants": side(r.getListOfReactants()), "products": side(r.getListOfProducts()),
                          "modifiers": [mr.getSpecies() for mr in r.getListOfModifiers()],
                          "rate": _formula(kl.getMath()) if kl is not None and kl.isSetMath() else "",
                          "local_parameters": n_local})
    parameters = [{"id": p.getId(), "name": p.getName(), "value": p.getValue() if p.isSetValue() else None,
                   "constant": bool(p.getConstant())} for p in m.getListOfParameters()]
    rules = []
    for r in m.getListOfRules():
        kind = "algebraic" if r.isAlgebraic() else "assignment" if r.isAssignment() else "rate"
        rules.append({"type": kind, "variable": r.getVariable() if not r.isAlgebraic() else None,
                      "math": _formula(r.getMath())})
    events = []
    for e in m.getListOfEvents():
        trig = e.getTrigger() if e.isSetTrigger() else None
        events.append({
            "id": e.getId(), "trigger": _formula(trig.getMath()) if trig is not None else "",
            "delay": _formula(e.getDelay().getMath()) if e.isSetDelay() else None,
            "priority": _formula(e.getPriority().getMath()) if level >= 3 and e.isSetPriority() else None,
            "persistent": bool(trig.getPersistent()) if trig is not None and level >= 3 else True,
            "initial_value": bool(trig.getInitialValue()) if trig is not None and level >= 3 else True,
            "use_values_from_trigger_time": bool(e.getUseValuesFromTriggerTime()),
            "assignments": {ea.getVariable(): _formula(ea.getMath()) for ea in e.getListOfEventAssignments()},
        })
    problems = consistency.check(doc)
    return {
        "file": str(path), "level": level, "version": version, "id": m.getId(), "name": m.getName(),
        "packages": packages, "consistency": problems,
        "compartments": compartments, "species": species, "reactions": reactions, "parameters": parameters,
        "rules": rules, "events": events,
        "function_definitions": [f.getId() for f in m.getListOfFunctionDefinitions()],
        "initial_assignments": {ia.getSymbol(): _formula(ia.getMath()) for ia in m.getListOfInitialAssignments()},
    }


def _count(items: list[Any], key: str | None = None, value: Any = None) -> int:
    return sum(1 for i in items if key is None or i.get(key) == value)


def format_summary(s: dict[str, Any], verbose: bool = False) -> str:
    """Human-readable text of :func:`summarize`'s dict."""
    lines = [f"{s['file']}: SBML Level {s['level']} Version {s['version']}",
             f"model     {s['id'] or '(no id)'}{' - ' + s['name'] if s['name'] else ''}"]
    if s["packages"]:
        lines.append(f"packages  {', '.join(s['packages'])}")
    rules = s["rules"]
    counts = [
        ("compartments", len(s["compartments"]), ""),
        ("species", len(s["species"]), f"{_count(s['species'], 'boundary_condition', True)} boundary, "
                                      f"{_count(s['species'], 'constant', True)} constant"),
        ("reactions", len(s["reactions"]), f"{_count(s['reactions'], 'reversible', True)} reversible, "
                                          f"{sum(r['local_parameters'] for r in s['reactions'])} local parameters"),
        ("parameters", len(s["parameters"]), f"{_count(s['parameters'], 'constant', False)} variable"),
        ("rules", len(rules), f"{_count(rules, 'type', 'assignment')} assignment, {_count(rules, 'type', 'rate')} rate, "
                              f"{_count(rules, 'type', 'algebraic')} algebraic"),
        ("events", len(s["events"]), f"{sum(1 for e in s['events'] if e['delay'])} delayed"),
        ("function definitions", len(s["function_definitions"]), ""),
        ("initial assignments", len(s["initial_assignments"]), ""),
    ]
    for label, n, detail in counts:
        lines.append(f"{label:<21} {n:>5}{'  (' + detail + ')' if detail and n else ''}")
    lines.extend(consistency.format_problems(s.get("consistency", []), limit=50 if verbose else 10))
    if verbose:
        for c in s["compartments"]:
            lines.append(f"  compartment {c['id']} size={c['size']} dims={c['spatial_dimensions']:g}")
        for sp in s["species"]:
            lines.append(f"  species {sp['id']} in {sp['compartment']} initial {sp['initial_kind'] or '-'}="
                         f"{sp['initial']}")
        for r in s["reactions"]:
            left = " + ".join(f"{st:g} {sid}" if st not in (None, 1) else sid for sid, st in r["reactants"])
            right = " + ".join(f"{st:g} {sid}" if st not in (None, 1) else sid for sid, st in r["products"])
            lines.append(f"  reaction {r['id']}: {left or '0'} {'<->' if r['reversible'] else '->'} {right or '0'}; "
                         f"{r['rate']}")
        for p in s["parameters"]:
            lines.append(f"  parameter {p['id']} = {p['value']}")
        for r in rules:
            lhs = {"assignment": f"{r['variable']} =", "rate": f"d{r['variable']}/dt =", "algebraic": "0 ="}[r["type"]]
            lines.append(f"  rule {lhs} {r['math']}")
        for e in s["events"]:
            assigns = "; ".join(f"{k} = {v}" for k, v in e["assignments"].items())
            delay = f" after {e['delay']}" if e["delay"] else ""
            lines.append(f"  event {e['id'] or '(no id)'}: when {e['trigger']}{delay}: {assigns}")
    return "\n".join(lines)


@click.command("info")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--verbose", "-v", is_flag=True, help="List every element, not only the counts.")
def info(file: Path, as_json: bool, verbose: bool) -> None:
    """Summarise an SBML FILE: level/version, compartments, species, reactions, parameters,
    rules, events, and libsbml's consistency problems."""
    s = summarize(file)
    click.echo(json.dumps(s, indent=2) if as_json else format_summary(s, verbose))
