"""EqProp rule: options, phases, fast path, optimizers, registration, the digits smoke test."""
from __future__ import annotations

import pytest
import torch

from neuroplex.datasets import Dataset, digits
from neuroplex.errors import NeuroplexError
from neuroplex.host import get_learning_rule, get_task
from neuroplex.plugins.eqprop.energies import ENERGIES, NONLINEARITIES
from neuroplex.plugins.eqprop.rule import EqPropRule
from neuroplex.trainer import LearningRule, Trainer


@pytest.fixture(scope="module")
def data():
    return digits()


def _small(data, n=400):
    return Dataset("digits-small", data.x_train[:n], data.y_train[:n], data.x_test, data.y_test, 10)


def test_registered():
    assert get_learning_rule("eqprop") is EqPropRule
    assert get_task("restr_hopfield") is ENERGIES["restr_hopfield"]
    assert isinstance(EqPropRule(), LearningRule)


def test_smoke_three_epochs_fixed_split(data, tmp_path):
    """CI smoke test: defaults (Hopfield, hard sigmoid, Scellier & Bengio recipe), 3 epochs."""
    rule = EqPropRule()
    hist = Trainer(rule, data, epochs=3, batch_size=20, seed=0, run_dir=tmp_path, progress=False, plot=False).fit()
    assert hist[-1]["test_accuracy"] >= 0.75, hist
    assert hist[-1]["train_accuracy"] >= 0.8
    assert {"train_energy", "test_energy", "train_cost", "free_residual", "free_iterations", "w0_norm", "w1_norm", "seconds"} <= set(hist[-1])
    assert (tmp_path / "metrics.csv").exists()


@pytest.mark.parametrize("nonlin", list(NONLINEARITIES))
@pytest.mark.parametrize("energy", list(ENERGIES))
def test_every_energy_and_nonlinearity_learns(data, energy, nonlin):
    """Every combination runs end to end and learns (none raises or returns None, unlike the
    reference's tanh / leaky_relu). The relu Hopfield energy is unbounded below, so it gets
    a gentler setting and a lower bar."""
    opts = dict(energy=energy, nonlinearity=nonlin, fast_ff_init=False, beta_sign="centered", optimizer="adam",
                learning_rate=5e-3, beta=0.5, step_size=0.1 if energy == "cond_gaussian" else 0.3,
                free_steps=40, nudged_steps=10)
    relu_hopfield = (energy, nonlin) == ("restr_hopfield", "relu")
    if relu_hopfield:
        opts.update(learning_rate=1e-3, beta_sign="random")
    rule = EqPropRule(**opts)
    hist = Trainer(rule, _small(data, 300), epochs=4, batch_size=20, seed=0, progress=False, plot=False).fit()
    assert all(torch.isfinite(p).all() for p in rule.params)
    assert hist[-1]["train_cost"] < hist[0]["train_cost"], [h["train_cost"] for h in hist]
    assert hist[-1]["train_accuracy"] > (0.25 if relu_hopfield else 0.5), [h["train_accuracy"] for h in hist]


def test_fast_ff_init_switches_on_and_off(data):
    x, y = data.x_train[:20], data.y_train[:20]
    on = EqPropRule(energy="cond_gaussian", fast_ff_init=True)
    off = EqPropRule(energy="cond_gaussian", fast_ff_init=False)
    for r in (on, off):
        torch.manual_seed(0)
        r.init(0, "cpu")
    _, m_on = on.gradient(x, y)
    _, m_off = off.gradient(x, y)
    assert m_on["free_iterations"] == 0 and m_on["free_residual"] < 1e-6
    assert abs(on.evaluate(x, y)["energy"]) < 1e-10
    assert m_off["free_iterations"] > 0 and off.evaluate(x, y)["energy"] > 0
    # the forward pass is the free equilibrium of cond_gaussian: the relaxation finds it too
    off2 = EqPropRule(energy="cond_gaussian", fast_ff_init=False, free_steps=2000, tol=1e-7)
    torch.manual_seed(0)
    off2.init(0, "cpu")
    relaxed = off2.predict(x)
    ff = on.energy.forward(x, on.params)[-1]
    assert torch.allclose(relaxed, ff, atol=1e-4)


def test_free_phase_stops_early_and_reports_residual(data):
    x = data.x_train[:50]
    rule = EqPropRule(free_steps=400, tol=1e-2)
    torch.manual_seed(0)
    rule.init(0, "cpu")
    _, stats = rule.free_phase(x)
    assert int(stats["iterations"].max()) < 400 and bool((stats["residual"] < 1e-2).all())
    assert int(stats["iterations"].min()) < int(stats["iterations"].max())  # per-sample stopping
    tight = EqPropRule(free_steps=3, tol=1e-9)
    torch.manual_seed(0)
    tight.init(0, "cpu")
    _, stats = tight.free_phase(x)
    assert bool((stats["iterations"] == 3).all()) and bool((stats["residual"] > 1e-9).all())


def test_affine_fast_path_equals_closed_form_step(data):
    x = data.x_train[:8].double()
    rule = EqPropRule(dimensions=(64, 30, 20, 10), dtype="float64")
    torch.manual_seed(0)
    rule.init(0, "cpu")
    target = torch.nn.functional.one_hot(data.y_train[:8], 10).double()
    y = torch.rand(8, 60, dtype=torch.float64)
    for beta in (0.0, 0.7, -0.7):
        dyn = rule.dynamics.bind(x, target, beta)
        assert dyn._affine is not None
        fast = dyn.fixed_point_map(y)
        slow = (y - dyn.step_size * dyn.grad(y)).clamp(0, 1)
        assert torch.allclose(fast, slow, atol=1e-12)
    # the cached operator follows in-place parameter updates (optimizer steps)
    dyn = rule.dynamics.bind(x)
    before = dyn.fixed_point_map(y)
    with torch.no_grad():
        rule.params[2].mul_(1.5)
    dyn = rule.dynamics.bind(x)
    after = dyn.fixed_point_map(y)
    assert not torch.allclose(before, after)
    assert torch.allclose(after, (y - dyn.step_size * dyn.grad(y)).clamp(0, 1), atol=1e-12)
    ce = EqPropRule(dimensions=(64, 30, 10), c_energy="cross_entropy")
    ce.init(0, "cpu")
    assert ce.dynamics.bind(x.float(), target.float(), 0.5)._affine is None  # CE nudging is not affine


@pytest.mark.parametrize("sign", ["positive", "random", "centered"])
@pytest.mark.parametrize("opt", ["sgd", "adam", "adagrad"])
def test_optimizers_and_beta_signs(data, sign, opt):
    rule = EqPropRule(optimizer=opt, beta_sign=sign, learning_rate={"sgd": None, "adam": 3e-3, "adagrad": 1e-2}[opt])
    hist = Trainer(rule, _small(data, 200), epochs=2, seed=1, progress=False, plot=False).fit()
    assert isinstance(rule.optimizer, {"sgd": torch.optim.SGD, "adam": torch.optim.Adam,
                                       "adagrad": torch.optim.Adagrad}[opt])
    assert hist[-1]["train_accuracy"] > 0.35


def test_random_sign_uses_seeded_rng(data):
    x, y = data.x_train[:20], data.y_train[:20]
    outs = []
    for seed in (0, 0, 1):
        rule = EqPropRule(beta_sign="random")
        torch.manual_seed(5)
        rule.init(0, "cpu")
        torch.manual_seed(seed)
        outs.append([rule.gradient(x, y)[0][0].clone() for _ in range(6)])
    assert all(torch.equal(a, b) for a, b in zip(outs[0], outs[1]))
    assert not all(torch.equal(a, b) for a, b in zip(outs[0], outs[2]))


def test_options_are_validated():
    with pytest.raises(NeuroplexError, match="nonlinearity"):
        EqPropRule(nonlinearity="softsign")
    with pytest.raises(NeuroplexError, match="beta must be > 0"):
        EqPropRule(beta=0.0)
    with pytest.raises(NeuroplexError, match="3 learning rates for 2"):
        EqPropRule(learning_rate=(0.1, 0.1, 0.1))
    with pytest.raises(NeuroplexError, match="unknown option"):
        EqPropRule(lr=0.1)
    with pytest.raises(NeuroplexError, match="unknown energy"):
        EqPropRule(energy="ising")
    deep = EqPropRule(dimensions=(64, 50, 50, 10))  # preset rates extend to deeper nets
    assert deep.config.learning_rate == (0.1, 0.05, 0.05)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_trains_on_cuda(data):
    cpu_rule, gpu_rule = EqPropRule(dtype="float64"), EqPropRule(dtype="float64")
    small = _small(data, 200)
    h_cpu = Trainer(cpu_rule, small, epochs=1, seed=0, device="cpu", progress=False, plot=False).fit()
    h_gpu = Trainer(gpu_rule, small, epochs=1, seed=0, device="cuda", progress=False, plot=False).fit()
    assert gpu_rule.params[0].device.type == "cuda"
    # same seed, same order: float64 results agree to rounding
    assert abs(h_cpu[-1]["train_cost"] - h_gpu[-1]["train_cost"]) < 1e-6


def test_evaluate_in_chunks_matches_one_batch(data):
    rule = EqPropRule(dtype="float64")
    torch.manual_seed(0)
    rule.init(0, "cpu")
    one = rule.evaluate(data.x_test, data.y_test)
    parts = rule.evaluate(data.x_test, data.y_test, chunk=70)
    assert one["accuracy"] == parts["accuracy"]
    assert abs(one["energy"] - parts["energy"]) < 1e-9 and abs(one["residual"] - parts["residual"]) < 1e-9


def test_dynamics_work_with_other_core_methods(data):
    """EqPropDynamics is a plain core Dynamics: Anderson acceleration and an ODE run of the
    gradient flow dy/dt = -dE/dy reach the fixed point that plain iteration finds."""
    import neuroplex

    rule = EqPropRule(nonlinearity="sigmoid", dtype="float64", step_size=0.2)
    torch.manual_seed(0)
    rule.init(0, "cpu")
    x = data.x_train[:6].double()
    dyn = rule.dynamics.bind(x)
    y0 = dyn.initial_state(batch=6)
    it = neuroplex.equilibrate(dyn, y0, method="iteration", tol=1e-10, max_iter=5000, throw=True)
    aa = neuroplex.equilibrate(dyn, y0, method="anderson", tol=1e-10, max_iter=500, throw=True)
    assert torch.allclose(it.ys, aa.ys, atol=1e-7)
    assert int(aa.stats["iterations"].max()) < int(it.stats["iterations"].max())
    flow = neuroplex.simulate(dyn, (0.0, 40.0), y0=y0, method="dopri5", rtol=1e-6, atol=1e-8)
    assert torch.allclose(flow.ys[:, -1], it.ys, atol=1e-4)
    assert bool((dyn.energy(it.ys) <= dyn.energy(y0)).all())
