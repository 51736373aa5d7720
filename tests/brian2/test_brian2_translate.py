"""IR -> Brian2 text: printing, names, units, reset semantics, solver settings (fast)."""
from __future__ import annotations

import subprocess
import sys

import pytest
import sympy
import torch

from neuroplex.errors import ModelError, NeuroplexError
from neuroplex.ir import Event, ModelIR, Parameter, State, as_expr
from neuroplex.plugins.brian2_backend.solver import Brian2Solver
from neuroplex.plugins.brian2_backend.translate import (BrianPrinter, brian_method, dims_of, dims_text, safe_names,
                                                        translate_neuron)

pytest.importorskip("brian2")


def _lif(**kw) -> ModelIR:
    return ModelIR(
        "lif", states=[State("v", "Vr", "volt", clamped_when_refractory=True)],
        parameters=[Parameter("taum", 0.02, "second"), Parameter("El", -0.049, "volt"), Parameter("Vt", -0.05, "volt"),
                    Parameter("Vr", -0.06, "volt"), Parameter("R", 1e8, "ohm"), Parameter("tref", 0.005, "second")],
        derivatives={"v": "(El - v + R*I)/taum"}, inputs={"I": 0.0},
        events=[Event("spike", "v > Vt", {"v": "Vr"})], refractory="tref", **kw)


def test_registering_the_plugin_does_not_import_brian2():
    code = ("import sys; from neuroplex.host import get_solver; get_solver('brian2'); "
            "from neuroplex.cli import build_cli; build_cli(); assert 'brian2' not in sys.modules, 'imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_printer_keeps_full_precision_and_translates_functions():
    p = BrianPrinter({"x": "x", "y": "y"})
    assert p(as_expr(0.1) * sympy.Symbol("x")) == "0.1*x"
    assert "0.30000000000000004" in p(sympy.Float(0.1 + 0.2) * sympy.Symbol("x"))
    pw = p(sympy.Piecewise((sympy.Symbol("x"), sympy.Symbol("y") > 0), (2, True)))
    assert pw == "((x)*int((y > 0)) + (2)*int((not (y > 0))))"
    assert "int" in p(sympy.Min(sympy.Symbol("x"), sympy.Symbol("y")))
    assert p(as_expr("exprel(x)")) == "exprel(x)"
    assert p(sympy.sqrt(sympy.Symbol("x"))) == "sqrt(x)"
    with pytest.raises(ModelError, match="no Brian2 equivalent"):
        p(sympy.besselj(0, sympy.Symbol("x")))
    with pytest.raises(ModelError, match="undefined symbol"):
        p(sympy.Symbol("z"))


def test_names_that_brian2_reserves_are_renamed():
    names = safe_names(["v", "N", "i", "_x", "ms", "ms_ir"], {"ms"})
    assert names["v"] == "v" and names["N"] != "N" and names["i"] != "i"
    assert not names["_x"].startswith("_")
    assert names["ms"] != "ms" and len(set(names.values())) == len(names)


def test_units_are_read_and_written_as_named_units():
    """Issue 22: the generated equations say volt, not metre**2 * kilogram * second**-3 * amp**-1."""
    assert dims_text(dims_of("volt", "x")) == "volt"
    assert dims_text(dims_of("mV", "x")) == "volt"
    assert dims_text(dims_of("siemens/meter**2", "x")) == "siemens/metre**2"
    assert dims_text(dims_of("1/second", "x")) == "hertz"
    assert dims_text(dims_of("kilogram*metre/second", "x")) == "metre * kilogram * second**-1"
    assert dims_text(dims_of("1", "x")) == "1"
    from brian2 import Equations

    for text in ("volt", "siemens/metre**2", "hertz", "metre * kilogram * second**-1", "1/volt"):
        Equations(f"x : {text}")  # Brian2's parser reads every form dims_text writes
    with pytest.raises(ModelError, match="cannot read unit 'furlong'"):
        dims_of("furlong", "state 'v'")


def test_lif_translation_si_units_refractory_and_input_unit():
    spec = translate_neuron(_lif())
    assert spec.units == "si"
    assert spec.equations.splitlines() == [
        "dv/dt = (El + I*R - v)/taum : volt (unless refractory)",
        "I : amp (constant)"]  # the input's unit is inferred from R*I entering dv/dt
    assert spec.threshold == "(v > Vt)" and spec.reset == "v = Vr"
    none = translate_neuron(_lif(), units="none")
    assert "/second : 1 (unless refractory)" in none.equations and none.namespace["taum"] == 0.02


def test_reset_uses_pre_reset_values():
    m = ModelIR("swap", states=[State("a", 1.0), State("b", 2.0)], derivatives={"a": "0", "b": "0"},
                events=[Event("spike", "a > 0", {"a": "b", "b": "a"})])
    spec = translate_neuron(m)
    assert spec.reset.splitlines() == ["a_pre_reset = a", "b_pre_reset = b", "a = b_pre_reset", "b = a_pre_reset"]


def test_model_errors_are_clear():
    m = _lif()
    m.events.append(Event("other", "v > 0", {}))
    with pytest.raises(ModelError, match="runs one threshold event; have spike, other"):
        translate_neuron(m)  # a second event is refused, not dropped
    with pytest.raises(ModelError, match="runs one threshold event"):
        translate_neuron(ModelIR("x", states=[State("v")], derivatives={"v": "0"},
                                 events=[Event("a", "v > 0"), Event("b", "v < 0")]))
    for option, what in [({"delay": 0.1}, "a delay"), ({"priority": 1}, "a priority"),
                         ({"initial_value": False}, "initial_value=False"), ({"terminal": True}, "terminal=True")]:
        with pytest.raises(ModelError, match=f"event 'a' of model 'x' has {what}"):
            translate_neuron(ModelIR("x", states=[State("v")], derivatives={"v": "0"},
                                     events=[Event("a", "v > 0", **option)]))
    with pytest.raises(ModelError, match="unknown integration method"):
        brian_method("dopri5")
    assert brian_method("exp_euler") == "exponential_euler"
    ms_model = ModelIR("slow", states=[State("x", 1.0, "volt")], parameters=[Parameter("tau", 10.0, "1")],
                       derivatives={"x": "-x/tau"}, time_unit="ms")
    assert translate_neuron(ms_model).units == "none"
    assert translate_neuron(ms_model).time_scale == pytest.approx(1e-3)
    with pytest.raises(ModelError, match="units='si' needs time in seconds"):
        translate_neuron(ms_model, units="si")


def test_solver_settings_are_validated():
    assert Brian2Solver.name == "brian2" and "network" in Brian2Solver.accepts
    with pytest.raises(NeuroplexError, match="target"):
        Brian2Solver(target="gpu")
    with pytest.raises(NeuroplexError, match="dtype"):
        Brian2Solver(dtype="float16")
    with pytest.raises(ModelError, match="unknown integration method"):
        Brian2Solver(method="dopri5")
    with pytest.raises(NeuroplexError, match=r"solver 'brian2' does not run on device 'cuda' \(it runs on: cpu\)"):
        Brian2Solver(device="cuda")
    with pytest.raises(ModelError, match="needs the model IR"):
        Brian2Solver().simulate(_lif().compile(), (0.0, 0.01))


def test_refractory_forms():
    from brian2 import second

    assert float(translate_neuron(_lif()).refractory / second) == pytest.approx(0.005)  # refractory=5*ms
    # a per-neuron refractory period stays an expression Brian2 evaluates per neuron
    assert translate_neuron(_lif(), per_neuron=["tref"]).refractory == "tref"
    assert translate_neuron(_lif(), units="none", per_neuron=["tref"]).refractory == "(tref)*second"
    m = _lif()
    m.refractory = as_expr(0.002)
    assert float(translate_neuron(m).refractory / second) == pytest.approx(0.002)
    m.refractory = as_expr("v > Vt")
    assert translate_neuron(m).refractory == "(v > Vt)"


def test_single_neuron_batch_with_per_neuron_parameters_and_progress():
    from brian2 import second  # noqa: F401 - brian2 present

    model = _lif()
    params = torch.tensor([[p.value for p in model.parameters]] * 2, dtype=torch.float64)
    params[1, model.parameter_names.index("tref")] = 0.002
    sol = Brian2Solver(method="exact", target="numpy").simulate(model, (0.0, 0.3), params=params, progress=True,
                                                t_eval=torch.linspace(0.0, 0.3, 31))
    assert sol.ys.shape == (2, 31, 1) and sol.ok
    n0 = int((sol.spikes.sample == 0).sum())
    n1 = int((sol.spikes.sample == 1).sum())
    assert n0 == 5 and n1 > n0  # a shorter refractory period fires more often
    assert sol.meta["loop_time"] > 0
