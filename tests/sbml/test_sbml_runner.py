"""The SBML runners: SBML models reach the solvers' integrators with the solvers' settings as given."""
from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("libsbml")

import neuroplex  # noqa: E402
from neuroplex.kinds import model_kinds  # noqa: E402
from neuroplex.plugins.torch_solver import TorchSolver  # noqa: E402
from neuroplex.runners import find_runner  # noqa: E402
from neuroplex.sbml.antimony_loader import read_antimony_string  # noqa: E402
from neuroplex.sbml.runner import compiled_path  # noqa: E402
from neuroplex.settings import StepControl  # noqa: E402

DECAY = """
    J1: A -> ; k * A
    A = 1; k = 1
"""


def test_sbml_models_declare_their_kind_and_runners_are_registered() -> None:
    model = read_antimony_string(DECAY)
    assert model_kinds(model) == ("sbml", "ir")
    assert find_runner("sbml", "torch") is not None and find_runner("sbml", "scipy") is not None
    assert find_runner("sbml", "roadrunner") is None  # roadrunner reads SBML itself


def test_atol_zero_reaches_the_integrator_of_an_sbml_run() -> None:
    # pure relative error control: the decaying species keeps its relative accuracy far below
    # any absolute tolerance (atol=0 used to be replaced by 1e-10 on the way to the integrator)
    model = read_antimony_string(DECAY)
    t = torch.tensor([0.0, 30.0], dtype=torch.float64)
    exact = math.exp(-30.0)
    strict = neuroplex.simulate(model, (0.0, 30.0), solver=TorchSolver(method="dopri5", rtol=1e-8, atol=0.0),
                                t_eval=t)
    loose = neuroplex.simulate(model, (0.0, 30.0), solver=TorchSolver(method="dopri5", rtol=1e-8, atol=1e-10),
                               t_eval=t)
    assert strict.ok and loose.ok
    assert abs(float(strict["A"][0, -1]) / exact - 1) < 1e-5
    assert abs(float(loose["A"][0, -1]) / exact - 1) > 1e-3  # so the check above tells the two apart
    assert int(strict.stats["n_steps"][0]) > int(loose.stats["n_steps"][0])


def test_the_runner_gets_the_solver_control_unchanged() -> None:
    model = read_antimony_string(DECAY)
    seen = []
    control = StepControl(rtol=1e-7, atol=0.0, dt0=1e-3, dt_max=0.5, max_steps=5000)
    # one CPU trajectory of an event-free model runs compiled, with the same step control
    native = compiled_path(model, TorchSolver(rtol=1e-7, atol=0.0, dt=1e-3, dt_max=0.5, max_steps=5000))
    assert native is not None and native.control == control
    # the torch path (method given) hands the control to the integrator unchanged
    solver = TorchSolver(method="auto", rtol=1e-7, atol=0.0, dt=1e-3, dt_max=0.5, max_steps=5000)
    inner = solver.integrator()

    def spy(*args, **kwargs):
        seen.append(kwargs["control"])
        return inner(*args, **kwargs)

    solver.integrator = lambda: spy  # type: ignore[method-assign]
    sol = neuroplex.simulate(model, (0.0, 2.0), solver=solver)
    assert sol.ok and seen and all(c == control for c in seen)
    scipy_sol = neuroplex.simulate(model, (0.0, 2.0), solver="scipy", rtol=1e-9, atol=0.0, n_points=3)
    assert scipy_sol.ok and scipy_sol.solver == "scipy" and scipy_sol.meta["atol"] == 0.0
    assert abs(float(scipy_sol["A"][0, -1]) - math.exp(-2.0)) < 1e-7
