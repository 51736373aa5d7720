"""Native ensembles (:mod:`neuroplex.plugins.native_solver.ensemble`): a batch is the same whatever
the number of worker processes; in lockstep (:mod:`~neuroplex.plugins.native_solver.lanes`) each
sample agrees with its single run to tolerance with the same steps (bit for bit for models
without math functions, and for stiff samples under ``auto``), sample by sample bit for bit; it
agrees with the torch path; ``fused="auto"`` (the SBML runner's :func:`~neuroplex.sbml.runner.auto_path`) sends large
CPU batches to it and everything it cannot run to torch, and ``fused=True/False`` still force."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("libsbml")

import neuroplex  # noqa: E402
from neuroplex import cbuild  # noqa: E402
from neuroplex.errors import NeuroplexError  # noqa: E402
from neuroplex.plugins.native_solver import NativeSolver  # noqa: E402
from neuroplex.plugins.native_solver.ensemble import MIN_SHARD, Rows, run_rows, shard_count  # noqa: E402
from neuroplex.plugins.native_solver.lanes import lanes_source  # noqa: E402
from neuroplex.plugins.native_solver.library import cache_dir  # noqa: E402
from neuroplex.plugins.native_solver.solver import METHODS, model_library  # noqa: E402
from neuroplex.sbml import runner  # noqa: E402
from neuroplex.sbml.antimony_loader import read_antimony_string  # noqa: E402
from neuroplex.settings import Execution  # noqa: E402

pytestmark = pytest.mark.skipif(not cbuild.compiler_available(), reason="no working C compiler (gcc/clang/$CC)")

MODELS = Path(__file__).resolve().parents[2] / "models"
#: an event: the native solver refuses it, so an ensemble of it runs on torch
WITH_EVENT = """
    J1: A -> ; k * A
    A = 1; k = 1
    E1: at time > 1: A = 5
"""


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("NEUROPLEX_NATIVE_CACHE", str(base / "native_cache"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(base / "inductor"))


def _repressilator(n: int, seed: int = 0) -> tuple[object, torch.Tensor]:
    model = neuroplex.load_model(MODELS / "repressilator.ant")
    base = torch.tensor([p.value for p in model.parameters], dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    return model, base * torch.exp(0.1 * torch.randn((n, base.numel()), generator=g, dtype=torch.float64))


def _perturbed(name: str, n: int, seed: int = 0) -> tuple[object, torch.Tensor]:
    model = neuroplex.load_model(MODELS / name)
    base = torch.tensor([p.value for p in model.parameters], dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    return model, base * torch.exp(0.1 * torch.randn((n, base.numel()), generator=g, dtype=torch.float64))


def _rows(model: object, params: torch.Tensor, ts: torch.Tensor, method: str = "dopri5", workers: int = 1,
          lockstep: bool = True, rtol: float = 1e-7, atol: float = 1e-10) -> Rows:
    """The native ensemble's rows of a batch (``run_rows`` as the native solver calls it)."""
    prog = runner.compiled(model)
    lib = model_library(model, prog)
    p = params.contiguous()
    y0 = prog.initial_state(float(ts[0]), p)
    scale = prog.atol_scale(p, y0)  # as the native solver scales it
    tol = np.full((p.shape[0], prog.n), atol) if scale is None else (atol * scale).numpy()
    control = NativeSolver(rtol=rtol, atol=atol).control
    rows, _ = run_rows(lib, p.numpy(), y0.numpy(), tol, ts.numpy(), float(ts[0]), float(ts[-1]), control,
                       METHODS[method], workers, lockstep=lockstep)
    return rows


def test_a_batch_equals_its_samples_run_one_by_one_in_any_number_of_workers() -> None:
    model, params = _repressilator(2 * MIN_SHARD + 3)
    ts = torch.linspace(0.0, 20.0, 11, dtype=torch.float64)
    one = NativeSolver(rtol=1e-7, atol=1e-10).simulate(model, (0.0, 20.0), params=params, t_eval=ts)
    two = NativeSolver(rtol=1e-7, atol=1e-10, workers=2).simulate(model, (0.0, 20.0), params=params, t_eval=ts)
    assert one.meta["shards"] == 1 and two.meta["shards"] == 2 and one.ok
    assert torch.equal(one.ys, two.ys) and torch.equal(one.status, two.status)
    assert torch.equal(one.stats["n_steps"], two.stats["n_steps"])
    # in lockstep (pow through its vector version): each sample within the tolerance of its single
    # run, with the same steps; sample by sample: bit for bit
    scalar, prog = _rows(model, params, ts, lockstep=False), runner.compiled(model)
    for b in (0, MIN_SHARD + 1, 2 * MIN_SHARD + 2):  # the first, a middle and the last sample
        single = NativeSolver(rtol=1e-7, atol=1e-10).simulate(model, (0.0, 20.0), params=params[b], t_eval=ts)
        torch.testing.assert_close(two.ys[b], single.ys[0], rtol=1e-9, atol=1e-12)
        assert two.stats["n_steps"][b] == single.stats["n_steps"][0]
        # the rows ran dopri5 (auto would try RODAS4 after 200 steps, as the single run above did)
        dopri5 = NativeSolver("dopri5", rtol=1e-7, atol=1e-10).simulate(model, (0.0, 20.0), params=params[b], t_eval=ts)
        outputs = prog.observe(ts[None], torch.from_numpy(np.array(scalar.out[b:b + 1])), params[b:b + 1, None, :])
        assert torch.equal(outputs, dopri5.ys)


def test_lockstep_equals_single_runs_bit_for_bit_without_math_functions() -> None:
    # Lotka-Volterra is arithmetic only: the lockstep loop does the single run's operations in its
    # order, so every sample equals its single run, in any lane and process
    model, params = _perturbed("lotka_volterra.ant", 2 * MIN_SHARD + 5)
    ts = torch.linspace(0.0, 15.0, 31, dtype=torch.float64)
    lock = _rows(model, params, ts, workers=2)
    scalar = _rows(model, params, ts, lockstep=False)
    assert np.array_equal(lock.out, scalar.out) and np.array_equal(lock.stats, scalar.stats)
    assert np.array_equal(lock.status, scalar.status) and not lock.status.any()
    single = NativeSolver(rtol=1e-7, atol=1e-10).simulate(model, (0.0, 15.0), params=params[7], t_eval=ts)
    prog = runner.compiled(model)
    assert torch.equal(prog.observe(ts[None], torch.from_numpy(np.array(lock.out[7:8])), params[7:8, None, :]),
                       single.ys)


def test_lockstep_hands_stiff_samples_to_the_single_run_under_auto() -> None:
    # the Oregonator turns stiff: under auto each lane whose sample the stiffness test flags gives
    # it to the single-trajectory integrator (dopri5 switching to RODAS4), which it then equals
    model, params = _perturbed("oregonator.ant", 24)
    ts = torch.linspace(0.0, 30.0, 16, dtype=torch.float64)
    lock = _rows(model, params, ts, method="auto")
    scalar = _rows(model, params, ts, method="auto", lockstep=False)
    assert (lock.stats[:, 4] >= 0).all() and not lock.status.any()
    assert np.array_equal(lock.out, scalar.out) and np.array_equal(lock.stats, scalar.stats)


def test_a_first_small_batch_builds_the_lane_library_a_large_one_uses() -> None:
    # fused="auto" times a pilot after a 2-sample warm-up: the lane build must happen there
    model, params = _perturbed("fitzhugh_nagumo.ant", 2)
    lanes = lambda: {p.name for p in cache_dir().glob("lanes_*.so") if not p.name.startswith("lanes_loop_")}  # noqa: E731
    before = lanes()
    NativeSolver().simulate(model, (0.0, 5.0), params=params)
    assert len(lanes() - before) == 1


def test_the_lockstep_rewrite_takes_the_generated_form_only() -> None:
    source = ("#include <math.h>\nvoid model_rhs(double t, const double *y, const double *p, const double *k, "
              "double *dy) {\n    dy[0] = exp(p[0] * y[1]) + k[2];\n}\n")
    out = lanes_source(source)
    assert out is not None and "dy[0 * NP_L] = exp(p[0 * NP_L] * y[1 * NP_L]) + k[2 * NP_L];" in out
    assert "double exp(double);" in out and "void model_rhs_lanes(" in out
    assert lanes_source(source.replace("y[1]", "y[i]")) is None  # an index it cannot place
    assert lanes_source("void model_rhs(double t) {}\n") is None


def test_initial_states_batch_and_broadcast_against_parameters() -> None:
    model, params = _repressilator(4)
    prog = runner.compiled(model)
    y0 = prog.initial_state(0.0, params[:1]).expand(4, -1) * torch.tensor([1.0, 1.5, 2.0, 0.5],
                                                                             dtype=torch.float64)[:, None]
    sol = NativeSolver().simulate(model, (0.0, 5.0), params=params[0], y0=y0)
    for b in range(4):
        single = NativeSolver().simulate(model, (0.0, 5.0), params=params[0], y0=y0[b])
        assert torch.equal(single.ys[0], sol.ys[b])


def test_the_native_ensemble_agrees_with_torch() -> None:
    model, params = _repressilator(40, seed=1)
    kw = dict(params=params, n_points=26, rtol=1e-8, atol=1e-10)
    native = neuroplex.simulate(model, (0.0, 50.0), solver="native", **kw)
    eager = neuroplex.simulate(model, (0.0, 50.0), solver="torch", fused=False, **kw)
    assert native.solver == "native" and eager.solver == "torch" and native.ok and eager.ok
    torch.testing.assert_close(native.ys, eager.ys, rtol=1e-5, atol=1e-6)


def test_shards_need_enough_samples() -> None:
    assert shard_count(10, 4) == 1 and shard_count(2 * MIN_SHARD, 4) == 2 and shard_count(10_000, 2) == 2


def test_a_batch_with_events_runs_natively_under_auto_and_agrees_with_torch(monkeypatch) -> None:
    model = read_antimony_string(WITH_EVENT)
    monkeypatch.setattr(runner, "AUTO_MIN_BATCH", 4)
    params = torch.tensor([[1.0, 1.0], [1.0, 2.0]], dtype=torch.float64).repeat(2, 1)
    sol = neuroplex.simulate(model, (0.0, 2.0), params=params, n_points=3)
    assert sol.solver == "native" and sol.meta["path"] == "native" and sol.ok
    eager = neuroplex.simulate(model, (0.0, 2.0), params=params, n_points=3, solver="torch", fused=False)
    assert eager.solver == "torch" and eager.ok
    torch.testing.assert_close(sol.ys, eager.ys, rtol=1e-5, atol=1e-6)


def test_auto_runs_a_large_cpu_batch_natively_and_fused_false_forces_torch() -> None:
    model, params = _repressilator(runner.AUTO_MIN_BATCH)
    kw = dict(params=params, n_points=11, rtol=1e-8, atol=1e-10)
    auto = neuroplex.simulate(model, (0.0, 20.0), **kw)
    assert auto.solver == "native" and auto.meta["path"] == "native"
    eager = neuroplex.simulate(model, (0.0, 20.0), fused=False, **kw)
    assert eager.solver == "torch" and "path" not in eager.meta
    torch.testing.assert_close(auto.ys, eager.ys, rtol=1e-5, atol=1e-6)
    # small batches and gradients stay on torch (float32 is refused: tests/audit/test_audit_sbml_dtype.py)
    small = neuroplex.simulate(model, (0.0, 20.0), params=params[:10], n_points=11)
    assert small.solver == "torch" and small.meta["path"] == "eager"
    grad = params.clone().requires_grad_(True)
    sol = neuroplex.simulate(model, (0.0, 2.0), params=grad, n_points=3, method="dopri5")
    assert sol.solver == "torch" and sol.meta["path_reason"] == "native: gradients"


def test_auto_takes_fused_steps_only_when_they_are_built_or_the_work_repays_compiling(tmp_path, monkeypatch) -> None:
    # nothing built before: an empty inductor cache and none built in this process (earlier tests may have)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    monkeypatch.setattr(runner, "_FUSED_IN_PROCESS", set())
    monkeypatch.setattr(runner, "FUSED_GAIN", 2.0)  # were fused steps twice as fast
    model, params = _repressilator(runner.PILOT_MIN_BATCH)
    solver = neuroplex.host.get_host().get("solvers", "torch").obj()
    span = (0.0, 20.0)
    key = runner.fused_key(runner.compiled(model), solver, params)
    monkeypatch.setattr(runner, "_NATIVE_LOST", {})
    cold = runner.auto_path(model, solver, span, params, None, None)
    assert runner.fused_state(key) == "cold" and cold.path == "native" and "(cold;" in cold.reason
    monkeypatch.setattr(runner, "FUSED_COMPILE_S", 0.0)  # a compile that costs nothing repays itself
    cheap = runner.auto_path(model, solver, span, params, None, None)
    assert cheap.path == "fused" and cheap.compile
    # repeated calls add up what staying native lost, until building pays (the ski-rental rule)
    monkeypatch.setattr(runner, "_NATIVE_LOST", {})
    monkeypatch.setattr(runner, "FUSED_COMPILE_S", 1e9)
    first = runner.auto_path(model, solver, span, params, None, None)
    lost = runner._NATIVE_LOST[key]
    monkeypatch.setattr(runner, "FUSED_COMPILE_S", 2.5 * lost)
    paths = [runner.auto_path(model, solver, span, params, None, None).path for _ in range(20)]
    assert first.path == "native" and "fused" in paths
    monkeypatch.setattr(runner, "FUSED_COMPILE_S", 1e9)
    monkeypatch.setattr(runner, "_FUSED_IN_PROCESS", {key})  # built in this process: nothing to pay
    loaded = runner.auto_path(model, solver, span, params, None, None)
    assert loaded.path == "fused" and not loaded.compile and "(loaded;" in loaded.reason
    monkeypatch.setattr(runner, "FUSED_GAIN", 1.0)  # as measured: not faster, so never chosen, even built
    even = runner.auto_path(model, solver, span, params, None, None)
    assert even.path == "native" and "not expected to run faster" in even.reason


def test_auto_estimates_a_repeated_ensemble_from_its_last_native_run(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    monkeypatch.setattr(runner, "_FUSED_IN_PROCESS", set())
    monkeypatch.setattr(runner, "_NATIVE_LOST", {})
    monkeypatch.setattr(runner, "_NATIVE_RATE", {})
    monkeypatch.setattr(runner, "FUSED_GAIN", 2.0)  # were fused steps faster, the native time is estimated
    model, params = _repressilator(runner.PILOT_MIN_BATCH)
    kw = dict(params=params, n_points=5)
    first = neuroplex.simulate(model, (0.0, 5.0), **kw)
    assert first.meta["path"] == "native" and "(pilot)" in first.meta["path_reason"]
    key = runner.fused_key(runner.compiled(model), neuroplex.host.get_host().get("solvers", "torch").obj(), params)
    assert runner._NATIVE_RATE[key] > 0  # seconds per sample of that run
    again = neuroplex.simulate(model, (0.0, 5.0), **kw)  # no pilot: the last run's rate
    assert again.meta["path"] == "native" and "(last run)" in again.meta["path_reason"]
    assert torch.equal(first.ys, again.ys)


def test_fused_steps_are_recorded_in_inductors_cache_folder(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "fresh"))
    monkeypatch.setattr(runner, "_FUSED_IN_PROCESS", set())
    assert runner.fused_state("k1") == "cold"
    runner._mark_fused("k1")
    assert runner.fused_state("k1") == "loaded"
    monkeypatch.setattr(runner, "_FUSED_IN_PROCESS", set())  # a new process finds it on disk
    assert runner.fused_state("k1") == "cached"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "other"))  # another cache: cold again
    assert runner.fused_state("k1") == "cold"
    model, _ = _repressilator(1)
    runner._say_compiling(model)
    assert "compiling fused steps (cached for next time" in capsys.readouterr().err


def test_fused_takes_true_false_or_auto() -> None:
    assert Execution().fused == "auto" and not Execution().fused_steps and Execution(fused=True).fused_steps
    with pytest.raises(NeuroplexError, match="fused must be"):
        Execution(fused="yes")
    with pytest.raises(NeuroplexError, match="workers must be"):
        NativeSolver(workers=0)


def test_a_fused_run_says_it_compiles_when_cold_and_is_recorded_unless_it_gave_up(tmp_path, monkeypatch,
                                                                                   capsys) -> None:
    import warnings

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    monkeypatch.setattr(runner, "_FUSED_IN_PROCESS", set())
    model, params = _repressilator(4)
    solver = neuroplex.host.get_host().get("solvers", "torch").obj(fused=True)
    key = runner.fused_key(runner.compiled(model), solver, params)
    gave_up = [True]

    def fake_run(*args, **kwargs):  # what a fused run that fails to compile does: warn, run eager
        if gave_up[0]:
            warnings.warn("fused steps: compiling the loop step failed (no compiler)", RuntimeWarning)
        return "solution"
    monkeypatch.setattr(runner, "_run", fake_run)
    kw = dict(y0=None, params=params, t_eval=None, progress=False)
    with pytest.warns(RuntimeWarning, match="fused steps"):
        assert runner._run_fused(model, solver, (0.0, 1.0), "dopri5", **kw) == "solution"
    assert "compiling fused steps (cached for next time" in capsys.readouterr().err
    assert runner.fused_state(key) == "cold"  # it gave up: nothing recorded
    gave_up[0] = False
    runner._run_fused(model, solver, (0.0, 1.0), "dopri5", **kw)  # still cold: says so, then records
    assert "compiling" in capsys.readouterr().err and runner.fused_state(key) == "loaded"
    runner._run_fused(model, solver, (0.0, 1.0), "dopri5", **kw)
    assert "compiling" not in capsys.readouterr().err


def test_lockstep_hands_samples_over_where_a_single_run_tries_rodas4() -> None:
    # lanes.c mirrors integrator.c's trial point; a long non-stiff sample (> 200 steps) then
    # equals its single run (which tried RODAS4 there) bit for bit
    here = Path(__file__).resolve().parents[2] / "plugins" / "native_solver"
    probe = re.search(r"#define PROBE_FIRST (\d+)", (here / "integrator.c").read_text()).group(1)
    assert re.search(rf"#define NP_PROBE_FIRST {probe}\b", (here / "lanes.c").read_text())
    model, params = _perturbed("lotka_volterra.ant", 9)
    ts = torch.linspace(0.0, 60.0, 13, dtype=torch.float64)
    lock = _rows(model, params, ts, method="auto", rtol=1e-9, atol=1e-12)
    scalar = _rows(model, params, ts, method="auto", rtol=1e-9, atol=1e-12, lockstep=False)
    assert np.array_equal(lock.out, scalar.out) and np.array_equal(lock.stats, scalar.stats)
    prog = runner.compiled(model)
    for b in (0, 8):
        single = NativeSolver(rtol=1e-9, atol=1e-12).simulate(model, (0.0, 60.0), params=params[b], t_eval=ts)
        assert single.stats["n_steps"][0] > 200
        assert torch.equal(prog.observe(ts[None], torch.from_numpy(np.array(lock.out[b:b + 1])),
                                        params[b:b + 1, None, :]), single.ys)
