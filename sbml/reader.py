"""SBML (Level 2 version 1 to Level 3 version 2) to the neuroplex model IR, on python-libsbml.

The mapping keeps every SBML id usable by name:

* **Species** whose quantity changes through reactions or events (or is a boundary
  species) are integrated as *amounts*, so variable compartments, conversion factors and
  events that resize a compartment are exact (reactions change amounts, SBML L3 section
  4.11). A species whose SBML value is a concentration (``hasOnlySubstanceUnits=false``,
  and in Level 2 a compartment of non-zero dimension) then has an internal amount state and its id
  is an IR *assignment* ``amount / compartment``; otherwise the state carries its id.
  Species under a rate rule, and constant species, keep their SBML value (concentration
  or amount) as the state.
* **Assignment rules** and **reaction rates** (a reaction id names its kinetic law) are IR
  assignments, sorted by dependency.
* **Parameters, compartments and species-reference stoichiometries** are IR parameters
  when they are fixed numbers; they become states (zero derivative unless a rate rule
  gives one) when an initial assignment, a rate rule or an event sets them.
* **Local parameters** become IR parameters named ``<reaction>_<id>`` (made unique).
* **Events** keep trigger, delay, priority, persistent, initialValue and
  useValuesFromTriggerTime; :mod:`neuroplex.sbml.events` gives them SBML semantics.
* ``rateOf(x)`` is replaced by the right-hand side of ``x`` (chain rule through
  assignment rules); function definitions are inlined.

SBML facts the IR does not carry are in ``model.metadata["sbml"]`` and the file in
``model.metadata["source"]``. Algebraic rules, fast reactions, the csymbol ``delay`` and
SBML packages raise :class:`SBMLImportError` naming the element and the feature, and
libsbml errors are reported with their line numbers: never a silently wrong model.
"""
from __future__ import annotations

import keyword
import math
import os
import re
import warnings
from pathlib import Path
from typing import Any, ClassVar, Mapping

import libsbml
import sympy

from neuroplex.ir import Event, ModelIR, Parameter, State

from .errors import SBMLImportError
from .mathml import MathConverter, RateOf, number
from . import values
from .consistency import first_sentence
from .packages import prepare_packages

__all__ = ["SBMLModel", "read_sbml", "read_sbml_string", "SBMLImportError"]

_SEVERE = (libsbml.LIBSBML_SEV_ERROR, libsbml.LIBSBML_SEV_FATAL)
#: libsbml errors about units only (simulation ignores units): 10313 undefined unit id
_UNIT_ONLY_ERRORS = frozenset({10313})


class SBMLModel(ModelIR):
    """A :class:`~neuroplex.ir.ModelIR` read from SBML: knows how to report SBML values
    (amounts or concentrations) and runs with SBML event semantics (the ``sbml`` runners of
    :mod:`neuroplex.sbml.runner`)."""

    #: SBML models run through the SBML runner; solvers without one take them as IR models
    kind: ClassVar[str] = "sbml"

    # ---------------------------------------------------------------- reporting
    @property
    def sbml(self) -> dict[str, Any]:
        return self.metadata["sbml"]

    def default_outputs(self) -> list[str]:
        """SBML ids reported by default: species (by their SBML value), then compartments,
        parameters and stoichiometries that change during a run."""
        out = list(self.sbml["species"])
        varying = set(self.state_names) | set(self.assignments)
        for sid in [*self.sbml["compartments"], *self.sbml["parameters"], *self.sbml["species_references"]]:
            if sid in varying:
                out.append(sid)
        return out

    def plot_names(self) -> list[str]:
        """What a default plot shows: the species (all default outputs if there are none)."""
        return list(self.sbml["species"]) or self.default_outputs()

    def value_expression(self, sid: str, quantity: str | None = None) -> sympy.Expr:
        """The expression of SBML id ``sid``; for a species ``quantity`` may ask for its
        ``"amount"`` or ``"concentration"`` whatever ``hasOnlySubstanceUnits`` says."""
        sp = self.sbml["species"].get(sid)
        if sp is None:
            if sid in self.sbml["reactions"] or sid in self.state_names or sid in self.assignments \
                    or sid in self.parameter_names:
                return sympy.Symbol(sid)
            raise SBMLImportError(f"model {self.name!r} has no SBML variable {sid!r}")
        if quantity is None or quantity == sp["quantity"] or sp["dimensionless_compartment"]:
            if sp["amount_state"] is not None and sp["quantity"] == "amount":
                return sympy.Symbol(sp["amount_state"])
            return sympy.Symbol(sid)
        size = sympy.Symbol(sp["compartment"])
        if quantity == "amount":  # SBML value is a concentration
            if sp["amount_state"] is not None:
                return sympy.Symbol(sp["amount_state"])
            return sympy.Symbol(sid) * size
        if quantity == "concentration":
            return sympy.Symbol(sid) / size
        raise SBMLImportError(f"quantity must be 'amount' or 'concentration', not {quantity!r}")

    # ------------------------------------------------------------------- values
    def with_parameters(self, new: Mapping[str, float] | None = None, /, **kw: float) -> "SBMLModel":
        """A copy with new parameter values by SBML id (a local parameter as ``"reaction.id"``
        in the dict form, or by its own id where only one reaction has it)."""
        return values.with_parameters(self, {**(new or {}), **kw})

    def with_initial(self, new: Mapping[str, Any] | None = None, /, **kw: Any) -> "SBMLModel":
        """A copy with new initial values by SBML id, in the quantity the file declares
        (a concentration species takes a concentration)."""
        return values.with_initial(self, {**(new or {}), **kw})

    def parameter_values(self) -> dict[str, float]:
        """``{SBML id: value}`` of the constants (local parameters as ``"reaction.id"``)."""
        return values.parameter_values(self)

    def initial_values(self) -> dict[str, float]:
        """``{SBML id: value}`` at the start (initial assignments evaluated), species as declared."""
        return values.initial_values(self)

    def resolve_values(self, params: Any = None, initial: Mapping[str, Any] | None = None) -> tuple["SBMLModel", Any]:
        """Values by SBML id for :func:`neuroplex.simulate` (see :func:`.values.resolve_values`)."""
        return values.resolve_values(self, params, initial)

    def to_sbml(self, path: str | os.PathLike | None = None) -> str:
        """The model as it is now (changed values included) as SBML L3V2 text, written to
        ``path`` if given (see :mod:`neuroplex.sbml.writer`)."""
        from .writer import write_sbml

        return write_sbml(self, path)

    def steady_state(self, **options: Any) -> Any:
        """Steady states (see :func:`neuroplex.sbml.steady_state.steady_state`)."""
        from .steady_state import steady_state

        return steady_state(self, **options)


# ======================================================================== reading
def read_sbml(path: str | os.PathLike) -> SBMLModel:
    """Read an SBML file into an :class:`SBMLModel`."""
    path = Path(path)
    if not path.is_file():
        raise SBMLImportError(f"{path}: no such SBML file")
    with open(path, "rb") as fh:
        _check_header(fh.read(8192).decode("utf-8", "replace"), str(path))
    doc = libsbml.SBMLReader().readSBMLFromFile(str(path))
    model = _from_document(doc, str(path), path.stem)
    model.metadata["source"] = str(path)
    return model


def read_sbml_string(text: str, source: str | None = None) -> SBMLModel:
    """Read SBML from a string (``source`` names it in messages and metadata)."""
    _check_header(text[:8192], source or "<string>")
    doc = libsbml.SBMLReader().readSBMLFromString(text)
    model = _from_document(doc, source or "<string>", "model")
    model.metadata["sbml_text"] = text
    return model


_SBML_TAG = re.compile(r"<sbml\b([^>]*)>", re.S)
_ATTR = re.compile(r"""([\w:]+)\s*=\s*["']([^"']*)["']""")


def _check_header(head: str, where: str) -> None:
    """Refuse a root element whose namespace does not match its level and version: libsbml
    aborts the whole process on such a document instead of reporting an error."""
    m = _SBML_TAG.search(head)
    if m is None:
        return
    attrs = dict(_ATTR.findall(m.group(1)))
    level, version, ns = attrs.get("level"), attrs.get("version"), attrs.get("xmlns")
    if not (level and version and ns) or not (level.isdigit() and version.isdigit()):
        return
    known = {libsbml.SBMLNamespaces.getSBMLNamespaceURI(lv, vv)
             for lv, vv in ((1, 1), (1, 2), (2, 1), (2, 2), (2, 3), (2, 4), (2, 5), (3, 1), (3, 2))}
    expected = libsbml.SBMLNamespaces.getSBMLNamespaceURI(int(level), int(version))
    if ns in known and ns != expected:
        line = head.count("\n", 0, m.start()) + 1
        raise SBMLImportError(f"invalid SBML: {where}:{line}: the namespace {ns} does not match "
                              f"level {level} version {version} (expected {expected})")


def _messages(doc: Any, where: str, limit: int = 5, full: bool = False) -> list[str]:
    """libsbml's errors, one line each: the file line and the case (the element and id;
    ``full``: libsbml's whole text)."""
    out = []
    for i in range(doc.getNumErrors()):
        err = doc.getError(i)
        if err.getSeverity() in _SEVERE and err.getErrorId() not in _UNIT_ONLY_ERRORS:
            msg = " ".join(err.getMessage().split())
            out.append(f"{where}:{err.getLine()}: {msg if full else first_sentence(msg)}")
    if len(out) > limit:
        out = out[:limit] + [f"... and {len(out) - limit} more"]
    return out


def _with_full_text(exc: SBMLImportError, doc: Any, where: str) -> SBMLImportError:
    """Attach libsbml's full messages as a note (shown with the traceback, e.g. ``--debug``)."""
    exc.add_note("libsbml:\n" + "\n".join(_messages(doc, where, limit=50, full=True)))
    return exc


def _from_document(doc: Any, where: str, stem: str) -> SBMLModel:
    errors = _messages(doc, where)
    if errors:
        raise _with_full_text(SBMLImportError("invalid SBML: " + "; ".join(errors)), doc, where)
    flattened = prepare_packages(doc, where)
    model = doc.getModel()
    if model is None:
        raise SBMLImportError(f"{where}: the SBML document has no model")
    doc.setConsistencyChecks(libsbml.LIBSBML_CAT_UNITS_CONSISTENCY, False)
    doc.setConsistencyChecks(libsbml.LIBSBML_CAT_MODELING_PRACTICE, False)
    doc.setConsistencyChecks(libsbml.LIBSBML_CAT_SBO_CONSISTENCY, False)
    doc.setConsistencyChecks(libsbml.LIBSBML_CAT_GENERAL_CONSISTENCY, True)
    doc.setConsistencyChecks(libsbml.LIBSBML_CAT_IDENTIFIER_CONSISTENCY, True)
    doc.setConsistencyChecks(libsbml.LIBSBML_CAT_MATHML_CONSISTENCY, True)
    if doc.checkConsistency():
        errors = _messages(doc, where)
        if errors:
            raise _with_full_text(SBMLImportError("inconsistent SBML: " + "; ".join(errors)), doc, where)
    ir = _Builder(doc, model, where, stem).build()
    if flattened:  # what other tools (roadrunner) run: the flat model, with the same ids
        ir.metadata["sbml_flattened"] = libsbml.writeSBMLToString(doc)
    return ir


def _unique(base: str, taken: set[str]) -> str:
    name = base
    i = 1
    while name in taken:
        name = f"{base}_{i}"
        i += 1
    taken.add(name)
    return name


class _Builder:
    """One pass over a libsbml model that produces the IR."""

    def __init__(self, doc: Any, model: Any, where: str, stem: str):
        self.doc, self.m, self.where = doc, model, where
        self.level, self.version = doc.getLevel(), doc.getVersion()
        self.stem = stem
        m = model
        self.compartments = {c.getId(): c for c in m.getListOfCompartments()}
        self.species = {s.getId(): s for s in m.getListOfSpecies()}
        self.parameters = {p.getId(): p for p in m.getListOfParameters()}
        self.reactions = {r.getId(): r for r in m.getListOfReactions()}
        self.species_refs: dict[str, Any] = {}
        for r in m.getListOfReactions():
            for lst in (r.getListOfReactants(), r.getListOfProducts()):
                for sr in lst:
                    if self.level >= 3 and sr.isSetId() and sr.getId():
                        self.species_refs[sr.getId()] = sr
        self.functions = {f.getId(): f.getMath() for f in m.getListOfFunctionDefinitions()}
        self.ids: set[str] = {*self.compartments, *self.species, *self.parameters, *self.reactions,
                              *self.species_refs, *self.functions}
        for ev in m.getListOfEvents():
            if ev.isSetId():
                self.ids.add(ev.getId())
        self.taken = set(self.ids) | set(keyword.kwlist)
        time_name = _unique("time", set(self.taken))
        self.taken.add(time_name)
        self.time = sympy.Symbol(time_name)
        self.local_names: dict[tuple[str, str], str] = {}

    # ------------------------------------------------------------------ helpers
    def sym(self, sid: str) -> sympy.Symbol:
        return sympy.Symbol(sid)

    def zero_d_l2(self, c: Any) -> bool:
        """A Level 2 compartment with spatialDimensions 0: it has no size and the species in it
        are amounts whatever hasOnlySubstanceUnits says (SBML L2V4, Compartment and Species).
        In Level 3 spatialDimensions carries no meaning for simulation: such a compartment has
        a size and its species follow hasOnlySubstanceUnits like anywhere else."""
        return self.level < 3 and c.getSpatialDimensions() == 0

    def converter(self, local: dict[str, str] | None = None) -> MathConverter:
        local = local or {}

        def resolve(name: str) -> Any:
            if name in local:
                return sympy.Symbol(local[name])
            if name in self.ids and name not in self.functions:
                return sympy.Symbol(name)
            raise SBMLImportError(f"{self.where}: math uses undefined id {name!r}")

        return MathConverter(resolve, self.functions, self.time)

    def math(self, node: Any, where: str, *, boolean: bool = False, local: dict[str, str] | None = None) -> Any:
        return self.converter(local).convert(node, where, boolean=boolean)

    # -------------------------------------------------------------------- build
    def build(self) -> SBMLModel:  # noqa: C901 - one pass in SBML's order
        m, W = self.m, self.where
        assignment_rules: dict[str, Any] = {}
        rate_rules: dict[str, Any] = {}
        for i, rule in enumerate(m.getListOfRules()):
            if rule.isAlgebraic():
                label = rule.getMetaId() or rule.getId() or f"#{i + 1}"
                raise SBMLImportError(f"{W}: algebraic rule {label} is not supported (algebraic rules need a DAE solver)")
            var = rule.getVariable()
            if not rule.isSetMath():  # L3v2: a rule without math has no effect
                continue
            if var not in self.ids or var in self.reactions or var in self.functions:
                raise SBMLImportError(f"{W}: rule for unknown or non-variable id {var!r}")
            kind = "assignment" if rule.isAssignment() else "rate"
            expr = self.math(rule.getMath(), f"{W}: {kind} rule for {var!r}")
            (assignment_rules if kind == "assignment" else rate_rules)[var] = expr
        for rid, r in self.reactions.items():
            if r.isSetFast() and r.getFast():
                raise SBMLImportError(f"{W}: reaction {rid!r} is fast (fast reactions are not supported)")
        init_assign: dict[str, Any] = {}
        for ia in m.getListOfInitialAssignments():
            sid = ia.getSymbol()
            if not ia.isSetMath():  # L3v2: no math, no effect
                continue
            init_assign[sid] = self.math(ia.getMath(), f"{W}: initial assignment for {sid!r}")
        event_targets: set[str] = set()
        for ev in m.getListOfEvents():
            if ev.isSetTrigger() and ev.getTrigger().isSetMath():
                for ea in ev.getListOfEventAssignments():
                    if ea.isSetMath():
                        event_targets.add(ea.getVariable())

        states: list[State] = []
        params: list[Parameter] = []
        derivs: dict[str, Any] = {}
        assigns: dict[str, Any] = {}
        nan = sympy.nan
        species_meta: dict[str, Any] = {}

        def value_or_nan(obj: Any, is_set: str, get: str, default: float | None = None) -> Any:
            if getattr(obj, is_set)():
                return number(getattr(obj, get)())
            return number(default) if default is not None else nan

        defaulted: list[str] = []  # elements without a value that take libroadrunner's default

        def undefined(sid: str) -> bool:
            """No value in the file, and no initial assignment or assignment rule gives one."""
            return sid not in init_assign and sid not in assignment_rules

        def constant_or_state(sid: str, value: Any, constant: bool) -> None:
            """A parameter/compartment/stoichiometry: IR parameter unless something sets it."""
            if sid in assignment_rules:
                assigns[sid] = assignment_rules[sid]
            elif sid in rate_rules or sid in init_assign or sid in event_targets or not value.is_number:
                states.append(State(sid, init_assign.get(sid, value)))
                derivs[sid] = rate_rules.get(sid, sympy.Integer(0))
            else:
                params.append(Parameter(sid, float(value)))

        default_size = 1.0 if self.level < 3 else None
        for cid, c in self.compartments.items():
            # L2: a 0-D compartment has no size (its species are amounts), 1 stands in for it;
            # L3: spatialDimensions carries no meaning, a 0-D compartment is sized like any other
            size = value_or_nan(c, "isSetSize", "getSize", 1.0 if self.zero_d_l2(c) else default_size)
            if not c.isSetSize() and size is nan and undefined(cid):
                size = sympy.Integer(1)
                defaulted.append(f"compartment {cid!r} (size 1)")
            constant_or_state(cid, size, c.getConstant())
        for pid, p in self.parameters.items():
            if not p.isSetValue() and undefined(pid):
                raise SBMLImportError(f"{W}: parameter {pid!r} has no value (no value attribute, initial assignment "
                                      f"or assignment rule); give it one")
            constant_or_state(pid, value_or_nan(p, "isSetValue", "getValue"), p.getConstant())
        for srid, sr in self.species_refs.items():
            if sr.isSetStoichiometryMath():
                raise SBMLImportError(f"{W}: species reference {srid!r} has both an id and stoichiometryMath")
            value = value_or_nan(sr, "isSetStoichiometry", "getStoichiometry", 1.0)
            constant_or_state(srid, value, sr.getConstant() if self.level >= 3 else True)

        model_cf = m.getConversionFactor() if self.level >= 3 and m.isSetConversionFactor() else None
        amount_state: dict[str, str] = {}
        for sid, s in self.species.items():
            cid = s.getCompartment()
            if cid not in self.compartments:
                raise SBMLImportError(f"{W}: species {sid!r} is in unknown compartment {cid!r}")
            zero_d = self.zero_d_l2(self.compartments[cid])
            hosu = s.getHasOnlySubstanceUnits() or zero_d
            quantity = "amount" if hosu else "concentration"
            V = self.sym(cid)
            if s.isSetInitialAmount():
                amount0: Any = value_or_nan(s, "isSetInitialAmount", "getInitialAmount")
                natural0 = amount0 if hosu else amount0 / V
            elif s.isSetInitialConcentration():
                conc0 = value_or_nan(s, "isSetInitialConcentration", "getInitialConcentration")
                natural0 = conc0 * V if hosu and not zero_d else conc0
            elif undefined(sid):
                natural0 = sympy.Integer(0)
                defaulted.append(f"species {sid!r} (0)")
            else:
                natural0 = nan
            if sid in init_assign:
                natural0 = init_assign[sid]
            amt = None
            if sid in assignment_rules:
                assigns[sid] = assignment_rules[sid]
            elif sid in rate_rules:
                states.append(State(sid, natural0))
                derivs[sid] = rate_rules.get(sid, sympy.Integer(0))
            else:
                if hosu:
                    amt = sid
                    states.append(State(sid, natural0))
                else:
                    amt = _unique(f"{sid}_amount", self.taken)
                    states.append(State(amt, natural0 * V))
                    assigns[sid] = self.sym(amt) / V
                derivs[amt] = sympy.Integer(0)
                amount_state[sid] = amt
            cf = s.getConversionFactor() if self.level >= 3 and s.isSetConversionFactor() else model_cf
            species_meta[sid] = {
                "compartment": cid, "has_only_substance_units": bool(s.getHasOnlySubstanceUnits()),
                "boundary_condition": bool(s.getBoundaryCondition()), "constant": bool(s.getConstant()),
                "quantity": quantity, "amount_state": amt, "dimensionless_compartment": bool(zero_d),
                "conversion_factor": cf,
            }

        if defaulted:
            warnings.warn(f"{W}: no initial value for {', '.join(defaulted)}: each starts at the default shown "
                          f"(libroadrunner's); give a value or an initial assignment to set another", stacklevel=2)

        # reactions: rate assignments and amount derivatives
        reactions_meta: dict[str, Any] = {}
        local_meta: dict[str, list[str]] = {}
        for rid, r in self.reactions.items():
            local: dict[str, str] = {}
            kl = r.getKineticLaw() if r.isSetKineticLaw() else None
            if kl is not None:
                # in L3 libsbml lists the local parameters under both names: read them once
                for lp in (kl.getListOfLocalParameters() if self.level >= 3 else kl.getListOfParameters()):
                    name = _unique(f"{rid}_{lp.getId()}", self.taken)
                    local[lp.getId()] = name
                    local_meta[name] = [rid, lp.getId()]
                    params.append(Parameter(name, float(lp.getValue()) if lp.isSetValue() else math.nan))
            if kl is not None and kl.isSetMath():
                rate = self.math(kl.getMath(), f"{W}: kinetic law of reaction {rid!r}", local=local)
            else:
                rate = sympy.Integer(0)
            assigns[rid] = rate
            meta: dict[str, Any] = {"reversible": bool(r.getReversible()), "reactants": [], "products": [],
                                    "modifiers": [mr.getSpecies() for mr in r.getListOfModifiers()],
                                    "local_parameters": dict(local)}
            for sign, lst, key in ((-1, r.getListOfReactants(), "reactants"), (1, r.getListOfProducts(), "products")):
                for sr in lst:
                    sid = sr.getSpecies()
                    if sid not in self.species:
                        raise SBMLImportError(f"{W}: reaction {rid!r} uses unknown species {sid!r}")
                    if sr.getId() in self.species_refs:
                        stoich: Any = self.sym(sr.getId())
                    elif self.level == 2 and sr.isSetStoichiometryMath():
                        stoich = self.math(sr.getStoichiometryMath().getMath(),
                                           f"{W}: stoichiometryMath of {sid!r} in reaction {rid!r}")
                    else:
                        stoich = number(sr.getStoichiometry()) if sr.isSetStoichiometry() or self.level < 3 \
                            else sympy.Integer(1)
                    meta[key].append([sid, str(stoich)])
                    sp = self.species[sid]
                    if sp.getBoundaryCondition() or sp.getConstant() or sid not in amount_state:
                        continue
                    term = sign * stoich * self.sym(rid)
                    cf = species_meta[sid]["conversion_factor"]
                    if cf:
                        term = term * self.sym(cf)
                    derivs[amount_state[sid]] = derivs[amount_state[sid]] + term
            reactions_meta[rid] = meta

        # rate rules of ids that are states already added above
        for var in rate_rules:
            if var not in derivs:
                raise SBMLImportError(f"{W}: rate rule for {var!r}, which cannot change")

        # events
        events: list[Event] = []
        for i, ev in enumerate(m.getListOfEvents()):
            name = ev.getId() if ev.isSetId() and ev.getId() else _unique(f"event{i + 1}", self.taken)
            label = f"{W}: event {name!r}"
            trig = ev.getTrigger() if ev.isSetTrigger() else None
            if trig is None or not trig.isSetMath():  # L3v2: an event without a trigger never fires
                continue
            trigger = self.math(trig.getMath(), f"{label} trigger", boolean=True)
            delay = self.math(ev.getDelay().getMath(), f"{label} delay") if ev.isSetDelay() and ev.getDelay().isSetMath() else None
            priority = self.math(ev.getPriority().getMath(), f"{label} priority") \
                if self.level >= 3 and ev.isSetPriority() and ev.getPriority().isSetMath() else None
            new_values: dict[str, Any] = {}
            for ea in ev.getListOfEventAssignments():
                var = ea.getVariable()
                if not ea.isSetMath():
                    continue
                new_values[var] = self.math(ea.getMath(), f"{label} assignment to {var!r}")
            out: dict[str, Any] = {}
            for var, expr in new_values.items():
                if var in self.species and var in amount_state:
                    meta = species_meta[var]
                    if meta["quantity"] == "concentration":  # at the size before the event
                        expr = expr * self.sym(meta["compartment"])
                    out[amount_state[var]] = expr
                elif var in assigns and var not in self.reactions:
                    raise SBMLImportError(f"{label} assigns {var!r}, which an assignment rule defines")
                elif var in derivs:
                    out[var] = expr
                else:
                    raise SBMLImportError(f"{label} assigns {var!r}, which is not a variable")
            # a compartment resized by an event keeps the amounts in it (a species set by the
            # same event gets its amount at the old size): species whose state is a
            # concentration (under a rate rule) are rescaled by old size / new size
            for cid in [v for v in new_values if v in self.compartments]:
                for sid, meta in species_meta.items():
                    if meta["compartment"] == cid and meta["amount_state"] is None and sid in derivs \
                            and meta["quantity"] == "concentration":
                        out[sid] = new_values.get(sid, self.sym(sid)) * self.sym(cid) / new_values[cid]
            persistent = bool(trig.getPersistent()) if self.level >= 3 else True
            initial_value = bool(trig.getInitialValue()) if self.level >= 3 else True
            uvftt = bool(ev.getUseValuesFromTriggerTime()) if (self.level, self.version) >= (2, 4) else True
            events.append(Event(name, trigger, out, delay=delay, priority=priority, persistent=persistent,
                                initial_value=initial_value, use_values_from_trigger_time=uvftt))

        # rateOf: replace by right-hand sides
        resolver = _RateResolver(derivs, assigns, {p.name for p in params}, self.time)
        derivs = {k: resolver.sub(v) for k, v in derivs.items()}
        assigns = {k: resolver.sub(v) for k, v in assigns.items()}
        for st in states:
            st.initial = resolver.sub(st.initial)
        for ev in events:
            ev.trigger = resolver.sub(ev.trigger)
            ev.assignments = {k: resolver.sub(v) for k, v in ev.assignments.items()}
            ev.delay = resolver.sub(ev.delay) if ev.delay is not None else None
            ev.priority = resolver.sub(ev.priority) if ev.priority is not None else None
        assigns = _toposort(assigns, W)

        name = m.getId() or m.getName() or self.stem
        metadata = {"sbml": {
            "level": self.level, "version": self.version, "model_id": m.getId(), "model_name": m.getName(),
            "species": species_meta, "compartments": list(self.compartments), "parameters": list(self.parameters),
            "species_references": list(self.species_refs), "reactions": reactions_meta,
            "local_parameters": local_meta, "assignment_rules": list(assignment_rules),
            "rate_rules": list(rate_rules), "initial_assignments": list(init_assign),
            "function_definitions": list(self.functions), "conversion_factor": model_cf,
            "ids": sorted(self.ids), "time_symbol": self.time.name,
        }}
        ir = SBMLModel(name=name, states=states, parameters=params, derivatives=derivs, assignments=assigns,
                       events=events, time=self.time, time_unit="second", metadata=metadata)
        ir.validate()
        values.record_declared(ir)
        return ir


class _RateResolver:
    """Replaces ``rateOf(x)`` by dx/dt: the derivative of a state, the chain rule through
    an assignment, zero for a constant."""

    def __init__(self, derivs: dict[str, Any], assigns: dict[str, Any], constants: set[str], time: sympy.Symbol):
        self.derivs, self.assigns, self.constants, self.time = derivs, assigns, constants, time
        self.active: set[str] = set()

    def sub(self, expr: Any) -> Any:
        if not isinstance(expr, sympy.Basic) or not expr.has(RateOf):
            return expr
        return expr.replace(RateOf, lambda x: self.rate(x))

    def rate(self, x: Any) -> Any:
        name = x.name
        if name in self.active:
            raise SBMLImportError(f"rateOf({name}) depends on itself")
        self.active.add(name)
        try:
            if name in self.derivs:
                return self.sub(self.derivs[name])
            if name in self.assigns:
                expr = self.sub(self.assigns[name])
                out = sympy.diff(expr, self.time)
                for s in expr.free_symbols - {self.time}:
                    d = sympy.diff(expr, s)
                    if d != 0:
                        out += d * self.rate(s)
                return out
            return sympy.Integer(0)
        finally:
            self.active.discard(name)


def _toposort(assigns: dict[str, Any], where: str) -> dict[str, Any]:
    order: dict[str, Any] = {}
    deps = {k: {s.name for s in getattr(v, "free_symbols", ())} & set(assigns) for k, v in assigns.items()}
    pending = dict(deps)
    while pending:
        ready = [k for k, d in pending.items() if d <= set(order)]
        if not ready:
            raise SBMLImportError(f"{where}: assignment rules or reaction rates depend on each other in a cycle: "
                                  f"{', '.join(sorted(pending))}")
        for k in ready:
            order[k] = assigns[k]
            del pending[k]
    return order

