"""0-D compartments (spatialDimensions="0") with sizes other than 1.

SBML Level 3: spatialDimensions carries no meaning for simulation, so a 0-D compartment is sized
like any other and its species follow hasOnlySubstanceUnits (a species given as a concentration in a
compartment of size 2 holds twice that amount). Level 2: a 0-D compartment has no size and the
species in it are amounts. Every model below runs in reactions, rules or events; its amounts and
concentrations are checked against libroadrunner, on the file and on what ``write_sbml`` writes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sympy

pytest.importorskip("libsbml")
pytest.importorskip("roadrunner")

from neuroplex.sbml.reader import read_sbml, read_sbml_string  # noqa: E402
from neuroplex.sbml.testsuite import CaseSettings, simulate_neuroplex, simulate_roadrunner  # noqa: E402
from neuroplex.sbml.writer import write_sbml  # noqa: E402

pytestmark = pytest.mark.roadrunner

RTOL, ATOL = 1e-6, 1e-9


def sbml(body: str, level: int = 3, version: int = 2) -> str:
    ns = f"http://www.sbml.org/sbml/level{level}/version{version}" + ("/core" if level == 3 else "")
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<sbml xmlns="{ns}" level="{level}" version="{version}">\n'
            f'<model id="zero_d">\n{body}\n</model>\n</sbml>\n')


def math_(text: str) -> str:
    return f'<math xmlns="http://www.w3.org/1998/Math/MathML">{text}</math>'


def species(sid: str, comp: str, *, conc: float | None = None, amount: float | None = None,
            hosu: bool = False, level: int = 3) -> str:
    init = f'initialConcentration="{conc}"' if conc is not None else (
        f'initialAmount="{amount}"' if amount is not None else "")
    const = ' constant="false"' if level == 3 else ""
    return (f'<species id="{sid}" compartment="{comp}" {init} hasOnlySubstanceUnits="{str(hosu).lower()}" '
            f'boundaryCondition="false"{const}/>')


def reaction(rid: str, reactants: list[str], products: list[str], law: str) -> str:
    refs = lambda ids: "".join(f'<speciesReference species="{s}" stoichiometry="1" constant="true"/>' for s in ids)
    return (f'<reaction id="{rid}" reversible="false">'
            + (f"<listOfReactants>{refs(reactants)}</listOfReactants>" if reactants else "")
            + (f"<listOfProducts>{refs(products)}</listOfProducts>" if products else "")
            + f"<kineticLaw>{math_(law)}</kineticLaw></reaction>")


def times(*factors: str) -> str:
    return "<apply><times/>" + "".join(f"<ci>{f}</ci>" for f in factors) + "</apply>"


# reactions: a 0-D compartment of size 2 holding a concentration species, an amount species and a
# product, next to a 3-D compartment of size 0.5 that S1 also reacts into
REACTIONS = sbml(f"""
<listOfCompartments>
 <compartment id="C" spatialDimensions="0" size="2" constant="true"/>
 <compartment id="D" spatialDimensions="3" size="0.5" constant="true"/>
</listOfCompartments>
<listOfSpecies>
 {species("S1", "C", conc=3)}
 {species("S2", "C", amount=1, hosu=True)}
 {species("S3", "C", conc=0)}
 {species("S4", "D", conc=0.25)}
</listOfSpecies>
<listOfParameters>
 <parameter id="k1" value="0.3" constant="true"/><parameter id="k2" value="0.2" constant="true"/>
 <parameter id="k3" value="0.1" constant="true"/>
</listOfParameters>
<listOfReactions>
 {reaction("R1", ["S1"], ["S3"], times("k1", "S1", "C"))}
 {reaction("R2", ["S1", "S2"], ["S3"], times("k2", "S1", "S2"))}
 {reaction("R3", ["S1"], ["S4"], times("k3", "S1", "C"))}
</listOfReactions>""")

# rules: a rate rule on a concentration, an assignment rule on a species and on a parameter that
# reads the compartment size, an initial assignment of a concentration, in a 0-D compartment of 0.5
RULES = sbml(f"""
<listOfCompartments><compartment id="C" spatialDimensions="0" size="0.5" constant="true"/></listOfCompartments>
<listOfSpecies>
 {species("A", "C", conc=2)}
 {species("B", "C", conc=0)}
 {species("X", "C")}
 {species("Y", "C", amount=0, hosu=True)}
</listOfSpecies>
<listOfParameters>
 <parameter id="k" value="0.4" constant="true"/><parameter id="total" constant="false"/>
</listOfParameters>
<listOfInitialAssignments>
 <initialAssignment symbol="X">{math_("<cn>4</cn>")}</initialAssignment>
</listOfInitialAssignments>
<listOfRules>
 <rateRule variable="A">{math_("<apply><times/><cn>-1</cn><ci>k</ci><ci>A</ci></apply>")}</rateRule>
 <assignmentRule variable="B">{math_("<apply><times/><cn>3</cn><ci>A</ci></apply>")}</assignmentRule>
 <assignmentRule variable="total">{math_("<apply><plus/>" + times("X", "C") + "<ci>Y</ci></apply>")}</assignmentRule>
</listOfRules>
<listOfReactions>{reaction("R", ["X"], ["Y"], times("k", "X", "C"))}</listOfReactions>""")

# events: a 0-D compartment of size 2 resized to 4 at t = 1 (amounts stay, concentrations halve), a
# concentration set at t = 2 and an amount species bumped at t = 2.5
EVENTS = sbml(f"""
<listOfCompartments><compartment id="C" spatialDimensions="0" size="2" constant="false"/></listOfCompartments>
<listOfSpecies>
 {species("S", "C", conc=1.5)}
 {species("T", "C", conc=0)}
 {species("N", "C", amount=0.5, hosu=True)}
</listOfSpecies>
<listOfParameters><parameter id="k" value="0.5" constant="true"/></listOfParameters>
<listOfReactions>{reaction("R", ["S"], ["T"], times("k", "S", "C"))}</listOfReactions>
<listOfEvents>
 <event id="grow" useValuesFromTriggerTime="true">
  <trigger initialValue="false" persistent="true">{math_("<apply><geq/><csymbol encoding='text' definitionURL='http://www.sbml.org/sbml/symbols/time'>t</csymbol><cn>1</cn></apply>")}</trigger>
  <listOfEventAssignments><eventAssignment variable="C">{math_("<cn>4</cn>")}</eventAssignment></listOfEventAssignments>
 </event>
 <event id="refill" useValuesFromTriggerTime="true">
  <trigger initialValue="false" persistent="true">{math_("<apply><geq/><csymbol encoding='text' definitionURL='http://www.sbml.org/sbml/symbols/time'>t</csymbol><cn>2</cn></apply>")}</trigger>
  <listOfEventAssignments><eventAssignment variable="S">{math_("<cn>1</cn>")}</eventAssignment></listOfEventAssignments>
 </event>
 <event id="bump" useValuesFromTriggerTime="true">
  <trigger initialValue="false" persistent="true">{math_("<apply><geq/><csymbol encoding='text' definitionURL='http://www.sbml.org/sbml/symbols/time'>t</csymbol><cn>2.5</cn></apply>")}</trigger>
  <listOfEventAssignments><eventAssignment variable="N">{math_("<apply><plus/><ci>N</ci><cn>1</cn></apply>")}</eventAssignment></listOfEventAssignments>
 </event>
</listOfEvents>""")

# Level 2: the 0-D compartment has no size; S is an amount although hasOnlySubstanceUnits is false
LEVEL2 = sbml(f"""
<listOfCompartments><compartment id="C" spatialDimensions="0"/></listOfCompartments>
<listOfSpecies>
 {species("S", "C", amount=2, level=2)}
 {species("P", "C", amount=0, level=2)}
</listOfSpecies>
<listOfParameters><parameter id="k" value="0.7"/></listOfParameters>
<listOfReactions>{reaction("R", ["S"], ["P"], times("k", "S"))}</listOfReactions>""".replace(' constant="true"/>', "/>"),
              level=2, version=4)

CASES = {
    "reactions": (REACTIONS, ["S1", "S2", "S3", "S4"], [], 4.0),
    "rules": (RULES, ["A", "B", "X", "Y"], ["total"], 3.0),
    "events": (EVENTS, ["S", "T", "N"], ["C"], 4.0),
    "level2": (LEVEL2, ["S", "P"], [], 3.0),
}


def settings(species_ids: list[str], others: list[str], quantity: str, duration: float) -> CaseSettings:
    return CaseSettings(start=0.0, duration=duration, steps=40, variables=[*species_ids, *others], absolute=1e-10,
                        relative=1e-8, amount=species_ids if quantity == "amount" else [],
                        concentration=species_ids if quantity == "concentration" else [])


def assert_close(ours: dict[str, np.ndarray], ref: dict[str, np.ndarray], what: str) -> None:
    for v, expected in ref.items():
        np.testing.assert_allclose(ours[v], expected, rtol=RTOL, atol=ATOL, err_msg=f"{what}: {v}")


@pytest.mark.parametrize("quantity", ["amount", "concentration"])
@pytest.mark.parametrize("case", list(CASES))
def test_zero_d_compartment_matches_roadrunner(case: str, quantity: str, tmp_path: Path) -> None:
    text, species_ids, others, duration = CASES[case]
    path = tmp_path / f"{case}.xml"
    path.write_text(text)
    cfg = settings(species_ids, others, quantity, duration)
    reference = simulate_roadrunner(path, cfg)
    assert_close(simulate_neuroplex(path, cfg), reference, f"{case} ({quantity})")
    written = tmp_path / f"{case}-written.xml"
    write_sbml(read_sbml(path), written)
    assert_close(simulate_roadrunner(written, cfg), reference, f"{case} ({quantity}), written SBML in roadrunner")
    if quantity == "concentration":  # reading back once is enough (each neuroplex run compiles)
        assert_close(simulate_neuroplex(written, cfg), reference, f"{case} ({quantity}), written SBML read back")


def test_level3_zero_d_species_starts_at_concentration_times_size() -> None:
    """The reported defect: [S1] = 3 in a 0-D compartment of size 2 is an amount of 6."""
    model = read_sbml_string(REACTIONS)
    sp = model.metadata["sbml"]["species"]
    assert sp["S1"]["quantity"] == "concentration" and sp["S2"]["quantity"] == "amount"
    assert not sp["S1"]["dimensionless_compartment"]
    sizes = {p.name: p.value for p in model.parameters}
    assert sizes["C"] == 2.0
    initial = {s.name: s.initial for s in model.states}
    assert float(initial[sp["S1"]["amount_state"]].subs(sympy.Symbol("C"), sizes["C"])) == pytest.approx(6.0)


def test_level2_zero_d_species_are_amounts() -> None:
    model = read_sbml_string(LEVEL2)
    sp = model.metadata["sbml"]["species"]["S"]
    assert sp["quantity"] == "amount" and sp["dimensionless_compartment"]
    assert dict((p.name, p.value) for p in model.parameters)["C"] == 1.0


def test_level3_zero_d_compartment_without_size_defaults_to_one_with_a_warning() -> None:
    text = sbml(f"""
<listOfCompartments><compartment id="C" spatialDimensions="0" constant="true"/></listOfCompartments>
<listOfSpecies>{species("S", "C", amount=3)}</listOfSpecies>""")
    with pytest.warns(UserWarning, match="compartment 'C' \\(size 1\\)"):
        model = read_sbml_string(text)
    assert dict((p.name, p.value) for p in model.parameters)["C"] == 1.0
    assert model.metadata["sbml"]["species"]["S"]["quantity"] == "concentration"
