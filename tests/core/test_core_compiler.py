"""One compiler for every model (:class:`neuroplex.compiler.CompiledProgram`): IR models get the
pruning, parameter-only binding and symbolic Jacobian that SBML programs have."""
from __future__ import annotations

import math

import sympy as sp
import torch

import neuroplex as nx
from neuroplex.compiler import CompiledProgram
from neuroplex.dynamics import CompiledDynamics

T = torch.float64
x, w, k1, k2, u, t = sp.symbols("x w k1 k2 u t")


def model() -> nx.ModelIR:
    """x' = -k1 k2 x**2 + u w, w' = sin(t) x - drive; ``drive`` feeds the rhs, ``unused`` only the outputs."""
    return nx.ModelIR("probe", states=[nx.State("x", 0.5), nx.State("w", -1.0)],
                      parameters=[nx.Parameter("k1", 2.0), nx.Parameter("k2", 3.0)], inputs={"u": 0.25},
                      assignments={"drive": k2 * w / (1 + x ** 2), "unused": sp.exp(k1 * x)},
                      derivatives={"x": -k1 * k2 * x ** 2 + u * w, "w": sp.sin(t) * x - sp.Symbol("drive")})


def reference(tt: torch.Tensor, y: torch.Tensor, p: torch.Tensor, uu: torch.Tensor) -> torch.Tensor:
    xx, ww = y[..., 0], y[..., 1]
    a, b = p[..., 0], p[..., 1]
    drive = b * ww / (1 + xx ** 2)
    return torch.stack([-a * b * xx ** 2 + uu[..., 0] * ww, torch.sin(tt) * xx - drive], -1)


def test_ir_models_compile_through_the_one_compiler() -> None:
    dyn = model().compile()
    assert isinstance(dyn, CompiledDynamics) and isinstance(dyn.program, CompiledProgram)
    assert dyn.program.param_names == ["k1", "k2", "u"]  # inputs are columns after the parameters
    src = dyn.source()
    assert "def bind_rhs(p)" in src and "def rhs(t, y, k)" in src
    assert "exp" not in src  # pruned: 'unused' feeds no derivative
    bind = src.split("def rhs")[0]
    assert "_p0 * _p1" in bind  # k1 * k2 bound once per parameter set


def test_rhs_with_and_without_inputs_and_bound() -> None:
    dyn = model().compile()
    g = torch.Generator().manual_seed(0)
    y = torch.randn(5, 2, generator=g, dtype=T)
    p = torch.rand(5, 2, generator=g, dtype=T) + 0.5
    tt = torch.linspace(0, 2, 5, dtype=T)
    uu = torch.rand(5, 1, generator=g, dtype=T)
    assert torch.allclose(dyn.rhs(tt, y, p, uu), reference(tt, y, p, uu), rtol=1e-14, atol=1e-15)
    default_u = torch.full((5, 1), 0.25, dtype=T)
    assert torch.allclose(dyn.rhs(tt, y, p), reference(tt, y, p, default_u), rtol=1e-14, atol=1e-15)
    f = dyn.rhs_bound(p, uu)
    assert torch.allclose(f(tt, y), reference(tt, y, p, uu), rtol=1e-14, atol=1e-15)
    # a batch of one runs the numpy-scalar form of the same source: the same numbers
    one = dyn.rhs_bound(p[:1], uu[:1])(tt[:1], y[:1])
    assert torch.allclose(one, reference(tt[:1], y[:1], p[:1], uu[:1]), rtol=1e-14, atol=1e-15)
    # the loop's batch selection keeps each sample's parameters
    idx = torch.tensor([3, 1])
    assert torch.allclose(f.select(idx)(tt[idx], y[idx]), reference(tt[idx], y[idx], p[idx], uu[idx]), rtol=1e-14)


def test_symbolic_jacobian_of_an_ir_model() -> None:
    dyn = model().compile()
    p = torch.tensor([[2.0, 3.0], [1.0, 0.5]], dtype=T)
    uu = torch.tensor([[0.25], [-1.0]], dtype=T)
    y = torch.tensor([[0.5, -1.0], [1.5, 2.0]], dtype=T)
    tt = torch.tensor([0.3, 1.1], dtype=T)
    jac_y, jac_t = dyn.rhs_bound(p, uu).jacobian(tt, y)
    for b in range(2):
        xx, ww = float(y[b, 0]), float(y[b, 1])
        a, c, uv = float(p[b, 0]), float(p[b, 1]), float(uu[b, 0])
        expect = [[-2 * a * c * xx, uv],
                  [math.sin(float(tt[b])) + c * ww * 2 * xx / (1 + xx ** 2) ** 2, -c / (1 + xx ** 2)]]
        assert torch.allclose(jac_y[b], torch.tensor(expect, dtype=T), rtol=1e-13)
        assert math.isclose(float(jac_t[b, 1]), math.cos(float(tt[b])) * xx, rel_tol=1e-13)
        assert float(jac_t[b, 0]) == 0.0


def test_stiff_ir_model_runs_rosenbrock_on_the_generated_jacobian() -> None:
    a, b = sp.symbols("a b")
    chain = nx.ModelIR("chain", states=[nx.State("a", 1.0), nx.State("b", 0.0)],
                       parameters=[nx.Parameter("k1", 1e4), nx.Parameter("k2", 1.0)],
                       derivatives={"a": -k1 * a, "b": k1 * a - k2 * b})
    te = torch.linspace(0, 2, 5, dtype=T)
    sol = nx.simulate(chain, (0, 2), t_eval=te, method="rosenbrock", rtol=1e-9, atol=1e-12)
    exact = 1e4 / (1.0 - 1e4) * (torch.exp(-1e4 * te) - torch.exp(-te))
    assert sol.ok and torch.allclose(sol["b"][0], exact, rtol=1e-6, atol=1e-10)
    # what the stiff method reads: the generated Jacobian (constant here), not autograd's
    dyn = chain.compile()
    p = dyn.default_params()[None]
    jac_y, jac_t = dyn.rhs_bound(p).jacobian(torch.zeros(1, dtype=T), torch.tensor([[0.3, 0.2]], dtype=T))
    assert torch.equal(jac_y[0], torch.tensor([[-1e4, 0.0], [1e4, -1.0]], dtype=T))
    assert torch.equal(jac_t, torch.zeros(1, 2, dtype=T))
