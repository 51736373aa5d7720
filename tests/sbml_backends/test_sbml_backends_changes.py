"""Every change made on an SBML model through the API reaches every solver (issue 20, item 1):
torch, scipy and roadrunner agree after changing parameters (global, local, compartment),
initial values (plain and set by an initial assignment) and the tensor forms."""
from __future__ import annotations

import pytest
import torch

import neuroplex
from neuroplex.sbml.reader import read_sbml_string
from neuroplex.testing import require_data

pytest.importorskip("roadrunner")
pytestmark = pytest.mark.roadrunner

SBML = """<?xml version="1.0" encoding="UTF-8"?>
<sbml xmlns="http://www.sbml.org/sbml/level3/version2/core" level="3" version="2">
 <model id="changes">
  <listOfCompartments><compartment id="C" size="2" constant="true"/></listOfCompartments>
  <listOfSpecies>
   <species id="A" compartment="C" initialConcentration="1" hasOnlySubstanceUnits="false" boundaryCondition="false" constant="false"/>
   <species id="B" compartment="C" initialConcentration="0" hasOnlySubstanceUnits="false" boundaryCondition="false" constant="false"/>
   <species id="D" compartment="C" initialAmount="3" hasOnlySubstanceUnits="true" boundaryCondition="false" constant="false"/>
  </listOfSpecies>
  <listOfParameters><parameter id="kb" value="0.5" constant="true"/></listOfParameters>
  <listOfInitialAssignments>
   <initialAssignment symbol="B"><math xmlns="http://www.w3.org/1998/Math/MathML"><apply><times/><ci>kb</ci><ci>A</ci></apply></math></initialAssignment>
  </listOfInitialAssignments>
  <listOfReactions>
   <reaction id="R1" reversible="false">
    <listOfReactants><speciesReference species="A" stoichiometry="1" constant="true"/></listOfReactants>
    <listOfProducts><speciesReference species="B" stoichiometry="1" constant="true"/></listOfProducts>
    <kineticLaw><math xmlns="http://www.w3.org/1998/Math/MathML"><apply><times/><ci>C</ci><ci>k</ci><ci>A</ci></apply></math>
     <listOfLocalParameters><localParameter id="k" value="0.3"/></listOfLocalParameters></kineticLaw>
   </reaction>
   <reaction id="R2" reversible="false">
    <listOfReactants><speciesReference species="B" stoichiometry="1" constant="true"/></listOfReactants>
    <listOfProducts><speciesReference species="D" stoichiometry="1" constant="true"/></listOfProducts>
    <kineticLaw><math xmlns="http://www.w3.org/1998/Math/MathML"><apply><times/><ci>C</ci><ci>kb</ci><ci>B</ci></apply></math></kineticLaw>
   </reaction>
  </listOfReactions>
 </model>
</sbml>
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path = tmp_path_factory.mktemp("changes") / "changes.xml"
    path.write_text(SBML)
    return neuroplex.load_model(path)


def final(model, solver, **kw):
    sol = neuroplex.simulate(model, (0, 5), solver=solver, rtol=1e-10, atol=1e-12, **kw)
    assert bool((sol.status == 0).all()), (solver, sol.meta)
    return {n: sol[n][:, -1] for n in ("A", "B", "D")}


def agree(model, **kw):
    ref = final(model, "torch", **kw)
    for solver in ("scipy", "roadrunner"):
        got = final(model, solver, **kw)
        for n in ref:
            assert torch.allclose(got[n], ref[n], rtol=1e-6, atol=1e-9), (solver, n, got[n], ref[n])
    return ref


CHANGES = {
    "global parameter": lambda m: m.with_parameters(kb=2.0),
    "local parameter by id": lambda m: m.with_parameters(k=1.5),
    "local parameter reaction.id": lambda m: m.with_parameters({"R1.k": 1.5}),
    "compartment": lambda m: m.with_parameters(C=0.5),
    "initial concentration": lambda m: m.with_initial(A=4.0),
    "initial amount": lambda m: m.with_initial(D=0.25),
    "initial set by an initial assignment": lambda m: m.with_initial(B=2.0),
    "plain ModelIR.with_parameters": lambda m: neuroplex.ir.ModelIR.with_parameters(m, kb=2.0),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_each_change_reaches_every_solver(base, change):
    model = CHANGES[change](base)
    changed = agree(model)
    unchanged = final(base, "torch")
    assert any(not torch.allclose(changed[n], unchanged[n]) for n in changed), "the change had no effect"


def test_changes_compose_with_tensor_forms(base):
    model = base.with_parameters(kb=2.0).with_initial(A=4.0)
    p = torch.tensor([prm.value for prm in model.parameters], dtype=torch.float64).repeat(2, 1)
    p[1, model.parameter_names.index("C")] = 0.5
    out = agree(model, params=p)
    assert not torch.allclose(out["D"][0], out["D"][1])
    y0 = torch.tensor([[8.0, 1.0, 0.0]], dtype=torch.float64)  # amounts: A_amount, B_amount, D
    assert model.state_names == ["A_amount", "B_amount", "D"]
    agree(model, y0=y0)


def test_values_read_back_by_sbml_id(base):
    assert base.parameter_values() == {"C": 2.0, "kb": 0.5, "R1.k": 0.3}
    assert base.initial_values() == pytest.approx({"A": 1.0, "B": 0.5, "D": 3.0})
    changed = base.with_initial(A=4.0).with_parameters(kb=2.0)
    assert changed.initial_values() == pytest.approx({"A": 4.0, "B": 8.0, "D": 3.0})
    assert base.initial_values()["A"] == 1.0  # the copy leaves the original alone


def test_biomodel_parameter_change_reaches_roadrunner():
    """The issue's case: BIOMD0000000012 with n = 2.5 (roadrunner used the file's n = 2)."""
    model = neuroplex.load_model(require_data("biomodels", "BIOMD0000000012.xml")).with_parameters(n=2.5)
    px = {s: float(neuroplex.simulate(model, (0, 200), solver=s)["PX"][0, -1]) for s in ("torch", "roadrunner")}
    assert px["torch"] == pytest.approx(378.77, rel=1e-3)
    assert px["roadrunner"] == pytest.approx(px["torch"], rel=1e-4)


def test_unknown_and_rule_ids_are_named(base):
    from neuroplex.sbml.values import UnknownIdError

    with pytest.raises(UnknownIdError, match="did you mean 'kb'"):
        base.with_parameters(kbb=1.0)
    with pytest.raises(UnknownIdError, match="reaction"):
        base.with_parameters(R1=1.0)
    with pytest.raises(UnknownIdError, match="params="):
        base.with_initial(kb=1.0)
    model = read_sbml_string(SBML.replace("<listOfInitialAssignments>", """<listOfRules>
   <assignmentRule variable="kb"><math xmlns="http://www.w3.org/1998/Math/MathML"><cn>0.5</cn></math></assignmentRule>
  </listOfRules><listOfInitialAssignments>""").replace('id="kb" value="0.5" constant="true"', 'id="kb" constant="false"'))
    with pytest.raises(UnknownIdError, match="assignment rule"):
        model.with_parameters(kb=1.0)


def test_values_by_name_with_scans_agree_across_solvers(base):
    """simulate(params={...}, initial={...}): arrays scan (single numbers broadcast), in the
    quantity the file declares; an array of initial values feeds the initial assignment of B."""
    ks = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    a0 = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    kw = dict(params={"kb": ks, "R1.k": 0.7}, initial={"A": a0, "D": 1.0})
    out = agree(base, **kw)
    sol = neuroplex.simulate(base, (0, 5), n_points=2, **kw)
    assert torch.allclose(sol["A"][:, 0], a0) and torch.allclose(sol["D"][:, 0], torch.ones(3, dtype=torch.float64))
    assert torch.allclose(sol["B"][:, 0], ks * a0)  # B = kb * A initially, sample by sample
    single = final(base.with_parameters(kb=2.0, k=0.7).with_initial(A=4.0, D=1.0), "torch")
    assert torch.allclose(out["D"][2], single["D"][0], rtol=1e-8)
    assert base.parameter_names == ["C", "kb", "R1_k"] or "init_A" not in base.parameter_names


def test_empty_and_mismatched_requests_are_errors(base):
    with pytest.raises(neuroplex.NeuroplexError, match="at least one"):
        neuroplex.simulate(base, (0, 1), n_points=0)
    with pytest.raises(neuroplex.NeuroplexError, match="at least one"):
        neuroplex.simulate(base, (0, 1), t_eval=[])
    with pytest.raises(neuroplex.NeuroplexError, match="different lengths"):
        neuroplex.simulate(base, (0, 1), params={"kb": [1.0, 2.0]}, initial={"A": [1.0, 2.0, 3.0]})
    with pytest.raises(neuroplex.NeuroplexError, match="empty"):
        neuroplex.simulate(base, (0, 1), params={"kb": []})
