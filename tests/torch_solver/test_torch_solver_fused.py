"""Fused steps (``fused=True``): dopri5 steps compiled by torch.compile give the eager steps'
results, are skipped where they cannot apply, and fall back to eager steps with a warning."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import neuroplex
from neuroplex.plugins.torch_solver import fused as fused_module
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
    """Counts the compiled steps that ran."""
    calls = []
    real = fused_module.compiled_for

    def spy(fn, template, dynamic=True):
        step = real(fn, template, dynamic)

        def counted(*args, **kwargs):
            calls.append(fn)
            return step(*args, **kwargs)
        return counted
    monkeypatch.setattr(fused_module, "compiled_for", spy)
    return calls


@pytest.mark.parametrize("method", ["dopri5", "dop853"])
def test_fused_steps_give_the_eager_steps_results(compiled_calls, method):
    f, y0 = _problem(96)
    te = torch.linspace(0.0, 10.0, 21, dtype=torch.float64)
    kw = dict(method=method, rtol=1e-8, atol=1e-10, t_eval=te, stiff_stop=True)  # dopri5: its stiffness test on
    eager = integrate(f, 0.0, 10.0, y0, **kw)
    fused = integrate(f, 0.0, 10.0, y0, fused=True, **kw)
    assert compiled_calls and all(fn is van_der_pol for fn in compiled_calls)
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


def test_fused_steps_fall_back_to_eager_with_one_warning_when_compiling_fails(monkeypatch):
    def broken(fn, **kwargs):
        def run(*args, **kw):
            raise RuntimeError("no C++ compiler")
        return run
    monkeypatch.setattr(fused_module, "_BY_FUNCTION", type(fused_module._BY_FUNCTION)())
    monkeypatch.setattr(fused_module.torch, "compile", broken)
    f, y0 = _problem(70)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        out = integrate(f, 0.0, 5.0, y0, fused=True)
    ref = integrate(f, 0.0, 5.0, y0)
    assert torch.equal(out.y_end, ref.y_end)


def test_torch_solver_fused_runs_an_sbml_ensemble_like_the_eager_steps():
    model = neuroplex.load_model(MODELS / "repressilator.ant")
    base = torch.tensor([p.value for p in model.parameters], dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    params = base * torch.exp(0.1 * torch.randn((80, base.numel()), generator=g, dtype=torch.float64))
    kw = dict(solver="torch", method="dopri5", params=params, n_points=51, rtol=1e-8, atol=1e-10)
    eager = neuroplex.simulate(model, (0.0, 50.0), **kw)
    fused = neuroplex.simulate(model, (0.0, 50.0), fused=True, **kw)
    assert fused.ok
    torch.testing.assert_close(fused.ys, eager.ys, rtol=1e-7, atol=1e-9)


FORKED_COMPILE = """
import torch, neuroplex
model = neuroplex.load_model({path!r})
base = torch.tensor([p.value for p in model.parameters], dtype=torch.float64)
params = base * torch.exp(0.1 * torch.randn((160, base.numel()), generator=torch.Generator().manual_seed(1),
                                            dtype=torch.float64))
kw = dict(solver="torch", params=params, n_points=11, rtol=1e-6, atol=1e-9, fused=True)
neuroplex.simulate(model, (0.0, 10.0), method="dopri5", **kw)           # this process compiles
sol = neuroplex.simulate(model, (0.0, 10.0), method="auto", workers=2, **kw)  # a new variant, in the workers too
print("ok" if sol.ok else "failed")
"""


def test_fused_steps_compile_in_forked_workers_after_this_process_compiled(tmp_path):
    """Inductor's compile-worker pool of the parent must not be used by forked workers (it deadlocks)."""
    from neuroplex.shards import can_fork

    if not can_fork():
        pytest.skip("this platform cannot fork worker processes")
    code = FORKED_COMPILE.format(path=str(MODELS / "repressilator.ant"))
    env = {**__import__("os").environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
