"""EqProp: closed-form energy gradients vs autograd, and the EqProp estimate vs the true gradient."""
from __future__ import annotations

import pytest
import torch

from neuroplex.plugins.eqprop.energies import COSTS, ENERGIES, NONLINEARITIES, cost, cost_grad, make_energy
from neuroplex.plugins.eqprop.rule import EqPropRule

DIMS = (5, 6, 4, 3)


def _setup(energy, nonlin, seed=0, batch=4):
    g = torch.Generator().manual_seed(seed)
    en = make_energy(energy, DIMS, nonlin)
    params = []
    for a, b in zip(DIMS[:-1], DIMS[1:]):
        params += [torch.randn(b, a, generator=g, dtype=torch.float64) * 0.5,
                   torch.randn(b, generator=g, dtype=torch.float64) * 0.1]
    x = torch.rand(batch, DIMS[0], generator=g, dtype=torch.float64)
    if nonlin == "hard_sigmoid":  # the relaxation keeps these states in [0, 1]
        us = [0.05 + 0.9 * torch.rand(batch, d, generator=g, dtype=torch.float64) for d in DIMS[1:]]
    else:  # away from the kinks of relu / leaky_relu
        us = [torch.randn(batch, d, generator=g, dtype=torch.float64) for d in DIMS[1:]]
        us = [u + 0.1 * torch.sign(u) for u in us]
    return en, params, x, us


@pytest.mark.parametrize("nonlin", list(NONLINEARITIES))
@pytest.mark.parametrize("energy", list(ENERGIES))
def test_closed_form_gradients_match_autograd(energy, nonlin):
    en, params, x, us = _setup(energy, nonlin)
    us_ = [u.clone().requires_grad_(True) for u in us]
    ps_ = [p.clone().requires_grad_(True) for p in params]
    if nonlin == "hard_sigmoid":  # reference energy with rho = clip(u, 0, 1) written with autograd
        ref = _reference_energy(energy, x, us_, ps_, lambda u: u.clamp(0, 1))
    else:
        ref = _reference_energy(energy, x, us_, ps_, lambda u: NONLINEARITIES[nonlin](u)[0])
    assert torch.allclose(en.energy(x, us, params), ref.detach(), atol=1e-10)
    auto = torch.autograd.grad(ref.sum(), us_ + ps_)
    closed_u = en.grad_states(x, us, params)
    closed_p = en.grad_params(x, us, params)
    for a, c in zip(auto[:len(us)], closed_u):
        assert torch.allclose(a, c, atol=1e-10)
    for a, c in zip(auto[len(us):], closed_p):
        assert torch.allclose(a / x.shape[0], c, atol=1e-10)


def _reference_energy(energy, x, us, params, rho):
    acts = [x] + [rho(u) for u in us]
    e = torch.zeros(x.shape[0], dtype=x.dtype)
    for l in range(len(us)):
        W, b = params[2 * l], params[2 * l + 1]
        if energy == "restr_hopfield":
            e = e + 0.5 * (us[l] ** 2).sum(-1) - (acts[l + 1] * (acts[l] @ W.T + b)).sum(-1)
        else:
            e = e + ((us[l] - acts[l] @ W.T - b) ** 2).sum(-1)
    return e


@pytest.mark.parametrize("name", COSTS)
def test_cost_gradients(name):
    g = torch.Generator().manual_seed(3)
    out = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.nn.functional.one_hot(torch.tensor([0, 3, 1, 2, 3]), 4).double()
    (auto,) = torch.autograd.grad(cost(name, out, target).sum(), out)
    assert torch.allclose(auto, cost_grad(name, out.detach(), target), atol=1e-12)
    if name == "cross_entropy":
        ref = torch.nn.functional.cross_entropy(out, target.argmax(1), reduction="none")
        assert torch.allclose(cost(name, out, target), ref)


def _true_gradient(rule, x, y):
    """Gradient of the mean cost at the free equilibrium by implicit differentiation:
    dL/dtheta = -(d^2E/dtheta du) H^-1 dC/du with H = d^2E/du^2 (autograd, tests only)."""
    x = x.double()
    free, _ = rule.free_phase(x)
    en, dyn = rule.energy, rule.dynamics
    ps = [p.clone().requires_grad_(True) for p in rule.params]
    u = free.clone().requires_grad_(True)
    e = en.energy(x, dyn.split(u), ps).sum()
    (g,) = torch.autograd.grad(e, u, create_graph=True)
    n = u.numel()
    H = torch.stack([torch.autograd.grad(g.reshape(-1)[i], u, retain_graph=True)[0].reshape(-1) for i in range(n)])
    target = torch.nn.functional.one_hot(y, rule.config.dimensions[-1]).double()
    uc = free.clone().requires_grad_(True)
    (dc,) = torch.autograd.grad(cost(rule.config.c_energy, dyn.split(uc)[-1], target).mean(), uc)
    v = torch.linalg.solve(H, dc.reshape(-1)).reshape(u.shape)
    return [-t for t in torch.autograd.grad((g * v).sum(), ps)]


def _cos(a, b):
    a = torch.cat([t.reshape(-1) for t in a])
    b = torch.cat([t.reshape(-1) for t in b])
    return float(a @ b / (a.norm() * b.norm())), float((a - b).norm() / b.norm())


@pytest.mark.parametrize("energy,nonlin,c_energy", [("restr_hopfield", "sigmoid", "squared_error"),
                                                    ("restr_hopfield", "tanh", "cross_entropy"),
                                                    ("cond_gaussian", "sigmoid", "cross_entropy")])
def test_eqprop_gradient_approaches_true_gradient(energy, nonlin, c_energy):
    torch.manual_seed(0)
    x = torch.rand(4, 5, dtype=torch.float64)
    y = torch.tensor([0, 2, 1, 2])
    results = {}
    for sign, beta in [("positive", 0.5), ("positive", 0.01), ("centered", 0.5), ("centered", 0.01)]:
        rule = EqPropRule(dimensions=DIMS, energy=energy, nonlinearity=nonlin, c_energy=c_energy, beta=beta,
                          beta_sign=sign, step_size=0.1, free_steps=3000, nudged_steps=3000, tol=1e-13,
                          fast_ff_init=False, dtype="float64")
        rule.init(0, "cpu")
        with torch.no_grad():  # a stronger network than the Glorot init, so the test is not trivial
            for p in rule.params:
                p.mul_(2.0)
        true = _true_gradient(rule, x, y)
        est, metrics = rule.gradient(x, y)
        assert metrics["free_residual"] < 1e-10
        results[(sign, beta)] = _cos(est, true)
    cos_c, err_c = results[("centered", 0.01)]
    assert cos_c > 0.99 and err_c < 1e-3, results
    # the estimate improves as beta -> 0, and centered nudging removes the O(beta) bias
    assert results[("positive", 0.01)][1] < results[("positive", 0.5)][1]
    assert results[("centered", 0.5)][1] < results[("positive", 0.5)][1]
    assert err_c < results[("positive", 0.01)][1]
