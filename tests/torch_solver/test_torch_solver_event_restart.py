"""Spikes of stiff neurons after a reset, on every adaptive method: an event is a
discontinuity, so the step loop restarts its step-size control there (a step grown on the
smooth solution before a reset once jumped the fast transient after it, and rosenbrock placed
every spike after the first about 0.3 late while its end points stayed accurate).

The relaxing neuron ``v' = -k (v - w)``, ``w' = 1``, ``v > 1`` resets both to 0, has exact
spike times: from ``v = w = 0`` the solution is ``v = s - (1 - exp(-k s)) / k`` (``s`` the
time since the reset), so spikes come every ``s1`` with ``s1 - (1 - exp(-k s1)) / k = 1``.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch

import neuroplex
from neuroplex.ir import Event, ModelIR, Parameter, State
from neuroplex.plugins.torch_solver.rosenbrock import RodasStepper
from neuroplex.plugins.torch_solver.stepper import Rhs, StepResult, Tolerances

T = torch.float64
v, w, k = sp.symbols("v w k")
RTOL, ATOL = 1e-8, 1e-10


def relaxing_neuron(refractory: float | None = None) -> ModelIR:
    """v relaxes onto the ramp w at rate k; v > 1 resets both; ``refractory``: v is held after a spike."""
    return ModelIR("relax", states=[State("v", 0.0, clamped_when_refractory=refractory is not None),
                                    State("w", 0.0)],
                   parameters=[Parameter("k", 1e4)], derivatives={"v": -k * (v - w), "w": sp.Integer(1)},
                   events=[Event("spike", v > 1, {"v": 0, "w": 0})], refractory=refractory)


def interval(rate: float) -> float:
    """``s1``: the time from ``v = w = 0`` to ``v = 1`` (Newton on ``s - (1 - exp(-k s)) / k = 1``)."""
    s = 1.0 + 1.0 / rate
    for _ in range(50):
        s -= (s - (1 - math.exp(-rate * s)) / rate - 1) / (1 - math.exp(-rate * s))
    return s


def spikes(sol: neuroplex.Solution, b: int = 0) -> np.ndarray:
    return np.asarray(sol.spikes.for_sample(b)[1])


@pytest.mark.parametrize("method", ["rosenbrock", "dopri5"])
def test_relaxing_neuron_every_spike_at_the_exact_time(method: str) -> None:
    sol = neuroplex.simulate(relaxing_neuron(), (0, 3.5), method=method, params=torch.tensor([[1e4]], dtype=T),
                             rtol=RTOL, atol=ATOL)
    assert sol.ok
    exact = interval(1e4) * np.arange(1, 4)  # 1.0001, 2.0002, 3.0003
    ours = spikes(sol)
    assert ours.size == 3
    np.testing.assert_allclose(ours, exact, rtol=0, atol=1e-7)


def test_rosenbrock_batch_of_stiffness_matches_exact_spikes() -> None:
    rates = [1e2, 1e4, 1e6]
    sol = neuroplex.simulate(relaxing_neuron(), (0, 4.5), method="rosenbrock",
                             params=torch.tensor([[r] for r in rates], dtype=T), rtol=RTOL, atol=ATOL)
    assert sol.ok
    for b, rate in enumerate(rates):
        s1 = interval(rate)
        exact = s1 * np.arange(1, int(4.5 // s1) + 1)
        ours = spikes(sol, b)
        assert ours.size == exact.size == 4
        np.testing.assert_allclose(ours, exact, rtol=0, atol=1e-7)


@pytest.mark.parametrize("method", ["rosenbrock", "dopri5", "dop853"])
def test_stiff_neuron_with_refractory_period(method: str) -> None:
    """v held at 0 for 0.3 after each spike while w ramps on: at the period's end v jumps onto w
    within ~1/k (a fast transient after an event that changes the right-hand side, not the
    state). Spikes still come every s1 (w reaches 1 + 1/k); v tracks w - 1/k after the jump."""
    t_ref, rate = 0.3, 1e4
    t_eval = torch.tensor([0.5, 1.2, 1.35, 1.6, 2.1, 2.5], dtype=T)
    sol = neuroplex.simulate(relaxing_neuron(t_ref), (0, 3.5), method=method,
                             params=torch.tensor([[rate]], dtype=T), rtol=RTOL, atol=ATOL, t_eval=t_eval)
    assert sol.ok
    s1 = interval(rate)
    exact = s1 * np.arange(1, 4)
    np.testing.assert_allclose(spikes(sol), exact, rtol=0, atol=1e-6)
    last = np.floor(t_eval.numpy() / s1) * s1  # the latest spike before each output time
    since = t_eval.numpy() - last
    held = since < t_ref
    expect_v = np.where(held, 0.0, since - 1.0 / rate)  # v = w - 1/k once the transient is over
    np.testing.assert_allclose(sol["v"][0].numpy(), expect_v, rtol=0, atol=1e-6)
    assert held.any() and (~held).any()


def test_rosenbrock_dense_output_across_a_stiff_transient() -> None:
    """One step of 2.5 from ``v = w = 0`` jumps the layer of width 1/k: RODAS's stage interpolant
    stays within ~1e-4 of the solution inside it (a cubic Hermite on the end-point slopes was
    0.35 off), and on a smooth problem it is third order (local error ~h**4)."""
    rate = 1e4

    def relax(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.stack([-rate * (y[:, 0] - y[:, 1]), torch.ones_like(t)], -1)

    def one_step(f: Rhs, y0: torch.Tensor, h: float) -> StepResult:
        t = torch.zeros(1, dtype=T)
        hh = torch.full((1,), h, dtype=T)
        return RodasStepper().step(f, t, y0, hh, t + hh, f(t, y0), Tolerances(RTOL, ATOL))

    theta = torch.tensor([[0.1, 0.25, 0.5, 0.75, 0.9]], dtype=T)
    dense = one_step(relax, torch.zeros(1, 2, dtype=T), 2.5).dense(theta)[0, :, 0]
    s = 2.5 * theta[0]
    assert (dense - (s - (1 - torch.exp(-rate * s)) / rate)).abs().max() < 2e-4

    def smooth(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y * torch.cos(t)[:, None]  # y = exp(sin t)

    errors = []
    for h in (0.2, 0.1, 0.05):
        got = one_step(smooth, torch.ones(1, 1, dtype=T), h).dense(theta)[0, :, 0]
        errors.append(float((got - torch.exp(torch.sin(h * theta[0]))).abs().max()))
    assert errors[0] < 1e-4 and errors[0] / errors[1] > 12 and errors[1] / errors[2] > 12
