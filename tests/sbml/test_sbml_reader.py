"""SBML reader: each feature read into the IR and simulated against its closed form; bad input
and unsupported features rejected with the element id, the feature and libsbml line numbers."""
from __future__ import annotations

import math
import warnings

import pytest
import torch

pytest.importorskip("libsbml")

from neuroplex.sbml.errors import SBMLImportError  # noqa: E402
from neuroplex.sbml.reader import SBMLModel, read_sbml, read_sbml_string  # noqa: E402

def l3(body: str, level: int = 3, version: int = 2, extra_ns: str = "") -> str:
    ns = f"http://www.sbml.org/sbml/level{level}/version{version}" + ("/core" if level == 3 else "")
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<sbml xmlns="{ns}" level="{level}" version="{version}"{extra_ns}>\n'
            f'<model id="m">\n{body}\n</model>\n</sbml>\n')


def math_(text: str) -> str:
    return f'<math xmlns="http://www.w3.org/1998/Math/MathML">{text}</math>'


def run(model: SBMLModel, t1: float, variables: list[str], points: int = 11, quantity: dict | None = None):
    from neuroplex.sbml.program import SBMLProgram
    from neuroplex.sbml.runner import run as run_program
    from neuroplex.settings import StepControl

    outputs = [(v, model.value_expression(v, (quantity or {}).get(v))) for v in variables]
    sol = run_program(SBMLProgram(model, outputs), (0.0, t1), t_eval=torch.linspace(0, t1, points, dtype=torch.float64),
                      control=StepControl(rtol=1e-10, atol=1e-12))
    assert sol.ok
    return {v: sol.ys[0, :, i] for i, v in enumerate(sol.names)}, torch.linspace(0, t1, points, dtype=torch.float64)


DECAY = """
<listOfCompartments><compartment id="C" size="2" constant="true"/></listOfCompartments>
<listOfSpecies>
 <species id="S" compartment="C" initialConcentration="3" hasOnlySubstanceUnits="false" boundaryCondition="false" constant="false"/>
 <species id="A" compartment="C" initialAmount="5" hasOnlySubstanceUnits="true" boundaryCondition="false" constant="false"/>
</listOfSpecies>
<listOfParameters><parameter id="k" value="0.5" constant="true"/></listOfParameters>
<listOfReactions>
 <reaction id="R" reversible="false">
  <listOfReactants><speciesReference species="S" stoichiometry="1" constant="true"/></listOfReactants>
  <listOfProducts><speciesReference species="A" stoichiometry="2" constant="true"/></listOfProducts>
  <kineticLaw>""" + math_("<ci>k</ci>") + """</kineticLaw>
 </reaction>
</listOfReactions>
"""


def test_amounts_and_concentrations_follow_sbml() -> None:
    model = read_sbml_string(l3(DECAY))
    assert isinstance(model, SBMLModel)
    meta = model.metadata["sbml"]
    assert (meta["level"], meta["version"]) == (3, 2)
    assert meta["species"]["S"]["quantity"] == "concentration" and meta["species"]["A"]["quantity"] == "amount"
    out, t = run(model, 4.0, ["S", "A"])
    # the reaction consumes k amount/time: [S] = (3*2 - k t)/2, A gains 2 k per time
    assert torch.allclose(out["S"], (6 - 0.5 * t) / 2, rtol=1e-9)
    assert torch.allclose(out["A"], 5 + 2 * 0.5 * t, rtol=1e-9)
    amounts, _ = run(model, 4.0, ["S", "A"], quantity={"S": "amount", "A": "concentration"})
    assert torch.allclose(amounts["S"], 6 - 0.5 * t, rtol=1e-9)
    assert torch.allclose(amounts["A"], (5 + t) / 2, rtol=1e-9)


def test_conversion_factor_local_parameter_and_function_definition() -> None:
    body = """
<listOfFunctionDefinitions><functionDefinition id="twice">""" + math_(
        "<lambda><bvar><ci>x</ci></bvar><apply><times/><cn>2</cn><ci>x</ci></apply></lambda>") + """</functionDefinition>
</listOfFunctionDefinitions>
<listOfCompartments><compartment id="C" size="1" constant="true"/></listOfCompartments>
<listOfSpecies>
 <species id="S" compartment="C" initialAmount="0" hasOnlySubstanceUnits="true" boundaryCondition="false"
   constant="false" conversionFactor="cf"/>
</listOfSpecies>
<listOfParameters><parameter id="k" value="100" constant="true"/><parameter id="cf" value="3" constant="true"/></listOfParameters>
<listOfReactions>
 <reaction id="R" reversible="false">
  <listOfProducts><speciesReference species="S" stoichiometry="1" constant="true"/></listOfProducts>
  <kineticLaw>""" + math_("<apply><ci>twice</ci><ci>k</ci></apply>") + """
   <listOfLocalParameters><localParameter id="k" value="0.25"/></listOfLocalParameters>
  </kineticLaw>
 </reaction>
</listOfReactions>"""
    model = read_sbml_string(l3(body))
    assert "R_k" in model.parameter_names and model.metadata["sbml"]["local_parameters"]["R_k"] == ["R", "k"]
    out, t = run(model, 2.0, ["S"])
    assert torch.allclose(out["S"], 3 * 2 * 0.25 * t, atol=1e-12)  # cf * twice(local k)


def test_variable_compartment_keeps_amount_and_rate_of() -> None:
    body = """
<listOfCompartments><compartment id="V" size="1" constant="false"/></listOfCompartments>
<listOfSpecies>
 <species id="S" compartment="V" initialConcentration="2" hasOnlySubstanceUnits="false" boundaryCondition="false" constant="false"/>
</listOfSpecies>
<listOfParameters><parameter id="dS" constant="false"/></listOfParameters>
<listOfRules>
 <rateRule variable="V">""" + math_("<cn>1</cn>") + """</rateRule>
 <assignmentRule variable="dS">""" + math_(
        '<apply><csymbol encoding="text" definitionURL="http://www.sbml.org/sbml/symbols/rateOf">rateOf</csymbol><ci>S</ci></apply>') + """</assignmentRule>
</listOfRules>"""
    model = read_sbml_string(l3(body))
    out, t = run(model, 3.0, ["S", "V", "dS"])
    assert torch.allclose(out["V"], 1 + t)
    assert torch.allclose(out["S"], 2 / (1 + t), rtol=1e-9)  # amount 2 spread over V
    assert torch.allclose(out["dS"], -2 / (1 + t) ** 2, rtol=1e-8)


def test_ids_named_like_constants_and_time() -> None:
    params = "".join(f'<parameter id="{p}" value="{v}" constant="true"/>'
                     for p, v in [("time", 5), ("inf", 2), ("nan", 3), ("pi", 7), ("true", 11), ("false", 13), ("t", 17)])
    body = f"""<listOfParameters>{params}<parameter id="x" constant="false"/></listOfParameters>
<listOfRules><assignmentRule variable="x">""" + math_(
        "<apply><plus/><ci>time</ci><ci>inf</ci><ci>nan</ci><ci>pi</ci><ci>true</ci><ci>false</ci><ci>t</ci>"
        '<csymbol encoding="text" definitionURL="http://www.sbml.org/sbml/symbols/time">now</csymbol>'
        "<pi/><notanumber/></apply>") + "</assignmentRule></listOfRules>"
    model = read_sbml_string(l3(body))
    assert model.time.name not in {"time", "inf", "nan", "pi", "true", "false", "t"}
    out, t = run(model, 1.0, ["x"])
    assert torch.isnan(out["x"]).all()
    body2 = body.replace("<pi/><notanumber/>", "<pi/>")
    out, t = run(read_sbml_string(l3(body2)), 1.0, ["x"])
    assert torch.allclose(out["x"], 5 + 2 + 3 + 7 + 11 + 13 + 17 + t + math.pi)


def test_piecewise_logic_and_species_reference_stoichiometry() -> None:
    body = """
<listOfCompartments><compartment id="C" size="1" constant="true"/></listOfCompartments>
<listOfSpecies><species id="S" compartment="C" initialAmount="0" hasOnlySubstanceUnits="true" boundaryCondition="false" constant="false"/></listOfSpecies>
<listOfParameters><parameter id="y" constant="false"/><parameter id="n" value="1" constant="true"/></listOfParameters>
<listOfInitialAssignments><initialAssignment symbol="sr">""" + math_("<apply><times/><cn>3</cn><ci>n</ci></apply>") + """</initialAssignment></listOfInitialAssignments>
<listOfRules><assignmentRule variable="y">""" + math_(
        "<piecewise><piece><cn>1</cn><apply><and/><apply><gt/><csymbol encoding='text' "
        "definitionURL='http://www.sbml.org/sbml/symbols/time'>t</csymbol><cn>1</cn></apply>"
        "<apply><not/><apply><geq/><ci>S</ci><cn>100</cn></apply></apply></apply></piece>"
        "<otherwise><cn>0</cn></otherwise></piecewise>") + """</assignmentRule></listOfRules>
<listOfReactions><reaction id="R" reversible="false">
 <listOfProducts><speciesReference id="sr" species="S" stoichiometry="1" constant="true"/></listOfProducts>
 <kineticLaw>""" + math_("<cn>1</cn>") + """</kineticLaw></reaction></listOfReactions>"""
    model = read_sbml_string(l3(body))
    out, t = run(model, 2.0, ["S", "y"], points=5)
    assert torch.allclose(out["S"], 3 * t)  # stoichiometry 3 from the initial assignment
    assert out["y"].tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]


def test_level2_stoichiometry_math(tmp_path) -> None:
    body = """
<listOfCompartments><compartment id="C" size="1"/></listOfCompartments>
<listOfSpecies><species id="S" compartment="C" initialAmount="0" hasOnlySubstanceUnits="true"/></listOfSpecies>
<listOfParameters><parameter id="k" value="2"/></listOfParameters>
<listOfReactions><reaction id="R" reversible="false">
 <listOfProducts><speciesReference species="S"><stoichiometryMath>""" + math_("<ci>k</ci>") + """</stoichiometryMath></speciesReference></listOfProducts>
 <kineticLaw>""" + math_("<cn>1</cn>") + """</kineticLaw></reaction></listOfReactions>"""
    path = tmp_path / "l2.xml"
    path.write_text(l3(body, 2, 4))
    model = read_sbml(path)
    assert model.metadata["source"] == str(path) and model.metadata["sbml"]["level"] == 2
    out, t = run(model, 1.0, ["S"])
    assert torch.allclose(out["S"], 2 * t)


def test_missing_initial_values_take_roadrunners_defaults_with_a_warning() -> None:
    # a species without initial amount/concentration starts at 0, a compartment without size
    # has size 1 (libroadrunner's defaults), and the warning names each one
    text = l3(DECAY.replace(' size="2"', "").replace(' initialAmount="5"', ""))
    with pytest.warns(UserWarning, match=r"compartment 'C' \(size 1\), species 'A' \(0\)"):
        model = read_sbml_string(text)
    out, t = run(model, 4.0, ["S", "A"])
    assert torch.allclose(out["S"], 3 - 0.5 * t, rtol=1e-9)
    assert torch.allclose(out["A"], 2 * 0.5 * t, rtol=1e-9, atol=1e-12)


def test_initial_assignment_counts_as_a_value() -> None:
    ia = ('<listOfInitialAssignments><initialAssignment symbol="k">' + math_("<cn>0.25</cn>")
          + "</initialAssignment></listOfInitialAssignments>")
    text = l3(DECAY.replace('<parameter id="k" value="0.5"', '<parameter id="k"') + ia)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = read_sbml_string(text)
    out, t = run(model, 4.0, ["S"])
    assert torch.allclose(out["S"], (6 - 0.25 * t) / 2, rtol=1e-9)


# ----------------------------------------------------------------------------- errors
def test_missing_file_and_malformed_xml(tmp_path) -> None:
    with pytest.raises(SBMLImportError, match="no such SBML file"):
        read_sbml(tmp_path / "absent.xml")
    bad = tmp_path / "bad.xml"
    bad.write_text(l3(DECAY).replace("</listOfSpecies>", "</listOfSpecie>"))
    with pytest.raises(SBMLImportError, match=r"bad\.xml:\d+:"):
        read_sbml(bad)


def test_consistency_error_names_line() -> None:
    text = l3(DECAY.replace('species="A"', 'species="Nope"'))
    with pytest.raises(SBMLImportError, match=r"<string>:\d+: .*Nope|<string>:\d+:") as info:
        read_sbml_string(text)
    assert "inconsistent SBML" in str(info.value) or "invalid SBML" in str(info.value)


@pytest.mark.parametrize("snippet, words", [
    ('<listOfParameters><parameter id="x" value="1" constant="false"/></listOfParameters>'
     '<listOfRules><algebraicRule metaid="alg1">' + math_("<apply><minus/><ci>x</ci><cn>1</cn></apply>")
     + "</algebraicRule></listOfRules>", ["algebraic rule", "alg1"]),
    ('<listOfParameters><parameter id="x" value="1" constant="false"/></listOfParameters>'
     '<listOfRules><assignmentRule variable="x">' + math_(
         '<apply><csymbol encoding="text" definitionURL="http://www.sbml.org/sbml/symbols/delay">delay</csymbol>'
         '<cn>1</cn><cn>0.5</cn></apply>') + "</assignmentRule></listOfRules>", ["'x'", "delay"]),
])
def test_unsupported_features_named(snippet: str, words: list[str]) -> None:
    with pytest.raises(SBMLImportError) as info:
        read_sbml_string(l3(snippet))
    for w in words:
        assert w in str(info.value)


def test_parameter_without_value_is_named() -> None:
    text = l3(DECAY.replace('<parameter id="k" value="0.5"', '<parameter id="k"'))
    with pytest.raises(SBMLImportError, match=r"<string>: parameter 'k' has no value"):
        read_sbml_string(text)


def test_fast_reaction_rejected() -> None:
    text = l3(DECAY.replace('reversible="false"', 'reversible="false" fast="true"'), 3, 1)
    with pytest.raises(SBMLImportError, match="reaction 'R' is fast"):
        read_sbml_string(text)


def test_required_packages_rejected() -> None:
    ns = ' xmlns:qual="http://www.sbml.org/sbml/level3/version1/qual/version1" qual:required="true"'
    text = l3(DECAY.replace('reversible="false"', 'reversible="false" fast="false"'), 3, 1, extra_ns=ns)
    with pytest.raises(SBMLImportError, match="package.*qual.*not support"):
        read_sbml_string(text)


def test_namespace_level_mismatch_is_an_error_not_a_crash() -> None:
    text = l3(DECAY).replace('level="3" version="2"', 'level="2" version="4"')
    with pytest.raises(SBMLImportError, match=r"<string>:2: the namespace .* does not match level 2 version 4"):
        read_sbml_string(text)
