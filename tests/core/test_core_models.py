"""The shipped models load by name and simulate on the torch solver in agreement with
libroadrunner (the SBML reference), each over a span that shows its behaviour."""
from __future__ import annotations

import numpy as np
import pytest

import neuroplex as nx

TIGHT = {"rtol": 1e-9, "atol": 1e-11}
#: model stem -> (t_end, torch solver settings); the stiff Oregonator on the Rosenbrock method
#: over its first relaxation spike (alpha spans five orders of magnitude)
CASES = {
    "repressilator": (30.0, TIGHT),
    "lotka_volterra": (30.0, TIGHT),
    "fitzhugh_nagumo": (100.0, TIGHT),
    "hodgkin_huxley": (30.0, TIGHT),
    "izhikevich_rs": (100.0, TIGHT),
    "oregonator": (400.0, {"method": "rosenbrock", "rtol": 1e-6, "atol": 1e-8}),
}


def test_every_shipped_model_has_a_case_and_a_reference():
    shipped = nx.shipped_models()
    assert set(CASES) <= set(shipped)
    for stem, path in shipped.items():
        text = path.read_text()
        assert "Reference" in text and f"model {stem}()" in text, f"{path.name}: needs a reference and model {stem}"


def roadrunner_reference(stem: str, t_end: float, n: int) -> tuple[list[str], np.ndarray]:
    antimony = pytest.importorskip("antimony")
    roadrunner = pytest.importorskip("roadrunner")
    antimony.clearPreviousLoads()
    assert antimony.loadAntimonyFile(str(nx.shipped_models()[stem])) >= 0, antimony.getLastError()
    rr = roadrunner.RoadRunner(antimony.getSBMLString(antimony.getMainModuleName()))
    rr.integrator.relative_tolerance = 1e-10
    rr.integrator.absolute_tolerance = 1e-12
    result = rr.simulate(0.0, t_end, n)
    return [c.strip("[]") for c in result.colnames[1:]], np.asarray(result)[:, 1:]


@pytest.mark.slow
@pytest.mark.parametrize("stem", sorted(CASES))
def test_shipped_model_matches_roadrunner(stem: str):
    t_end, settings = CASES[stem]
    n = 61
    names, ref = roadrunner_reference(stem, t_end, n)
    sol = nx.simulate(stem, (0.0, t_end), n_points=n, throw=True, **settings)
    ours = np.stack([sol[name][0].numpy() for name in names], axis=-1)
    scale = np.abs(ref).max(axis=0) + 1e-12
    err = np.abs(ours - ref).max(axis=0) / scale
    assert err.max() < 2e-3, dict(zip(names, err.round(6)))


def test_shipped_model_names_do_not_shadow_registered_neurons():
    assert not set(nx.shipped_models()) & set(nx.get_host().names("neurons"))
