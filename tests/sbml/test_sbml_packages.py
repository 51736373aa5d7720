"""SBML packages the way libsbml handles them (issue 20): comp flattened by libsbml's
converter and simulated, optional packages ignored with a warning."""
from __future__ import annotations

import warnings

import pytest
import torch

import neuroplex
from neuroplex.sbml.reader import read_sbml_string

COMP = """<?xml version="1.0" encoding="UTF-8"?>
<sbml xmlns="http://www.sbml.org/sbml/level3/version1/core" xmlns:comp="http://www.sbml.org/sbml/level3/version1/comp/version1" level="3" version="1" comp:required="true">
  <model id="top">
    <listOfCompartments><compartment id="C" size="1" constant="true"/></listOfCompartments>
    <comp:listOfSubmodels>
      <comp:submodel comp:id="A" comp:modelRef="decay"/>
      <comp:submodel comp:id="B" comp:modelRef="decay"/>
    </comp:listOfSubmodels>
  </model>
  <comp:listOfModelDefinitions>
    <comp:modelDefinition id="decay">
      <listOfCompartments><compartment id="V" size="1" constant="true"/></listOfCompartments>
      <listOfSpecies><species id="S" compartment="V" initialAmount="5" hasOnlySubstanceUnits="true" boundaryCondition="false" constant="false"/></listOfSpecies>
      <listOfParameters><parameter id="k" value="0.5" constant="true"/></listOfParameters>
      <listOfReactions>
        <reaction id="R" reversible="false" fast="false">
          <listOfReactants><speciesReference species="S" stoichiometry="1" constant="true"/></listOfReactants>
          <kineticLaw><math xmlns="http://www.w3.org/1998/Math/MathML"><apply><times/><ci>k</ci><ci>S</ci></apply></math></kineticLaw>
        </reaction>
      </listOfReactions>
    </comp:modelDefinition>
  </comp:listOfModelDefinitions>
</sbml>
"""

FBC_OPTIONAL = COMP.split("<model")[0].replace(
    'xmlns:comp="http://www.sbml.org/sbml/level3/version1/comp/version1"',
    'xmlns:fbc="http://www.sbml.org/sbml/level3/version1/fbc/version2"').replace(
    'comp:required="true"', 'fbc:required="false"') + """
  <model id="decay" fbc:strict="false">
    <listOfCompartments><compartment id="V" size="1" constant="true"/></listOfCompartments>
    <listOfSpecies><species id="S" compartment="V" initialAmount="5" hasOnlySubstanceUnits="true" boundaryCondition="false" constant="false" fbc:chemicalFormula="C6H12O6"/></listOfSpecies>
    <listOfParameters><parameter id="k" value="0.5" constant="true"/></listOfParameters>
    <listOfReactions>
      <reaction id="R" reversible="false" fast="false">
        <listOfReactants><speciesReference species="S" stoichiometry="1" constant="true"/></listOfReactants>
        <kineticLaw><math xmlns="http://www.w3.org/1998/Math/MathML"><apply><times/><ci>k</ci><ci>S</ci></apply></math></kineticLaw>
      </reaction>
    </listOfReactions>
  </model>
</sbml>
"""


def test_comp_is_flattened_and_simulated(tmp_path):
    path = tmp_path / "comp.xml"
    path.write_text(COMP)
    model = neuroplex.load_model(path)
    assert model.state_names == ["A__S", "B__S"]  # libsbml's flattened ids
    slow = model.with_parameters(A__k=1.0)
    for solver in ("torch", "roadrunner"):
        if solver == "roadrunner":
            pytest.importorskip("roadrunner")
        sol = neuroplex.simulate(slow, (0, 2), solver=solver, rtol=1e-10, atol=1e-12)
        want = torch.tensor([5 * torch.exp(torch.tensor(-2.0)).item(), 5 * torch.exp(torch.tensor(-1.0)).item()],
                            dtype=torch.float64)
        assert torch.allclose(sol.ys[0, -1], want, rtol=1e-7), solver


def test_optional_package_is_ignored_with_a_warning():
    with pytest.warns(UserWarning, match="ignoring the optional SBML package.*fbc"):
        model = read_sbml_string(FBC_OPTIONAL)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sol = neuroplex.simulate(model, (0, 2))
    assert float(sol["S"][0, -1]) == pytest.approx(5 * torch.exp(torch.tensor(-1.0)).item(), rel=1e-7)


def test_consistency_error_is_one_line_naming_element_id_and_line():
    from neuroplex.sbml.errors import SBMLImportError

    bad = """<?xml version="1.0" encoding="UTF-8"?>
<sbml xmlns="http://www.sbml.org/sbml/level3/version2/core" level="3" version="2">
  <model id="bad">
    <listOfCompartments><compartment id="C" size="1" constant="true"/></listOfCompartments>
    <listOfSpecies><species id="X" compartment="Nope" initialAmount="1" hasOnlySubstanceUnits="true" boundaryCondition="false" constant="false"/></listOfSpecies>
  </model>
</sbml>
"""
    with pytest.raises(SBMLImportError) as info:
        read_sbml_string(bad)
    text = str(info.value)
    assert "<string>:5:" in text and "'X'" in text and "Nope" in text and "Reference" not in text
    assert "libsbml:" in "".join(getattr(info.value, "__notes__", []))  # the full text, for --debug


def test_sbml_info_lists_consistency_problems(tmp_path):
    from click.testing import CliRunner

    from neuroplex.cli import build_cli

    path = tmp_path / "comp.xml"
    path.write_text(COMP)
    res = CliRunner().invoke(build_cli(), ["sbml", "info", str(path)])
    assert res.exit_code == 0, res.output
    assert "consistency" in res.output and "(libsbml)" in res.output
    res = CliRunner().invoke(build_cli(), ["sbml", "info", str(path), "--json"])
    import json

    problems = json.loads(res.output)["consistency"]
    assert all({"severity", "line", "id", "summary", "message"} <= set(p) for p in problems)
