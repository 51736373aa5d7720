"""The clock-driven engine's code: generated C (built once, cached on disk) and the torch
fallback compute the same runs; the C forms of the special functions agree with core's."""
from __future__ import annotations

import math

import pytest
import sympy
import torch

import neuroplex as nx
from neuroplex.errors import ModelError, NeuroplexError
from neuroplex.ir import exprel
from neuroplex.plugins.snn import Engine, Network, TimedArray, cbuild, ccode, cobahh, cuba, engine
from neuroplex.runtime import exprel as torch_exprel

needs_cc = pytest.mark.skipif(not cbuild.compiler_available(), reason="no working C compiler")
DT = 1e-4


def _mixed(batch: int = 2) -> Network:
    """Poisson input, per-neuron parameters, TimedArrays (one read at RK2's stage times),
    delays, two neuron models and methods: every kind of buffer the generated code touches."""
    net = Network(dt=DT, batch=batch, name="mixed")
    net.add_poisson("In", 20, torch.linspace(10, 80, 20), record_spikes=True)
    steps = torch.tensor([[1e-3] * 5, [2e-3] * 5], dtype=torch.float64)
    net.add_population("E", nx.get_neuron("izhikevich")(regime="chattering"), 5, method="rk2",
                       params={"d": torch.linspace(1e-3, 3e-3, 5)}, inputs={"I": TimedArray(steps, 0.02)})
    hh = nx.get_neuron("traub_miles")(synapses=False, refractory="threshold")
    net.add_population("H", hh, 2, inputs={"I": TimedArray(torch.tensor([0.0, 0.6e-9]), 0.01)},
                       init={"v": torch.tensor([[-0.065, -0.06], [-0.07, -0.06]])[:batch]})
    net.connect("In", "E", "v", p=0.3, seed=1, weight=0.5e-3)
    net.connect("E", "H", "v", i=[0, 1], j=[1, 0], weight=[1e-3, 2e-3], delay=[2, 4])
    net.monitor("H", ["v", "m"], [0, 1], every=10)
    return net


@needs_cc
def test_c_and_torch_code_give_the_same_run():
    small = cuba(200, p=0.1, seed=4, batch=2, monitor=[0, 5])
    c, t = small.run(0.1, backend="c"), small.run(0.1, backend="torch")
    assert c.meta["engine"] == "c" and t.meta["engine"] == "torch" and len(c.spikes) > 100
    for key in ("sample", "index", "time"):  # exact propagator: the same operations, bit for bit
        assert torch.equal(getattr(c.spikes, key), getattr(t.spikes, key))
    assert torch.equal(c.ys, t.ys)
    mixed = _mixed()
    c, t = mixed.run(0.05, seed=3, backend="c"), mixed.run(0.05, seed=3, backend="torch")
    assert len(c.spikes) > 50 and int((c.spikes.index >= 20).sum()) > 0
    for key in ("sample", "index", "time"):  # libm and torch's exp may differ in the last bit
        assert torch.equal(getattr(c.spikes, key), getattr(t.spikes, key))
    assert bool(torch.isfinite(c.ys).all())
    torch.testing.assert_close(c.ys, t.ys, rtol=1e-9, atol=1e-15)


@needs_cc
def test_a_full_spike_buffer_is_emptied_and_the_run_goes_on(monkeypatch):
    net = _mixed(batch=1)
    whole = net.run(0.05, seed=7)
    monkeypatch.setattr(engine, "SPIKE_BUFFER", 0)  # room for two steps of spikes: many refills
    refilled = net.run(0.05, seed=7)
    assert torch.equal(whole.spikes.index, refilled.spikes.index) and torch.equal(whole.ys, refilled.ys)
    chunked = net.run(0.05, seed=7, chunk=37)  # random numbers are drawn per chunk, in order
    assert torch.equal(whole.spikes.index, chunked.spikes.index)


@needs_cc
def test_libraries_are_cached_on_disk(monkeypatch, tmp_path):
    monkeypatch.setenv(cbuild.CACHE_ENV, str(tmp_path))
    first = Engine(cuba(60, p=0.2, seed=9))
    second = Engine(cuba(60, p=0.2, seed=9))
    assert not first.cached and second.cached and first.source == second.source
    built = list(tmp_path.glob("snn_*.so"))
    assert len(built) == 1 and built[0].with_suffix(".c").read_text() == first.source
    other = Engine(cuba(60, p=0.2, seed=9), dtype=torch.float32)  # other code, another library
    assert not other.cached and len(list(tmp_path.glob("snn_*.so"))) == 2
    assert first.run(0.02).meta["cached"] is False and second.run(0.02).meta["cached"] is True


def test_without_a_compiler_the_torch_code_runs(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    assert not cbuild.compiler_available()
    eng = Engine(cuba(50, p=0.2, seed=1))
    assert eng.backend == "torch" and eng.source.count("for kk in range(n):") == 1
    with pytest.raises(ModelError, match="no-such-cc"):
        Engine(cuba(50, p=0.2, seed=1), backend="c")


def test_backend_choices_are_checked():
    with pytest.raises(NeuroplexError, match="C engine runs on the CPU"):
        Engine(cuba(20, p=0.2), device="cuda", backend="c")
    with pytest.raises(NeuroplexError, match="backend must be one of auto, c, torch"):
        Engine(cuba(20, p=0.2), backend="cython")
    with pytest.raises(NeuroplexError, match="float64 or float32"):
        Engine(cuba(20, p=0.2), dtype=torch.float16)


@needs_cc
def test_the_c_source_is_one_step_loop_over_compressed_rows():
    eng = Engine(cobahh(100, seed=1))
    src = eng.source
    assert src.count("for (int64_t kk = 0; kk < n; ++kk)") == 1 and "int64_t neuroplex_run(" in src
    assert "for (int64_t e = RP0[i]; e < RP0[i + 1]; ++e)" in src  # spiking rows only
    assert "np_exprel(" in src and "pow(" not in src  # m^3, n^4 as products (core's printer)
    sol = eng.run(0.01, progress=True, chunk=30)
    assert int(sol.stats["n_steps"][0]) == 100 and sol.meta["build_time"] > 0


_SPECIAL = [math.nan, 0.0, -0.0, 1e-300, -1e-300, 1e-8, -1e-8, 9.99e-7, -9.99e-7, 1e-6, -1e-6, 1e-3, -0.5, 1.0,
            30.0, 700.0, 709.7, 710.0, 800.0, -800.0, math.inf, -math.inf]


@needs_cc
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_c_exprel_agrees_with_core_over_nan_zero_tiny_and_large(dtype):
    x = sympy.Symbol("x")
    fn = ccode.elementwise(exprel(x), [x], dtype)
    values = torch.tensor(_SPECIAL * 3, dtype=dtype)  # long enough for the vector loop and its tail
    got, want = fn(values), torch_exprel(values)
    assert torch.isnan(got[0]) and torch.isnan(want[0])  # NaN stays NaN (not 1)
    assert got[1] == 1.0 and got[2] == 1.0
    same = torch.isnan(got) == torch.isnan(want)
    assert bool(same.all())
    ulp = torch.finfo(dtype).eps
    ok = torch.isnan(want) | (got == want) | ((got - want).abs() <= 4 * ulp * want.abs())
    assert bool(ok.all()), [(float(v), float(a), float(b)) for v, a, b, k in zip(values, got, want, ok) if not k]


@needs_cc
def test_c_printer_follows_the_runtime_semantics():
    x, y = sympy.symbols("x y")
    values = torch.tensor([-2.5, -1.0, 0.0, 3.0, math.nan], dtype=torch.float64)
    other = torch.tensor([2.0, 2.0, 2.0, -2.0, 1.0], dtype=torch.float64)
    mod = ccode.elementwise(sympy.Mod(x, y), [x, y], torch.float64)(values, other)
    torch.testing.assert_close(mod, values - other * torch.floor(values / other), equal_nan=True)  # floor mod
    big = ccode.elementwise(sympy.Max(x, y), [x, y], torch.float64)(values, other)
    assert torch.isnan(big[-1]) and big[:-1].tolist() == [2.0, 2.0, 2.0, 3.0]  # NaN propagates
    sign = ccode.elementwise(sympy.sign(x), [x], torch.float64)(values)
    assert sign[:-1].tolist() == [-1.0, -1.0, 0.0, 1.0] and torch.isnan(sign[-1])
    piece = ccode.elementwise(sympy.Piecewise((x, x > 0), (2 * x, True)), [x], torch.float64)(values)
    assert piece[:-1].tolist() == [-5.0, -2.0, 0.0, 3.0]
    cube = ccode.elementwise(x ** 3 + sympy.pi * y, [x, y], torch.float64)(values, other)
    torch.testing.assert_close(cube, values * values * values + math.pi * other, equal_nan=True)
