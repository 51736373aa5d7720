"""Structure proposals (sparse regression over a term library) and the sympy -> tree conversion."""
import numpy as np
import pytest
import sympy
import torch

from neuroplex.plugins.xnet import XNetRegressor
from neuroplex.plugins.xnet import tree as T
from neuroplex.plugins.xnet.convert import from_sympy
from neuroplex.plugins.xnet.library import DEFAULT_LIBRARY
from neuroplex.plugins.xnet.nguyen import recovered
from neuroplex.plugins.xnet.propose import propose, sparse_fits

X1, X2 = sympy.symbols("x1 x2")
SPEC = T.TreeSpec(2, DEFAULT_LIBRARY, depth=6)


@pytest.mark.parametrize("expr", [
    X1 * (X1 * (X1 + 1) + 1) - sympy.Rational(1, 3),
    2.5 * sympy.sin(X1) * sympy.cos(X2) - 1,
    X1**5 - 0.5 * X2**2,
    sympy.sqrt(X1) / X2 + sympy.log(X2 + 1),
    sympy.exp(X2 * sympy.log(X1)),
    3 / X1,
])
def test_from_sympy_tree_exports_the_same_formula(expr):
    ops, w, b = from_sympy(SPEC, expr, [X1, X2])
    assert T.is_valid(SPEC, ops)
    back = T.to_sympy(SPEC, ops, w, b, [X1, X2])
    x = torch.as_tensor(np.random.default_rng(0).uniform(0.5, 2.0, (30, 2)))
    out = T.root_output(SPEC, torch.as_tensor(ops[None]), torch.as_tensor(w[None]), torch.as_tensor(b[None]), x)[0]
    ref = sympy.lambdify([X1, X2], expr, "numpy")(x[:, 0].numpy(), x[:, 1].numpy())
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-9)
    np.testing.assert_allclose(sympy.lambdify([X1, X2], back, "numpy")(x[:, 0].numpy(), x[:, 1].numpy()), ref,
                               rtol=1e-9)


def test_from_sympy_refuses_what_the_tree_cannot_hold():
    assert from_sympy(T.TreeSpec(1, ("+", "*", "x")), sympy.sin(X1), [X1]) is None   # not in the library
    assert from_sympy(T.TreeSpec(1, DEFAULT_LIBRARY, depth=3), X1 * (X1 * (X1 * (X1 + 1) + 1) + 1), [X1]) is None
    assert from_sympy(SPEC, X1 + X2 + X1 * X2, [X1, X2], max_nodes=4) is None


def test_sparse_fits_find_an_exact_subset_among_distractors():
    rng = np.random.default_rng(1)
    T_ = rng.normal(size=(20, 40))
    y = 2 * T_[:, 7] - 0.5 * T_[:, 31] + 3
    fits = sparse_fits(T_, y)
    best = min(fits, key=lambda f: f[1])
    assert best[0] == (7, 31) and best[1] < 1e-22


def test_proposal_of_an_unseen_formula_is_exact_and_a_valid_tree():
    rng = np.random.default_rng(2)
    X = rng.uniform(0.1, 2, (20, 2))
    y = 1.5 * np.exp(X[:, 1]) * np.sin(X[:, 0]) - 0.25 * X[:, 0] ** 2
    trees = propose(X, y, SPEC, [X1, X2], max_nodes=15)
    ops, w, b = trees[0]
    assert T.is_valid(SPEC, ops)
    out = T.root_output(SPEC, torch.as_tensor(ops[None]), torch.as_tensor(w[None]), torch.as_tensor(b[None]),
                        torch.as_tensor(X))[0].numpy()
    np.testing.assert_allclose(out, y, rtol=1e-9, atol=1e-9)


def test_regressor_with_proposals_recovers_an_unseen_formula_fast():
    rng = np.random.default_rng(4)
    X = rng.uniform(-1, 1, (20, 2))
    y = np.cos(X[:, 0] * X[:, 1]) + X[:, 1] ** 3
    m = XNetRegressor(random_state=0, time_budget=None, max_rounds=2, population=8, steps_per_round=10).fit(X, y)
    assert recovered(m.sympy(), sympy.cos(X1 * X2) + X2**3), m.sympy()
    assert m.n_rounds_ == 0  # the exact proposal ended the search before the first round


def test_plain_proposals_need_no_constant():
    X = np.random.default_rng(3).uniform(-1, 1, (20, 1))
    y = X[:, 0] ** 3 + X[:, 0] ** 2 + X[:, 0]
    spec = T.TreeSpec(1, DEFAULT_LIBRARY, depth=6)
    ops, w, b = propose(X, y, spec, [X1], max_nodes=15, plain=True)[0]
    act = ops >= 0
    assert np.all(w[act] == 1.0) and np.all(b[act] == 0.0)
    out = T.root_output(spec, torch.as_tensor(ops[None]), torch.as_tensor(w[None]), torch.as_tensor(b[None]),
                        torch.as_tensor(X))[0].numpy()
    np.testing.assert_allclose(out, y, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("expr, nodes", [
    (2 * sympy.sin(X1) * sympy.cos(X2), 8),              # 2t = t + t on the smallest factor
    (sympy.sin(X1**2) * sympy.cos(X1) - 1, 10),          # 1 = x1/x1
    (sympy.log(X1 + 1) + sympy.log(X1**2 + 1), 14),
    (X2 / X1 - sympy.Rational(3, 2) * X1, None),         # negative and fractional coefficients
    (-X1 * X2, None),                                    # no positive term: 0 - t with 0 = x1 - x1
])
def test_plain_conversion_builds_small_rational_constants_from_the_inputs(expr, nodes):
    ops, w, b = from_sympy(SPEC, expr, [X1, X2], plain=True)
    act = ops >= 0
    assert T.is_valid(SPEC, ops) and np.all(w[act] == 1.0) and np.all(b[act] == 0.0)
    if nodes is not None:
        assert act.sum() == nodes
    x = torch.as_tensor(np.random.default_rng(0).uniform(0.5, 2.0, (30, 2)))
    out = T.root_output(SPEC, torch.as_tensor(ops[None]), torch.as_tensor(w[None]), torch.as_tensor(b[None]), x)[0]
    ref = sympy.lambdify([X1, X2], expr, "numpy")(x[:, 0].numpy(), x[:, 1].numpy())
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-12)
    assert recovered(T.to_sympy(SPEC, ops, w, b, [X1, X2]), expr)


def test_plain_conversion_refuses_constants_that_are_not_small_rationals():
    assert from_sympy(SPEC, X1 + 0.3137, [X1, X2], plain=True) is None
    assert from_sympy(SPEC, sympy.pi * X1, [X1, X2], plain=True) is None
    assert from_sympy(SPEC, 40 * X1, [X1, X2], plain=True) is None


def test_plain_proposals_recover_a_formula_with_integer_coefficients_and_an_offset():
    X = np.random.default_rng(5).uniform(-2, 2, (100, 1))
    y = np.sin(X[:, 0] ** 2) * np.cos(X[:, 0]) - 1   # Nguyen-5: no tree without constants had the -1
    spec = T.TreeSpec(1, DEFAULT_LIBRARY, depth=6)
    ops, w, b = propose(X, y, spec, [X1], max_nodes=15, plain=True)[0]
    assert np.all(w[ops >= 0] == 1.0) and np.all(b[ops >= 0] == 0.0)
    assert recovered(T.to_sympy(spec, ops, w, b, [X1]), sympy.sin(X1**2) * sympy.cos(X1) - 1)


def test_plain_proposals_round_an_inexact_fit_to_the_best_plain_tree_first():
    X = np.random.default_rng(6).uniform(-2, 2, (100, 1))
    y = X[:, 0] ** 6 + X[:, 0] ** 5 + X[:, 0] ** 4 + X[:, 0] ** 3 + X[:, 0] ** 2 + X[:, 0]  # needs > 15 plain neurons
    spec = T.TreeSpec(1, DEFAULT_LIBRARY, depth=6)
    trees = propose(X, y, spec, [X1], max_nodes=15, plain=True)
    assert trees and all((t[0] >= 0).sum() <= 15 for t in trees)
    mse = [float(np.mean((T.root_output(spec, *(torch.as_tensor(a[None]) for a in t), torch.as_tensor(X))[0].numpy()
                          - y) ** 2)) for t in trees]
    assert mse == sorted(mse)
    assert 1 - mse[0] / y.var() > 0.95
