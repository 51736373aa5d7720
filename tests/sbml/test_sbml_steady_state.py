"""Steady states of SBML models (issue 20, item 2): moieties, Newton on the reduced system,
continuation and integration; SUCCESS only for a state that is one."""
from __future__ import annotations

import pytest
import torch

import neuroplex
from neuroplex.errors import ModelError
from neuroplex.sbml.moieties import find_moieties
from neuroplex.sbml.reader import read_sbml_string
from neuroplex.solution import Status
from neuroplex.testing import require_data


def biomodel(n: int):
    return neuroplex.load_model(require_data("biomodels", f"BIOMD{n:010d}.xml"))


def settles(model, sol, b: int = 0, span: float = 100.0, rel: float = 1e-6) -> bool:
    """An independent check: started at the returned state, the model stays there."""
    y0 = torch.stack([sol[s][b] for s in model.state_names])
    run = neuroplex.simulate(model, (0, span), y0=y0, method="rosenbrock", rtol=1e-10, atol=1e-14)
    names = [n for n in run.names if n in model.sbml["species"] or n in model.state_names]
    start = torch.stack([run[n][0, 0] for n in names])
    end = torch.stack([run[n][0, -1] for n in names])
    scale = start.abs() + 1e-9 * start.abs().max()
    return bool(((end - start).abs() <= rel * scale).all())


# a closed cycle A <-> B <-> C (one conservation law) in a compartment of 4e-12, concentrations
CYCLE = """<?xml version="1.0" encoding="UTF-8"?>
<sbml xmlns="http://www.sbml.org/sbml/level3/version2/core" level="3" version="2">
 <model id="cycle">
  <listOfCompartments><compartment id="V" size="4e-12" constant="true"/></listOfCompartments>
  <listOfSpecies>
   <species id="A" compartment="V" initialConcentration="2" hasOnlySubstanceUnits="false" boundaryCondition="false" constant="false"/>
   <species id="B" compartment="V" initialConcentration="0" hasOnlySubstanceUnits="false" boundaryCondition="false" constant="false"/>
   <species id="C" compartment="V" initialConcentration="0" hasOnlySubstanceUnits="false" boundaryCondition="false" constant="false"/>
  </listOfSpecies>
  <listOfParameters>
   <parameter id="k1" value="1" constant="true"/><parameter id="k2" value="2" constant="true"/>
   <parameter id="k3" value="0.5" constant="true"/>
  </listOfParameters>
  <listOfReactions>
   <reaction id="R1" reversible="false">
    <listOfReactants><speciesReference species="A" stoichiometry="1" constant="true"/></listOfReactants>
    <listOfProducts><speciesReference species="B" stoichiometry="1" constant="true"/></listOfProducts>
    <kineticLaw><math xmlns="http://www.w3.org/1998/Math/MathML"><apply><times/><ci>V</ci><ci>k1</ci><ci>A</ci></apply></math></kineticLaw>
   </reaction>
   <reaction id="R2" reversible="false">
    <listOfReactants><speciesReference species="B" stoichiometry="1" constant="true"/></listOfReactants>
    <listOfProducts><speciesReference species="C" stoichiometry="1" constant="true"/></listOfProducts>
    <kineticLaw><math xmlns="http://www.w3.org/1998/Math/MathML"><apply><times/><ci>V</ci><ci>k2</ci><ci>B</ci></apply></math></kineticLaw>
   </reaction>
   <reaction id="R3" reversible="false">
    <listOfReactants><speciesReference species="C" stoichiometry="1" constant="true"/></listOfReactants>
    <listOfProducts><speciesReference species="A" stoichiometry="1" constant="true"/></listOfProducts>
    <kineticLaw><math xmlns="http://www.w3.org/1998/Math/MathML"><apply><times/><ci>V</ci><ci>k3</ci><ci>C</ci></apply></math></kineticLaw>
   </reaction>
  </listOfReactions>
 </model>
</sbml>
"""


def cycle_exact(k1: float, k2: float, k3: float, total: float) -> torch.Tensor:
    """A:B:C = 1/k1 : 1/k2 : 1/k3 at steady state (equal fluxes)."""
    w = torch.tensor([1 / k1, 1 / k2, 1 / k3], dtype=torch.float64)
    return total * w / w.sum()


def test_cycle_in_a_tiny_compartment_is_exact_and_keyed_by_sbml_id():
    model = read_sbml_string(CYCLE)
    mo = find_moieties(model)
    assert mo.n_laws == 1 and len(mo.independent) == 2
    sol = neuroplex.steady_state(model)
    assert sol.ok and float(sol.stats["residual"][0]) <= 1e-9
    want = cycle_exact(1, 2, 0.5, 2.0)
    got = torch.stack([sol[s][0] for s in "ABC"])
    assert torch.allclose(got, want, rtol=1e-10)
    assert float(sol["A_amount"][0]) == pytest.approx(float(want[0]) * 4e-12, rel=1e-10)  # amounts too
    assert sol.meta["moieties"] and set(sol.meta["moieties"][0]) == {"A_amount", "B_amount", "C_amount"}


def test_batch_of_parameter_sets_and_start_states():
    model = read_sbml_string(CYCLE)
    p = torch.tensor([[4e-12, 1, 2, 0.5], [4e-12, 3, 1, 1], [4e-12, 0.1, 5, 2]], dtype=torch.float64)
    assert model.parameter_names == ["V", "k1", "k2", "k3"]
    sol = neuroplex.steady_state(model, params=p)
    assert sol.ok and sol.ys.shape[0] == 3
    for b in range(3):
        want = cycle_exact(*p[b, 1:].tolist(), 2.0)
        assert torch.allclose(torch.stack([sol[s][b] for s in "ABC"]), want, rtol=1e-9)
    y0 = torch.tensor([[0.0, 3e-12, 1e-12]], dtype=torch.float64)  # another total: 4 (amount 16e-12)
    sol = neuroplex.steady_state(model, y0=y0)
    assert torch.allclose(torch.stack([sol[s][0] for s in "ABC"]), cycle_exact(1, 2, 0.5, 1.0), rtol=1e-9)


def test_equilibrate_uses_the_steady_state_solver_for_sbml():
    model = read_sbml_string(CYCLE)
    sol = neuroplex.equilibrate(model, throw=True)
    assert torch.allclose(torch.stack([sol[s][0] for s in "ABC"]), cycle_exact(1, 2, 0.5, 2.0), rtol=1e-9)


def test_huang_ferrell_conservation_laws_tiny_compartment():
    """BIOMD0000000009: compartment 4e-12, seven conservation laws (roadrunner: singular Jacobian)."""
    model = biomodel(9)
    sol = neuroplex.steady_state(model)
    assert sol.ok and len(sol.meta["moieties"]) == 7
    assert float(sol.stats["residual"][0]) <= 1e-9
    start = model.initial_values()
    assert float(sol["PP_K"][0]) != pytest.approx(start["PP_K"], rel=1e-3)  # not the initial state
    assert settles(model, sol)


def test_markevich_matches_roadrunner():
    """BIOMD0000000028 (the issue: default ended NONFINITE, ode ran 148 s)."""
    roadrunner = pytest.importorskip("roadrunner")
    path = require_data("biomodels", "BIOMD0000000028.xml")
    model = neuroplex.load_model(path)
    sol = neuroplex.steady_state(model)
    assert sol.ok
    rr = roadrunner.RoadRunner(str(path))
    rr.steadyState()
    for sid in model.sbml["species"]:
        assert float(sol[sid][0]) == pytest.approx(rr.getValue(f"[{sid}]"), rel=1e-6, abs=1e-9)
    assert settles(model, sol)


def test_oscillator_is_not_a_success():
    """The repressilator has only an unstable fixed point: no SUCCESS, a reason instead."""
    sol = neuroplex.steady_state(biomodel(12))
    assert int(sol.status[0]) != Status.SUCCESS
    assert "unstable" in sol.meta["reasons"][0] or "not settled" in sol.meta["reasons"][0]


def test_events_are_refused_unless_ignored():
    model = biomodel(1)
    with pytest.raises(ModelError, match="ignore_events=True"):
        neuroplex.steady_state(model)


@pytest.mark.slow
@pytest.mark.parametrize("number", [1, 3, 5, 7, 9, 10, 12, 19, 20, 21, 28, 35, 39, 40, 64, 75, 81, 98, 101, 118,
                                    127, 142, 148, 183, 184, 280, 346, 507])
def test_every_biomodel_success_is_a_steady_state(number):
    """No model returns SUCCESS with a residual above tolerance, and every SUCCESS is a state
    the model stays in; where roadrunner succeeds with a valid state, the two agree to 1e-6."""
    path = require_data("biomodels", f"BIOMD{number:010d}.xml")
    model = neuroplex.load_model(path)
    if model.events:
        with pytest.raises(ModelError, match="events"):
            neuroplex.steady_state(model)
        return
    if number == 75:  # a stimulus that decays in time
        with pytest.raises(ModelError, match="depend on time"):
            neuroplex.steady_state(model)
        return
    sol = neuroplex.steady_state(model)
    ok = sol.status == Status.SUCCESS
    assert bool((sol.stats["residual"][ok] <= 1e-9).all())
    if not bool(ok.all()):
        assert sol.meta["reasons"].get(0)
        return
    assert settles(model, sol)
    roadrunner = pytest.importorskip("roadrunner")
    rr = roadrunner.RoadRunner(str(path))
    try:
        rr.steadyState()
    except RuntimeError:
        return
    ref = {sid: rr.getValue(f"[{sid}]" if info["quantity"] == "concentration" else sid)
           for sid, info in model.sbml["species"].items()}
    top = max((abs(v) for v in ref.values()), default=0.0)
    if any(v < -1e-9 * top for v in ref.values()):
        return  # roadrunner's state has negative concentrations (BIOMD0000000183): settles() checked ours
    for sid, v in ref.items():
        assert float(sol[sid][0]) == pytest.approx(v, rel=1e-6, abs=1e-9 * top), sid
