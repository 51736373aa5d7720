"""Each special function is defined once (:mod:`neuroplex.functions`) and its torch, numpy,
scalar and generated-C forms agree, on NaN, 0, tiny, moderate and large inputs."""
from __future__ import annotations

import ctypes
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from neuroplex import runtime, scalar_runtime
from neuroplex.functions import EXPREL_SMALL, FUNCTIONS

INPUTS = [math.nan, 0.0, -0.0, 5e-324, 1e-300, -1e-300, 1e-9, -1e-9, 0.999e-6, 1.001e-6, 1e-3, -0.5, 1.0, 20.0,
          -50.0, 700.0, 710.0, -800.0, math.inf, -math.inf]


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b or math.isclose(a, b, rel_tol=4e-16, abs_tol=0.0)


def _reference(x: float) -> float:
    """(exp(x) - 1)/x in high precision, 1 at 0."""
    import mpmath

    if math.isnan(x) or math.isinf(x):
        return math.nan if (math.isnan(x) or x > 0) else 0.0
    if x == 0:
        return 1.0
    with mpmath.workdps(50):
        return float(mpmath.expm1(mpmath.mpf(x)) / mpmath.mpf(x))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_exprel_forms_agree_everywhere() -> None:
    fn = FUNCTIONS["exprel"]
    xs = torch.tensor(INPUTS, dtype=torch.float64)
    t = fn.torch(xs).tolist()
    n = fn.numpy(np.array(INPUTS)).tolist()
    s = [float(fn.scalar(x)) for x in INPUTS]
    for x, a, b, c in zip(INPUTS, t, n, s):
        assert _same(a, b) and _same(a, c), (x, a, b, c)
    # the runtimes use these very forms
    assert runtime.exprel is fn.torch and scalar_runtime.exprel is fn.scalar


def test_exprel_is_accurate_and_nan_stays_nan() -> None:
    fn = FUNCTIONS["exprel"]
    for x in INPUTS:
        got = float(fn.torch(torch.tensor([x], dtype=torch.float64))[0])
        ref = _reference(x)
        if math.isnan(ref):
            assert math.isnan(got), x
        elif x > math.log(torch.finfo(torch.float64).max):  # expm1(x) overflows first: inf, by definition
            assert got == math.inf, x
        else:
            assert math.isclose(got, ref, rel_tol=1e-12), (x, got, ref)
    assert float(fn.torch(torch.tensor([0.0]))[0]) == 1.0
    assert math.isnan(float(fn.torch(torch.tensor([math.nan]))[0]))
    assert EXPREL_SMALL == 1e-6


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_exprel_c_form_agrees(tmp_path: Path) -> None:
    fn = FUNCTIONS["exprel"]
    src = "#include <math.h>\n" + fn.c.format(real="double", fabs="fabs", expm1="expm1", small="1e-6", one="1.0",
                                               two="2.0") + "double call(double x) { return np_exprel(x); }\n"
    (tmp_path / "f.c").write_text(src)
    lib = tmp_path / "f.so"
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", str(tmp_path / "f.c"), "-o", str(lib), "-lm"], check=True)
    call = ctypes.CDLL(str(lib)).call
    call.restype, call.argtypes = ctypes.c_double, [ctypes.c_double]
    expect = fn.torch(torch.tensor(INPUTS, dtype=torch.float64)).tolist()
    for x, e in zip(INPUTS, expect):
        assert _same(call(x), e), (x, call(x), e)
