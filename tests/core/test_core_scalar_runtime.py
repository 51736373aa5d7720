"""The numpy-scalar form of generated code equals the torch form on single samples, for every
construct the printer emits (IEEE special values included)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy
import torch

from neuroplex import scalar_runtime
from neuroplex.codegen import TorchPrinter, build_function
from neuroplex.ir import exprel

x, y, z = sympy.symbols("x y z")
EXPRESSIONS = [
    x * y + z / x - 3 * y ** 2 + x ** 3 - x ** 4,
    sympy.exp(x) + sympy.log(sympy.Abs(y) + 1) + sympy.sqrt(sympy.Abs(z)) + sympy.log(sympy.Abs(x) + 2, 10),
    sympy.sin(x) * sympy.cos(y) + sympy.tan(z) + sympy.asin(x / 10) + sympy.acos(y / 10) + sympy.atan(z),
    sympy.sinh(x) + sympy.cosh(y) + sympy.tanh(z) + sympy.asinh(x) + sympy.acosh(sympy.Abs(y) + 1)
    + sympy.atanh(z / 10),
    sympy.floor(x) + sympy.ceiling(y) + sympy.sign(z) + sympy.erf(x),
    sympy.sec(x) + sympy.csc(y) + sympy.cot(z) + sympy.sech(x) + sympy.csch(y) + sympy.coth(z),
    sympy.asec(sympy.Abs(x) + 1) + sympy.acsc(sympy.Abs(y) + 1) + sympy.acot(z) + sympy.asech(1 / (sympy.Abs(x) + 2))
    + sympy.acsch(y) + sympy.acoth(sympy.Abs(z) + 2),
    sympy.Pow(sympy.Abs(x), y) + sympy.Pow(x, sympy.Rational(1, 3)) + sympy.Min(x, y, z) + sympy.Max(x, y),
    sympy.Mod(x, y) + sympy.factorial(sympy.Abs(z)) + sympy.gamma(sympy.Abs(x) + 0.5) + exprel(y / 1e8),
    sympy.Piecewise((x, (x > y) & (y <= z)), (y, sympy.Or(x < 0, sympy.Not(z >= 1))), (z, sympy.Xor(x > 0, y > 0)),
                    (2 * x, sympy.Eq(x, y)), (3 * y, sympy.Ne(y, z))),
    z / (x - y) + y / (x - z),  # division by zero: inf or nan, as torch
]
POINTS = [(0.7, -1.3, 2.9), (-2.5, 0.4, 0.0), (0.0, 0.0, -0.0), (3.0, 3.0, 3.0), (math.nan, 1.0, 2.0),
          (math.inf, -2.0, 0.5), (1e-300, 1e300, -7.0)]


def _functions(expr: sympy.Expr):
    printer = TorchPrinter({"x": "_x", "y": "_y", "z": "_z"})
    body = ["_x = v[..., 0]", "_y = v[..., 1]", "_z = v[..., 2]", f"return {printer(expr)}"]
    fn = build_function("f", ["v"], body)
    return fn, scalar_runtime.scalar_function(fn, {})


@pytest.mark.parametrize("expr", EXPRESSIONS, ids=[f"e{i}" for i in range(len(EXPRESSIONS))])
def test_scalar_form_equals_torch_form(expr: sympy.Expr) -> None:
    fn, one = _functions(expr)
    assert one is not None
    for point in POINTS:
        v = torch.tensor([point], dtype=torch.float64)
        want = torch.as_tensor(fn(v), dtype=torch.float64).reshape(-1)[0]
        with scalar_runtime.quiet():
            got = torch.as_tensor(float(one(v[0].numpy())), dtype=torch.float64)
        assert torch.allclose(got, want, rtol=1e-13, atol=1e-300, equal_nan=True), (expr, point, got, want)


def test_names_without_a_scalar_form_keep_the_torch_path() -> None:
    fn = build_function("g", ["v"], ["return torch.lgamma(v)"])
    assert not scalar_runtime.supports(fn.__source__)
    assert scalar_runtime.scalar_function(fn, {}) is None
    assert scalar_runtime.scalar_function(lambda v: v, {}) is None  # no generated source


def test_stack_and_jacobian_out_give_one_sample_tensors() -> None:
    out = scalar_runtime.stack([scalar_runtime.f64(1.5), 2, True], None)
    assert out.shape == (1, 3) and out.dtype == torch.float64 and out.tolist() == [[1.5, 2.0, 1.0]]
    jac, dt = scalar_runtime.jacobian_out([4.0, 5.0], np.zeros(2), np.array([1, 5]))
    assert jac.tolist() == [[[0.0, 4.0], [0.0, 0.0]]] and dt.tolist() == [[0.0, 5.0]]
