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
from neuroplex.errors import ModelError, NotPrintableError
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
#: what SBML models add: functions C99 lacks (runtime semantics), logic over numbers, x**(1/3)
SBML_EXPRESSIONS = [
    sympy.sec(x), sympy.csc(x), sympy.cot(x), sympy.sech(x), sympy.csch(y), sympy.coth(x), sympy.asec(x + 3),
    sympy.acsc(y - 2), sympy.acot(x), sympy.asech(sympy.Abs(x) / 40 + 0.1), sympy.acsch(x), sympy.acoth(x + 2),
    sympy.factorial(sympy.Abs(x)), sympy.factorial(x), sympy.gamma(sympy.Abs(y) + 0.5), sympy.Abs(x) ** sympy.Rational(1, 3),
    sympy.Piecewise((x, sympy.Xor(x > 0, y > 0)), (y, True)), sympy.Piecewise((2.0, sympy.Not(x > y)), (3.0, True)),
    sympy.exp(2) * x - sympy.log(3) * y, sympy.log(sympy.Abs(x) + 2, 3, evaluate=False),
]
#: the C target's options for SBML (numbers folded, logic as 0/1 values)
SBML_OPTIONS = {"fold_numbers": True, "numeric_logic": True}
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
@pytest.mark.parametrize("options, exprs, rel", [({}, EXPRESSIONS, 1e-14), (SBML_OPTIONS, EXPRESSIONS, 1e-14),
                                                 (SBML_OPTIONS, SBML_EXPRESSIONS, 1e-12)],
                         ids=["plain", "sbml-options", "sbml-functions"])
def test_c_target_computes_what_the_torch_target_computes(tmp_path: Path, options: dict[str, bool],
                                                           exprs: list[sympy.Expr], rel: float) -> None:
    names = {"x": "x", "y": "y"}
    printer = ExpressionPrinter(names, target="c", **options)
    lines = ["#include <math.h>", "typedef double real;", c_helpers(torch.float64)]
    for i, e in enumerate(exprs):
        lines.append(f"double f{i}(double x, double y) {{ return {printer(e)}; }}")
    (tmp_path / "f.c").write_text("\n".join(lines) + "\n")
    lib = tmp_path / "f.so"
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", str(tmp_path / "f.c"), "-o", str(lib), "-lm"], check=True)
    so = ctypes.CDLL(str(lib))
    for i, e in enumerate(exprs):
        fn = getattr(so, f"f{i}")
        fn.restype, fn.argtypes = ctypes.c_double, [ctypes.c_double, ctypes.c_double]
        for (a, b), t in zip(POINTS, _torch_values(e)):
            c = fn(a, b)
            same = (math.isnan(c) and math.isnan(t)) or c == t or math.isclose(c, t, rel_tol=rel, abs_tol=1e-300)
            assert same, (e, a, b, c, t)


def test_c_target_options_for_sbml() -> None:
    """Numbers folded (negative ones parenthesised), relations and logic as 0/1 values, x**(1/3)
    as pow (NaN below 0, as the torch target) where the plain C target prints C's cbrt; an
    expression without a C form raises NotPrintableError naming it."""
    p = ExpressionPrinter({"x": "a", "y": "b"}, target="c", **SBML_OPTIONS)
    assert p(x - sympy.exp(2)) == "a + (-7.38905609893065)"
    assert p(sympy.Rational(1, 3) * x) == "(0.3333333333333333)*a"
    assert p(sympy.And(x > 1, y < 2)) in ("((((a) > (1.0)) != 0.0) && (((b) < (2.0)) != 0.0))",
                                          "((((b) < (2.0)) != 0.0) && (((a) > (1.0)) != 0.0))")
    assert p(x ** sympy.Rational(1, 3)) == "pow(a, 0.3333333333333333)"
    assert CPrinter({"x": "a"})(x ** sympy.Rational(1, 3)) == "cbrt(a)"
    assert CPrinter({"x": "a"}, torch.float32)(sympy.sec(x)) == "(((float)1.0) / cosf(a))"
    for printer in (p, CPrinter({"x": "a"})):
        with pytest.raises(NotPrintableError, match="no C translation of mystery in mystery"):
            printer(sympy.Function("mystery")(x))
        with pytest.raises(NotPrintableError, match="undefined symbol 'z'"):
            printer(sympy.Symbol("z"))


@pytest.mark.parametrize("make", [lambda: TorchPrinter({"x": "a"}), lambda: CPrinter({"x": "a"}, torch.float32),
                                  lambda: ExpressionPrinter({"x": "a"}, target="c", **SBML_OPTIONS)])
def test_printers_survive_pickling(make):
    """Compiled models hold printers and travel to Ray workers by pickle."""
    printer = make()
    clone = pickle.loads(pickle.dumps(printer))
    x = sympy.Symbol("x")
    expr = sympy.exp(x) / 3 - sympy.exp(2)  # exp(2) folds only with fold_numbers: the options travel too
    assert type(clone) is type(printer) and clone(expr) == printer(expr)
