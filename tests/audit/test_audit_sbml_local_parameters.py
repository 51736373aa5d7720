"""An SBML Level 3 local parameter is one IR parameter, and setting it by that name works.

Before: libsbml lists a Level 3 kinetic law's local parameters both as ``getListOfParameters``
and ``getListOfLocalParameters``, and the reader took both lists, so local ``k`` of reaction
``R`` became two parameters, ``R_k`` (unused) and ``R_k_1`` (the one the rate reads):
``params={"R_k": 0.9}`` -- the first name ``parameter_names`` shows -- and that column of a
params tensor changed nothing, silently."""
from __future__ import annotations

import libsbml
import pytest
import torch

import neuroplex as nx
from neuroplex.sbml.reader import read_sbml_string


def _decay_l3() -> str:
    doc = libsbml.SBMLDocument(3, 2)
    model = doc.createModel()
    model.setId("decay")
    comp = model.createCompartment()
    comp.setId("C"), comp.setSize(1.0), comp.setConstant(True)
    species = model.createSpecies()
    species.setId("A"), species.setCompartment("C"), species.setInitialConcentration(1.0)
    species.setHasOnlySubstanceUnits(False), species.setBoundaryCondition(False), species.setConstant(False)
    reaction = model.createReaction()
    reaction.setId("R"), reaction.setReversible(False)
    reactant = reaction.createReactant()
    reactant.setSpecies("A"), reactant.setStoichiometry(1), reactant.setConstant(True)
    law = reaction.createKineticLaw()
    local = law.createLocalParameter()
    local.setId("k"), local.setValue(0.3)
    law.setMath(libsbml.parseL3Formula("k * A * C"))
    return libsbml.writeSBMLToString(doc)


def test_one_parameter_per_local_parameter():
    model = read_sbml_string(_decay_l3())
    assert model.parameter_names == ["C", "R_k"]
    assert model.metadata["sbml"]["local_parameters"] == {"R_k": ["R", "k"]}


@pytest.mark.parametrize("params", [{"R_k": 0.9}, {"R.k": 0.9}, {"k": 0.9}])
def test_setting_the_local_parameter_changes_the_rate(params):
    model = read_sbml_string(_decay_l3())
    sol = nx.simulate(model, 2.0, n_points=3, params=params, rtol=1e-10, atol=1e-12)
    assert torch.allclose(sol["A"][0], torch.exp(-0.9 * torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)),
                          rtol=1e-7)
