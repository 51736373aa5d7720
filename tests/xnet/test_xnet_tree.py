"""Tree model: validity under the substitution rules, export = forward, protected operations."""
import numpy as np
import pytest
import sympy
import torch
from hypothesis import given, settings, strategies as st

from neuroplex.plugins.xnet import tree as T
from neuroplex.plugins.xnet.abp import ABPConfig, ABPSearch
from neuroplex.plugins.xnet.library import DEFAULT_LIBRARY, resolve
from neuroplex.errors import NeuroplexError

SPEC = T.TreeSpec(2, DEFAULT_LIBRARY, depth=5)


def _search(max_nodes=15):
    x = torch.zeros(4, 2, dtype=torch.float64)
    return ABPSearch(SPEC, x, lambda r: r.mean((1, 2)), ABPConfig(max_nodes=max_nodes), np.random.default_rng(0))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), size=st.integers(1, 9), changes=st.integers(1, 6))
def test_substitution_rules_keep_trees_valid(seed, size, changes):
    """Random trees under random type changes (every rule of 4.4) stay valid and finite."""
    rng = np.random.default_rng(seed)
    s = _search()
    ops, w, b = T.random_tree(SPEC, size, rng)
    assert T.is_valid(SPEC, ops)
    for _ in range(changes):
        nodes = np.nonzero(ops >= 0)[0]
        i = int(rng.choice(nodes))
        ar = SPEC.arity(int(ops[i]))
        off = s._off
        nb, nu, k = len(SPEC.binary), len(SPEC.unary), SPEC.n_vars
        leaf_room = 2 * i + 2 < SPEC.slots
        allowed = list(range(off["var"], off["var"] + k))
        if ar == 2:
            allowed += list(range(0, nb)) + list(range(off["una"], off["una"] + nu)) + list(range(off["unb"], off["unb"] + nu))
        if ar == 1:
            allowed += list(range(off["una"], off["una"] + nu)) + list(range(off["binx"], off["binx"] + nb * k))
        if ar == 0 and leaf_room:
            allowed += list(range(off["una"], off["una"] + nu)) + list(range(off["binx"], off["binx"] + nb * k))
        s.apply_change(ops, w, b, i, int(rng.choice(allowed)))
        assert T.is_valid(SPEC, ops), T.describe(SPEC, ops)
    x = torch.as_tensor(rng.uniform(-3, 3, (7, 2)))
    out = T.root_output(SPEC, torch.as_tensor(ops[None]), torch.as_tensor(w[None]), torch.as_tensor(b[None]), x)
    assert out.shape == (1, 7)
    assert torch.isfinite(out).all()


def test_export_equals_forward():
    """sympy export = forward pass (1e-6 relative) wherever no protection is active."""
    rng = np.random.default_rng(1)
    syms = sympy.symbols("x1 x2")
    checked = 0
    for _ in range(60):
        ops, w, b = T.random_tree(SPEC, int(rng.integers(1, 12)), rng)
        a = ops >= 0
        w[a], b[a] = rng.uniform(-2, 2, a.sum()), rng.uniform(-1, 1, a.sum())
        x = rng.uniform(0.1, 2.0, (50, 2))
        levels, ok = T.forward(SPEC, torch.as_tensor(ops[None]), torch.as_tensor(w[None]), torch.as_tensor(b[None]),
                               torch.as_tensor(x), domain=True)
        out, ok = levels[0][0, 0].numpy(), ok[0].numpy()
        f = sympy.lambdify(syms, T.to_sympy(SPEC, ops, w, b, syms), "numpy")
        ref = np.broadcast_to(np.asarray(f(x[:, 0], x[:, 1]), dtype=float), out.shape)
        if ok.any():
            np.testing.assert_allclose(out[ok], ref[ok], rtol=1e-6, atol=1e-9)
            checked += 1
    assert checked >= 40


@pytest.mark.parametrize("name", [n for n in DEFAULT_LIBRARY if n != "x"])
def test_protected_ops_forward_backward_export(name):
    binary, unary = resolve([name])
    act = (binary + unary)[0]
    a_s, b_s = sympy.symbols("a b")
    rng = np.random.default_rng(0)
    a = torch.as_tensor(rng.uniform(0.2, 3.0, 30), dtype=torch.float64).requires_grad_(True)
    b = torch.as_tensor(rng.uniform(0.2, 3.0, 30), dtype=torch.float64).requires_grad_(True)
    args_t, args_s = ((a, b), (a_s, b_s)) if act.arity == 2 else ((a,), (a_s,))
    out = act.torch_fn(*args_t)
    expr = act.sympy_fn(*args_s)
    f = sympy.lambdify(args_s, expr, "numpy")
    np.testing.assert_allclose(out.detach().numpy(), f(*[t.detach().numpy() for t in args_t]), rtol=1e-12)
    grads = torch.autograd.grad(out.sum(), args_t)
    for g, s in zip(grads, args_s):
        df = sympy.lambdify(args_s, sympy.diff(expr, s), "numpy")
        ref = np.broadcast_to(df(*[t.detach().numpy() for t in args_t]), g.shape)
        np.testing.assert_allclose(g.numpy(), ref, rtol=1e-9)
    # outside the domain the protected op stays finite
    bad = torch.tensor([-1.0, 0.0, 1e3], dtype=torch.float64)
    vals = act.torch_fn(bad, torch.zeros_like(bad)) if act.arity == 2 else act.torch_fn(bad)
    assert torch.isfinite(vals).all()


def test_unknown_activation_is_a_clear_error():
    with pytest.raises(NeuroplexError, match="unknown activation 'tan'"):
        T.TreeSpec(1, ("+", "tan"))


def test_describe_and_node_count():
    ops = np.full(SPEC.slots, -1)
    ops[0], ops[1], ops[2] = SPEC.first_binary + 2, 0, 1  # x1 * x2
    assert T.describe(SPEC, ops) == "* x1 x2"
    assert T.n_nodes(ops) == 3 and T.is_valid(SPEC, ops)


def _code(name: str) -> int:
    return next(c for c in range(SPEC.n_vars, SPEC.n_ops) if SPEC.activation(c).name == name)


def _plain(nodes: dict[int, str]):
    """A plain tree (w = 1, b = 0) from {slot: name}, leaves ``x1``/``x2``."""
    ops = np.full(SPEC.slots, T.EMPTY, dtype=np.int64)
    for i, n in nodes.items():
        ops[i] = int(n[1:]) - 1 if n in ("x1", "x2") else _code(n)
    return ops, np.ones(SPEC.slots), np.zeros(SPEC.slots)


@pytest.mark.parametrize("nodes", [
    {0: "+", 1: "log", 3: "-", 7: "x1", 8: "x1", 2: "x2"},          # log(x1 - x1) + x2
    {0: "*", 1: "sqrt", 3: "-", 7: "x2", 8: "x2", 2: "x1"},         # sqrt(x2 - x2) * x1
    {0: "/", 1: "x1", 2: "-", 5: "x2", 6: "x2"},                    # x1 / (x2 - x2)
    {0: "-", 1: "x1", 2: "/", 5: "sin", 6: "-", 11: "x2", 13: "x1", 14: "x1"},  # x1 - sin(x2)/(x1 - x1)
    {0: "+", 1: "exp", 3: "log", 7: "-", 15: "x1", 16: "x1", 2: "x1"},  # exp(log(x1 - x1)) + x1
])
def test_export_of_a_protected_op_at_its_guard_equals_forward(nodes):
    """A constant argument at an operation's guard (``log(x - x)``, ``a / (x - x)``): the export
    takes the protected value, as the forward pass does, so it is finite and equal to it
    (1e-6 relative) on random inputs (was ``nan``/``zoo`` for ``constants=False`` fits)."""
    ops, w, b = _plain(nodes)
    assert T.is_valid(SPEC, ops)
    syms = sympy.symbols("x1 x2")
    expr = T.to_sympy(SPEC, ops, w, b, syms)
    assert not expr.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo, sympy.I)
    x = np.random.default_rng(3).uniform(-3, 3, (64, 2))
    out = T.root_output(SPEC, torch.as_tensor(ops[None]), torch.as_tensor(w[None]), torch.as_tensor(b[None]),
                        torch.as_tensor(x))[0].numpy()
    ref = np.broadcast_to(np.asarray(sympy.lambdify(syms, expr, "numpy")(x[:, 0], x[:, 1]), dtype=float), out.shape)
    np.testing.assert_allclose(ref, out, rtol=1e-6)
