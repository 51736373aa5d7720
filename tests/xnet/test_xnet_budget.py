"""``time_budget`` (CPU seconds) holds inside long rounds: a fit ends within 10 % + 1 s of it."""
import time

import numpy as np
import pytest
from sklearn.datasets import load_digits

from neuroplex.plugins.xnet import XNetClassifier, XNetRegressor

BUDGET = 3.0


def _bound(budget: float) -> float:
    return 1.1 * budget + 1.0


def test_classifier_keeps_its_cpu_budget():
    """Digits (64 inputs, 10 trees per individual): a single round runs far past 3 CPU-s."""
    X, y = load_digits(return_X_y=True)
    clf = XNetClassifier(random_state=0, time_budget=BUDGET, steps_per_round=400, refit_per_round=16)
    t0 = time.process_time()
    clf.fit(X[:600], y[:600])
    cpu = time.process_time() - t0
    assert cpu <= _bound(BUDGET), cpu
    assert clf.n_rounds_ >= 1 and np.isfinite(clf.candidate_.loss)
    assert clf.predict(X[600:650]).shape == (50,)


@pytest.mark.parametrize("propose", [False, True])
def test_regressor_keeps_its_cpu_budget(propose):
    """A target outside the library's reach (no exact fit ends the search early)."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (400, 3))
    y = np.tanh(3 * X[:, 0]) * np.abs(X[:, 1]) ** 1.3 + 0.1 * rng.normal(size=400)
    reg = XNetRegressor(random_state=0, time_budget=BUDGET, steps_per_round=2000, population=64,
                        max_rounds=1000, propose=propose)
    t0 = time.process_time()
    reg.fit(X, y)
    cpu = time.process_time() - t0
    assert cpu <= _bound(BUDGET), cpu
    assert np.isfinite(reg.predict(X)).all()
