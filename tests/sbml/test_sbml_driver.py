"""SBML simulation semantics: events (delay, priority, persistence, initialValue, values from
trigger time), the torch solver's SBML path, batched ensembles, selected Test Suite cases."""
from __future__ import annotations

import csv
import math

import pytest
import torch

pytest.importorskip("libsbml")

import neuroplex  # noqa: E402
from neuroplex import cbuild  # noqa: E402
from neuroplex.plugins.torch_solver import TorchIntegrator  # noqa: E402
from neuroplex.sbml.antimony_loader import read_antimony_string  # noqa: E402
from neuroplex.sbml.program import SBMLProgram  # noqa: E402
from neuroplex.sbml.runner import run, simulate  # noqa: E402
from neuroplex.sbml.testsuite import run_case  # noqa: E402
from neuroplex.settings import Execution, StepControl  # noqa: E402
from neuroplex.testing import require_data  # noqa: E402

T = torch.float64


def ant(text: str):
    pytest.importorskip("antimony")
    return read_antimony_string(text)


def test_event_with_delay_priority_and_trigger_time_values() -> None:
    model = ant("""
        x = 0; y = 0; z = 0; x' = 1
        // fires at x >= 1 (t = 1), assigns after a delay of 0.5 the value x had at t = 1
        E1: at 0.5 after x >= 1, fromTrigger=true: y = x
        // same, but evaluated at execution time
        E2: at 0.5 after x >= 1, fromTrigger=false: z = x
    """)
    sol = simulate(model, (0, 2), t_eval=torch.tensor([0.0, 1.0, 1.49, 1.51, 2.0], dtype=T), variables=["y", "z"])
    assert torch.allclose(sol["y"][0], torch.tensor([0, 0, 0, 1.0, 1.0], dtype=T), atol=1e-9)
    assert torch.allclose(sol["z"][0], torch.tensor([0, 0, 0, 1.5, 1.5], dtype=T), atol=1e-9)


def test_priorities_order_simultaneous_events() -> None:
    model = ant("""
        x = 0; t1 = 0; x' = 1
        Elow: at time >= 1, priority=1, fromTrigger=false: t1 = 2*t1 + 1
        Ehigh: at time >= 1, priority=5: t1 = 10
    """)
    sol = simulate(model, (0, 2), t_eval=torch.tensor([0.0, 2.0], dtype=T), variables=["t1"])
    assert float(sol["t1"][0, -1]) == pytest.approx(21.0)  # high priority first: 10, then 2*10+1


def test_non_persistent_event_cancelled_and_t0_firing() -> None:
    model = ant("""
        x = 0; a = 0; b = 0; c = 0
        x' = 1
        // trigger true only for 0.5 < x < 0.6: a delay of 1 outlives it, so it never executes
        Enp: at 1 after (x > 0.5 && x < 0.6), persistent=false: a = 1
        Ep: at 1 after (x > 0.5 && x < 0.6), persistent=true: b = 1
        // true at t0 with initialValue false: fires at t0
        E0: at x >= 0, t0=false: c = 5
    """)
    sol = simulate(model, (0, 3), t_eval=torch.tensor([0.0, 3.0], dtype=T), variables=["a", "b", "c"])
    assert sol["a"][0].tolist() == [0.0, 0.0]
    assert sol["b"][0].tolist() == [0.0, 1.0]
    assert sol["c"][0].tolist() == [5.0, 5.0]


def test_narrow_trigger_window_fires() -> None:
    """An ``and`` trigger true only for a short window (the roadrunner failure of case 01511)."""
    model = ant("""
        S = 0; hits = 0; S' = 1
        E: at 0.1 after (S > 0.45 && S < 0.4500001): hits = hits + 1
    """)
    sol = simulate(model, (0, 1), t_eval=torch.tensor([0.0, 1.0], dtype=T), variables=["hits"])
    assert float(sol["hits"][0, -1]) == 1.0


def test_torch_solver_runs_sbml_models_through_the_driver() -> None:
    model = ant("""
        S1 -> S2; k*S1
        S1 = 10; S2 = 0; k = 0.3
    """)
    sol = neuroplex.simulate(model, (0, 5), n_points=6, solver="torch")
    expected = 10 * torch.exp(-0.3 * torch.linspace(0, 5, 6, dtype=T))
    assert torch.allclose(sol["S1"][0], expected, rtol=1e-6)
    assert torch.allclose(sol["S1"][0] + sol["S2"][0], torch.full((6,), 10.0, dtype=T), rtol=1e-9)
    # one CPU trajectory runs compiled where a C compiler is at hand (docs/native_solver.md)
    assert sol.solver == ("native" if cbuild.compiler_available() else "torch")
    auto = neuroplex.simulate(model, (0, 5), n_points=6, solver="torch", method="auto")
    assert auto.solver == "torch" and auto.method == "auto (dopri5)"  # SBML models choose per sample
    assert torch.allclose(auto.ys, sol.ys, rtol=1e-6)
    assert neuroplex.simulate(model, (0, 5), solver="torch", method="rosenbrock").method == "rosenbrock"
    lif = neuroplex.get_neuron("lif")()  # not SBML: dopri5 unless told, and the same auto policy when told
    assert neuroplex.simulate(lif, (0, 0.01), solver="torch").method == "dopri5"
    assert neuroplex.simulate(lif, (0, 0.01), solver="torch", method="auto").method == "auto (dopri5)"


def test_stiff_method_choice() -> None:
    model = ant("""
        A -> B; k1*A; B -> C; k2*B
        A = 1; B = 0; C = 0; k1 = 1e4; k2 = 1
    """)
    t = torch.linspace(0, 2, 5, dtype=T)
    k1, k2 = 1e4, 1.0
    b_exact = k1 / (k2 - k1) * (torch.exp(-k1 * t) - torch.exp(-k2 * t))
    for method, label in (("rosenbrock", "rosenbrock"), ("auto", "auto (dopri5, rosenbrock for stiff samples)")):
        sol = simulate(model, (0, 2), t_eval=t, method=method, control=StepControl(rtol=1e-9, atol=1e-12))
        assert sol.ok and sol.method == label
        assert torch.allclose(sol["B"][0], b_exact, rtol=1e-6, atol=1e-10)


def test_auto_keeps_a_long_non_stiff_run_on_dopri5() -> None:
    # a harmonic oscillator over 100 periods at a tight tolerance takes more dopri5 steps than
    # the stiff test's budget, but is not stiff: it finishes on dopri5, not rerun implicit
    budget = neuroplex.get_host().get("solvers", "torch").obj.auto_policy.step_budget

    model = ant("""
        x = 1; v = 0
        x' = v; v' = -x
    """)
    t = torch.linspace(0, 200 * math.pi, 5, dtype=T)
    sol = simulate(model, (0, float(t[-1])), t_eval=t, method="auto", control=StepControl(rtol=1e-11, atol=1e-13))
    assert sol.ok and sol.method == "auto (dopri5)"
    assert int(sol.stats["n_steps"][0]) > budget
    assert torch.allclose(sol["x"][0], torch.cos(t), atol=1e-7)


def test_ensemble_one_call_equals_single_runs() -> None:
    path = require_data("biomodels", "BIOMD0000000012.xml")
    model = neuroplex.load_model(path)
    assert not model.events
    prog = SBMLProgram(model)
    calls = []

    integrate = TorchIntegrator()

    def counting(*args, **kwargs):
        calls.append(1)
        return integrate(*args, **kwargs)

    gen = torch.Generator().manual_seed(7)
    base = prog.default_params()
    params = base * (0.7 + 0.6 * torch.rand((5, base.numel()), generator=gen, dtype=T))
    t_eval = torch.linspace(0, 50, 26, dtype=T)
    batch = run(prog, (0, 50), t_eval=t_eval, params=params, integrator=counting)
    assert len(calls) == 1 and batch.ys.shape == (5, 26, len(prog.output_names)) and batch.ok
    for b in (0, 3):
        single = run(prog, (0, 50), t_eval=t_eval, params=params[b])
        assert torch.allclose(batch.ys[b], single.ys[0], rtol=1e-10, atol=1e-12)


SUITE_CASES = {  # one or two cases per event feature, run quickly from the shared data
    "00001": "reactions, amounts",
    "00026": "events",
    "00071": "event with delay",
    "00930": "event priorities",
    "00932": "non-persistent event",
    "00928": "event firing at t0",
    "00980": "event assignments with values from execution time",
    "01511": "delayed event whose trigger holds only for 0.45 < t < 0.475",
    "00950": "initial assignments to inf, -inf, nan",
    "01117": "constant species in a growing compartment",
    "01779": "event resizes a compartment and sets a species",
}


@pytest.mark.parametrize("case", sorted(SUITE_CASES))
def test_selected_suite_cases(case: str) -> None:
    root = require_data("sbml-test-suite")
    ids = {row["case_id"] for row in csv.DictReader(open(root / "index.csv"))}
    if case not in ids:
        pytest.skip(f"case {case} is not in the shared set")
    result = run_case(root / case)
    assert result.passed, f"{case} ({SUITE_CASES[case]}): {result.reason}"


def test_absolute_tolerance_follows_tiny_compartments() -> None:
    # amounts near 1e-22 in a 1e-16 compartment: a concentration tolerance of 1e-16 taken as an
    # amount tolerance would accept any value there; the driver scales it per state
    model = ant("""
        compartment cell = 1e-16; compartment big = 5
        species A in cell = 1e-6; species B in cell = 0; species C in big = 1
        J1: A -> B; cell * k * A
        J2: C -> ; big * 1e-3 * C
        k = 0.7
    """)
    prog = SBMLProgram(model)
    p = prog.default_params()[None]
    scale = prog.atol_scale(p, prog.initial_state(0.0, p))
    assert scale is not None and scale.shape == (1, prog.n)
    by_state = {name.removesuffix("_amount"): v for name, v in zip(prog.state_names, scale[0].tolist())}
    assert by_state["A"] == pytest.approx(1e-16) and by_state["B"] == pytest.approx(1e-16)
    assert by_state["C"] == 1.0  # never looser than asked
    ts = torch.linspace(0.0, 5.0, 11, dtype=T)
    sol = simulate(model, (0, 5), t_eval=ts, variables=["A", "B"], control=StepControl(rtol=1e-8, atol=1e-16))
    # the concentrations are reported; their exact values are amounts / 1e-16
    exact = 1e-6 * torch.exp(-0.7 * ts)
    assert torch.allclose(sol["A"][0], exact, rtol=1e-6, atol=0)
    assert torch.allclose(sol["B"][0], 1e-6 - exact, rtol=1e-6, atol=1e-18)


def test_symbolic_jacobian_equals_autograd_and_drives_the_stiff_method() -> None:
    # assignment rules, a piecewise stimulus in time and a Hill term: the generated
    # derivatives (chain rule through the rules, df/dt included) equal autograd's
    model = ant("""
        J1: A -> B; k1 * A * S
        J2: B -> A; Vm * B^h / (Km^h + B^h)
        J3: -> A; k0
        S := 1 + piecewise(2 * sin(time), time < 3, 0.5)
        k1 = 2; Vm = 3; Km = 0.4; h = 3; k0 = 0.1; A = 1; B = 0.2
    """)
    prog = SBMLProgram(model)
    assert prog.jacobian_code() is not None  # built now, once
    p = prog.default_params()[None].repeat(3, 1)
    p[1] *= 1.3
    f = prog.rhs_bound(p)
    t = torch.tensor([0.5, 1.7, 4.0], dtype=T)
    y = torch.rand((3, prog.n), dtype=T, generator=torch.Generator().manual_seed(3)) + 0.1
    y[1, [s.removesuffix("_amount") for s in prog.state_names].index("B")] = 0.0  # d(B^h)/dB at B = 0: h*B^(h-1) = 0, not 0/0
    jac, f_t = f.jacobian(t, y)
    assert bool(torch.isfinite(jac).all())
    for b in range(3):
        one = prog.rhs_bound(p[b:b + 1])
        d_t, d_y = torch.autograd.functional.jacobian(lambda tt, yy: one(tt[None], yy[None])[0], (t[b], y[b]))
        assert torch.allclose(jac[b], d_y, rtol=1e-12, atol=1e-14)
        assert torch.allclose(f_t[b], d_t, rtol=1e-12, atol=1e-14)
    assert f_t[2].abs().max() == 0 and f_t[0].abs().max() > 0  # the stimulus moves only while t < 3
    from neuroplex.plugins.torch_solver.rosenbrock import batched_jacobian

    calls = []
    own = f.jacobian
    f.jacobian = lambda tt, yy: calls.append(1) or own(tt, yy)
    got, _ = batched_jacobian(f, t, y, [])
    assert calls and torch.equal(got, jac)


def test_ensemble_drops_finished_samples_through_select() -> None:
    # rates over three decades: the bound right-hand side can be narrowed to some samples,
    # and an ensemble run that narrows it as samples finish equals one that never does
    model = ant("""
        J1: A -> B; k * A * B; J2: B -> ; k * B / (1 + B)
        A = 1; B = 0.1; k = 1
    """)
    prog = SBMLProgram(model)
    gen = torch.Generator().manual_seed(5)
    params = prog.default_params().repeat(96, 1)
    params[:, list(prog.param_names).index("k")] = 10 ** (3 * torch.rand(96, generator=gen, dtype=T))
    f = prog.rhs_bound(params)
    ids = torch.tensor([3, 40, 95])
    t, y = torch.zeros(3, dtype=T), torch.rand((3, prog.n), generator=gen, dtype=T)
    assert torch.equal(f.select(ids)(t, y), prog.rhs_bound(params[ids])(t, y))
    integrate = TorchIntegrator()
    narrowed = []

    def watching(rhs, *args, **kwargs):
        select = rhs.select
        rhs.select = lambda index: narrowed.append(len(index)) or select(index)
        return integrate(rhs, *args, **kwargs)

    def plain(rhs, *args, **kwargs):
        del rhs.select
        return integrate(rhs, *args, **kwargs)

    ts = torch.linspace(0, 5, 11, dtype=T)
    a = run(prog, (0, 5), t_eval=ts, params=params, integrator=watching, control=StepControl(rtol=1e-8, atol=1e-12))
    b = run(prog, (0, 5), t_eval=ts, params=params, integrator=plain, control=StepControl(rtol=1e-8, atol=1e-12))
    assert narrowed and a.ok and b.ok
    assert torch.allclose(a.ys, b.ys, rtol=1e-12, atol=1e-15)


def test_ensemble_split_over_worker_processes_equals_one_process() -> None:
    model = ant("""
        J1: A -> B; k * A * B; J2: B -> ; k * B / (1 + B)
        A = 1; B = 0.1; k = 1
    """)
    prog = SBMLProgram(model)
    gen = torch.Generator().manual_seed(11)
    params = prog.default_params().repeat(200, 1)
    params[:, list(prog.param_names).index("k")] = 10 ** (2 * torch.rand(200, generator=gen, dtype=T))
    ts = torch.linspace(0, 5, 11, dtype=T)
    one = run(prog, (0, 5), t_eval=ts, params=params, control=StepControl(rtol=1e-8, atol=1e-12))
    three = run(prog, (0, 5), t_eval=ts, params=params, control=StepControl(rtol=1e-8, atol=1e-12), execution=Execution(workers=3))
    assert one.ok and three.ok and three.ys.shape == one.ys.shape and three.names == one.names
    # the same up to the last bits of vectorised math functions, which depend on batch position
    assert torch.allclose(three.ys, one.ys, rtol=1e-10, atol=1e-14)
    assert torch.equal(three.status, one.status) and three.stats["n_steps"].shape == (200,)
    # through the front door: the solver's workers option, and a y0 batch split alongside
    y0 = prog.initial_state(0.0, params) * 0.5
    via_api = neuroplex.simulate(model, (0, 5), t_eval=ts, params=params, y0=y0,
                                 solver=neuroplex.host.get_solver("torch")(workers=2, rtol=1e-8, atol=1e-12))
    alone = run(prog, (0, 5), t_eval=ts, params=params[150:], y0=y0[150:], method="auto", control=StepControl(rtol=1e-8, atol=1e-12))
    assert via_api.method == alone.method
    assert torch.allclose(via_api.ys[150:], alone.ys, rtol=1e-10, atol=1e-14)


def test_sharded_ensemble_with_events_writes_every_shard_in_place() -> None:
    model = ant("""
        J1: -> A; k
        E1: at A > 1: A = 0
        A = 0; k = 1
    """)
    prog = SBMLProgram(model)
    params = prog.default_params().repeat(130, 1)
    params[:, list(prog.param_names).index("k")] = torch.linspace(0.5, 3.0, 130, dtype=T)
    ts = torch.linspace(0, 4, 9, dtype=T)
    one = run(prog, (0, 4), t_eval=ts, params=params, control=StepControl(rtol=1e-9, atol=1e-12))
    two = run(prog, (0, 4), t_eval=ts, params=params, control=StepControl(rtol=1e-9, atol=1e-12), execution=Execution(workers=2))
    assert one.ok and two.ok and two.ys.shape == one.ys.shape == (130, 9, len(prog.output_names))
    assert torch.allclose(two.ys, one.ys, rtol=1e-10, atol=1e-12)
    assert torch.equal(two.stats["n_events"], one.stats["n_events"]) and int(one.stats["n_events"][-1]) > 0


def test_generated_jacobian_that_disagrees_with_autograd_is_dropped() -> None:
    model = ant("""
        J1: A -> B; k1 * A^2; J2: B -> A; k2 * B
        k1 = 2; k2 = 0.5; A = 1; B = 0.2
    """)
    prog = SBMLProgram(model)
    bind, jac = prog.jacobian_code()
    prog._jac = (bind, lambda t, y, k: tuple(2 * x for x in jac(t, y, k)))  # a wrong derivative
    one = prog._jac_one  # its form for a single sample, which a batch of one runs
    assert one is not None
    prog._jac_one = lambda t, y, k: tuple(2 * x for x in one(t, y, k))
    p = prog.default_params()[None]
    t, y = torch.zeros(1, dtype=T), torch.tensor([[1.0, 0.3]], dtype=T)
    assert prog.rhs_bound(p).jacobian(t, y) is None  # checked at first use: autograd takes over
    assert prog.jacobian_code() is None
    sol = run(prog, (0, 1), t_eval=[0.0, 0.5, 1.0], method="rosenbrock", control=StepControl(rtol=1e-8, atol=1e-12))
    assert sol.ok and bool(torch.isfinite(sol.ys).all())


def test_single_sample_runs_on_numpy_scalars_and_equals_the_torch_path() -> None:
    model = ant("""
        J1: A -> B; k1 * A^2 / (Km + A); J2: B -> A; k2 * B * exp(-time / 7)
        k1 = 2; k2 = 0.5; Km = 0.3; A = 1; B = 0.2
    """)
    prog = SBMLProgram(model)
    assert prog._rhs_one is not None and prog.jacobian_code() is not None and prog._jac_one is not None
    p = prog.default_params()[None]
    t, y = torch.tensor([0.3], dtype=T), torch.tensor([[0.8, 0.4]], dtype=T)
    calls = []
    one = prog._rhs_one
    prog._rhs_one = lambda *args: calls.append(1) or one(*args)
    f = prog.rhs_bound(p)
    got = f(t, y)
    assert calls, "a batch of one runs the scalar form"
    assert torch.allclose(got, prog._rhs(t, y, prog._bind(p)), rtol=1e-14, atol=0)
    jac_y, jac_t = f.jacobian(t, y)
    ref_y, ref_t = prog._jac[1](t, y, prog._jac[0](p))
    assert torch.allclose(jac_y, ref_y, rtol=1e-14, atol=0) and torch.allclose(jac_t, ref_t, rtol=1e-14, atol=0)
    # a batch, and gradients through the parameters, take the torch path
    n_calls = len(calls)
    prog.rhs_bound(p.expand(3, -1).contiguous())(t.expand(3), y.expand(3, -1))
    pg = p.clone().requires_grad_(True)
    prog.rhs_bound(pg)(t, y)[0, 0].backward()  # (the sum is conserved: zero gradient)
    assert len(calls) == n_calls
    assert pg.grad is not None and bool(pg.grad.abs().sum() > 0)
