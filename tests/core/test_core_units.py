"""neuroplex.units: values with units into SI, and the dimension check of model equations."""
from __future__ import annotations

import pytest
import sympy

from neuroplex.ir import Event, ModelIR, Parameter, State
from neuroplex.units import (DIMENSIONLESS, UnitError, check_model, dimension, in_si, mV, ms, nS, parse_quantity,
                             to_si, unit_name)


def test_quantities_and_strings_convert_to_si():
    assert to_si(-65 * mV, "volt", "E_l") == pytest.approx(-0.065)
    assert to_si("-65*mV", "volt", "E_l") == pytest.approx(-0.065)
    assert to_si("-65 mV", "volt", "E_l") == pytest.approx(-0.065)
    assert to_si("20 ms", "second", "tau") == pytest.approx(0.02)
    assert to_si("1 uF/cm2", "farad/meter**2", "C_m") == pytest.approx(1e-2)
    assert to_si(0.04 / mV, "1/volt", "k2") == pytest.approx(40.0)
    assert to_si(3, "1", "b") == 3.0           # dimensionless: a plain number is fine
    assert to_si(0, "volt", "E_e") == 0.0      # zero is zero in every unit
    assert to_si(-0.065, "volt", "E_l", units=False) == -0.065


def test_brian2_quantities_are_read_by_their_dimensions():
    brian2 = pytest.importorskip("brian2", reason="brian2 (optional) is not installed")
    assert to_si(-65 * brian2.mV, "volt", "E_l") == pytest.approx(-0.065)
    assert to_si(10 * brian2.nS, "siemens", "g") == pytest.approx(1e-8)
    with pytest.raises(UnitError, match="tau expects second; got 5 mV"):
        to_si(5 * brian2.mV, "second", "tau")


@pytest.mark.parametrize("value, unit, message", [
    (-65, "volt", "E_l expects volt; got plain -65: write -65[*]mV or '-65 mV'"),
    (-50, "volt", "E_l expects volt; got plain -50: write -50[*]mV"),
    (0.002, "second", "E_l expects second; got plain 0.002: write 2[*]ms"),
    (5 * mV, "second", "E_l expects second; got 5 mV, in volt"),
    ("5 ms", "volt", "E_l expects volt; got 5 ms, in second"),
    ("-65 mX", "volt", "unknown unit 'mX'"),
])
def test_unit_mistakes_raise_naming_the_parameter_and_unit(value, unit, message):
    with pytest.raises(UnitError, match=message):
        to_si(value, unit, "E_l")


def test_dimensions_print_as_named_units():
    assert unit_name(dimension("volt")) == "volt"
    assert unit_name(dimension("mV/ms")) == "volt/second"
    assert unit_name(dimension("kg*m/s")) == "metre * kilogram * second**-1"
    assert unit_name(dimension("ohm")) == "ohm"
    assert unit_name(dimension("siemens/meter**2")) == "siemens/metre**2"
    assert unit_name(dimension("1/second")) == "hertz"
    assert dimension("1") == DIMENSIONLESS
    assert parse_quantity("0.04/mV").si == pytest.approx(40.0)
    assert in_si(sympy.sympify("v > -55*mV")) == sympy.sympify("v > -0.055")


def _neuron(tau_unit: str = "second", reset: str = "v_r", rhs: str = "(E_l - v)/tau") -> ModelIR:
    return ModelIR("n", states=[State("v", "v_r", "volt")],
                   parameters=[Parameter("E_l", -0.06, "volt"), Parameter("tau", 0.01, tau_unit),
                               Parameter("v_r", -0.07, "volt"), Parameter("g", 1e-9, "siemens")],
                   derivatives={"v": rhs}, events=[Event("spike", "v > -0.05", {"v": reset})])


def test_consistent_equations_pass_and_report_dimensions():
    dims = check_model(_neuron())
    assert unit_name(dims["v"]) == "volt" and unit_name(dims["tau"]) == "second"


@pytest.mark.parametrize("kwargs, message", [
    ({"tau_unit": "volt"}, "dv/dt: has unit 1, expected volt/second"),
    ({"rhs": "(E_l - v)/tau + g"}, "cannot add"),
    ({"rhs": "exp(v)/tau"}, "exp of a quantity in volt"),
    ({"reset": "tau"}, "reset of v .* has unit second, expected volt"),
])
def test_inconsistent_equations_raise_at_build(kwargs, message):
    with pytest.raises(UnitError, match=message):
        check_model(_neuron(**kwargs))


def test_inputs_take_the_unit_their_equation_needs():
    model = ModelIR("n", states=[State("v", 0.0, "volt")],
                    parameters=[Parameter("tau", 0.01, "second"), Parameter("R", 1e8, "ohm")],
                    derivatives={"v": "(-v + R*I)/tau"}, inputs={"I": 0.0})
    assert model.units()["I"] == "amp"


def test_with_parameters_checks_quantities():
    model = _neuron()
    assert model.with_parameters(E_l=-65 * mV).parameter("E_l").value == pytest.approx(-0.065)
    assert model.with_parameters(g="2 nS").parameter("g").value == pytest.approx(2 * nS.si)
    with pytest.raises(UnitError, match="expects second"):
        model.with_parameters(tau=5 * mV)
    assert model.with_parameters(tau=0.02).parameter("tau").value == 0.02  # the IR level takes SI numbers
    assert (3 * ms).si == pytest.approx(0.003)


def test_results_carry_units_and_plots_label_them(tmp_path):
    import neuroplex as nx

    model = _neuron()
    sol = nx.simulate(model, (0.0, 0.01), n_points=11, method="rk4", dt=1e-4)
    assert sol.meta["units_of"] == {"v": "volt"} and sol.meta["time_unit"] == "second"
    fig = sol.plot(path=tmp_path / "v.png")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "value [volt]" and fig.axes[-1].get_xlabel() == "time [second]"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["v [volt]"]
