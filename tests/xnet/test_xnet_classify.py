"""Classification additions: linear proposals, PCA inputs, hold-out choice, export and persistence."""
import numpy as np
import pytest
import sympy
import torch
from sklearn.datasets import load_digits, load_iris
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression

from neuroplex.plugins.xnet import XNetClassifier, load, save
from neuroplex.plugins.xnet import tree as T
from neuroplex.plugins.xnet.abp import Candidate
from neuroplex.plugins.xnet.classify import (average_trees, discriminant_axes, inner_cv_accuracy, linear_proposals,
                                             pca, stratified_bootstrap)
from neuroplex.plugins.xnet.estimators import _holdout

LIB = ("+", "-", "*", "/", "sin", "cos", "exp", "square", "x")


def test_linear_proposals_are_valid_class_trees_equal_to_the_logistic_logits():
    X, y = load_iris(return_X_y=True)
    Z = (X - X.mean(0)) / X.std(0)
    spec = T.TreeSpec(4, LIB, depth=5)
    props = linear_proposals(Z, y, 3, spec, max_nodes=9)
    assert [int((p[0] >= 0).sum(1).max()) for p in props] == [7, 5, 3, 1]  # 4, 3, 2, 1 inputs per class
    ops, w, b = props[0]
    assert ops.shape == (3, spec.slots) and all(T.is_valid(spec, o) for o in ops)
    out = T.root_output(spec, torch.as_tensor(ops), torch.as_tensor(w), torch.as_tensor(b), torch.as_tensor(Z))
    lr = LogisticRegression(C=100.0, max_iter=2000).fit(Z, y)
    np.testing.assert_allclose(out.numpy().T, lr.decision_function(Z), rtol=1e-9, atol=1e-9)


def test_lda_proposal_trees_equal_the_discriminant_functions():
    X, y = load_iris(return_X_y=True)
    Z = (X - X.mean(0)) / X.std(0)
    spec = T.TreeSpec(4, LIB, depth=5)
    ops, w, b = linear_proposals(Z, y, 3, spec, max_nodes=9, method="lda")[0]
    out = T.root_output(spec, torch.as_tensor(ops), torch.as_tensor(w), torch.as_tensor(b), torch.as_tensor(Z))
    lda = LinearDiscriminantAnalysis().fit(Z, y)
    np.testing.assert_allclose(out.numpy().T, lda.decision_function(Z), rtol=1e-9, atol=1e-9)


def test_pca_axes_are_orthonormal_and_ordered():
    X = np.random.default_rng(0).normal(size=(200, 5)) * np.array([5.0, 3.0, 1.0, 0.5, 0.1])
    comp = pca(X, 3)
    np.testing.assert_allclose(comp @ comp.T, np.eye(3), atol=1e-12)
    var = ((X - X.mean(0)) @ comp.T).var(0)
    assert np.all(np.diff(var) < 0) and np.abs(comp[0]).argmax() == 0


def test_discriminant_axes_give_the_canonical_variates():
    X, y = load_iris(return_X_y=True)
    Z = (X - X.mean(0)) / X.std(0)
    axes = discriminant_axes(Z, y, 2)
    ref = LinearDiscriminantAnalysis().fit(Z, y).transform(Z)
    got = Z @ axes.T
    np.testing.assert_allclose(np.abs(got - got.mean(0)), np.abs(ref - ref.mean(0)), rtol=1e-9, atol=1e-9)
    within = np.concatenate([got[y == c] - got[y == c].mean(0) for c in range(3)])
    np.testing.assert_allclose(within.T @ within / len(y), np.eye(2), atol=1e-9)  # unit pooled spread
    assert np.all(axes[np.arange(2), np.abs(axes).argmax(1)] > 0)
    with pytest.raises(ValueError, match="n_components must be in 1..2"):
        discriminant_axes(Z, y, 3)                   # 3 classes: 2 axes at most


def test_classifier_on_discriminant_axes_exports_raw_inputs_and_round_trips(tmp_path):
    X, y = load_iris(return_X_y=True)
    clf = XNetClassifier(random_state=0, projection="lda", time_budget=None, max_rounds=1, population=4,
                         steps_per_round=4, refit_per_round=2, select_cv=0).fit(X, y)
    assert clf.spec_.n_vars == 2 and clf.components_.shape == (2, 4) and clf.score(X, y) > 0.95
    f = sympy.lambdify(sympy.symbols("x1:5"), clf.sympy(), "numpy")
    logits = np.stack([np.broadcast_to(v, (30,)) for v in f(*X[:30].T)], axis=1)
    np.testing.assert_allclose(logits, clf._forward(clf._scaled(X[:30])).numpy().T, rtol=1e-6, atol=1e-6)
    save(clf, tmp_path / "m.json")
    np.testing.assert_allclose(load(tmp_path / "m.json").predict_proba(X), clf.predict_proba(X), rtol=1e-12)
    with pytest.raises(ValueError, match="projection must be 'pca' or 'lda'"):
        XNetClassifier(projection="ica").fit(X, y)


def test_average_trees_is_one_xnet_tree_per_class_giving_the_mean_logits():
    rng = np.random.default_rng(0)
    spec = T.TreeSpec(3, LIB, depth=4)
    x = torch.as_tensor(rng.normal(size=(40, 3)))
    parts = []
    for _ in range(3):                               # 3 parts: an uneven split under the + neurons
        trees = [T.random_tree(spec, int(rng.integers(1, 8)), rng) for _ in range(2)]
        ops, w, b = (np.stack([t[i] for t in trees]) for i in range(3))
        parts.append(Candidate(ops, w + rng.normal(size=w.shape) * (ops >= 0), b + rng.normal(size=b.shape), 0.0))
    out_spec, joined = average_trees(spec, parts)
    assert out_spec.depth == 6 and all(T.is_valid(out_spec, o) for o in joined.ops)
    assert joined.nodes == sum(p.nodes for p in parts) + 2 * 2   # two + neurons per class tree
    want = np.mean([T.root_output(spec, *(torch.as_tensor(a) for a in (p.ops, p.w, p.b)), x).numpy()
                    for p in parts], axis=0)
    got = T.root_output(out_spec, *(torch.as_tensor(a) for a in (joined.ops, joined.w, joined.b)), x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="needs '\\+' in the library"):
        average_trees(T.TreeSpec(3, ("*", "sin"), depth=4), parts)


def test_stratified_bootstrap_keeps_every_class_count():
    y = np.repeat([0, 1, 2], [10, 20, 5])
    idx = stratified_bootstrap(y, np.random.default_rng(0))
    assert list(np.bincount(y[idx])) == [10, 20, 5] and len(np.unique(idx)) < len(y)


def test_bagged_classifier_averages_searches_and_round_trips(tmp_path):
    X, y = load_iris(return_X_y=True)
    kw = dict(random_state=0, projection="lda", time_budget=None, max_rounds=1, population=4, steps_per_round=4,
              refit_per_round=2)
    clf = XNetClassifier(bagging=3, **kw).fit(X, y)
    assert clf.choice_ == "bagged" and clf.spec_.depth == clf.depth + 2 and clf.score(X, y) > 0.95
    f = sympy.lambdify(sympy.symbols("x1:5"), clf.sympy(), "numpy")
    logits = np.stack([np.broadcast_to(v, (30,)) for v in f(*X[:30].T)], axis=1)
    np.testing.assert_allclose(logits, clf._forward(clf._scaled(X[:30])).numpy().T, rtol=1e-6, atol=1e-6)
    save(clf, tmp_path / "m.json")
    np.testing.assert_allclose(load(tmp_path / "m.json").predict_proba(X), clf.predict_proba(X), rtol=1e-12)
    same = XNetClassifier(bagging=3, **kw).fit(X, y)
    np.testing.assert_array_equal(same.candidate_.ops, clf.candidate_.ops)   # reproducible for a seed
    with pytest.raises(ValueError, match="bagging must be >= 1 and excludes validation"):
        XNetClassifier(bagging=2, validation=0.2).fit(X, y)


def test_holdout_is_stratified_and_disjoint():
    y = np.repeat([0, 1, 2], [10, 20, 5])
    fit, val = _holdout(y, 0.2, np.random.default_rng(0))
    assert len(np.intersect1d(fit, val)) == 0 and len(fit) + len(val) == len(y)
    assert list(np.bincount(y[val])) == [2, 4, 1]
    assert len(_holdout(np.array([0, 0, 0, 1, 1, 1]), 0.2, np.random.default_rng(0))[1]) == 0  # too few


def test_classifier_on_pca_inputs_exports_logits_of_the_raw_inputs_and_round_trips(tmp_path):
    X, y = load_digits(return_X_y=True)
    X, y = X[:300], y[:300]
    clf = XNetClassifier(random_state=0, n_components=6, time_budget=None, max_rounds=1, population=4,
                         steps_per_round=4, refit_per_round=2, validation=0.2).fit(X, y)
    assert clf.spec_.n_vars == 6 and clf.score(X, y) > 0.6   # linear start on 6 components learns digits
    syms = sympy.symbols("x1:65")
    exprs = clf.sympy()
    assert len(exprs) == 10 and set().union(*(e.free_symbols for e in exprs)) <= set(syms)
    f = sympy.lambdify(syms, exprs, "numpy")
    logits = np.stack([np.broadcast_to(v, (20,)) for v in f(*X[:20].T)], axis=1)
    np.testing.assert_allclose(logits, clf._forward(clf._scaled(X[:20])).numpy().T, rtol=1e-6, atol=1e-6)
    save(clf, tmp_path / "m.json")
    back = load(tmp_path / "m.json")
    np.testing.assert_allclose(back.predict_proba(X[:50]), clf.predict_proba(X[:50]), rtol=1e-12)


def test_label_smoothing_bounds_the_confidence_on_separable_classes():
    X, y = load_iris(return_X_y=True)
    kw = dict(random_state=0, time_budget=None, max_rounds=1, population=4, steps_per_round=4, refit_per_round=2,
              select_cv=0)                           # the trees as searched and refitted
    hard = XNetClassifier(label_smoothing=0.0, **kw).fit(X, y)
    soft = XNetClassifier(label_smoothing=0.06, **kw).fit(X, y)
    setosa = y == 0                                  # linearly separable from the rest
    assert hard.predict_proba(X[setosa])[:, 0].min() > 0.999
    p = soft.predict_proba(X[setosa])[:, 0]          # smoothed target: 1 - 0.06 + 0.06 / 3 = 0.96
    assert p.mean() < 0.97 and soft.score(X, y) > 0.95
    assert hard.choice_ == soft.choice_ == "searched"   # select_cv=0: no inner choice


def _ce(labels):
    lab = torch.as_tensor(labels, dtype=torch.long)
    return lambda roots: torch.nn.functional.cross_entropy(
        roots.permute(0, 2, 1).reshape(-1, 3), lab.repeat(roots.shape[0]), reduction="none").reshape(roots.shape[0], -1).mean(1)


def test_inner_cv_accuracy_ranks_the_full_linear_trees_above_one_input_trees():
    X, y = load_iris(return_X_y=True)
    Z = (X - X.mean(0)) / X.std(0)
    spec = T.TreeSpec(4, LIB, depth=5)
    full, *_, one = linear_proposals(Z, y, 3, spec, max_nodes=9)
    ops, w, b = one                                  # one input per class: refit cannot add the others
    w = w.copy()
    ops = np.where(ops >= 0, 1, ops)                 # every class tree reads sepal width alone
    cands = [Candidate(*full, 0.0), Candidate(ops, w, b, 0.0)]
    acc = inner_cv_accuracy(spec, cands, Z, y, 3, _ce, folds=5, seed=0)
    assert acc.shape == (2,) and acc[0] > 0.93 and acc[1] < 0.7
    assert inner_cv_accuracy(spec, cands, Z, y, 3, _ce, folds=5, seed=0, deadline=0.0) is None
    # a recomputed candidate is scored by what ``recompute`` returns on each inner split
    def lda(Zp, yp):
        return Candidate(*linear_proposals(Zp, yp, 3, spec, max_nodes=9, method="lda")[0], 0.0)
    again = inner_cv_accuracy(spec, cands, Z, y, 3, _ce, folds=5, seed=0, recompute={1: lda})
    assert again[0] > 0.93 and again[1] > 0.93
    clf = XNetClassifier(random_state=0, time_budget=None, max_rounds=1, population=4, steps_per_round=4,
                         refit_per_round=2).fit(X, y)
    assert clf.choice_ in ("searched", "logistic", "lda") and clf.score(X, y) > 0.95
