"""The stiff method against scipy's Radau at tight tolerances: Robertson and the Oregonator."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroplex.plugins.torch_solver import integrate

scipy_integrate = pytest.importorskip("scipy.integrate")


def _stack(values, like):
    return torch.stack(values, -1) if isinstance(like, torch.Tensor) else np.stack(values, -1)


def robertson(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    y1, y2, y3 = y[:, 0], y[:, 1], y[:, 2]
    return _stack([-0.04 * y1 + 1e4 * y2 * y3, 0.04 * y1 - 1e4 * y2 * y3 - 3e7 * y2 * y2, 3e7 * y2 * y2], y)


def oregonator(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # Field & Noyes (1974) in Hairer & Wanner's scaling (OREGO, Solving ODEs II, sec. IV.1)
    y1, y2, y3 = y[:, 0], y[:, 1], y[:, 2]
    return _stack([77.27 * (y2 + y1 * (1 - 8.375e-6 * y1 - y2)), (y3 - (1 + y1) * y2) / 77.27,
                   0.161 * (y1 - y3)], y)


def _reference(f, t1: float, y0: list[float], te: np.ndarray) -> np.ndarray:
    """scipy Radau at rtol 1e-10 on the same equations (the torch code runs on numpy arrays)."""
    def fun(t, y):
        return f(None, y[None])[0]

    def jac(t, y):  # central differences of the same right-hand side
        eps = 1e-7 * np.maximum(np.abs(y), 1e-7)
        cols = [(fun(t, y + e) - fun(t, y - e)) / (2 * e[i]) for i, e in enumerate(np.diag(eps))]
        return np.stack(cols, -1)
    ref = scipy_integrate.solve_ivp(fun, (0.0, t1), y0, method="Radau", rtol=1e-10, atol=1e-14, t_eval=te, jac=jac)
    assert ref.success
    return ref.y.T


def test_robertson_matches_radau() -> None:
    te = np.array([0.0, 1e-3, 0.1, 1.0, 10.0, 100.0, 1e3])
    ref = _reference(robertson, 1e3, [1.0, 0.0, 0.0], te)
    y0 = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    res = integrate(robertson, 0.0, 1e3, y0, method="rosenbrock", rtol=1e-7, atol=1e-14,
                    t_eval=torch.tensor(te, dtype=torch.float64))
    assert res.ok
    ys = res.ys[0].numpy()
    np.testing.assert_allclose(ys, ref, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(ys.sum(-1), 1.0, atol=1e-10)  # mass conservation
    # step sizes grow with the slow dynamics: far fewer steps than an explicit method needs
    assert int(res.n_steps[0]) < 500


@pytest.mark.slow
def test_oregonator_matches_radau_in_a_batch() -> None:
    te = np.linspace(0.0, 30.0, 16)
    ref = _reference(oregonator, 30.0, [1.0, 2.0, 3.0], te)
    y0 = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]], dtype=torch.float64)
    res = integrate(oregonator, 0.0, 30.0, y0, method="rosenbrock", rtol=1e-7, atol=1e-9,
                    t_eval=torch.tensor(te, dtype=torch.float64))
    assert res.ok
    for b in range(2):
        err = np.abs(res.ys[b].numpy() - ref) / (np.abs(ref) + 1e-6)
        assert err.max() < 1e-4, err.max(0)
    assert float(np.abs(ref[:, 0]).max()) > 1e3  # the span holds a relaxation spike


def test_rosenbrock_float32_runs() -> None:
    y0 = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float32)
    res = integrate(robertson, 0.0, 100.0, y0, method="rosenbrock", rtol=1e-4, atol=1e-8)
    assert res.ok and res.y_end.dtype == torch.float32
    assert abs(float(res.y_end[0].sum()) - 1.0) < 1e-4


def test_dopri5_stiffness_test_stops_only_stiff_samples() -> None:
    # y' = -lam (y - cos t): for lam = 1e4 dopri5's steps sit at its stability boundary
    # (h lam ~ 3.3) and the test stops it after a few dozen; lam = 1 runs to the end
    from neuroplex.plugins.torch_solver.control import STIFF_STEPS
    from neuroplex.solution import Status

    lam = torch.tensor([1.0, 1e4], dtype=torch.float64)

    def relax(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -lam[:, None] * (y - torch.cos(t)[:, None])

    y0 = torch.zeros((2, 1), dtype=torch.float64)
    res = integrate(relax, 0.0, 1.0, y0, method="dopri5", rtol=1e-6, atol=1e-9, max_steps=2000, stiff_stop=True)
    assert res.status.tolist() == [Status.SUCCESS, Status.STIFF]
    assert STIFF_STEPS <= int(res.n_steps[1]) < 200 and float(res.t_end[1]) < 0.1
    plain = integrate(relax, 0.0, 1.0, y0, method="dopri5", rtol=1e-6, atol=1e-9)
    assert plain.ok and 2500 < int(plain.n_steps[1]) < 5000  # what the test saves
    # with a budget it finishes within at its pace, the stiff sample is cheaper to finish than to rerun
    roomy = integrate(relax, 0.0, 1.0, y0, method="dopri5", rtol=1e-6, atol=1e-9, max_steps=20_000, stiff_stop=True)
    assert roomy.ok and torch.equal(roomy.n_steps, plain.n_steps)
    # a pace budget below max_steps stops the stiff sample as before; the non-stiff one finishes
    paced = integrate(relax, 0.0, 1.0, y0, method="dopri5", rtol=1e-6, atol=1e-9, max_steps=20_000,
                      stiff_stop=True, stiff_budget=2000)
    assert paced.status.tolist() == [Status.SUCCESS, Status.STIFF]
    assert torch.equal(paced.n_steps, res.n_steps)
    stiff = integrate(relax, 0.0, 1.0, y0, method="rosenbrock", rtol=1e-6, atol=1e-9, stiff_stop=True)
    assert stiff.ok  # methods without the test ignore it
