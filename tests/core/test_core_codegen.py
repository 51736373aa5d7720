"""Model IR -> torch code generation: every expression family the importers emit, checked
against values computed independently (math / numpy), with batching and clear errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy
import torch

import neuroplex as nx
from neuroplex.errors import ModelError
from neuroplex.ir import exprel


def evaluate(expr, **values: float | list[float]) -> np.ndarray:
    """Evaluate ``expr`` (as a model assignment) over a batch of parameter values."""
    names = list(values)
    model = nx.ModelIR("probe", states=[nx.State("z", 0.0)],
                       parameters=[nx.Parameter(n, 0.0) for n in names],
                       assignments={"out": expr}, derivatives={"z": "0"})
    dyn = model.compile()
    cols = [np.atleast_1d(np.asarray(values[n], dtype=float)) for n in names]
    batch = max([len(c) for c in cols] + [1])
    p = torch.tensor(np.stack([np.broadcast_to(c, (batch,)) for c in cols], axis=-1) if cols else np.zeros((batch, 0)))
    y = torch.zeros(batch, 1, dtype=torch.float64)
    out = dyn.observe(torch.zeros(batch, dtype=torch.float64), y, p)
    assert out.shape == (batch, 1) and out.dtype == torch.float64
    return out[:, 0].numpy()


X = [-1.5, -0.3, 0.4, 1.2, 2.5]


@pytest.mark.parametrize("expr, ref", [
    ("Piecewise((1, x < 0), (2, x < 1), (3, True))", lambda x: np.select([x < 0, x < 1], [1, 2], 3)),
    ("Piecewise((0.1, x < 0), (0.3, True))", lambda x: np.where(x < 0, 0.1, 0.3)),  # constants stay float64
    ("Piecewise((x**2, x >= 0.4), (-x, True))", lambda x: np.where(x >= 0.4, x**2, -x)),
    ("Piecewise((1, (x > 0) & (x < 2)), (0, True))", lambda x: ((x > 0) & (x < 2)).astype(float)),
    ("Piecewise((1, (x < -1) | (x > 2)), (0, True))", lambda x: ((x < -1) | (x > 2)).astype(float)),
    ("Piecewise((1, Xor(x > 0, x > 1)), (0, True))", lambda x: ((x > 0) ^ (x > 1)).astype(float)),
    ("Piecewise((1, ~(x > 0)), (0, True))", lambda x: (~(x > 0)).astype(float)),
    ("Piecewise((1, Eq(x, 0.4)), (0, True))", lambda x: (x == 0.4).astype(float)),
    ("Piecewise((1, Ne(x, 0.4)), (0, True))", lambda x: (x != 0.4).astype(float)),
    ("Piecewise((1, x <= 0.4), (0, True))", lambda x: (x <= 0.4).astype(float)),
    ("sin(x) + cos(x) * tan(x)", lambda x: np.sin(x) + np.cos(x) * np.tan(x)),
    ("sec(x) + csc(x) + cot(x)", lambda x: 1 / np.cos(x) + 1 / np.sin(x) + 1 / np.tan(x)),
    ("sech(x) + csch(x) + coth(x)", lambda x: 1 / np.cosh(x) + 1 / np.sinh(x) + 1 / np.tanh(x)),
    ("acot(x) + asinh(x) + atan(x)", lambda x: np.arctan(1 / x) + np.arcsinh(x) + np.arctan(x)),
    ("asec(x + 3) + acsc(x + 3)", lambda x: np.arccos(1 / (x + 3)) + np.arcsin(1 / (x + 3))),
    ("asech(1 / (x + 3)) + acoth(x + 3) + acosh(x + 3)",
     lambda x: np.arccosh(x + 3) + np.arctanh(1 / (x + 3)) + np.arccosh(x + 3)),
    ("acsch(x)", lambda x: np.arcsinh(1 / x)),
    ("asin(x / 3) + acos(x / 3) + atanh(x / 3)", lambda x: np.arcsin(x / 3) + np.arccos(x / 3) + np.arctanh(x / 3)),
    ("exprel(x)", lambda x: np.expm1(x) / x),
    ("Min(x, 0.5, 2 - x) + Max(x, -x, 1)", lambda x: np.minimum(np.minimum(x, 0.5), 2 - x) + np.maximum(np.maximum(x, -x), 1)),
    ("x**2 + x**3 + x**4 - x**(-2)", lambda x: x**2 + x**3 + x**4 - x**-2.0),
    ("Abs(x)**2.5 + sqrt(Abs(x)) + Abs(x)**(-0.5)", lambda x: np.abs(x)**2.5 + np.sqrt(np.abs(x)) + np.abs(x)**-0.5),
    ("x**5 + 2**x", lambda x: x**5 + 2.0**x),
    ("log(Abs(x)) + log(Abs(x), 10) + log(8, 2) * x", lambda x: np.log(np.abs(x)) + np.log10(np.abs(x)) + 3 * x),
    ("exp(x) * exp(2) + pi", lambda x: np.exp(x) * np.exp(2) + np.pi),
    ("Mod(x, 1)", lambda x: np.mod(x, 1)),
    ("floor(x) + ceiling(x) + sign(x) + Abs(x)", lambda x: np.floor(x) + np.ceil(x) + np.sign(x) + np.abs(x)),
    # built from sympy objects: in strings "gamma" is a plain symbol (a common parameter name)
    (sympy.factorial(sympy.Abs(sympy.floor(sympy.Symbol("x"))) + 2) + sympy.gamma(sympy.Symbol("x") + 2),
     lambda x: np.array([math.factorial(int(abs(math.floor(v))) + 2) + math.gamma(v + 2) for v in x])),
    ("erf(x) + sinh(x) - cosh(x) + tanh(x)", lambda x: np.array([math.erf(v) for v in x]) + np.sinh(x) - np.cosh(x) + np.tanh(x)),
])
def test_expression_families(expr, ref):
    x = np.array(X)
    np.testing.assert_allclose(evaluate(expr, x=X), ref(x), rtol=1e-12, atol=1e-12)


def test_two_symbol_power_and_log_base():
    np.testing.assert_allclose(evaluate("x**y", x=[2.0, 3.0], y=[0.5, 3.0]), [2**0.5, 27.0], rtol=1e-14)
    np.testing.assert_allclose(evaluate(sympy.log(sympy.Symbol("x"), sympy.Symbol("y")), x=[8.0, 81.0], y=[2.0, 3.0]),
                               [3.0, 4.0], rtol=1e-14)


def test_infinity_and_nan_constants():
    out = evaluate("Piecewise((oo, x > 0), (-oo, x < 0), (nan, True))", x=[1.0, -1.0, 0.0])
    assert out[0] == math.inf and out[1] == -math.inf and math.isnan(out[2])
    assert math.isnan(evaluate("Piecewise((1, x > 5))", x=[0.0])[0])  # no branch applies: NaN, as in SBML
    np.testing.assert_allclose(evaluate("x + 1 / (x + oo)", x=[2.0]), [2.0])


def test_exprel_limit_and_constant_folding():
    np.testing.assert_allclose(evaluate("exprel(x)", x=[0.0, 1e-9, -1e-7]), [1.0, 1 + 5e-10, 1 - 5e-8], rtol=1e-12)
    assert exprel(0) == 1
    assert float(exprel(sympy.Float(2.0)).evalf()) == pytest.approx(math.expm1(2.0) / 2.0, rel=1e-14)
    np.testing.assert_allclose(evaluate("x * exprel(2)", x=[1.0]), [math.expm1(2.0) / 2.0], rtol=1e-14)
    d = sympy.diff(exprel(sympy.Symbol("x")), sympy.Symbol("x")).subs("x", 1.0)
    assert float(d) == pytest.approx((1 * math.e - math.e + 1) / 1.0, rel=1e-12)


def test_symbol_names_that_are_python_keywords_or_sympy_objects():
    lam, inn, beta, e = (sympy.Symbol(n) for n in ("lambda", "in", "beta", "E"))
    model = nx.ModelIR("kw", states=[nx.State("lambda", 1.0), nx.State("in", 2.0)],
                       parameters=[nx.Parameter("beta", 3.0), nx.Parameter("E", 0.5)],
                       derivatives={"lambda": -beta * lam, "in": e * inn + lam})
    dyn = model.compile()
    np.testing.assert_allclose(dyn.rhs(0.0, torch.tensor([1.0, 2.0], dtype=torch.float64)).numpy(), [-3.0, 2.0])
    # strings parse these names as plain symbols, not sympy's beta/E/gamma functions and constants
    m2 = nx.ModelIR("kw2", states=[nx.State("x", 1.0)], parameters=[nx.Parameter("gamma", 2.0), nx.Parameter("E", 3.0)],
                    derivatives={"x": "gamma * E * x"})
    assert float(m2.compile().rhs(0.0, torch.ones(1, dtype=torch.float64))) == 6.0


def test_initial_values_depend_on_parameters_assignments_and_each_other():
    model = nx.ModelIR(
        "init", states=[nx.State("y", "x + total"), nx.State("x", "2 * k")],
        parameters=[nx.Parameter("k", 1.5)], assignments={"total": "3 * k"},
        derivatives={"x": "-x", "y": "0"})
    dyn = model.compile()
    np.testing.assert_allclose(dyn.initial_state().numpy(), [7.5, 3.0])
    p = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    np.testing.assert_allclose(dyn.initial_state(p).numpy(), [[5.0, 2.0], [10.0, 4.0]])
    assert dyn.initial_state(batch=3).shape == (3, 2)
    circular = nx.ModelIR("circ", states=[nx.State("a", "b"), nx.State("b", "a")], derivatives={"a": "0", "b": "0"})
    with pytest.raises(ModelError, match="circular initial values among a, b"):
        circular.compile()


def test_functions_of_constants_inputs_and_constant_initial_values():
    """Initial values and default inputs are plain numbers: functions of them still compile."""
    model = nx.ModelIR("hh-like", states=[nx.State("V", -65.0), nx.State("x", "rate")],
                       inputs={"I": 0.5}, assignments={"rate": "exp(-(V + 65) / 80) + exp(I)"},
                       derivatives={"V": "exp(I) - V / 10", "x": "-x"})
    dyn = model.compile()
    np.testing.assert_allclose(dyn.initial_state().numpy(), [-65.0, 1.0 + math.exp(0.5)])
    y = torch.tensor([-65.0, 0.0], dtype=torch.float64)
    np.testing.assert_allclose(dyn.rhs(0.0, y).numpy(), [math.exp(0.5) + 6.5, 0.0])
    np.testing.assert_allclose(dyn.observe(0.0, y).numpy(), [1.0 + math.exp(0.5)])


def test_inputs_time_and_energy():
    model = nx.ModelIR("driven", states=[nx.State("x", 0.0)], parameters=[nx.Parameter("w", 2.0)],
                       inputs={"I": 1.0}, derivatives={"x": "I * sin(t) - w * x"}, energy="w * x**2 / 2")
    dyn = model.compile()
    y = torch.tensor([[1.0], [3.0]], dtype=torch.float64)
    t = torch.tensor([0.5, 1.0], dtype=torch.float64)
    np.testing.assert_allclose(dyn.rhs(t, y)[:, 0].numpy(), np.sin([0.5, 1.0]) - 2 * np.array([1.0, 3.0]))
    u = torch.tensor([[0.0], [2.0]], dtype=torch.float64)
    np.testing.assert_allclose(dyn.rhs(t, y, None, u)[:, 0].numpy(), [-2.0, 2 * np.sin(1.0) - 6.0])
    np.testing.assert_allclose(dyn.energy(y).numpy(), [1.0, 9.0])
    np.testing.assert_allclose(dyn.fixed_point_map(y).numpy(), (y + dyn.rhs(torch.zeros(2), y)).numpy())
    with pytest.raises(ModelError, match="defines no energy"):
        nx.ModelIR("e", states=[nx.State("x")], derivatives={"x": "0"}).compile().energy(y)
    assert "def rhs" in dyn.source()


def test_batching_over_leading_dimensions():
    model = nx.ModelIR("lin", states=[nx.State("a", 1.0), nx.State("b", 0.0)],
                       parameters=[nx.Parameter("k", 1.0), nx.Parameter("c", 0.5)],
                       derivatives={"a": "-k * a + c * b", "b": "k * a - c * b"})
    dyn = model.compile()
    gen = torch.Generator().manual_seed(0)
    y = torch.rand(4, 3, 2, generator=gen, dtype=torch.float64)
    p = torch.rand(4, 3, 2, generator=gen, dtype=torch.float64)
    out = dyn.rhs(torch.zeros(4, 3, dtype=torch.float64), y, p)
    assert out.shape == (4, 3, 2)
    for i in range(4):
        for j in range(3):
            assert torch.equal(out[i, j], dyn.rhs(torch.tensor(0.0, dtype=torch.float64), y[i, j], p[i, j]))
    shared = dyn.rhs(0.0, y, dyn.default_params())  # one parameter set broadcast over the batch
    assert torch.allclose(shared[..., 0] + shared[..., 1], torch.zeros(4, 3, dtype=torch.float64))
    assert dyn.rhs(0.0, y.float(), dyn.default_params(dtype=torch.float32)).dtype == torch.float32


def test_events_trigger_root_and_apply_with_pre_event_values():
    model = nx.ModelIR("reset", states=[nx.State("v", 0.0), nx.State("w", 0.0)],
                       parameters=[nx.Parameter("th", 1.0)], derivatives={"v": "1", "w": "0"},
                       events=[nx.Event("spike", trigger="v > th", assignments={"v": "0", "w": "w + v"}),
                               nx.Event("low", trigger="v < -th", assignments={"w": "-1"}),
                               nx.Event("band", trigger="(v > 0.2) & (v < 0.4)", terminal=True)])
    dyn = model.compile()
    spike, low, band = dyn.events
    y = torch.tensor([[0.5, 10.0], [1.5, 10.0], [-2.0, 0.0]], dtype=torch.float64)
    t = torch.zeros(3, dtype=torch.float64)
    p = dyn.default_params()
    assert spike.trigger(t, y, p).tolist() == [False, True, False]
    np.testing.assert_allclose(spike.root(t, y, p).numpy(), [-0.5, 0.5, -3.0])  # v - th, crosses upwards
    np.testing.assert_allclose(low.root(t, y, p).numpy(), [-1.5, -2.5, 1.0])  # -th - v for "v < -th"
    np.testing.assert_allclose(spike.apply(t, y, p).numpy(), [[0.0, 10.5], [0.0, 11.5], [0.0, -2.0]])
    assert band.root is None and band.terminal and band.trigger(t, torch.tensor([[0.3, 0.0]]), p).tolist() == [True]
    assert spike.options["persistent"] is True and spike.name == "spike"


@pytest.mark.parametrize("kwargs, message", [
    (dict(derivatives={"x": "x + foo"}), "dx/dt uses undefined symbol\\(s\\) foo"),
    (dict(derivatives={"x": "x"}, assignments={"a": "bar * x"}), "a uses undefined symbol\\(s\\) bar"),
    (dict(derivatives={}), "state 'x' has no equation"),
    (dict(derivatives={"x": "0", "q": "1"}), "equation for 'q', which is not a state"),
    (dict(derivatives={"x": "0"}, events=[nx.Event("e", "x > thr")]), "trigger of e uses undefined symbol\\(s\\) thr"),
    (dict(derivatives={"x": "0"}, events=[nx.Event("e", "x > 0", {"k": "1"})]), "event 'e' assigns 'k', which is not a state"),
    (dict(derivatives={"x": "0"}, events=[nx.Event("e", "x > 0", {"x": "x0"})]), "event e uses undefined symbol\\(s\\) x0"),
    (dict(derivatives={"x": "0"}, parameters=[nx.Parameter("x", 1.0)]), "names defined twice: x"),
])
def test_invalid_models_name_the_problem(kwargs, message):
    kwargs.setdefault("parameters", [])
    model = nx.ModelIR("bad", states=[nx.State("x", 0.0)], **kwargs)
    with pytest.raises(ModelError, match=f"model 'bad': {message}"):
        model.compile()


def test_unparseable_and_uncompilable_expressions():
    with pytest.raises(ModelError, match=r"cannot parse expression 'x \+\* 2' in dx/dt of model 'p'"):
        nx.ModelIR("p", states=[nx.State("x")], derivatives={"x": "x +* 2"})
    f = sympy.Function("mystery")
    model = nx.ModelIR("u", states=[nx.State("x")], derivatives={"x": f(sympy.Symbol("x"))})
    with pytest.raises(ModelError, match="cannot compile mystery expression mystery\\(x\\)"):
        model.compile()
    with pytest.raises(ModelError, match="undefined symbol 'y'"):
        nx.codegen.TorchPrinter({"x": "_s0"})(sympy.Symbol("x") + sympy.Symbol("y"))


def test_with_parameters_and_describe():
    model = nx.ModelIR("m", states=[nx.State("x", 1.0)], parameters=[nx.Parameter("k", 1.0)],
                       derivatives={"x": "-k * x"}, events=[nx.Event("e", "x < 0.5")])
    other = model.with_parameters(k=3)
    assert other.parameter("k").value == 3.0 and model.parameter("k").value == 1.0
    assert other.describe() == {"name": "m", "states": ["x"], "parameters": {"k": 3.0}, "inputs": {},
                                "events": ["e"], "has_energy": False}
    with pytest.raises(ModelError, match="model 'm' has no parameter 'q'"):
        model.with_parameters(q=1)
    with pytest.raises(ModelError, match="model 'm' has no state 'y'"):
        model.state("y")


@pytest.mark.gpu
def test_compiled_dynamics_on_cuda_match_cpu():
    model = nx.ModelIR(
        "gpu", states=[nx.State("x", "2 * k"), nx.State("y", 1.0)], parameters=[nx.Parameter("k", 0.5)],
        inputs={"I": 0.25}, assignments={"g": "Piecewise((0.1, x < 0), (exprel(x) + sec(y), True))"},
        derivatives={"x": "-k * x + Min(g, 3) + I", "y": "Max(x, y) * exp(I) - y"},
        events=[nx.Event("e", "x > 1", {"x": "0"})])
    cpu, gpu = model.compile(), model.compile(device="cuda")
    y = torch.rand(16, 2, dtype=torch.float64) * 2 - 1
    p = cpu.default_params(16)
    assert torch.allclose(gpu.rhs(0.0, y.cuda(), p.cuda()).cpu(), cpu.rhs(0.0, y, p))
    assert torch.allclose(gpu.initial_state(p.cuda()).cpu(), cpu.initial_state(p))
    assert torch.equal(gpu.events[0].trigger(torch.zeros(16, device="cuda"), y.cuda(), p.cuda()).cpu(),
                       cpu.events[0].trigger(torch.zeros(16), y, p))
    assert gpu.default_params().device.type == "cuda"


def test_split_static_hoists_parameter_work_and_shares_subexpressions():
    from neuroplex.codegen import split_static

    x, y, k1, k2, k3, t = sympy.symbols("x y k1 k2 k3 t")
    rate = sympy.Symbol("rate")
    outputs = [k1 * k2 * x / (k3**2 + x) - rate, rate * sympy.exp(-k3 * t) + k1 * k2 * x / (k3**2 + x)]
    split = split_static(outputs, {"rate": k1 * y + k2 * k3}, {"x", "y", "t"})
    static_syms = {s for s, _ in split.static}
    dynamic = {"x", "y", "t"}
    for _, e in split.static:  # nothing in the bound part depends on the state or time
        assert not ({s.name for s in e.free_symbols} & dynamic)
    # the parameter-only products are bound once, not recomputed in the dynamic part
    for _, e in split.dynamic:
        for node in sympy.preorder_traversal(e):
            if isinstance(node, (sympy.Mul, sympy.Add, sympy.Pow)) and node.free_symbols:
                assert node.free_symbols & ({x, y, t} | {s for s, _ in split.dynamic}), node
    # the shared quotient appears once: the outputs use a common symbol for it
    assert len(split.dynamic) + len(split.static) < 12
    # and the values are those of the original expressions
    env = {x: 0.7, y: 1.3, t: 0.25, k1: 2.0, k2: 0.5, k3: 1.5}
    values = dict(env)
    for s, e in (*split.static, *split.dynamic):
        values[s] = e.subs(values)
    direct = [o.subs(rate, k1 * y + k2 * k3).subs(env) for o in outputs]
    for got, want in zip(split.outputs, direct):
        assert float(got.subs(values).subs(values)) == pytest.approx(float(want), rel=1e-14)
    assert static_syms


def test_printer_subtracts_negative_terms():
    from neuroplex.codegen import TorchPrinter

    a, b, c = sympy.symbols("a b c")
    text = TorchPrinter({"a": "a", "b": "b", "c": "c"})(a - 2 * b * c - c)
    assert "-1.0" not in text and "+ (-" not in text
    vals = {k: torch.tensor([v], dtype=torch.float64) for k, v in (("a", 1.25), ("b", 0.3), ("c", -2.0))}
    got = eval(text, {"torch": torch}, vals)  # noqa: S307 - the printer's own output
    assert float(got) == 1.25 - 2 * 0.3 * -2.0 - -2.0
