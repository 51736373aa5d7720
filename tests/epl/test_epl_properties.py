"""Properties the EPL appendix proves (eqn:Dynamical_System), checked on random systems.

Each hypothesis example is a batch of BATCH random systems of one shape, so every property runs
over EXAMPLES * BATCH >= 200 systems (pointwise checks are exact; integrated ones go through
the core ``neuroplex.simulate`` / ``neuroplex.equilibrate``)."""
from __future__ import annotations

import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from neuroplex.plugins.epl import EPLDynamics, Flows, conservation_matrix, random_system, relax, trajectory

EXAMPLES, BATCH = 4, 50  # 200 systems per property, 50 at a time
shapes = st.tuples(st.integers(2, 6), st.integers(0, 2**31 - 1)).map(lambda t: (t[0], max(1, t[0] - 1), t[1]))
cfg = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.too_slow],
               phases=(Phase.explicit, Phase.reuse, Phase.generate))  # failures print their example


def states(system, seed: int, points: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape = (points, *system.batch_shape, system.n)
    return torch.exp(torch.randn(shape, generator=g, dtype=torch.float64)), torch.randn(shape, generator=g, dtype=torch.float64)


@cfg
@given(shapes)
def test_epl_energy_decreases_under_chemical_and_collision(shape):
    n, e, seed = shape
    s = random_system(n, e, batch=BATCH, seed=seed)
    x, p = states(s, seed)
    for flows in (Flows.only("chemical"), Flows.only("collision"), Flows.only("chemical", "collision")):
        rate = s.energy_rate(x, p, flows)
        Hx, Hp = s.gradient(x, p)
        scale = 1e-9 * (1 + (Hx.abs() * s.rhs(x, p, flows)[0].abs()).sum(-1) + (Hp * s.rhs(x, p, flows)[1]).abs().sum(-1))
        assert bool((rate <= scale).all()), float(rate.max())
    # and along an integrated trajectory (core simulate), H never rises
    sol = trajectory(s.with_flows("chemical", "collision"), 2.0, n_points=21, rtol=1e-9, atol=1e-12)
    H = EPLDynamics(s).energy(sol.ys.transpose(0, 1)).T  # (B, T)
    assert bool((H[:, 1:] - H[:, :-1] <= 1e-7 * (1 + H.abs()[:, 1:])).all())


@cfg
@given(shapes)
def test_epl_hamiltonian_flow_conserves_energy(shape):
    n, e, seed = shape
    s = random_system(n, e, batch=BATCH, seed=seed).with_flows("hamiltonian")
    x, p = states(s, seed)
    rate = s.energy_rate(x, p)
    Hx, Hp = s.gradient(x, p)
    dx, dp = s.rhs(x, p)
    assert bool((rate.abs() <= 1e-9 * (1 + (Hx * dx).abs().sum(-1) + (Hp * dp).abs().sum(-1))).all())
    sol = trajectory(s, 0.5, n_points=11, rtol=1e-10, atol=1e-12)
    assert bool((sol.status == 0).all())
    H = EPLDynamics(s).energy(sol.ys.transpose(0, 1)).T
    drift = (H - H[:, :1]).abs().amax(-1) / (1 + H[:, 0].abs())
    assert float(drift.max()) < 1e-6


@cfg
@given(shapes)
def test_epl_mass_conserved_by_chemical_and_hamiltonian_flows(shape):
    n, e, seed = shape
    s = random_system(n, e, batch=BATCH, seed=seed).with_flows("chemical", "hamiltonian", "collision")
    M = conservation_matrix(s.Mperp)  # (B, n, c): M^T Mperp = 0
    # Runge-Kutta steps keep linear invariants exactly whatever the step size, so a loose
    # tolerance tests the same property (the bound below stays 1e-6)
    sol = trajectory(s, 1.0, n_points=11, rtol=1e-6, atol=1e-9)
    x = sol.ys[..., :n]  # (B, T, n)
    mx = x @ M
    assert float((mx - mx[:, :1]).abs().max()) < 1e-6 * (1 + float(mx.abs().max()))
    # and exactly in the implicit-layer map
    dyn = EPLDynamics(s, dt=0.05)
    y0 = s.initial_state()
    y1 = dyn.fixed_point_map(y0, dyn.pack())
    d = ((y1[:, :n] - y0[:, :n]).unsqueeze(-2) @ M).abs().max()
    assert float(d) < 1e-10


@cfg
@given(shapes)
def test_epl_masses_stay_positive(shape):
    n, e, seed = shape
    s = random_system(n, e, batch=BATCH, seed=seed)
    sol = trajectory(s, 5.0, n_points=26, rtol=1e-7, atol=1e-10)
    assert bool((sol.status == 0).all()) and bool((sol.ys[..., :n] > 0).all())
    res = relax(s, max_iter=300, tol=0.0)  # the implicit layer, a fixed number of steps
    assert bool((res.ys[:, :n] > 0).all())


@cfg
@given(shapes)
def test_epl_homeostasis_moves_x_to_target(shape):
    n, e, seed = shape
    s = random_system(n, e, batch=BATCH, seed=seed).with_flows("homeostasis")
    sol = trajectory(s, 3.0, n_points=7)
    gap = (sol.ys[..., :n] - s.x_h.unsqueeze(1)).abs()  # (B, T, n)
    assert bool((gap[:, 1:] <= gap[:, :-1] + 1e-9).all())
    expected = gap[:, 0] * torch.exp(-s.h * 3.0)  # exact: x_h + (x0 - x_h) e^{-h t}
    assert torch.allclose(gap[:, -1], expected, rtol=1e-5, atol=1e-9)


@cfg
@given(shapes)
def test_epl_dissipative_systems_converge(shape):
    n, e, seed = shape
    s = random_system(n, e, batch=BATCH, seed=seed).with_flows("chemical", "collision", "homeostasis")
    sol = relax(s, tol=1e-8, max_iter=10000, dt=0.2)  # dt 0.05 needs ~6x the iterations
    res = sol.stats["residual"]  # max |z - f(z)| per system at the returned state
    assert bool((res < 1e-8).all()), res.max()
    x, p = sol.ys[:, :n], sol.ys[:, n:]
    dx, dp = s.rhs(x, p)
    assert float(torch.cat([dx, dp], -1).abs().max()) < 1e-6
