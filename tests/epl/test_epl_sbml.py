"""BioModels into the EPL DS through SBML: mapping, consistency report, refusals, roadrunner
agreement and the SBML export read back."""
from __future__ import annotations

import math

import pytest
import torch

from neuroplex.errors import ModelError
from neuroplex.plugins.epl import build, from_sbml
from neuroplex.plugins.epl.model import EXAMPLE
from neuroplex.plugins.epl.sbml_export import to_reaction_ir
from neuroplex.plugins.epl.fidelity import compare_with_roadrunner, export_roundtrip
from neuroplex.plugins.epl.sbml_import import EPLImportError


CONSISTENT = """
compartment c = 2; species A in c, B in c, C in c; A = 1; B = 0.5; C = 0
J1: A + B -> C; c * (k1 * A * B - k2 * C); k1 = 3; k2 = 0.5
J2: C -> A; c * k3 * C; k3 = 0.2
"""


def test_epl_from_sbml_matches_mass_action_and_reports(sbml_file):
    path = sbml_file(CONSISTENT)
    system, report = from_sbml(path)
    assert report.species[:3] == ["A", "B", "C"] and "fuel_J2" in report.external
    j1, j2 = report.reactions
    assert j1["kf"] == pytest.approx(3 / 2) and j1["kb"] == pytest.approx(0.5)  # amounts: k1 c A B -> k1/c a b
    assert j1["approximation"] == "" and "irreversible" in j2["approximation"] and j2["energy_drop"] == pytest.approx(30 + 0.5 * math.log(2))  # + ln(s_A / s_C), s_C = sqrt(2 * 1)
    # the DS rhs is the SBML mass-action rhs in amounts
    x = torch.tensor([0.7, 0.4, 0.3, 1.0], dtype=torch.float64)
    dx, _ = system.rhs(x, torch.zeros(4, dtype=torch.float64))
    a, b, cc = 0.7, 0.4, 0.3
    v1 = 1.5 * a * b - 0.5 * cc
    v2 = 0.2 * cc
    assert torch.allclose(dx[:3], torch.tensor([-v1 + v2, -v1, v1 - v2], dtype=torch.float64), rtol=1e-10, atol=1e-12)
    assert report.consistent and "thermodynamic consistency" in report.text()


def test_epl_from_sbml_flags_wegscheider_violation(sbml_file):
    path = sbml_file("""
compartment c = 1; species A in c, B in c, C in c; A = 1; B = 0; C = 0
J1: A -> B; k1 * A - k2 * B; J2: B -> C; k3 * B - k4 * C; J3: C -> A; k5 * C - k6 * A
k1 = 1; k2 = 1; k3 = 1; k4 = 1; k5 = 2; k6 = 1
""")
    system, report = from_sbml(path)
    assert not report.consistent and report.wegscheider_residual > 0.1
    assert any("Wegscheider" in r["approximation"] for r in report.reactions)
    with pytest.raises(EPLImportError, match="needs an approximation"):
        from_sbml(path, strict=True)


@pytest.mark.parametrize("text, match", [
    ("species S; S = 1; J: S -> ; V * S / (K + S); V = 1; K = 1", r"reaction 'J' has a Michaelis-Menten"),
    ("species S; S = 1; J: S -> ; V * S^2 / (K^2 + S^2); V = 1; K = 1", r"reaction 'J' has a Hill-type"),
    ("species S, P; S = 1; P = 0; J: 2 S -> P; k * S; k = 1", r"reaction 'J'.*order 1 in 'S' where the reactants have stoichiometry 2"),
    ("species S, P; S = 1; P = 0; J: S -> P; k1 * S + k2 * S^2; k1 = 1; k2 = 1", r"reaction 'J'.*2 positive"),
    ("species S, P; S = 1; P = 0; J: S -> P; k * S - k * S * P; k = 1", r"reaction 'J'.*different extra factors \(catalysts\) in S"),
    ("x' = -x; x = 1", "rate rule"),
])
def test_epl_from_sbml_refuses_what_it_cannot_express(text, match, sbml_file):
    with pytest.raises(EPLImportError, match=match):
        from_sbml(sbml_file(text))


@pytest.mark.slow
@pytest.mark.roadrunner
def test_epl_biomodel_028_against_roadrunner_and_export(shared_data, tmp_path):
    pytest.importorskip("roadrunner")
    path = shared_data / "biomodels" / "BIOMD0000000028.xml"
    system, report = from_sbml(path)
    cmp = compare_with_roadrunner(path, system, report, t1=100.0, n_points=51)
    assert cmp["ok"], cmp
    rt = export_roundtrip(system, report, tmp_path / "epl_028.xml", t1=100.0, n_points=21)
    assert rt["relative"] < 1e-6, rt


def test_epl_from_sbml_keeps_zero_rate_reactions_as_k_zero(sbml_file):
    path = sbml_file("species A, B; A = 1; B = 0; J1: A -> B; k1 * A; J2: B -> A; k0 * B; k1 = 1; k0 = 0")
    system, report = from_sbml(path)
    assert report.reactions[1]["kf"] == 0.0 and float(system.k[1]) == 0.0
    assert report.reactions[1]["approximation"] == "" and "irreversible" in report.reactions[0]["approximation"]


def test_epl_from_sbml_keeps_catalysts_and_folds_placeholder_sources(sbml_file):
    """Species on both sides (D -> D + M), modifiers in the law (k E S with E varying) and a
    boundary placeholder source the law leaves out ($Src -> Y; k0) run as the SBML says (the
    net Mperp alone would lose the catalysts: the BIOMD0000000035 defect)."""
    path = sbml_file("""
species D, M, E, S, P, Y, $Src; D = 2; M = 0; E = 1; S = 3; P = 0; Y = 0; Src = 0
J1: D -> D + M; a * D; J2: M -> ; d * M; J3: S -> P; k * E * S; J4: E -> ; kd * E; J5: Src -> Y; k0
a = 0.7; d = 0.3; k = 0.5; kd = 0.2; k0 = 0.4
""")
    system, report = from_sbml(path)
    names = report.species
    x = torch.ones(system.n, dtype=torch.float64)
    vals = {"D": 2.0, "M": 0.5, "E": 0.8, "S": 3.0, "P": 0.1, "Y": 0.2}
    for nm, v in vals.items():
        x[names.index(nm)] = v
    dx, _ = system.rhs(x, torch.zeros_like(x))
    got = {nm: float(dx[names.index(nm)]) for nm in vals}
    want = {"D": 0.0, "M": 0.7 * 2.0 - 0.3 * 0.5, "E": -0.2 * 0.8, "S": -0.5 * 0.8 * 3.0, "P": 0.5 * 0.8 * 3.0,
            "Y": 0.4}
    assert got == pytest.approx(want, rel=1e-10, abs=1e-12)
    assert float(system.catalysis[names.index("D"), 0]) == 1.0 and float(system.catalysis[names.index("E"), 2]) == 1.0


def test_epl_from_sbml_reversed_law_runs_backwards(sbml_file):
    path = sbml_file("species A, B; A = 1; B = 2; J: A -> B; -kr * B; kr = 0.3")
    system, report = from_sbml(path)
    x = torch.tensor([1.0, 2.0] + [1.0] * (system.n - 2), dtype=torch.float64)
    dx, _ = system.rhs(x, torch.zeros_like(x))
    assert dx[:2].tolist() == pytest.approx([0.6, -0.6], rel=1e-10)


def test_epl_export_writes_reactions_that_import_and_run_the_same(tmp_path, sbml_file):
    libsbml = pytest.importorskip("libsbml")
    system, report = from_sbml(sbml_file(CONSISTENT))
    rt = export_roundtrip(system, report, tmp_path / "out.xml", t1=20.0, n_points=21)
    assert rt["relative"] < 1e-6, rt
    doc = libsbml.readSBMLFromFile(str(tmp_path / "out.xml"))
    m = doc.getModel()
    assert m.getNumReactions() == 2 and m.getNumRules() == 0
    assert m.getSpecies("fuel_J2").getBoundaryCondition()


def test_epl_export_refuses_a_system_with_other_flows():
    with pytest.raises(ModelError, match="not a mass-action network"):
        to_reaction_ir(build({**EXAMPLE, "nodes": [{**nd, "p0": 0.3} for nd in EXAMPLE["nodes"]]}).system)
