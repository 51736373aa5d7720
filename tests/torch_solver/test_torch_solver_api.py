"""TorchSolver through the front doors: models, batching, observables, statuses, options."""
from __future__ import annotations

import math

import pytest
import sympy as sp
import torch

import neuroplex
from neuroplex.errors import NeuroplexError, SolverError
from neuroplex.host import get_solver
from neuroplex.ir import ModelIR, Parameter, State
from neuroplex.plugins.torch_solver import TorchSolver, get_method, integrate, method_names, register_method
from neuroplex.plugins.torch_solver.explicit import FixedStepper
from neuroplex.solution import Status

x, k, a, u_in = sp.symbols("x k a u")


def decay() -> ModelIR:
    """x' = -k x + u, observable a = 2 x."""
    return ModelIR("decay", states=[State("x", 1.0)], parameters=[Parameter("k", 1.0)],
                   derivatives={"x": -k * x + u_in}, assignments={"a": 2 * x}, inputs={"u": 0.0})


def test_registered_and_described() -> None:
    assert get_solver("torch") is TorchSolver
    info = TorchSolver.describe()
    assert info["capabilities"] == ["equilibrate", "simulate"]
    for m in ("euler", "heun", "rk4", "dopri5", "rosenbrock", "iteration", "damped", "anderson", "ode"):
        assert m in info["methods"]
    assert set(method_names("simulate")) >= {"euler", "heun", "rk4", "dopri5", "rosenbrock"}


def test_simulate_modelir_batch_broadcast_and_observables() -> None:
    params = torch.tensor([[1.0], [2.0], [0.5]], dtype=torch.float64)
    te = torch.linspace(0, 2, 5, dtype=torch.float64)
    sol = neuroplex.simulate(decay(), (0.0, 2.0), params=params, t_eval=te, rtol=1e-10, atol=1e-12)
    assert sol.ys.shape == (3, 5, 2) and sol.names == ["x", "a"]
    exact = torch.exp(-params * te[None, :])
    torch.testing.assert_close(sol["x"], exact, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(sol["a"], 2 * exact, rtol=1e-8, atol=1e-10)
    assert sol.solver == "torch" and sol.method == "dopri5"
    assert sol.stats["n_steps"].shape == (3,) and (sol.stats["n_rhs"] > sol.stats["n_steps"]).all()
    # y0 batch broadcasts against one parameter set; inputs are constant in time
    y0 = torch.tensor([[1.0], [3.0]], dtype=torch.float64)
    sol = neuroplex.simulate(decay(), 1.0, y0=y0, inputs=torch.tensor([1.0]), rtol=1e-10, atol=1e-12)
    expected = 1.0 + (y0[:, 0] - 1.0) * math.exp(-1.0)  # x -> u/k
    torch.testing.assert_close(sol["x"][:, -1], expected, rtol=1e-8, atol=1e-10)
    assert sol.ts.tolist() == [0.0, 1.0]


def test_batch_mismatch_and_bad_settings_raise_clear_errors() -> None:
    with pytest.raises(SolverError, match="batch sizes differ: params 3, y0 2"):
        neuroplex.simulate(decay(), 1.0, params=torch.ones(3, 1), y0=torch.ones(2, 1))
    with pytest.raises(SolverError, match="y0 must be"):
        neuroplex.simulate(decay(), 1.0, y0=torch.ones(2, 3))
    with pytest.raises(NeuroplexError, match="unknown method 'rk45'"):
        neuroplex.simulate(decay(), 1.0, method="rk45")
    with pytest.raises(NeuroplexError, match="dtype must be"):
        TorchSolver(dtype="float16")
    with pytest.raises(SolverError, match="equilibrium method"):
        neuroplex.simulate(decay(), 1.0, method="anderson")
    with pytest.raises(SolverError, match="t_eval must be increasing"):
        neuroplex.simulate(decay(), 1.0, t_eval=[0.5, 0.2])
    with pytest.raises(NeuroplexError, match="workers must be >= 1"):
        TorchSolver(workers=0)
    with pytest.raises(SolverError, match="workers=2 splits batches of SBML models"):
        neuroplex.simulate(decay(), 1.0, workers=2)
    with pytest.raises(SolverError, match="fused=True compiles the steps of SBML models"):
        neuroplex.simulate(decay(), 1.0, fused=True)


@pytest.mark.parametrize("method", ["euler", "heun", "rk4"])
def test_fixed_step_methods_through_front_door(method: str) -> None:
    sol = neuroplex.simulate(decay(), 1.0, method=method, dt=1e-3, n_points=11)
    assert int(sol.stats["n_steps"][0]) == 1000
    err = float((sol["x"][0] - torch.exp(-torch.linspace(0, 1, 11, dtype=torch.float64))).abs().max())
    assert err < {"euler": 1e-3, "heun": 1e-6, "rk4": 1e-9}[method]


def test_failure_statuses_per_sample() -> None:
    def f(t, y):
        return y * y  # blows up at t = 1/y0

    y0 = torch.tensor([[0.1], [2.0]], dtype=torch.float64)
    res = integrate(f, 0.0, 1.0, y0)
    assert res.status[0] == Status.SUCCESS
    assert res.status[1] in (Status.DT_MIN, Status.NONFINITE)
    assert float(res.t_end[1]) == pytest.approx(0.5, abs=1e-3)
    res = integrate(lambda t, y: -y, 0.0, 100.0, y0, max_steps=5)
    assert (res.status == Status.MAX_STEPS).all() and (res.n_steps == 5).all()
    res = integrate(lambda t, y: y * y, 0.0, 1.0, y0, method="euler", dt0=0.01)
    assert res.status.tolist() == [Status.SUCCESS, Status.NONFINITE]
    with pytest.raises(SolverError, match="0 \\(dt min|0 \\(nonfinite"):
        neuroplex.simulate(ModelIR("blow", states=[State("x", 2.0)], derivatives={"x": x * x}), 1.0, throw=True)


def test_dt_max_limits_steps() -> None:
    sol = neuroplex.simulate(decay(), 10.0, dt_max=0.1)
    assert int(sol.stats["n_steps"][0]) >= 100


def test_float32_simulation() -> None:
    sol = neuroplex.simulate(decay(), 2.0, dtype="float32", rtol=1e-5, atol=1e-7, n_points=3)
    assert sol.ys.dtype == torch.float32 and sol.ts.dtype == torch.float32
    assert abs(float(sol["x"][0, -1]) - math.exp(-2.0)) < 1e-5


def test_progress_bar_runs(capsys: pytest.CaptureFixture[str]) -> None:
    sol = neuroplex.simulate(decay(), 5.0, progress=True)
    assert sol.ok


def test_model_kinds_run_through_their_registered_runner() -> None:
    from neuroplex.runners import Runner
    from neuroplex.settings import Execution, StepControl
    from neuroplex.testing import plugin_host
    from neuroplex.plugins.torch_solver import plugin as torch_plugin

    seen = {}

    class SelfRunning:
        kind = "self-running"
        name = "self-running"

    def run(model, solver, t_span, *, y0, params, t_eval, inputs, progress):
        seen.update(method=solver.method, control=solver.control, execution=solver.execution, span=t_span)
        return neuroplex.Solution(ys=torch.zeros(1, 2, 0), ts=torch.tensor(t_span), names=[],
                                  status=torch.zeros(1, dtype=torch.long), solver=solver.name, method=solver.method)

    class Runners:
        @neuroplex.hookimpl
        def register_runners(self, register):
            register(Runner(kind="self-running", solver="torch", run=run, methods=("tick",)))

    with plugin_host((torch_plugin, "torch"), (Runners(), "runners")):
        out = TorchSolver(method="rk4", dt=0.25, dtype="float32", device="cpu").simulate(SelfRunning(), (0.0, 1.0))
        assert out.method == "rk4" and out.ok
        assert seen == {"method": "rk4", "control": StepControl(dt0=0.25),
                        "execution": Execution(device=torch.device("cpu"), dtype=torch.float32), "span": (0.0, 1.0)}
        assert neuroplex.simulate(SelfRunning(), (0.0, 1.0), solver="torch", method="tick").method == "tick"
        with pytest.raises(SolverError, match="cannot take a 'self-running' model"):
            neuroplex.equilibrate(SelfRunning(), solver="torch")

    class Unknown:
        kind = "unknown-kind"

    with pytest.raises(SolverError, match="solver 'torch' cannot run a 'unknown-kind' model"):
        neuroplex.simulate(Unknown(), (0.0, 1.0), solver="torch")


def test_register_method_slots_in_a_new_method() -> None:
    def midpoint() -> FixedStepper:
        return FixedStepper("test-midpoint", [[], [0.5]], [0.0, 1.0], [0.0, 0.5], 2)

    register_method("test-midpoint", midpoint, description="explicit midpoint")
    try:
        sol = neuroplex.simulate(decay(), 1.0, method="test-midpoint", dt=0.01)
        assert abs(float(sol["x"][0, -1]) - math.exp(-1.0)) < 1e-5
        with pytest.raises(NeuroplexError, match="already registered"):
            register_method("test-midpoint", midpoint)
    finally:
        from neuroplex.plugins.torch_solver import methods

        methods._TABLE.pop(("simulate", "test-midpoint"))
    assert get_method("dopri5").name == "dopri5"


def test_equilibrate_modelir_default_state() -> None:
    sol = neuroplex.equilibrate(decay(), method="anderson", params=torch.tensor([[0.5], [2.0]], dtype=torch.float64),
                                tol=1e-10)
    assert sol.ok and sol.ys.shape == (2, 1)
    assert float(sol.ys.abs().max()) < 1e-9


@pytest.mark.gpu
def test_cuda_matches_cpu() -> None:
    params = torch.rand(256, 1, dtype=torch.float64) + 0.5
    cpu = neuroplex.simulate(decay(), 2.0, params=params, n_points=5, rtol=1e-8)
    gpu = neuroplex.simulate(decay(), 2.0, params=params, n_points=5, rtol=1e-8, device="cuda")
    assert gpu.ys.device.type == "cuda"
    torch.testing.assert_close(gpu.ys.cpu(), cpu.ys, rtol=1e-9, atol=1e-12)
    stiff = neuroplex.simulate(decay(), 2.0, params=params, method="rosenbrock", device="cuda", dtype="float32")
    assert stiff.ok and stiff.ys.dtype == torch.float32


@pytest.mark.gpu
def test_cuda_equilibrium_and_auto_device() -> None:
    solver = TorchSolver(device="auto", method="anderson", tol=1e-10)
    assert solver.device.type == "cuda"
    sol = solver.equilibrate(decay(), params=torch.rand(64, 1, dtype=torch.float64) + 0.5)
    assert sol.ok and sol.ys.device.type == "cuda"


@pytest.mark.parametrize("method", ["dopri5", "rk4"])
def test_gradients_flow_through_simulate(method: str) -> None:
    params = torch.tensor([[1.0], [2.0]], dtype=torch.float64, requires_grad=True)
    sol = neuroplex.simulate(decay(), 1.0, params=params, method=method, dt=1e-3, rtol=1e-10, atol=1e-12,
                             n_points=5)
    sol["x"][:, 2].sum().backward()  # an interior output point (dense output) at t = 0.5
    k_ = params.detach()[:, 0]
    expected = -0.5 * torch.exp(-0.5 * k_)  # d/dk exp(-k t) at t = 0.5
    torch.testing.assert_close(params.grad[:, 0], expected, rtol=1e-6, atol=1e-9)


def test_integrate_rejects_backward_spans_and_bad_shapes() -> None:
    y0 = torch.ones(2, 1, dtype=torch.float64)
    with pytest.raises(SolverError, match=r"need t1 >= t0.*sample\(s\) \[1\]"):
        integrate(lambda t, y: -y, 0.0, torch.tensor([1.0, -1.0], dtype=torch.float64), y0)
    with pytest.raises(SolverError, match="y0 must be"):
        integrate(lambda t, y: -y, 0.0, 1.0, torch.ones(2, 2, 2))
    with pytest.raises(NeuroplexError, match="no simulate method 'nope'"):
        integrate(lambda t, y: -y, 0.0, 1.0, y0, method="nope")
    res = integrate(lambda t, y: -y, 0.0, 1.0, torch.ones(3, dtype=torch.float64))  # (n,) runs as B = 1
    assert res.y_end.shape == (1, 3)
