"""One printer, two targets: :class:`neuroplex.codegen.ExpressionPrinter` prints the same
expressions as torch source and as C, and both compute the same numbers (C built with the
system compiler where there is one), special functions through their one definition."""
from __future__ import annotations

import ctypes
import math
import pickle
import shutil
import subprocess
from pathlib import Path

import pytest
import sympy
import torch
from sympy.printing.codeprinter import CodePrinter

from neuroplex import runtime
from neuroplex.codegen import CPrinter, ExpressionPrinter, TorchPrinter, build_function, c_helpers
from neuroplex.errors import ModelError
from neuroplex.ir import exprel

x, y = sympy.symbols("x y")
#: expressions over x, y covering the node kinds both targets print
EXPRESSIONS = [
    x + y - 2 * x * y, x / y, -x, x ** -2, x ** 3, sympy.sqrt(sympy.Abs(x)), sympy.Abs(x) ** 2.5,
    sympy.exp(-x / 3), sympy.log(sympy.Abs(y) + 1), sympy.tanh(x) + sympy.cosh(y), sympy.erf(x),
    sympy.Max(x, y, 0.5), sympy.Min(x, -y), sympy.sign(x), sympy.Mod(x, 0.7), sympy.floor(x) + sympy.ceiling(y),
    sympy.Piecewise((x, x > 0), (y, y > 0), (1.5, True)), sympy.Piecewise((x, sympy.And(x > 0, y < 1)), (2.0, True)),
    sympy.Piecewise((1.0, sympy.Or(x >= 1, sympy.Not(y < 0))), (0.0, True)),
    exprel(x / 4.0) * 2.5e-3, sympy.pi * x + sympy.Rational(1, 3) * y,
    0.04 * (-65.0 - x) / (sympy.exp(-(x + 40) / 10) - 1),
]
#: inputs: ordinary values, zeros, tiny, large and NaN
POINTS = [(0.3, -1.2), (-2.5, 0.8), (0.0, 0.0), (1e-300, -1e-12), (35.0, 50.0), (-40.0, 7.0), (math.nan, 1.0),
          (2.0, math.nan)]


def _torch_values(expr: sympy.Expr) -> list[float]:
    code = TorchPrinter({"x": "X", "y": "Y"})(expr)
    fn = build_function("f", ["X", "Y"], [f"return {code} + torch.zeros_like(X)"])
    xs = torch.tensor([p[0] for p in POINTS], dtype=torch.float64)
    ys = torch.tensor([p[1] for p in POINTS], dtype=torch.float64)
    return fn(xs, ys).tolist()


def test_one_codeprinter_with_two_targets() -> None:
    assert issubclass(ExpressionPrinter, CodePrinter)
    assert TorchPrinter({"x": "a"})(exprel(x)) == "_rt.exprel(a)"
    assert CPrinter({"x": "a"})(exprel(x)) == "np_exprel(a)"
    assert ExpressionPrinter({"x": "a"}, target="c")(sympy.Max(x, 1.0)) == "np_max(1.0, a)"
    assert ExpressionPrinter({"x": "a"})(sympy.Max(x, 1.0)) == "_rt.maximum(1.0, a)"
    # numbers are folded on the torch target, printed at full precision (and in float) in C
    assert TorchPrinter({"x": "a"})(x * sympy.sqrt(2)) == f"(a * {math.sqrt(2)!r})"
    assert CPrinter({"x": "a"}, torch.float32)(sympy.Float(0.1) * x) == "((float)0.1)*a"
    assert CPrinter({"x": "a"}, torch.float32)(sympy.exp(x)) == "expf(a)"
    with pytest.raises(ModelError, match="target must be one of torch, c"):
        ExpressionPrinter({}, target="fortran")
    with pytest.raises(ModelError, match="undefined symbol 'y'"):
        TorchPrinter({"x": "a"})(x + y)
    with pytest.raises(ModelError, match="undefined symbol 'y' in the generated step"):
        CPrinter({"x": "a"})(x + y)


def test_torch_target_matches_the_runtime_semantics() -> None:
    got = _torch_values(sympy.Max(x, y))
    assert math.isnan(got[6]) and math.isnan(got[7])  # NaN propagates, as torch.maximum
    got = _torch_values(sympy.Mod(x, 0.7))
    assert got[1] == pytest.approx(-2.5 - 0.7 * math.floor(-2.5 / 0.7))  # the floor modulo
    assert _torch_values(exprel(x))[2] == 1.0
    assert runtime.exprel(torch.tensor([0.0]))[0] == 1.0


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) on this machine")
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_c_target_computes_what_the_torch_target_computes(tmp_path: Path) -> None:
    names = {"x": "x", "y": "y"}
    lines = ["#include <math.h>", "typedef double real;", c_helpers(torch.float64)]
    for i, e in enumerate(EXPRESSIONS):
        lines.append(f"double f{i}(double x, double y) {{ return {CPrinter(names)(e)}; }}")
    (tmp_path / "f.c").write_text("\n".join(lines) + "\n")
    lib = tmp_path / "f.so"
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", str(tmp_path / "f.c"), "-o", str(lib), "-lm"], check=True)
    so = ctypes.CDLL(str(lib))
    for i, e in enumerate(EXPRESSIONS):
        fn = getattr(so, f"f{i}")
        fn.restype, fn.argtypes = ctypes.c_double, [ctypes.c_double, ctypes.c_double]
        for (a, b), t in zip(POINTS, _torch_values(e)):
            c = fn(a, b)
            same = (math.isnan(c) and math.isnan(t)) or c == t or math.isclose(c, t, rel_tol=1e-14, abs_tol=1e-300)
            assert same, (e, a, b, c, t)


@pytest.mark.parametrize("make", [lambda: TorchPrinter({"x": "a"}), lambda: CPrinter({"x": "a"}, torch.float32)])
def test_printers_survive_pickling(make):
    """Compiled models hold printers and travel to Ray workers by pickle."""
    printer = make()
    clone = pickle.loads(pickle.dumps(printer))
    x = sympy.Symbol("x")
    assert type(clone) is type(printer) and clone(sympy.exp(x) / 3) == printer(sympy.exp(x) / 3)
