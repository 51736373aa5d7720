"""Batch invariance: a sample solved alone equals the same sample inside a batch of 64."""
from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuroplex.plugins.torch_solver import integrate
from neuroplex.plugins.torch_solver.state import COMPACT_FRACTION


def _linear(a: torch.Tensor):
    """y' = A_b y per sample, written element-wise (no batched matmul, whose blocking may
    depend on the batch size)."""
    def f(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (a * y[:, None, :]).sum(-1)
    return f


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 4), shift=st.floats(-2.0, 1.0),
       method=st.sampled_from(["dopri5", "rosenbrock", "rk4"]), pos=st.integers(0, 63))
def test_sample_alone_equals_sample_in_batch(seed: int, n: int, shift: float, method: str, pos: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(64, n, n, generator=gen, dtype=torch.float64) + shift * torch.eye(n, dtype=torch.float64)
    y0 = torch.randn(64, n, generator=gen, dtype=torch.float64)
    t1 = 1.0 + 2.0 * torch.rand(64, generator=gen, dtype=torch.float64)  # per-sample end times
    te = torch.linspace(0.0, 3.0, 7, dtype=torch.float64)
    opts = dict(method=method, rtol=1e-7, atol=1e-9, t_eval=te, dt0=0.01 if method == "rk4" else None)
    full = integrate(_linear(a), 0.0, t1, y0, **opts)
    alone = integrate(_linear(a[pos:pos + 1]), 0.0, t1[pos:pos + 1], y0[pos:pos + 1], **opts)
    assert full.status[pos] == alone.status[0]
    assert int(full.n_steps[pos]) == int(alone.n_steps[0])
    torch.testing.assert_close(full.y_end[pos], alone.y_end[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(full.ys[pos], alone.ys[0], rtol=1e-12, atol=1e-12, equal_nan=True)
    # outputs beyond a sample's own end time are NaN, before it finite
    assert torch.isnan(full.ys[pos][te > t1[pos]]).all()
    assert torch.isfinite(full.ys[pos][te <= t1[pos]]).all()


def test_per_sample_step_sizes_differ() -> None:
    k = torch.tensor([[0.1], [50.0]], dtype=torch.float64)
    res = integrate(lambda t, y: -k * y * (1 + torch.sin(k * t[:, None])), 0.0, 2.0, torch.ones(2, 1, dtype=torch.float64))
    assert res.ok
    assert int(res.n_steps[1]) > 3 * int(res.n_steps[0])


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), pos=st.integers(0, 63))
def test_events_are_batch_invariant(seed: int, pos: int) -> None:
    """Threshold-reset neurons with random drive: a sample's spike times and state are the same
    alone and inside a batch of 64 (events located per sample, root finding frozen per sample)."""
    gen = torch.Generator().manual_seed(seed)
    drive = 1.2 + 2.0 * torch.rand(64, 1, generator=gen, dtype=torch.float64)
    freq = 1.0 + 5.0 * torch.rand(64, 1, generator=gen, dtype=torch.float64)

    # v' = I (1 + 0.5 w t (1 - t / 3)) - v: polynomial forcing (vectorised transcendental
    # functions may differ from their scalar versions in the last bit, which is torch's, not ours)
    def f(t, y):
        tt = t[:, None]
        return drive_b * (1 + 0.5 * freq_b * tt * (1 - tt / 3)) - y

    def ev(t, y):
        return y - 1.0

    outs = []
    for rows in (slice(None), slice(pos, pos + 1)):
        drive_b, freq_b = drive[rows], freq[rows]
        res = integrate(f, 0.0, 3.0, torch.zeros(drive_b.shape[0], 1, dtype=torch.float64), event_fn=ev,
                        rtol=1e-8, atol=1e-10)
        outs.append((res.t_end, res.y_end, res.n_steps))
    (t_all, y_all, n_all), (t_one, y_one, n_one) = outs
    assert abs(float(t_all[pos]) - float(t_one[0])) <= 1e-12
    assert int(n_all[pos]) == int(n_one[0])
    torch.testing.assert_close(y_all[pos], y_one[0], rtol=1e-12, atol=1e-12)


def test_reset_events_are_batch_invariant_through_simulate() -> None:
    import sympy as sp

    import neuroplex
    from neuroplex.ir import Event, ModelIR, Parameter, State

    v, i_in = sp.symbols("v I")
    lif = ModelIR("lif", states=[State("v", 0.0)], parameters=[Parameter("I", 2.0)],
                  derivatives={"v": i_in - v}, events=[Event("spike", v > 1, {"v": 0})])
    gen = torch.Generator().manual_seed(3)
    params = 1.1 + 3.0 * torch.rand(64, 1, generator=gen, dtype=torch.float64)
    full = neuroplex.simulate(lif, 4.0, params=params, n_points=9)
    for pos in (0, 17, 63):
        alone = neuroplex.simulate(lif, 4.0, params=params[pos:pos + 1], n_points=9)
        _, t_full = full.spikes.for_sample(pos)
        _, t_alone = alone.spikes.for_sample(0)
        np.testing.assert_allclose(t_full, t_alone, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(full.ys[pos], alone.ys[0], rtol=1e-12, atol=1e-12)


def test_ensemble_compaction_drops_finished_samples_with_the_same_results() -> None:
    # rates over three decades: fast samples need many more steps; once a fraction of the
    # working batch is unfinished the loop goes on with those (f.select), results unchanged
    b = 200
    gen = torch.Generator().manual_seed(11)
    rate = 10 ** (3 * torch.rand(b, generator=gen, dtype=torch.float64))
    y0 = torch.rand((b, 2), generator=gen, dtype=torch.float64) + 0.5
    t1 = 1.0 + torch.rand(b, generator=gen, dtype=torch.float64)

    def make(k: torch.Tensor):
        def f(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return torch.stack([-k * y[:, 0] * (1 + y[:, 1]), k * y[:, 0] - y[:, 1]], -1)
        return f

    selected: list[int] = []
    compacting = make(rate)

    def select(ids: torch.Tensor):
        selected.append(int(ids.numel()))
        return make(rate[ids])

    compacting.select = select
    atol = torch.full((b, 2), 1e-10, dtype=torch.float64)
    ts = torch.linspace(0, 2, 9, dtype=torch.float64)
    for method in ("dopri5", "rosenbrock"):
        selected.clear()
        got = integrate(compacting, 0.0, t1, y0, method=method, rtol=1e-8, atol=atol, t_eval=ts)
        ref = integrate(make(rate), 0.0, t1, y0, method=method, rtol=1e-8, atol=atol, t_eval=ts)
        assert selected and selected == sorted(selected, reverse=True) and selected[0] <= COMPACT_FRACTION * b
        assert torch.equal(got.n_steps, ref.n_steps) and torch.equal(got.status, ref.status)
        assert torch.equal(got.ys.isnan(), ref.ys.isnan())  # points past a sample's t1 stay NaN
        assert torch.allclose(got.ys.nan_to_num(), ref.ys.nan_to_num(), rtol=1e-12, atol=1e-15)
        assert torch.allclose(got.y_end, ref.y_end, rtol=1e-12, atol=1e-15) and torch.equal(got.t_end, ref.t_end)
