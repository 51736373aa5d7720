"""Fused steps (``fused=True``): dopri5 and dop853 steps compiled by torch.compile, and the whole
step of the loop where nothing needs the host between steps
(:mod:`~neuroplex.plugins.torch_solver.fused_loop`, compiled ahead of time by AOTInductor), give
the eager steps' results, are skipped where they cannot apply, and fall back to eager steps with
a warning."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import neuroplex
from neuroplex.plugins.torch_solver import aot_step
from neuroplex.plugins.torch_solver import fused as fused_module
from neuroplex.plugins.torch_solver import fused_loop
from neuroplex.plugins.torch_solver import integrate

MODELS = Path(__file__).resolve().parents[2] / "models"


def van_der_pol(t: torch.Tensor, y: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """Van der Pol oscillator, one ``mu`` per sample."""
    x, v = y[..., 0], y[..., 1]
    return torch.stack([v, mu * (1 - x * x) * v - x], -1)


def _rhs(mu: torch.Tensor):
    def f(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return van_der_pol(t, y, mu)

    f.traceable = (van_der_pol, (mu,))
    return f


def _problem(batch: int, requires_grad: bool = False):
    mu = torch.linspace(0.2, 2.0, batch, dtype=torch.float64).requires_grad_(requires_grad)
    y0 = torch.tensor([2.0, 0.0], dtype=torch.float64).expand(batch, 2).clone()
    return _rhs(mu), y0


@pytest.fixture
def compiled_calls(monkeypatch):
    """The (right-hand side, template) pairs whose compiled functions ran: the fused stages'
    (torch.compile) and the loop step's (ahead of time, recorded as ``fused_loop.compiled_step``)."""
    calls = []
    real, real_aot = fused_module.compiled_for, aot_step.step_for

    def spy(fn, template):
        step = real(fn, template)

        def counted(*args, **kwargs):
            calls.append((fn, template))
            return step(*args, **kwargs)
        return counted

    def spy_aot(owner, fn, *args, **kwargs):
        step = real_aot(owner, fn, *args, **kwargs)

        def counted(*tree):
            calls.append((owner, fused_loop.compiled_step))
            return step(*tree)
        return counted
    monkeypatch.setattr(fused_module, "compiled_for", spy)
    monkeypatch.setattr(aot_step, "step_for", spy_aot)
    return calls


@pytest.mark.parametrize("method", ["dopri5", "dop853"])
def test_fused_steps_give_the_eager_steps_results(compiled_calls, method):
    f, y0 = _problem(96)
    te = torch.linspace(0.0, 10.0, 21, dtype=torch.float64)
    kw = dict(method=method, rtol=1e-8, atol=1e-10, t_eval=te, stiff_stop=True)  # dopri5: its stiffness test on
    eager = integrate(f, 0.0, 10.0, y0, **kw)
    fused = integrate(f, 0.0, 10.0, y0, fused=True, **kw)
    assert _loop_calls(compiled_calls) and all(fn is van_der_pol for fn, _ in compiled_calls)
    assert fused.ok and eager.ok
    assert torch.equal(fused.n_steps, eager.n_steps)
    torch.testing.assert_close(fused.ys, eager.ys, rtol=1e-9, atol=1e-9)


def test_fused_steps_skip_small_batches_gradients_and_opaque_right_hand_sides(compiled_calls):
    f, y0 = _problem(fused_module.MIN_BATCH - 1)
    integrate(f, 0.0, 1.0, y0, fused=True)
    f, y0 = _problem(fused_module.MIN_BATCH, requires_grad=True)
    out = integrate(f, 0.0, 1.0, y0, fused=True)
    out.y_end.sum().backward()  # gradients flow through the eager steps
    mu = torch.ones(fused_module.MIN_BATCH, dtype=torch.float64)
    integrate(lambda t, y: van_der_pol(t, y, mu), 0.0, 1.0, y0.detach(), fused=True)  # no ``traceable``
    assert compiled_calls == []


@pytest.mark.parametrize("events", [False, True], ids=["loop", "stages"])
def test_fused_steps_fall_back_to_eager_with_one_warning_when_compiling_fails(monkeypatch, tmp_path, events):
    def broken(fn, **kwargs):
        def run(*args, **kw):
            raise RuntimeError("no C++ compiler")
        return run

    def broken_aot(*args, **kwargs):
        raise RuntimeError("no C++ compiler")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))  # no library built earlier
    monkeypatch.setattr(fused_module, "_BY_FUNCTION", type(fused_module._BY_FUNCTION)())
    monkeypatch.setattr(aot_step, "_BUILT", type(aot_step._BUILT)())
    monkeypatch.setattr(fused_module.torch, "compile", broken)
    monkeypatch.setattr(aot_step.torch._inductor, "aoti_compile_and_package", broken_aot)
    f, y0 = _problem(70)
    kw = dict(event_fn=lambda t, y: y[..., 0] - 10.0) if events else {}  # never fires; no fused loop
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler") as caught:
        out = integrate(f, 0.0, 5.0, y0, fused=True, **kw)
    assert len([w for w in caught if "no C++ compiler" in str(w.message)]) == 1
    ref = integrate(f, 0.0, 5.0, y0, **kw)
    assert torch.equal(out.y_end, ref.y_end)


def test_torch_solver_fused_runs_an_sbml_ensemble_like_the_eager_steps(compiled_calls, monkeypatch):
    model = neuroplex.load_model(MODELS / "repressilator.ant")
    base = torch.tensor([p.value for p in model.parameters], dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    params = base * torch.exp(0.1 * torch.randn((160, base.numel()), generator=g, dtype=torch.float64))
    kw = dict(solver="torch", method="dopri5", params=params, n_points=51, rtol=1e-8, atol=1e-10)
    eager = neuroplex.simulate(model, (0.0, 50.0), **kw)
    fused = neuroplex.simulate(model, (0.0, 50.0), fused=True, **kw)
    assert fused.ok
    torch.testing.assert_close(fused.ys, eager.ys, rtol=1e-7, atol=1e-9)
    threads = []
    real_step_for = aot_step.step_for

    def step_for(*args, **kwargs):
        threads.append(torch.get_num_threads())
        return real_step_for(*args, **kwargs)
    monkeypatch.setattr(aot_step, "step_for", step_for)
    compiled_calls.clear()
    sharded = neuroplex.simulate(model, (0.0, 50.0), fused=True, workers=2, **kw)
    # the loop step was built here first (a warm-up) on one thread, as the forked workers that
    # inherit it run
    assert _loop_calls(compiled_calls) and threads and set(threads) == {1}
    assert sharded.ok
    torch.testing.assert_close(sharded.ys, eager.ys, rtol=1e-7, atol=1e-9)


FORKED_COMPILE = """
import torch, neuroplex
model = neuroplex.load_model({path!r})
base = torch.tensor([p.value for p in model.parameters], dtype=torch.float64)
params = base * torch.exp(0.1 * torch.randn((160, base.numel()), generator=torch.Generator().manual_seed(1),
                                            dtype=torch.float64))
kw = dict(solver="torch", params=params, n_points=11, rtol=1e-6, atol=1e-9, fused=True)
neuroplex.simulate(model, (0.0, 10.0), method="dopri5", **kw)           # this process compiles
sol = neuroplex.simulate(model, (0.0, 10.0), method="auto", workers=2, **kw)  # a new variant, then forks
print("ok" if sol.ok else "failed")
"""


def test_fused_steps_compile_in_forked_workers_after_this_process_compiled(tmp_path):
    """A sharded fused run after this process compiled (and started inductor's compile workers,
    which a forked worker must not use: it deadlocks) builds its new variant here and forks."""
    from neuroplex.shards import can_fork

    if not can_fork():
        pytest.skip("this platform cannot fork worker processes")
    code = FORKED_COMPILE.format(path=str(MODELS / "repressilator.ant"))
    env = {**__import__("os").environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


def decay(t: torch.Tensor, y: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``y' = -k y``, one rate per sample."""
    return -k[:, None] * y


def _decay_problem(batch: int):
    k = torch.linspace(0.1, 1.0, batch, dtype=torch.float64)

    def f(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return decay(t, y, k)

    f.traceable = (decay, (k,))
    return f, torch.ones(batch, 3, dtype=torch.float64), k


def _loop_calls(calls):
    return [fn for fn, template in calls if template is fused_loop.compiled_step]


def test_fused_loop_writes_every_output_point_of_steps_longer_than_their_spacing(compiled_calls):
    f, y0, k = _decay_problem(40)
    te = torch.linspace(0.0, 10.0, 401, dtype=torch.float64)  # steps of ~1 cover dozens of points
    kw = dict(rtol=1e-8, atol=1e-12, t_eval=te)
    eager = integrate(f, 0.0, 10.0, y0, **kw)
    fused = integrate(f, 0.0, 10.0, y0, fused=True, **kw)
    assert _loop_calls(compiled_calls)
    assert fused.ok and not fused.ys.isnan().any()
    assert torch.equal(fused.n_steps, eager.n_steps)
    torch.testing.assert_close(fused.ys, eager.ys, rtol=1e-12, atol=1e-14)
    exact = torch.exp(-k[:, None, None] * te[None, :, None]).expand_as(fused.ys)
    torch.testing.assert_close(fused.ys, exact, rtol=1e-6, atol=1e-9)


def test_fused_loop_without_output_times_and_with_per_state_tolerances(compiled_calls):
    f, y0, k = _decay_problem(70)
    atol = torch.tensor([1e-12, 1e-10, 1e-8], dtype=torch.float64)
    eager = integrate(f, 0.0, 4.0, y0, rtol=1e-8, atol=atol)
    fused = integrate(f, 0.0, 4.0, y0, rtol=1e-8, atol=atol, fused=True)
    assert _loop_calls(compiled_calls) and fused.ys is None
    assert torch.equal(fused.n_steps, eager.n_steps)
    torch.testing.assert_close(fused.y_end, eager.y_end, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(fused.t_end, torch.full_like(fused.t_end, 4.0))


def test_fused_loop_gives_the_eager_failure_statuses(compiled_calls):
    f, y0 = _problem(80)  # van der Pol, mu from 0.2 to 2
    for kw in (dict(max_steps=40), dict(dt_min=0.05, dt0=0.01)):
        eager = integrate(f, 0.0, 20.0, y0, rtol=1e-9, atol=1e-12, **kw)
        fused = integrate(f, 0.0, 20.0, y0, rtol=1e-9, atol=1e-12, fused=True, **kw)
        assert not eager.ok
        assert torch.equal(fused.status, eager.status)
        assert torch.equal(fused.n_steps, eager.n_steps)
        # the error estimate of the first, tiny steps is rounding noise, which a compiled kernel
        # rounds differently: the steps agree to the controller's resolution, not to the last bit
        torch.testing.assert_close(fused.t_end, eager.t_end, rtol=1e-3, atol=0.0)
    assert _loop_calls(compiled_calls)


def test_fused_loop_stops_stiff_samples_like_the_eager_loop(compiled_calls):
    mu = torch.tensor([1.0, 2.0, 500.0, 1000.0], dtype=torch.float64)
    f = _rhs(mu)
    y0 = torch.tensor([2.0, 0.0], dtype=torch.float64).expand(4, 2).clone()
    kw = dict(rtol=1e-6, atol=1e-9, stiff_stop=True, stiff_budget=300, max_steps=5000)
    eager = integrate(f, 0.0, 3000.0, y0, **kw)
    fused = integrate(f, 0.0, 3000.0, y0, fused=True, **kw)
    assert _loop_calls(compiled_calls)
    assert (eager.status[2:] == neuroplex.Status.STIFF).all()
    assert torch.equal(fused.status, eager.status)
    assert torch.equal(fused.n_steps, eager.n_steps)


def test_fused_loop_applies_only_where_nothing_needs_the_host_between_steps():
    from neuroplex.plugins.torch_solver.dopri5 import Dopri5Stepper
    from neuroplex.plugins.torch_solver.rosenbrock import RodasStepper

    f, y0 = _problem(8)
    f0 = f(torch.zeros(8, dtype=torch.float64), y0)
    common = dict(adaptive=True, events=None, stop_fn=None, y0=y0, f0=f0)
    assert fused_loop.applies(f, Dopri5Stepper(), fused=True, **common)
    assert not fused_loop.applies(f, Dopri5Stepper(), fused=False, **common)
    assert not fused_loop.applies(f, RodasStepper(), fused=True, **common)
    assert not fused_loop.applies(lambda t, y: f(t, y), Dopri5Stepper(), fused=True, **common)
    assert not fused_loop.applies(f, Dopri5Stepper(), fused=True, **{**common, "stop_fn": lambda t, y, d: t > 0})
    assert not fused_loop.applies(f, Dopri5Stepper(), fused=True, **{**common, "adaptive": False})
