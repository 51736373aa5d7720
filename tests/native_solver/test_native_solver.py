"""The compiled SBML path (solver ``native``): C printer semantics, agreement with the torch
path on real models (non-stiff, stiff), the disk cache, refusals, and the policy that sends
one CPU trajectory to it."""
from __future__ import annotations

import ctypes
import math

import pytest
import sympy
import torch

pytest.importorskip("libsbml")

import neuroplex  # noqa: E402
from neuroplex import cbuild  # noqa: E402
from neuroplex.errors import NeuroplexError, NotPrintableError  # noqa: E402
from neuroplex.plugins.native_solver import NativeSolver, refusal  # noqa: E402
from neuroplex.codegen import ExpressionPrinter  # noqa: E402
from neuroplex.plugins.native_solver.library import library_path  # noqa: E402
from neuroplex.sbml.antimony_loader import read_antimony_string  # noqa: E402

pytestmark = pytest.mark.skipif(not cbuild.compiler_available(), reason="no working C compiler (gcc/clang/$CC)")

DECAY = """
    J1: A -> B; k * A
    A = 1; B = 0; k = 0.5
"""
#: Robertson's stiff chemical kinetics (Hairer & Wanner II, sec. IV.1)
ROBERTSON = """
    R1: A -> B; 0.04 * A
    R2: B + B -> C + B; 3e7 * B * B
    R3: B + C -> A + C; 1e4 * B * C
    A = 1; B = 0; C = 0
"""
#: an event
WITH_EVENT = """
    J1: A -> ; k * A
    A = 1; k = 1
    E1: at time > 1: A = 5
"""
#: events with the SBML semantics the native path takes from the torch path's event runner: a
#: state crossing (recorded time T = ln 2), a delay with values from trigger time, priorities at
#: one time, a non-persistent delayed event, assignments to a species, a parameter and a compartment
EVENTS = """
    J1: A -> ; k * A
    J2: -> B; kb
    A = 1; B = 0; k = 1; kb = 0.3; T = -1; V = 1
    E1: at A < 0.5: T = time
    E2: at 0.5 after time > 1, priority = 2, fromTrigger = true, persistent = true: A = A + 4, V = 2
    E3: at time > 1.5, priority = 1: B = B * 2
    E4: at time > 1.5, priority = 5: B = B + 1
    E5: at 0.2 after B > 1.25, persistent = false: A = 10
"""


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # one library folder for this module's tests (the integrator compiles once in it)
    monkeypatch.setenv("NEUROPLEX_NATIVE_CACHE", str(tmp_path_factory.getbasetemp() / "native_cache"))


def test_printer_keeps_the_torch_semantics() -> None:
    x, y = sympy.symbols("x y")
    p = ExpressionPrinter({"x": "y[0]", "y": "k[1]"}, target="c", fold_numbers=True, numeric_logic=True)
    # a power of a sum keeps its parentheses; small integer powers are products
    assert p(1 / (sympy.exp(x) + 1)) == "1.0/(exp(y[0]) + 1.0)"
    assert p((x + y) ** 3) == "((y[0] + k[1]) * (y[0] + k[1]) * (y[0] + k[1]))"
    # Piecewise without a true branch ends in NaN; Min/Max propagate NaN (np_min/np_max)
    assert p(sympy.Piecewise((x, x > 1))) == "((((y[0]) > (1.0))) ? (y[0]) : (NAN))"
    assert p(sympy.Min(x, y)) in ("np_min(y[0], k[1])", "np_min(k[1], y[0])")
    # numbers fold to doubles (no integer division in C)
    assert p(sympy.Rational(1, 3) * x) == "(0.3333333333333333)*y[0]"
    assert p(sympy.sec(x)) == "(1.0 / cos(y[0]))"
    # x**(1/3) is pow (NaN below 0, as torch), not C's cbrt; factorial/gamma as neuroplex.runtime
    assert p(x ** sympy.Rational(1, 3)) == "pow(y[0], 0.3333333333333333)"
    assert p(sympy.gamma(x)) == "exp(lgamma(y[0]))"
    # relations and logic are 0/1 values; operands true when non-zero
    assert p(sympy.Xor(x > 1, y > 1)) == "((((y[0]) > (1.0)) != 0.0) != (((k[1]) > (1.0)) != 0.0))"
    with pytest.raises(NotPrintableError, match="undefined symbol 'z'"):
        p(sympy.Symbol("z") + x)
    with pytest.raises(NotPrintableError, match="no C translation"):
        p(sympy.Function("mystery")(x))


def test_jacobian_entries_merge_powers_of_one_base() -> None:
    from neuroplex.plugins.native_solver.csource import merge_powers

    x, n, k = sympy.symbols("x n k")
    d = sympy.diff(k * x**n / (k**n + x**n), x)  # sympy leaves n*x**n/x: 0/0 at x = 0
    merged = merge_powers(d, {})
    assert sympy.simplify(merged - d) == 0
    assert merged == sympy.powsimp(d, combine="exp")
    assert float(merged.subs({x: 0, n: 2, k: 1})) == 0.0
    # numbers and products without a repeated base stay as they are
    assert merge_powers(2 * x * k**n, {}) == 2 * x * k**n


def test_native_matches_the_exact_solution_and_reports_its_steps() -> None:
    model = read_antimony_string(DECAY)
    t = torch.linspace(0.0, 10.0, 101, dtype=torch.float64)
    sol = neuroplex.simulate(model, (0.0, 10.0), solver="native", t_eval=t, rtol=1e-8, atol=1e-12)
    assert sol.solver == "native" and sol.ok
    exact = torch.exp(-0.5 * t)
    assert torch.allclose(sol["A"][0], exact, rtol=1e-6, atol=1e-10)
    assert torch.allclose(sol["B"][0], 1 - exact, rtol=1e-6, atol=1e-10)
    assert int(sol.stats["n_steps"][0]) > 5 and int(sol.stats["stiff_from_step"][0]) == -1


def test_stiff_model_switches_to_rodas_and_agrees_with_torch() -> None:
    model = read_antimony_string(ROBERTSON)
    t = torch.tensor([0.0, 1.0, 10.0, 100.0, 1000.0], dtype=torch.float64)
    sol = neuroplex.simulate(model, (0.0, 1000.0), solver="native", t_eval=t, rtol=1e-8, atol=1e-12)
    assert sol.ok and int(sol.stats["stiff_from_step"][0]) >= 0 and int(sol.stats["n_jacobians"][0]) > 0
    ref = neuroplex.simulate(model, (0.0, 1000.0), solver="torch", method="rosenbrock", t_eval=t, rtol=1e-10,
                             atol=1e-14)
    assert torch.allclose(sol.ys, ref.ys, rtol=1e-5, atol=1e-10)
    # dopri5 alone needs far more steps for 1% of the span than RODAS4 alone for all of it
    rodas = neuroplex.simulate(model, (0.0, 1000.0), solver="native", method="rodas4", t_eval=t, rtol=1e-8,
                               atol=1e-12)
    assert torch.allclose(rodas.ys, ref.ys, rtol=1e-5, atol=1e-10)
    alone = neuroplex.simulate(model, (0.0, 10.0), solver="native", method="dopri5", t_eval=t[:3], rtol=1e-8,
                               atol=1e-12)
    assert int(alone.stats["n_steps"][0]) > 5 * int(rodas.stats["n_steps"][0])


def test_biomodel_agrees_with_the_torch_path() -> None:
    from neuroplex.testing import require_data

    path = require_data("biomodels", "BIOMD0000000012.xml")
    model = neuroplex.load_model(path)
    t = torch.linspace(0.0, 100.0, 201, dtype=torch.float64)
    ours = neuroplex.simulate(model, (0.0, 100.0), solver="native", t_eval=t, rtol=1e-8, atol=1e-12)
    ref = neuroplex.simulate(model, (0.0, 100.0), solver="torch", method="dopri5", t_eval=t, rtol=1e-10,
                             atol=1e-14)
    assert ours.names == ref.names and ours.ok
    assert float(((ours.ys - ref.ys).abs() / (1e-8 + 1e-5 * ref.ys.abs())).max()) <= 1.0


def test_library_is_cached_on_disk_by_model() -> None:
    model = read_antimony_string(DECAY)
    first = neuroplex.simulate(model, (0.0, 1.0), solver="native", n_points=3)
    path = library_path(model)
    assert path.exists() and path.with_suffix(".c").exists()
    again = read_antimony_string(DECAY)  # a new model object: only the disk cache is shared
    second = neuroplex.simulate(again, (0.0, 1.0), solver="native", n_points=3)
    assert second.meta["library_cached"] and second.meta["compile_s"] == 0.0
    assert first.meta["library"] == second.meta["library"]
    assert torch.equal(first.ys, second.ys)
    # other rates are parameters of the same library, not a new one
    other = read_antimony_string(DECAY.replace("k = 0.5", "k = 2"))
    assert library_path(other) == path
    sol = neuroplex.simulate(other, (0.0, 1.0), solver="native", t_eval=[0.0, 1.0], rtol=1e-10, atol=1e-14)
    assert math.isclose(float(sol["A"][0, -1]), math.exp(-2.0), rel_tol=1e-8)


def test_batches_run_sample_by_sample() -> None:
    model = read_antimony_string(DECAY)
    k = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    sol = neuroplex.simulate(model, (0.0, 2.0), solver="native", params={"k": k}, t_eval=[0.0, 2.0], rtol=1e-10,
                             atol=1e-14)
    assert sol.ys.shape[0] == 3
    assert torch.allclose(sol["A"][:, -1], torch.exp(-2.0 * k), rtol=1e-8)


def test_events_run_compiled_with_the_torch_paths_semantics() -> None:
    model = read_antimony_string(EVENTS)
    assert refusal(model) is None
    t = torch.linspace(0.0, 4.0, 41, dtype=torch.float64)
    ours = neuroplex.simulate(model, (0.0, 4.0), solver="native", t_eval=t, rtol=1e-10, atol=1e-14)
    ref = neuroplex.simulate(model, (0.0, 4.0), solver="torch", method="auto", t_eval=t, rtol=1e-10, atol=1e-14)
    assert ours.solver == "native" and ours.ok and ours.names == ref.names
    assert int(ours.stats["n_events"][0]) == int(ref.stats["n_events"][0]) >= 4
    assert torch.allclose(ours.ys, ref.ys, rtol=1e-7, atol=1e-12)
    # the crossing of A = 0.5 located to the integrator's accuracy, not to a step
    assert abs(float(ours["T"][0, -1]) - math.log(2.0)) < 1e-9
    assert float(ours["V"][0, -1]) == 2.0
    with pytest.raises(NeuroplexError, match="unknown method"):
        NativeSolver(method="rk4")


def test_bound_functions_match_the_torch_program() -> None:
    from neuroplex.plugins.native_solver.segments import Bound
    from neuroplex.plugins.native_solver.solver import model_library
    from neuroplex.sbml import compiled

    model = read_antimony_string(EVENTS)
    prog = compiled(model)
    p = prog.default_params()[None]
    bound = Bound(model_library(model, prog), p[0].numpy())
    y = prog.initial_state(0.0, p) + 0.25
    t = torch.tensor([0.3], dtype=torch.float64)
    assert torch.allclose(bound.rhs(t, y), prog.rhs_bound(p)(t, y), rtol=1e-14, atol=0)
    assert bound.atoms(0.3, y) == pytest.approx(prog.atom_g(t, y, p)[0].tolist(), rel=1e-14)
    # a native run with events builds no torch right-hand side (its setup cost on the default path)
    fresh = read_antimony_string(EVENTS)
    assert neuroplex.simulate(fresh, (0.0, 4.0), n_points=5).solver == "native"
    assert "_rhs_pair" not in compiled(fresh).__dict__


def test_event_entry_without_crossings_is_the_plain_solve() -> None:
    # neuroplex_solve_events with no atom crossing runs the same steps as neuroplex_solve, to the bit
    import numpy as np

    from neuroplex.plugins.native_solver.library import event_integrator, integrator
    from neuroplex.plugins.native_solver.solver import model_library
    from neuroplex.sbml import compiled

    model = read_antimony_string(ROBERTSON + "    E1: at A < -1: A = 1\n")  # never fires
    prog = compiled(model)
    lib = model_library(model, prog)
    p = np.ascontiguousarray(prog.default_params().numpy())
    y0 = np.ascontiguousarray(prog.initial_state(0.0, prog.default_params()[None])[0].numpy())
    te, atol = np.linspace(0.0, 100.0, 11), np.full(3, 1e-10)
    a, b = np.empty((11, 3)), np.empty((11, 3))
    sa, sb = np.zeros(5, dtype=np.int64), np.zeros(5, dtype=np.int64)
    shift, y_end = np.zeros(2), np.empty(3)
    t_end, index = ctypes.c_double(), ctypes.c_int64()
    assert integrator()(lib.bind, lib.rhs, lib.jac, 3, lib.n_bound, p.ctypes.data, y0.ctypes.data, 0.0, 100.0,
                        te.ctypes.data, 11, 1e-8, atol.ctypes.data, 0.0, 0.0, 0.0, 100_000, 0, a.ctypes.data,
                        sa.ctypes.data) == 0
    assert event_integrator()(lib.bind, lib.rhs, lib.jac, lib.atoms, 3, lib.n_bound, 1, p.ctypes.data, y0.ctypes.data,
                              0.0, 100.0, te.ctypes.data, 11, 1e-8, atol.ctypes.data, 0.0, 0.0, 0.0, 100_000, 0,
                              shift.ctypes.data, b.ctypes.data, sb.ctypes.data, ctypes.byref(t_end),
                              y_end.ctypes.data, ctypes.byref(index)) == 0
    assert np.array_equal(a, b) and np.array_equal(sa, sb) and sa[4] >= 0
    assert t_end.value == 100.0 and index.value == -1 and np.array_equal(y_end, b[-1])


def test_event_location_on_stiff_segments() -> None:
    # Robertson's kinetics goes stiff (RODAS4, Hermite dense output); an event on C's rise
    # restarts A: the segments after the first keep the stiff method
    model = read_antimony_string(ROBERTSON + "    T = -1\n    E1: at C > 0.5: T = time, A = 1\n")
    t = torch.tensor([0.0, 1.0, 100.0, 1e3, 1e4, 1e5], dtype=torch.float64)
    ours = neuroplex.simulate(model, (0.0, 1e5), solver="native", t_eval=t, rtol=1e-8, atol=1e-12)
    ref = neuroplex.simulate(model, (0.0, 1e5), solver="torch", method="rosenbrock", t_eval=t, rtol=1e-10,
                             atol=1e-14)
    assert ours.ok and int(ours.stats["stiff_from_step"][0]) >= 0 and int(ours.stats["n_events"][0]) == 1
    assert torch.allclose(ours.ys, ref.ys, rtol=1e-4, atol=1e-9)


def test_policy_one_cpu_trajectory_runs_compiled_else_torch() -> None:
    model = read_antimony_string(DECAY)
    assert neuroplex.simulate(model, (0.0, 1.0), n_points=3).solver == "native"
    # a method or a batch keeps the torch path; events run compiled too
    assert neuroplex.simulate(model, (0.0, 1.0), n_points=3, method="auto").solver == "torch"
    batch = {"k": torch.tensor([0.5, 1.0], dtype=torch.float64)}
    assert neuroplex.simulate(model, (0.0, 1.0), n_points=3, params=batch).solver == "torch"
    assert neuroplex.simulate(read_antimony_string(WITH_EVENT), (0.0, 2.0), n_points=3).solver == "native"
    # gradients through the parameters need torch
    k = torch.tensor([p.value for p in model.parameters], dtype=torch.float64, requires_grad=True)
    assert neuroplex.simulate(model, (0.0, 1.0), n_points=3, params=k).solver == "torch"
    # both paths give the same answer
    a = neuroplex.simulate(model, (0.0, 1.0), n_points=5, rtol=1e-10, atol=1e-14)
    b = neuroplex.simulate(model, (0.0, 1.0), n_points=5, rtol=1e-10, atol=1e-14, method="auto")
    assert torch.allclose(a.ys, b.ys, rtol=1e-8, atol=1e-14)


def test_cli_build_reports_compile_or_refusal(tmp_path) -> None:
    from click.testing import CliRunner

    from neuroplex.cli import build_cli

    model = tmp_path / "decay.ant"
    model.write_text(DECAY)
    out = CliRunner().invoke(build_cli(), ["native", "build", str(model)])
    assert out.exit_code == 0, out.output
    assert ("compiled in" in out.output or "cached" in out.output) and ".so" in out.output
    events = tmp_path / "event.ant"
    events.write_text(WITH_EVENT)
    out = CliRunner().invoke(build_cli(), ["native", "build", str(events)])
    assert out.exit_code == 0 and ".so" in out.output, out.output
    out = CliRunner().invoke(build_cli(), ["native", "build", str(model)], env={"CC": str(tmp_path / "no-cc")})
    assert out.exit_code != 0 and "no working C compiler" in out.output


def test_pivoting_model_steps_as_the_torch_rosenbrock() -> None:
    # BIOMD0000000019 (94 states) needs row pivoting in RODAS4's linear solves: solved wrongly,
    # the error estimate is off and the step count more than doubles (and accuracy drops)
    from neuroplex.testing import require_data

    model = neuroplex.load_model(require_data("biomodels", "BIOMD0000000019.xml"))
    t = torch.linspace(0.0, 0.5, 6, dtype=torch.float64)
    ours = neuroplex.simulate(model, (0.0, 0.5), solver="native", method="rodas4", t_eval=t, rtol=1e-6, atol=1e-9)
    ref = neuroplex.simulate(model, (0.0, 0.5), solver="torch", method="rosenbrock", t_eval=t, rtol=1e-6, atol=1e-9)
    assert ours.ok and int(ours.stats["n_rejected"][0]) <= 5
    assert abs(int(ours.stats["n_steps"][0]) - int(ref.stats["n_steps"][0])) <= 0.05 * int(ref.stats["n_steps"][0])
    assert float(((ours.ys - ref.ys).abs() / (1e-6 + 1e-3 * ref.ys.abs())).max()) <= 1.0
