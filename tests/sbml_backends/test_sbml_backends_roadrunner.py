"""The roadrunner solver plugin: IR models through the writer, SBML files, batches, names."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import neuroplex
from neuroplex.errors import ModelError, NeuroplexError
from neuroplex.ir import Event, ModelIR, Parameter, State
from neuroplex.sbml import write_sbml
from neuroplex.testing import require_data

pytest.importorskip("roadrunner")
pytestmark = pytest.mark.roadrunner


def decay() -> ModelIR:
    return ModelIR("decay", states=[State("x", 1.0), State("y", "2*k")], parameters=[Parameter("k", 2.0)],
                   derivatives={"x": "-k*x", "y": "k*x - y"}, assignments={"total": "x + y"})


def test_ir_model_runs_through_the_writer():
    sol = neuroplex.simulate(decay(), (0, 2), solver="roadrunner", n_points=11, rtol=1e-10, atol=1e-14)
    t = sol.ts
    x = torch.exp(-2 * t)
    y = 2 * (torch.exp(-t) - torch.exp(-2 * t)) + 4 * torch.exp(-t)
    assert sol.names == ["x", "y", "total"] and sol.solver == "roadrunner" and sol.method == "cvode"
    assert torch.allclose(sol["x"][0], x, rtol=1e-7)
    assert torch.allclose(sol["y"][0], y, rtol=1e-7)


def test_parameter_batches_loop_and_restore_defaults():
    ks = torch.tensor([[1.0], [3.0]], dtype=torch.float64)
    solver = neuroplex.host.get_host().get("solvers", "roadrunner").obj(rtol=1e-10, atol=1e-14)
    model = decay()
    sol = neuroplex.simulate(model, (0, 1), solver=solver, params=ks, n_points=3)
    assert sol.ys.shape == (2, 3, 3)
    for i, k in enumerate((1.0, 3.0)):
        assert abs(float(sol["x"][i, -1]) - torch.exp(torch.tensor(-k)).item()) < 1e-7
        assert abs(float(sol["y"][i, 0]) - 2 * k) < 1e-12  # the initial assignment follows k
    again = neuroplex.simulate(model, (0, 1), solver=solver, n_points=3)
    assert abs(float(again["x"][0, -1]) - torch.exp(torch.tensor(-2.0)).item()) < 1e-7
    y0 = torch.tensor([[1.0, 0.0], [2.0, 1.0]], dtype=torch.float64)
    sol = neuroplex.simulate(model, (0, 1), solver=solver, y0=y0, n_points=2)
    assert torch.allclose(sol["x"][:, 0], y0[:, 0]) and torch.allclose(sol["y"][:, 0], y0[:, 1])


def test_events_match_the_scipy_solver(tmp_path):
    ball = ModelIR("ball", states=[State("h", 1.0), State("v", 0.0)],
                   parameters=[Parameter("g", 9.81), Parameter("e", 0.9)],
                   derivatives={"h": "v", "v": "-g"}, events=[Event("bounce", "h < 0", {"h": "-h", "v": "-e*v"})])
    a = neuroplex.simulate(ball, (0, 3), solver="scipy", n_points=151, rtol=1e-10, atol=1e-12)
    assert a.spikes is not None and len(a.spikes.time) == 4  # the bounces, recorded
    # roadrunner records no event log, so it takes the events of an SBML model (which change values
    # and record nothing), not an IR model's spike-recording ones
    path = tmp_path / "ball.xml"
    path.write_text(write_sbml(ball))
    b = neuroplex.simulate(neuroplex.load_model(path), (0, 3), solver="roadrunner", n_points=151,
                           rtol=1e-10, atol=1e-14)
    assert b.names[:2] == ["h", "v"]
    assert (a.ys - b.ys[..., :2]).abs().max() < 1e-6


def test_sbml_file_reports_the_same_names_as_the_torch_side():
    path = require_data("biomodels", "BIOMD0000000012.xml")
    model = neuroplex.load_model(path)
    rr = neuroplex.simulate(model, (0, 10), solver="roadrunner", n_points=11, rtol=1e-10, atol=1e-14)
    assert rr.names == list(model.default_outputs())
    assert rr.meta["selections"][:3] == ["PX", "PY", "PZ"]  # hasOnlySubstanceUnits species: amounts
    sc = neuroplex.simulate(model, (0, 10), solver="scipy", n_points=11, rtol=1e-10, atol=1e-12)
    assert sc.names == rr.names
    for n in rr.names:
        assert torch.allclose(sc[n], rr[n], rtol=1e-5, atol=1e-8), n


def test_local_parameters_are_set_through_the_written_model():
    path = require_data("biomodels", "BIOMD0000000010.xml")
    model = neuroplex.load_model(path)
    local = next(n for n in model.parameter_names if n in model.metadata["sbml"]["local_parameters"])
    p = torch.tensor([[prm.value for prm in model.parameters]] * 2, dtype=torch.float64)
    p[1, model.parameter_names.index(local)] *= 2
    rr = neuroplex.simulate(model, (0, 50), solver="roadrunner", params=p, n_points=6, rtol=1e-10, atol=1e-14)
    sc = neuroplex.simulate(model, (0, 50), solver="scipy", params=p, n_points=6, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(rr.ys[0], rr.ys[1])
    assert torch.allclose(rr.ys, sc.ys, rtol=1e-5, atol=1e-8)


def test_bad_input_fails_clearly():
    with pytest.raises(NeuroplexError, match="unknown integrator"):
        neuroplex.simulate(decay(), (0, 1), solver="roadrunner", integrator="lsoda")
    m = ModelIR("inp", states=[State("x", 0.0)], derivatives={"x": "u"}, inputs={"u": 1.0})
    with pytest.raises(ModelError, match="inputs"):
        neuroplex.simulate(m, (0, 1), solver="roadrunner")


def test_plugin_imports_roadrunner_lazily():
    code = ("import sys, neuroplex; from neuroplex.host import get_host; "
            "get_host().get('solvers', 'roadrunner'); print('roadrunner' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
