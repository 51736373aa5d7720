"""The SBML writer: a :class:`~neuroplex.ir.ModelIR` back to SBML Level 3 Version 2.

Mapping (python-libsbml):

* IR parameters and inputs -> constant ``<parameter>``;
* IR states -> a ``<species>`` with a rate rule when the IR came from SBML and the reader
  recorded the state as a species (``metadata["sbml"]["species"]``), otherwise a
  non-constant ``<parameter>`` with a ``<rateRule>``. Reactions were already folded into
  the derivatives by the reader, so the written model states the same ODEs as rate rules;
* IR assignments -> non-constant parameters with ``<assignmentRule>`` (or the species /
  compartment they name when the reader recorded one);
* non-numeric initial values -> ``<initialAssignment>``;
* IR events -> ``<event>`` with trigger (``persistent``, ``initialValue``), ``delay``,
  ``priority``, ``useValuesFromTriggerTime`` and event assignments.

Expressions go from sympy straight to libsbml ``ASTNode`` trees (no infix round trip, so
ids such as ``pi``, ``time`` or ``inf`` stay plain names); the IR's time symbol becomes the
``time`` csymbol. What SBML cannot state (refractory periods, terminal events, functions
with no MathML equivalent) raises :class:`~neuroplex.errors.ModelError` naming it.
"""
from __future__ import annotations

import math
import os
import re
from typing import Any

import sympy

from neuroplex.errors import ModelError
from neuroplex.ir import ModelIR, exprel
from neuroplex.trainer import atomic_write_text

_SID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _libsbml() -> Any:
    try:
        import libsbml
    except ImportError as exc:  # pragma: no cover - python-libsbml is in the sbml extra
        raise ModelError("writing SBML needs python-libsbml: pip install 'neuroplex[sbml]'") from exc
    return libsbml


# ------------------------------------------------------------------ sympy -> AST
_FUNCS: dict[type, str] = {
    sympy.exp: "AST_FUNCTION_EXP", sympy.sin: "AST_FUNCTION_SIN", sympy.cos: "AST_FUNCTION_COS",
    sympy.tan: "AST_FUNCTION_TAN", sympy.asin: "AST_FUNCTION_ARCSIN", sympy.acos: "AST_FUNCTION_ARCCOS",
    sympy.atan: "AST_FUNCTION_ARCTAN", sympy.sinh: "AST_FUNCTION_SINH", sympy.cosh: "AST_FUNCTION_COSH",
    sympy.tanh: "AST_FUNCTION_TANH", sympy.asinh: "AST_FUNCTION_ARCSINH", sympy.acosh: "AST_FUNCTION_ARCCOSH",
    sympy.atanh: "AST_FUNCTION_ARCTANH", sympy.Abs: "AST_FUNCTION_ABS", sympy.floor: "AST_FUNCTION_FLOOR",
    sympy.ceiling: "AST_FUNCTION_CEILING", sympy.factorial: "AST_FUNCTION_FACTORIAL",
    sympy.sec: "AST_FUNCTION_SEC", sympy.csc: "AST_FUNCTION_CSC", sympy.cot: "AST_FUNCTION_COT",
    sympy.asec: "AST_FUNCTION_ARCSEC", sympy.acsc: "AST_FUNCTION_ARCCSC", sympy.acot: "AST_FUNCTION_ARCCOT",
    sympy.sech: "AST_FUNCTION_SECH", sympy.csch: "AST_FUNCTION_CSCH", sympy.coth: "AST_FUNCTION_COTH",
    sympy.asech: "AST_FUNCTION_ARCSECH", sympy.acsch: "AST_FUNCTION_ARCCSCH", sympy.acoth: "AST_FUNCTION_ARCCOTH",
}
_RELS = {"<": "AST_RELATIONAL_LT", "<=": "AST_RELATIONAL_LEQ", ">": "AST_RELATIONAL_GT",
         ">=": "AST_RELATIONAL_GEQ", "==": "AST_RELATIONAL_EQ", "!=": "AST_RELATIONAL_NEQ"}


class MathWriter:
    """Convert sympy expressions to libsbml ASTNodes; ``time`` names the IR's time symbol."""

    def __init__(self, time: str, where: str = ""):
        self.ls = _libsbml()
        self.time = time
        self.where = where

    def node(self, kind: str, *children: Any) -> Any:
        n = self.ls.ASTNode(getattr(self.ls, kind))
        for c in children:
            n.addChild(c)
        return n

    def real(self, value: float) -> Any:
        n = self.ls.ASTNode(self.ls.AST_REAL)
        n.setValue(float(value))
        return n

    def __call__(self, e: Any) -> Any:  # noqa: C901 - one dispatch table
        ls = self.ls
        if isinstance(e, bool) or e is sympy.true or e is sympy.false:
            return self.node("AST_CONSTANT_TRUE" if bool(e) else "AST_CONSTANT_FALSE")
        if isinstance(e, sympy.logic.boolalg.BooleanTrue):
            return self.node("AST_CONSTANT_TRUE")
        if isinstance(e, sympy.logic.boolalg.BooleanFalse):
            return self.node("AST_CONSTANT_FALSE")
        if isinstance(e, (int, float)):
            e = sympy.sympify(e)
        if isinstance(e, sympy.Symbol):
            if e.name == self.time:
                n = ls.ASTNode(ls.AST_NAME_TIME)
                n.setName("time")
                return n
            n = ls.ASTNode(ls.AST_NAME)
            n.setName(e.name)
            return n
        if e is sympy.pi:
            return self.node("AST_CONSTANT_PI")
        if e is sympy.E:
            return self.node("AST_CONSTANT_E")
        if e is sympy.nan:
            return self.real(math.nan)
        if e is sympy.oo or e is sympy.zoo:
            return self.real(math.inf)
        if e is sympy.S.NegativeInfinity:
            return self.real(-math.inf)
        if isinstance(e, sympy.Integer):
            n = ls.ASTNode(ls.AST_INTEGER)
            n.setValue(int(e))
            return n
        if isinstance(e, sympy.Rational):
            return self.node("AST_DIVIDE", self(sympy.Integer(e.p)), self(sympy.Integer(e.q)))
        if isinstance(e, sympy.Float):
            return self.real(float(e))
        if isinstance(e, sympy.Add):
            return self._nary("AST_PLUS", e.args)
        if isinstance(e, sympy.Mul):
            if e.args[0] == -1:
                return self.node("AST_MINUS", self(sympy.Mul(*e.args[1:], evaluate=False)))
            num, den = [], []
            for a in e.args:
                if isinstance(a, sympy.Pow) and a.exp.is_number and a.exp.is_negative:
                    den.append(sympy.Pow(a.base, -a.exp, evaluate=False) if a.exp != -1 else a.base)
                else:
                    num.append(a)
            top = self._nary("AST_TIMES", num) if num else self(sympy.Integer(1))
            if den:
                return self.node("AST_DIVIDE", top, self._nary("AST_TIMES", den))
            return top
        if isinstance(e, sympy.Pow):
            if e.exp == -1:
                return self.node("AST_DIVIDE", self(sympy.Integer(1)), self(e.base))
            if e.exp == sympy.Rational(1, 2):
                return self.node("AST_FUNCTION_ROOT", self(e.base))
            return self.node("AST_POWER", self(e.base), self(e.exp))
        if isinstance(e, sympy.log):
            if len(e.args) == 2:
                return self.node("AST_DIVIDE", self.node("AST_FUNCTION_LN", self(e.args[0])),
                                 self.node("AST_FUNCTION_LN", self(e.args[1])))
            return self.node("AST_FUNCTION_LN", self(e.args[0]))
        if isinstance(e, sympy.Piecewise):
            n = self.node("AST_FUNCTION_PIECEWISE")
            for value, cond in e.args:
                if cond is sympy.true or cond == True:  # noqa: E712 - sympy truth
                    n.addChild(self(value))  # otherwise
                    return n
                n.addChild(self(value))
                n.addChild(self(cond))
            return n
        if isinstance(e, sympy.Rel):
            return self.node(_RELS[e.rel_op], self(e.lhs), self(e.rhs))
        if isinstance(e, sympy.And):
            return self._nary("AST_LOGICAL_AND", e.args)
        if isinstance(e, sympy.Or):
            return self._nary("AST_LOGICAL_OR", e.args)
        if isinstance(e, sympy.Xor):
            return self._nary("AST_LOGICAL_XOR", e.args)
        if isinstance(e, sympy.Not):
            return self.node("AST_LOGICAL_NOT", self(e.args[0]))
        if isinstance(e, sympy.Min):
            return self._nary("AST_FUNCTION_MIN", e.args)
        if isinstance(e, sympy.Max):
            return self._nary("AST_FUNCTION_MAX", e.args)
        if isinstance(e, sympy.Mod):  # floor modulo, as neuroplex's runtime computes it
            a, b = e.args
            return self(a - b * sympy.floor(a / b, evaluate=False))
        if isinstance(e, exprel):
            x = e.args[0]
            return self(sympy.Piecewise((sympy.Integer(1), sympy.Eq(x, 0)), ((sympy.exp(x) - 1) / x, True)))
        if isinstance(e, sympy.sign):
            x = e.args[0]
            return self(sympy.Piecewise((1, x > 0), (-1, x < 0), (0, True)))
        if isinstance(e, sympy.gamma):
            return self.node("AST_FUNCTION_FACTORIAL", self(e.args[0] - 1))
        for cls, kind in _FUNCS.items():
            if isinstance(e, cls):
                return self.node(kind, *[self(a) for a in e.args])
        if getattr(e, "is_number", False) and not e.free_symbols:
            return self.real(float(e.evalf()))
        raise ModelError(f"cannot write {type(e).__name__} expression {e}{' in ' + self.where if self.where else ''} as SBML MathML")

    def _nary(self, kind: str, args: Any) -> Any:
        args = list(args)
        if len(args) == 1:
            return self(args[0])
        return self.node(kind, *[self(a) for a in args])


# --------------------------------------------------------------------- writer
def _check(value: int, what: str) -> None:
    ls = _libsbml()
    if value != ls.LIBSBML_OPERATION_SUCCESS:
        raise ModelError(f"SBML writer: cannot set {what} ({ls.OperationReturnValue_toString(value)})")


def _number(expr: Any) -> float | None:
    """The float value of a constant expression, else None."""
    if isinstance(expr, (int, float)):
        return float(expr)
    if isinstance(expr, sympy.Basic) and not expr.free_symbols and getattr(expr, "is_number", False):
        try:
            return float(expr)
        except (TypeError, ValueError):
            return None
    return None


def build_document(model: ModelIR) -> Any:
    """The libsbml ``SBMLDocument`` (L3v2) for ``model``."""
    ls = _libsbml()
    if model.refractory is not None:
        raise ModelError(f"model {model.name!r}: SBML has no refractory period; cannot write it")
    model.validate()
    names = [*model.state_names, *model.parameter_names, *model.inputs, *model.assignments]
    bad = [n for n in names if not _SID.match(n)]
    if bad:
        raise ModelError(f"model {model.name!r}: {', '.join(bad[:5])} cannot be SBML ids")
    doc = ls.SBMLDocument(3, 2)
    m = doc.createModel()
    mid = re.sub(r"[^A-Za-z0-9_]", "_", model.name) or "model"
    _check(m.setId(mid if _SID.match(mid) else f"m_{mid}"), "model id")
    if model.name != m.getId():
        m.setName(model.name)
    _Writer(model, m).write()
    errors = doc.checkInternalConsistency()
    if errors:
        log = doc.getErrorLog()
        msgs = [log.getError(i).getMessage().strip() for i in range(log.getNumErrors())
                if log.getError(i).getSeverity() >= ls.LIBSBML_SEV_ERROR]
        if msgs:
            raise ModelError(f"model {model.name!r}: written SBML is invalid: {msgs[0]}")
    return doc


def _is_zero(expr: Any) -> bool:
    """Whether ``expr`` expands to zero, up to float rounding in its coefficients."""
    if not isinstance(expr, sympy.Basic):
        return expr == 0
    d = sympy.expand(expr)
    if d == 0:
        return True
    if d.is_number:
        return False
    coeffs = [abs(float(t.as_coeff_Mul()[0])) for t in sympy.Add.make_args(d)]
    return max(coeffs) <= 1e-14


class _Writer:
    """Decides how each IR name is declared (species, compartment, species reference,
    reaction or parameter) and writes the libsbml model.

    Species the SBML reader integrated as amounts are written back with their reactions
    when the IR's derivative is exactly the reactions' sum (times its conversion factor);
    otherwise the species gets a rate rule in its own units
    (``d[S]/dt = (dN/dt - [S] dV/dt) / V``), which states the same ODE."""

    def __init__(self, model: ModelIR, m: Any):
        self.ir, self.m = model, m
        info = model.metadata.get("sbml") or {}
        self.time = model.time.name
        self.states = {s.name: s for s in model.states}
        self.params = {p.name: p for p in model.parameters}
        self.assigns = dict(model.assignments)
        ir_names = set(self.states) | set(self.params) | set(self.assigns)
        self.species = {k: v for k, v in (info.get("species") or {}).items() if k in ir_names
                        or (v.get("amount_state") in ir_names)}
        self.compartments = [c for c in (info.get("compartments") or []) if c in ir_names]
        self.srefs = {r for r in (info.get("species_references") or []) if r in ir_names}
        self.reactions = {r: v for r, v in (info.get("reactions") or {}).items() if r in self.assigns}
        self.sbml_parameters = list(info.get("parameters") or [])
        self.amount_of: dict[str, str] = {}  # amount state -> species id
        self.subs: dict[sympy.Symbol, Any] = {}  # amount states of rate-rule species -> sid*V
        self.written_species: set[str] = set()  # species whose amount changes through reactions
        self.taken = {*ir_names, *model.inputs, *self.species, *self.srefs, *(info.get("ids") or [])}
        self._plan_species()

    # ------------------------------------------------------------------ plan
    def _plan_species(self) -> None:
        terms: dict[str, Any] = {}
        for rid, rx in self.reactions.items():
            for sign, key in ((-1, "reactants"), (1, "products")):
                for sid, stoich in rx.get(key, []):
                    st = self.stoichiometry(stoich)
                    terms[sid] = terms.get(sid, 0) + sign * st * sympy.Symbol(rid)
        for sid, sp in self.species.items():
            amt = sp.get("amount_state")
            if amt is None or amt not in self.states:
                continue
            self.amount_of[amt] = sid
            conc = sp.get("quantity") == "concentration" and amt != sid
            V = sympy.Symbol(sp["compartment"])
            shape_ok = (not conc and amt == sid) or (conc and sid in self.assigns
                                                     and _is_zero(self.assigns[sid] - sympy.Symbol(amt) / V))
            expected = 0 if sp.get("boundary_condition") else terms.get(sid, 0)
            if sp.get("conversion_factor"):
                expected = expected * sympy.Symbol(sp["conversion_factor"])
            ok = (shape_ok and _is_zero(self.ir.derivatives[amt] - expected))
            if ok:
                self.written_species.add(sid)
            elif conc:
                self.subs[sympy.Symbol(amt)] = sympy.Symbol(sid) * V

    def stoichiometry(self, text: str) -> Any:
        """A stoichiometry recorded by the reader (a number, a species-reference id or an
        L2 stoichiometryMath expression) as a sympy expression."""
        try:
            value = float(text)
        except ValueError:
            pass
        else:
            return sympy.Integer(int(value)) if value.is_integer() else sympy.Float(value, 17)
        names = {n: sympy.Symbol(n) for n in {*self.states, *self.params, *self.assigns, *self.srefs}}
        names[self.time] = self.ir.time
        return sympy.sympify(text, locals=names)

    def expr(self, e: Any) -> Any:
        if self.subs and isinstance(e, sympy.Basic):
            return e.xreplace(self.subs)
        return e

    def math(self, e: Any, where: str) -> Any:
        return MathWriter(self.time, where)(self.expr(e))

    # ----------------------------------------------------------------- write
    def write(self) -> None:
        ir, m = self.ir, self.m
        done: set[str] = set()
        self.event_targets = {v for ev in ir.events for v in ev.assignments}
        dims = {sp["compartment"]: 0.0 for sp in self.species.values() if sp.get("dimensionless_compartment")}
        for cid in self.compartments:
            c = m.createCompartment()
            c.setId(cid)
            c.setSpatialDimensions(dims.get(cid, 3.0))
            self._value(c, cid, "size")
            done.add(cid)
        if self.species and any(sp["compartment"] not in self.compartments for sp in self.species.values()):
            raise ModelError(f"model {ir.name!r}: a species' compartment is not in the model")
        for sid, sp in self.species.items():
            self._species(sid, sp)
            done.add(sid)
            done.add(sp.get("amount_state") or sid)
        for rid in self.srefs:
            done.add(rid)  # written inside their reactions
        for rid in self.reactions:
            done.add(rid)
        # parameters in the source file's order first (so reports list them alike), then the rest
        order = [n for n in self.sbml_parameters if n in self.params or n in self.states or n in self.assigns]
        order += [n for n in [*self.params, *self.states, *self.assigns] if n not in set(order)]
        for name in order:
            if name not in done:
                p = m.createParameter()
                p.setId(name)
                self._value(p, name, "value")
                done.add(name)
        for name, default in ir.inputs.items():
            p = m.createParameter()
            p.setId(name)
            p.setConstant(True)
            p.setValue(float(default))
        for rid, rx in self.reactions.items():
            self._reaction(rid, rx)
        for ev in ir.events:
            self._event(ev)

    def _value(self, obj: Any, name: str, attr: str) -> None:
        """Constant flag, initial value, initial assignment and rules of one IR name."""
        setter = {"size": "setSize", "value": "setValue", "stoichiometry": "setStoichiometry"}[attr]
        if name in self.params:
            obj.setConstant(True)
            getattr(obj, setter)(float(self.params[name].value))
        elif name in self.assigns:
            obj.setConstant(False)
            self._rule("assignment", name, self.assigns[name])
        else:
            self._state(obj, name, setter)

    def _state(self, obj: Any, name: str, setter: str | None, initial_as: Any = None) -> None:
        st = self.states[name]
        deriv = self.ir.derivatives[name]
        rule = not (_is_zero(deriv) and (_number(st.initial) is None or name in self.event_targets))
        obj.setConstant(False)
        value = _number(st.initial)
        if value is not None and not math.isnan(value):
            if setter is not None:
                getattr(obj, setter)(value)
            elif initial_as is not None:
                initial_as(value)
        elif value is None:
            ia = self.m.createInitialAssignment()
            ia.setSymbol(obj.getId())
            _check(ia.setMath(self.math(st.initial, f"initial value of {name}")), f"initial value of {name}")
        if rule:
            self._rule("rate", obj.getId(), deriv)

    def _rule(self, kind: str, var: str, expr: Any) -> None:
        r = self.m.createRateRule() if kind == "rate" else self.m.createAssignmentRule()
        r.setVariable(var)
        _check(r.setMath(self.math(expr, f"{kind} rule for {var}")), f"{kind} rule for {var}")

    def _species(self, sid: str, sp: dict[str, Any]) -> None:
        s = self.m.createSpecies()
        s.setId(sid)
        s.setCompartment(sp["compartment"])
        s.setHasOnlySubstanceUnits(bool(sp.get("has_only_substance_units", False)))
        s.setBoundaryCondition(bool(sp.get("boundary_condition", False)))
        conc = sp.get("quantity") == "concentration" and not sp.get("dimensionless_compartment")
        V = sympy.Symbol(sp["compartment"])
        amt = sp.get("amount_state")
        if amt is not None and amt in self.states:
            st = self.states[amt]
            s.setConstant(False)
            if sid in self.written_species and sp.get("conversion_factor"):
                s.setConversionFactor(sp["conversion_factor"])
            value = _number(st.initial)
            if value is not None:
                if not math.isnan(value):
                    s.setInitialAmount(value)
            else:
                ia = self.m.createInitialAssignment()
                ia.setSymbol(sid)
                init = st.initial / V if conc and amt != sid else st.initial
                _check(ia.setMath(self.math(init, f"initial value of {sid}")), f"initial value of {sid}")
            if sid not in self.written_species:
                deriv = self.ir.derivatives[amt]
                if conc and amt != sid:
                    dV = self.ir.derivatives.get(sp["compartment"], 0)
                    deriv = (deriv - sympy.Symbol(sid) * dV) / V
                self._rule("rate", sid, deriv)
            return
        if sid in self.assigns:
            s.setConstant(False)
            self._rule("assignment", sid, self.assigns[sid])
            return
        if sid in self.params:
            s.setConstant(True)
            s.setInitialConcentration(float(self.params[sid].value)) if conc else \
                s.setInitialAmount(float(self.params[sid].value))
            return
        st = self.states[sid]
        set_initial = s.setInitialConcentration if conc else s.setInitialAmount
        if bool(sp.get("constant")) and _is_zero(self.ir.derivatives[sid]) and sid not in self.event_targets:
            s.setConstant(True)
            value = _number(st.initial)
            if value is None:
                ia = self.m.createInitialAssignment()
                ia.setSymbol(sid)
                _check(ia.setMath(self.math(st.initial, f"initial value of {sid}")), f"initial value of {sid}")
            elif not math.isnan(value):
                set_initial(value)
            return
        self._state(s, sid, None, set_initial)

    def _reaction(self, rid: str, rx: dict[str, Any]) -> None:
        r = self.m.createReaction()
        r.setId(rid)
        r.setReversible(bool(rx.get("reversible", False)))
        for key, create in (("reactants", r.createReactant), ("products", r.createProduct)):
            for sid, stoich in rx.get(key, []):
                sp = self.species.get(sid, {})
                if sid not in self.written_species and not (sp.get("boundary_condition") and sid in self.species):
                    continue
                sr = create()
                sr.setSpecies(sid)
                st = self.stoichiometry(stoich)
                if stoich in self.srefs:
                    sr.setId(stoich)
                    self._value(sr, stoich, "stoichiometry")
                elif st.is_number:
                    sr.setStoichiometry(float(st))
                    sr.setConstant(True)
                else:  # an expression (L2 stoichiometryMath): an id with an assignment rule (L3)
                    srid = _fresh(f"{rid}_{sid}_stoichiometry", self.taken)
                    sr.setId(srid)
                    sr.setConstant(False)
                    self._rule("assignment", srid, st)
        listed = {sr.getSpecies() for lst in (r.getListOfReactants(), r.getListOfProducts()) for sr in lst}
        used = {x.name for x in getattr(self.expr(self.assigns[rid]), "free_symbols", ())}
        for mod in [*rx.get("modifiers", []), *sorted(used & set(self.species))]:
            if mod in self.species and mod not in listed:
                r.createModifier().setSpecies(mod)
                listed.add(mod)
        kl = r.createKineticLaw()
        _check(kl.setMath(self.math(self.assigns[rid], f"kinetic law of {rid}")), f"kinetic law of {rid}")

    def _event(self, ev: Any) -> None:
        if ev.terminal:
            raise ModelError(f"model {self.ir.name!r}: event {ev.name!r} is terminal, which SBML cannot state")
        e = self.m.createEvent()
        eid = re.sub(r"[^A-Za-z0-9_]", "_", ev.name)
        taken = {*self.states, *self.params, *self.assigns, *self.ir.inputs, *self.species, *self.srefs}
        e.setId(eid if _SID.match(eid) and eid not in taken and self.m.getEvent(eid) is None
                else f"event_{self.m.getNumEvents() + 1}")
        e.setUseValuesFromTriggerTime(bool(ev.use_values_from_trigger_time))
        where = f"event {ev.name}"
        trig = e.createTrigger()
        trig.setPersistent(bool(ev.persistent))
        trig.setInitialValue(bool(ev.initial_value))
        _check(trig.setMath(self.math(ev.trigger, f"trigger of {where}")), f"trigger of {where}")
        if ev.delay is not None:
            _check(e.createDelay().setMath(self.math(ev.delay, f"delay of {where}")), f"delay of {where}")
        if ev.priority is not None:
            _check(e.createPriority().setMath(self.math(ev.priority, f"priority of {where}")), f"priority of {where}")
        for var, expr in ev.assignments.items():
            target = var
            if var in self.amount_of:
                target = self.amount_of[var]
                sp = self.species[target]
                if sp.get("quantity") == "concentration" and var != target:
                    cid = sp["compartment"]
                    expr = expr / ev.assignments.get(cid, sympy.Symbol(cid))
            ea = e.createEventAssignment()
            ea.setVariable(target)
            _check(ea.setMath(self.math(expr, f"assignment to {target} in {where}")), f"assignment to {target} in {where}")


def _fresh(base: str, taken: set[str]) -> str:
    name, i = base, 1
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def write_sbml(model: ModelIR, path: str | os.PathLike | None = None) -> str:
    """SBML L3v2 text for ``model``; also written atomically to ``path`` when given."""
    ls = _libsbml()
    text = ls.writeSBMLToString(build_document(model))
    if path is not None:
        atomic_write_text(path, text)
    return text
