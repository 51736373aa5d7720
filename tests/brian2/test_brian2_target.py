"""The brian2 solver runs Brian2 at its own default target (``auto``: Cython where it compiles,
else numpy) and every result names the target that ran."""
from __future__ import annotations

import pytest
import torch

from neuroplex.ir import ModelIR, Parameter, State
from neuroplex.plugins.brian2_backend.cli import run_label
from neuroplex.plugins.brian2_backend.compare import compare_runs, format_report
from neuroplex.plugins.brian2_backend.session import resolve_target
from neuroplex.plugins.brian2_backend.solver import Brian2Solver

pytest.importorskip("brian2")


def _decay() -> ModelIR:
    """One state, no events: the fewest Brian2 code objects (a state update and a monitor)."""
    return ModelIR("decay", states=[State("v", 1.0, "volt")], parameters=[Parameter("tau", 0.01, "second")],
                   derivatives={"v": "-v/tau"})


def test_default_target_is_brians_own_choice_and_not_numpy_when_cython_compiles():
    from brian2.codegen.runtime.cython_rt import CythonCodeObject

    assert Brian2Solver().target == "auto"
    expected = "cython" if CythonCodeObject.is_available() else "numpy"
    assert resolve_target("auto") == expected
    assert resolve_target("numpy") == "numpy" and resolve_target("cpp_standalone") == "cpp_standalone"


def test_solutions_name_the_target_that_ran():
    sol = Brian2Solver(method="euler", target="numpy").simulate(_decay(), (0.0, 0.002))
    assert sol.meta["target"] == "numpy" and sol.meta["target_requested"] == "numpy"
    assert float(sol.ys[0, -1, 0]) == pytest.approx((1 - 1e-4 / 0.01) ** 20, rel=1e-12)  # Euler
    assert run_label("brian2:numpy", sol) == "brian2:numpy"
    report = compare_runs({"brian2:numpy": sol}, n_neurons=1, duration=0.002, dt=1e-4)
    assert report["runs"]["brian2:numpy"]["code"] == "numpy"
    assert "numpy" in format_report(report).splitlines()[1]


@pytest.mark.slow
def test_a_default_run_reads_back_the_compiled_target():
    """With a compiler, the default run is Cython code (Brian2 compiles it once per machine:
    ~15 s cold, ~1 s warm) and says so; the numbers equal the numpy target's."""
    auto = Brian2Solver(method="euler").simulate(_decay(), (0.0, 0.002))
    assert auto.meta["target_requested"] == "auto"
    assert auto.meta["target"] == resolve_target("auto")
    assert run_label("brian2", auto) == f"brian2:{resolve_target('auto')}"
    numpy = Brian2Solver(method="euler", target="numpy").simulate(_decay(), (0.0, 0.002))
    torch.testing.assert_close(auto.ys, numpy.ys, rtol=1e-14, atol=0)
