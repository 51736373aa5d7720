"""XNetRegressor / XNetClassifier: recovery, reproducibility, names, params, persistence."""
import numpy as np
import pandas as pd
import pytest
import sympy
from sklearn.base import clone

from neuroplex.errors import NeuroplexError
from neuroplex.plugins.xnet import XNetClassifier, XNetRegressor, load, save
from neuroplex.plugins.xnet.nguyen import NGUYEN, recovered

FAST = dict(population=16, steps_per_round=40, max_rounds=12, time_budget=None)
#: Alternating Backpropagation alone (no sparse-regression proposals)
ABP = dict(FAST, propose=False)


def _nguyen(i, seed=0):
    p = NGUYEN[i - 1]
    return p, *p.sample(p.train, 20, np.random.default_rng(seed))


def test_nguyen8_recovered():
    p, X, y = _nguyen(8)
    m = XNetRegressor(random_state=0, max_nodes=5, **ABP).fit(X, y)
    assert recovered(m.sympy(), p.expr, positive=True), m.sympy()
    assert m.n_nodes_ <= 3


def test_nguyen1_recovered():
    p, X, y = _nguyen(1)
    m = XNetRegressor(random_state=0, max_nodes=7, **ABP).fit(X, y)
    assert recovered(m.sympy(), p.expr), m.sympy()


def test_same_seed_same_formula_and_dataframe_names():
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"speed": rng.uniform(0, 2, 20), "mass": rng.uniform(1, 2, 20)})
    y = 0.5 * X["mass"].to_numpy() * X["speed"].to_numpy() ** 2
    kw = dict(random_state=7, max_nodes=5, library=("+", "*", "square", "x"), **FAST)
    a = XNetRegressor(**kw).fit(X, y)
    b = XNetRegressor(**kw).fit(X, y)
    assert str(a.sympy()) == str(b.sympy())
    assert {s.name for s in a.sympy().free_symbols} <= {"speed", "mass"}
    assert a.score(X, y) > 0.999
    assert a.text() == str(a.sympy()) and "speed" in a.latex()
    np.testing.assert_allclose(a.predict(X), b.predict(X))


def test_params_clone_and_json_roundtrip(tmp_path):
    m = XNetRegressor(max_nodes=5, random_state=1, **FAST)
    assert clone(m).get_params() == m.get_params()
    m.set_params(max_nodes=4)
    assert m.max_nodes == 4
    X = np.linspace(0.1, 2, 20)[:, None]
    m.fit(X, 3 * X[:, 0] + 1)
    save(m, tmp_path / "m.json")
    m2 = load(tmp_path / "m.json")
    np.testing.assert_allclose(m2.predict(X), m.predict(X))
    assert m2.sympy() == m.sympy() and m2.n_params_ == 2 * m2.n_nodes_
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(NeuroplexError, match="not an X-Net model"):
        load(tmp_path / "bad.json")


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError):
        XNetRegressor(**FAST).fit(np.array([[np.nan], [1.0]]), [1.0, 2.0])
    with pytest.raises(NeuroplexError, match="unknown activation"):
        XNetRegressor(library=("+", "tanh"), **FAST).fit(np.ones((5, 1)), np.arange(5.0))


def test_classifier_iris_small():
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    X, y = load_iris(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    clf = XNetClassifier(random_state=0, population=8, steps_per_round=20, max_rounds=2, time_budget=None)
    clf.fit(Xtr, ytr)
    assert clf.score(Xte, yte) >= 0.85
    proba = clf.predict_proba(Xte)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    exprs = clf.sympy()
    assert len(exprs) == 3 and all(isinstance(e, sympy.Expr) for e in exprs)


@pytest.mark.parametrize("cls", [XNetRegressor, XNetClassifier])
def test_sklearn_estimator_checks(cls):
    """scikit-learn's estimator checks, all of them (tiny search settings)."""
    from sklearn.utils.estimator_checks import check_estimator

    kw = dict(population=4, steps_per_round=4, max_rounds=1, time_budget=None, refit_per_round=2, max_nodes=3,
              random_state=0)
    # the proposals' term library costs ~1 CPU-s per fit on the checks' 3-10 random inputs; they
    # are exercised by test_xnet_propose.py and the tests above
    est = cls(**kw, propose=False) if cls is XNetRegressor else cls(**kw)
    failed = [r["check_name"] for r in check_estimator(est, on_fail=None) if r["status"] == "failed"]
    assert failed == []


def test_without_constants_every_neuron_is_plain():
    """``constants=False`` (the paper's fits without parameters): w = 1 and b = 0 everywhere."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (30, 2))
    y = np.sin(X[:, 0]) + X[:, 0] * X[:, 1]
    m = XNetRegressor(random_state=0, constants=False, **FAST).fit(X, y)
    act = m.candidate_.ops >= 0
    assert np.all(m.candidate_.w[act] == 1.0) and np.all(m.candidate_.b[act] == 0.0)
    assert m.n_params_ == 0 and m.score(X, y) > 0.99, m.sympy()
