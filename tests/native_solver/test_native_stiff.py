"""The native integrator's stiff side (``integrator.c``): when ``auto`` moves to RODAS4 (Hairer's
test or a trial of RODAS4 that costs less per unit of time), when it stays on dopri5 or returns
to it, and RODAS4's sparse linear algebra (minimum-degree order, diagonal pivots over the
symbolic fill, the pattern growing during a run) against dopri5, which solves nothing."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("libsbml")

import neuroplex  # noqa: E402
from neuroplex import cbuild  # noqa: E402
from neuroplex.sbml.antimony_loader import read_antimony_string  # noqa: E402

pytestmark = pytest.mark.skipif(not cbuild.compiler_available(), reason="no working C compiler (gcc/clang/$CC)")

#: integrator.c's PROBE_FIRST / PROBE_STEPS: auto's first scheduled trial of RODAS4, its length
PROBE_FIRST, PROBE_STEPS = 200, 8

LOTKA_VOLTERRA = """
    J1: -> x; a * x
    J2: x -> ; b * x * y
    J3: -> y; d * x * y
    J4: y -> ; c * y
    x = 10; y = 5; a = 1.1; b = 0.4; c = 0.4; d = 0.1
"""


def _network(n: int) -> str:
    """A stiff chain S0 -> ... -> S{n-1} (rates alternating 1e5 and 1) and a hub H, made slowly
    from nothing, that also moves every S_i on (H + S_i -> H + S_{i+1}): the Jacobian's column
    of H and rows of the S_i fill in as the species do (its pattern grows during the run), and
    H couples to every state (an arrowhead, where the elimination order decides the fill)."""
    lines = [f"R{i}: S{i} -> S{i + 1}; k{i % 2} * S{i}" for i in range(n - 1)]
    lines += [f"H{i}: H + S{i} -> H + S{i + 1}; kh * H * S{i}" for i in range(n - 1)]
    lines += ["P: -> H; 0.5", "D: S%d -> ; 0.3 * S%d" % (n - 1, n - 1)]
    lines += ["S0 = 1; H = 0; k0 = 1e5; k1 = 1; kh = 2"] + [f"S{i} = 0" for i in range(1, n)]
    return "\n".join(lines)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEUROPLEX_NATIVE_CACHE", str(tmp_path_factory.getbasetemp() / "native_cache"))


def test_sparse_rodas_matches_dopri5_on_a_growing_network() -> None:
    model = read_antimony_string(_network(20))
    t = torch.linspace(0.0, 5.0, 11, dtype=torch.float64)
    kw = dict(t_eval=t, rtol=1e-9, atol=1e-13, max_steps=10**6)
    rodas = neuroplex.simulate(model, (0.0, 5.0), solver="native", method="rodas4", **kw)
    ref = neuroplex.simulate(model, (0.0, 5.0), solver="native", method="dopri5", **kw)
    assert rodas.ok and ref.ok and rodas.ys.shape[-1] == 21
    assert float(((rodas.ys - ref.ys).abs() / (1e-12 + 1e-7 * ref.ys.abs())).max()) <= 1.0
    assert int(rodas.stats["n_rejected"][0]) <= 0.05 * int(rodas.stats["n_steps"][0])
    # the stiff chain: RODAS4 takes far fewer steps than dopri5 at its stability bound
    assert 20 * int(rodas.stats["n_steps"][0]) < int(ref.stats["n_steps"][0])


def test_auto_takes_rodas_where_hairers_test_fires() -> None:
    model = read_antimony_string(_network(10))
    t = torch.linspace(0.0, 5.0, 6, dtype=torch.float64)
    sol = neuroplex.simulate(model, (0.0, 5.0), solver="native", t_eval=t, rtol=1e-8, atol=1e-12)
    switched = int(sol.stats["stiff_from_step"][0])
    assert sol.ok and 0 <= switched < PROBE_FIRST
    rodas = neuroplex.simulate(model, (0.0, 5.0), solver="native", method="rodas4", t_eval=t, rtol=1e-8, atol=1e-12)
    assert torch.allclose(sol.ys, rodas.ys, rtol=1e-5, atol=1e-10)


def test_auto_tries_rodas_where_dopri5_stays_below_its_stability_bound() -> None:
    # BIOMD0000000019 at rtol 1e-8: dopri5's steps stay accuracy-limited with h * lambda < 3.25,
    # so Hairer's test does not fire (the run took 650 000 dopri5 steps over 0..100); the
    # scheduled trial finds RODAS4 cheaper per unit of time and keeps it
    from neuroplex.testing import require_data

    model = neuroplex.load_model(require_data("biomodels", "BIOMD0000000019.xml"))
    t = torch.linspace(0.0, 0.05, 6, dtype=torch.float64)
    kw = dict(t_eval=t, rtol=1e-8, atol=1e-12, max_steps=10**6)
    auto = neuroplex.simulate(model, (0.0, 0.05), solver="native", **kw)
    alone = neuroplex.simulate(model, (0.0, 0.05), solver="native", method="dopri5", **kw)
    rodas = neuroplex.simulate(model, (0.0, 0.05), solver="native", method="rodas4", **kw)
    assert auto.ok and int(auto.stats["stiff_from_step"][0]) == PROBE_FIRST
    assert 5 * int(auto.stats["n_steps"][0]) < int(alone.stats["n_steps"][0])
    for other in (alone, rodas):
        assert float(((auto.ys - other.ys).abs() / (1e-8 + 1e-5 * other.ys.abs())).max()) <= 1.0


def test_non_stiff_model_tries_rodas_and_stays_on_dopri5() -> None:
    model = read_antimony_string(LOTKA_VOLTERRA)
    t = torch.linspace(0.0, 100.0, 11, dtype=torch.float64)
    auto = neuroplex.simulate(model, (0.0, 100.0), solver="native", t_eval=t, rtol=1e-10, atol=1e-12)
    alone = neuroplex.simulate(model, (0.0, 100.0), solver="native", method="dopri5", t_eval=t, rtol=1e-10,
                               atol=1e-12)
    steps = int(auto.stats["n_steps"][0])
    assert auto.ok and steps > 4 * PROBE_FIRST and int(auto.stats["stiff_from_step"][0]) == -1
    # trials at 200, 600, 1400 steps (the gap doubles after each), PROBE_STEPS RODAS4 steps each
    trials = int(auto.stats["n_jacobians"][0]) / PROBE_STEPS
    assert 2 <= trials <= 4
    assert steps <= 1.05 * int(alone.stats["n_steps"][0])
    assert torch.allclose(auto.ys, alone.ys, rtol=1e-7, atol=1e-10)


#: stiff while k exp(-t) is large (X relaxes at rate 1e5 at t = 0), then a non-stiff oscillator
STIFF_THEN_NOT = """
    X' = -k * exp(-time) * (X - 1)
    J1: -> x; a * x
    J2: x -> ; b * x * y
    J3: -> y; d * x * y
    J4: y -> ; c * y
    X = 0; k = 1e5; x = 10; y = 5; a = 1.1; b = 0.4; c = 0.4; d = 0.1
"""


def test_auto_returns_to_dopri5_when_the_stiff_phase_ends() -> None:
    model = read_antimony_string(STIFF_THEN_NOT)
    t = torch.linspace(0.0, 60.0, 7, dtype=torch.float64)
    kw = dict(t_eval=t, rtol=1e-9, atol=1e-12, max_steps=10**6)
    auto = neuroplex.simulate(model, (0.0, 60.0), solver="native", **kw)
    alone = neuroplex.simulate(model, (0.0, 60.0), solver="native", method="dopri5", **kw)
    rodas = neuroplex.simulate(model, (0.0, 60.0), solver="native", method="rodas4", **kw)
    steps, jacobians = int(auto.stats["n_steps"][0]), int(auto.stats["n_jacobians"][0])
    assert auto.ok and 0 <= int(auto.stats["stiff_from_step"][0]) < PROBE_FIRST
    # RODAS4 through the stiff start, dopri5 (no Jacobians) for most of the run after it
    assert jacobians < 0.5 * steps
    assert 10 * steps < int(alone.stats["n_steps"][0]) and steps < int(rodas.stats["n_steps"][0])
    for other in (alone, rodas):
        assert torch.allclose(auto.ys, other.ys, rtol=1e-6, atol=1e-9)


def test_return_to_rodas_after_a_dopri5_trial_keeps_the_dense_output() -> None:
    # BIOMD0000000005 (Tyson's cell cycle) at rtol 1e-6: a dopri5 trial leaves the fast species
    # slightly off their slow manifold; RODAS4 resuming at its old long step put a cubic Hermite
    # output on the large derivative there, 25 % off in a species for 0.8 time units (1873x the
    # rtol 1e-4 bound against RODAS4 alone). Resuming from dopri5's step keeps it within 0.1x.
    from neuroplex.testing import require_data

    model = neuroplex.load_model(require_data("biomodels", "BIOMD0000000005.xml"))
    t = torch.linspace(0.0, 100.0, 1000, dtype=torch.float64)
    auto = neuroplex.simulate(model, (0.0, 100.0), solver="native", t_eval=t, rtol=1e-6, atol=1e-9)
    rodas = neuroplex.simulate(model, (0.0, 100.0), solver="native", method="rodas4", t_eval=t, rtol=1e-6,
                               atol=1e-9)
    assert auto.ok and int(auto.stats["stiff_from_step"][0]) >= 0
    assert int(auto.stats["n_jacobians"][0]) < int(auto.stats["n_steps"][0])  # a dopri5 trial ran
    assert float(((auto.ys - rodas.ys).abs() / (1e-8 + 1e-4 * rodas.ys.abs())).max()) <= 0.5


def test_rodas_dense_output_inside_a_long_step_from_off_its_slow_manifold() -> None:
    # X relaxes to 1 at rate 1e6 from 1e-7 off it: the error estimate accepts a first step of 1.0,
    # where f = -0.1 at the start. RODAS4's own interpolant from its stages stays within the
    # initial 1e-7 of the solution between the step ends; a cubic Hermite curve on the end-point
    # derivatives bows by h f / 7 ~ 1.5e-2.
    model = read_antimony_string("""
        X' = -k * (X - 1)
        X = 1.0000001; k = 1e6
    """)
    t = torch.linspace(0.0, 1.0, 11, dtype=torch.float64)
    sol = neuroplex.simulate(model, (0.0, 1.0), solver="native", method="rodas4", t_eval=t, rtol=1e-6, atol=1e-9,
                             dt=1.0)
    exact = 1.0 + 1e-7 * torch.exp(-1e6 * t)
    assert sol.ok and int(sol.stats["n_steps"][0]) == 1
    assert float((sol["X"][0] - exact).abs().max()) < 1e-6
