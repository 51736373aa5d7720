"""Spiking neuron models, each defined once as a :class:`neuroplex.ir.ModelIR`.

Values are stored in SI (volt, second, siemens, amp, farad); every :class:`State` and
:class:`Parameter` carries its unit string. Parameter overrides are checked against those
units (:func:`neuroplex.units.to_si`): give ``E_l=-65*mV`` (``neuroplex.units`` or Brian2
units) or ``E_l="-65 mV"``; a plain number for a quantity with units is an error unless the
factory is called with ``units=False`` (plain numbers are then SI: ``E_l=-0.065``). Every
built model is dimension-checked (:func:`neuroplex.units.check_model`) and its parameters
are checked for degenerate values (a time constant or capacitance of zero or below, ...),
so both engines, torch and Brian2, get the same clear error.

A neuron's threshold is an :class:`Event` whose trigger is the threshold condition and whose
assignments are the reset; ``ModelIR.refractory`` is either a duration (Brian2's
``refractory=5*ms``) or a condition (Brian2's ``refractory='v > -20*mV'``); states flagged
``clamped_when_refractory`` are Brian2's ``(unless refractory)`` variables.

``ModelIR.metadata`` holds what a clock-driven backend needs beyond the equations:

* ``method``: the integration method Brian2's example for this model uses (``exact``,
  ``euler``, ``exponential_euler``);
* ``threshold_state``: the state the threshold tests (``v``);
* ``factory`` / ``factory_kwargs``: the registered name and the arguments (SI numbers with
  ``units=False``) that rebuild the model (used by
  :meth:`neuroplex.plugins.snn.network.Network.export`);
* ``sources``: where the default values come from.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Union

from neuroplex.errors import ModelError
from neuroplex.ir import Event, ModelIR, Parameter, State, as_expr
from neuroplex.units import QuantityLike, UnitError, check_model, in_si, to_si

mV = 1e-3
ms = 1e-3
nS = 1e-9
pF = 1e-12
nA = 1e-9
pA = 1e-12
cm2 = 1e-4  # m^2


#: a refractory period: a duration, a parameter name, a condition string, or None/False for none
Refractory = Union[QuantityLike, None, bool]


@dataclass(frozen=True)
class Default:
    """A parameter's default value (SI), unit, meaning and the range it must lie in
    (``"positive"``: > 0, ``"nonnegative"``: >= 0, ``""``: any finite value)."""

    value: float
    unit: str
    description: str
    bound: str = ""


def _params(defaults: Mapping[str, Default], overrides: dict[str, Any], model: str, units: bool) -> list[Parameter]:
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ModelError(f"neuron {model!r} has no parameter(s) {', '.join(unknown)}; "
                         f"parameters: {', '.join(defaults)}")
    out = []
    for name, d in defaults.items():
        value = to_si(overrides[name], d.unit, f"{model}: {name}", units=units) if name in overrides else d.value
        _check_bound(model, name, value, d)
        out.append(Parameter(name, value, d.unit, description=d.description))
    return out


def _check_bound(model: str, name: str, value: float, d: Default) -> None:
    """A degenerate value (``tau_m=0``, a negative capacitance, NaN) raises here, when the
    model is built, so that every engine reports it the same way."""
    bad = value != value or value in (float("inf"), float("-inf"))
    bad = bad or (d.bound == "positive" and value <= 0) or (d.bound == "nonnegative" and value < 0)
    if bad:
        need = {"positive": "> 0", "nonnegative": ">= 0"}.get(d.bound, "finite")
        raise ModelError(f"neuron {model!r}: {name} = {value:g} {d.unit} is degenerate; {name} "
                         f"({d.description}) must be {need}")


def _si_kwargs(params: list[Parameter], given: Mapping[str, Any]) -> dict[str, float]:
    """The overrides as SI numbers (what ``factory_kwargs`` stores, with ``units=False``)."""
    return {p.name: p.value for p in params if p.name in given}


def _refractory(value: Any, threshold: str, model: str, units: bool, names: Iterable[str]) -> Any:
    """``None`` (no refractory period), a duration (a quantity, ``"5 ms"``, or SI seconds with
    ``units=False``), a parameter name, a condition string (``"v > -55*mV"``; unit names
    other than the model's ``names`` become SI values), or ``"threshold"`` meaning
    'refractory from a spike until the threshold condition is false' (Brian2's meaning of a
    condition: one spike per upward crossing)."""
    names = set(names)
    if value is None or value is False:
        return None
    if isinstance(value, str):
        if value == "threshold":
            return threshold
        if any(op in value for op in "<>=") or value in names:
            return in_si(as_expr(value, f"refractory of neuron {model!r}"), names)
    seconds = to_si(value, "second", f"{model}: refractory", units=units)
    if seconds < 0 or seconds != seconds:
        raise ModelError(f"neuron {model!r}: refractory = {seconds:g} second is degenerate; it must be >= 0")
    return seconds


def _built(model: ModelIR, defaults: Mapping[str, Default]) -> ModelIR:
    """``model`` after its equations passed the dimension check, with each parameter's
    allowed range in ``metadata["bounds"]``."""
    try:
        check_model(model)
    except UnitError as exc:
        raise UnitError(f"neuron {model.name!r}: {exc}") from None
    model.metadata["bounds"] = {name: d.bound for name, d in defaults.items() if d.bound}
    return model


def lif(*, synapses: str | None = None, refractory: Refractory = "t_ref", units: bool = True, **params: QuantityLike) -> ModelIR:
    """Leaky integrate-and-fire neuron with a refractory period (Brian2 ``examples/CUBA.py``).

    ``tau_m dv/dt = E_l - v + R_m I (+ ge + gi)``, threshold ``v > v_th``, reset ``v = v_reset``,
    ``v`` clamped for ``t_ref`` after a spike. ``synapses="current"`` adds the CUBA synaptic
    variables ``dge/dt = -ge/tau_e``, ``dgi/dt = -gi/tau_i`` (volts, jumped by ``ge += w``;
    Brette et al. 2007, benchmark 2). Integrated exactly (linear equations).

    Defaults: CUBA's (Vt = -50 mV, Vr = -60 mV, taum = 20 ms, 5 ms refractory). CUBA's leak
    reversal El = -49 mV lies above threshold, so CUBA neurons fire on their own: that is kept
    for ``synapses="current"`` (the CUBA neuron); the plain neuron rests at
    ``E_l = v_reset = -60 mV`` and fires only when driven.
    """
    defaults = {
        "E_l": Default((-49 if synapses == "current" else -60) * mV, "volt",
                       "leak reversal potential; -49 mV with synapses='current' (CUBA's El, above threshold)"),
        "tau_m": Default(20 * ms, "second", "membrane time constant", "positive"),
        "v_th": Default(-50 * mV, "volt", "threshold"),
        "v_reset": Default(-60 * mV, "volt", "reset potential"),
        "t_ref": Default(5 * ms, "second", "refractory period", "nonnegative"),
        "R_m": Default(1e8, "ohm", "membrane resistance (input I in amp)", "positive"),
    }
    if synapses == "current":
        defaults["tau_e"] = Default(5 * ms, "second", "excitatory synaptic time constant", "positive")
        defaults["tau_i"] = Default(10 * ms, "second", "inhibitory synaptic time constant", "positive")
    elif synapses is not None:
        raise ModelError(f"lif: synapses must be None or 'current', not {synapses!r}")
    prm = _params(defaults, params, "lif", units)
    states = [State("v", "v_reset", "volt", "membrane potential", clamped_when_refractory=True)]
    dv = "(E_l - v + R_m*I)/tau_m"
    derivs = {}
    if synapses == "current":
        states += [State("ge", 0.0, "volt", "excitatory synaptic input"),
                   State("gi", 0.0, "volt", "inhibitory synaptic input")]
        dv = "(ge + gi + E_l - v + R_m*I)/tau_m"
        derivs.update(ge="-ge/tau_e", gi="-gi/tau_i")
    derivs = {"v": dv, **derivs}
    ref = _refractory(refractory, "v > v_th", "lif", units, [*defaults, *(s.name for s in states)])
    return _built(ModelIR(
        name="lif", states=states, parameters=prm, derivatives=derivs, inputs={"I": 0.0},
        events=[Event("spike", "v > v_th", {"v": "v_reset"})],
        refractory=ref,
        metadata={"method": "exact", "threshold_state": "v", "factory": "lif", "input_units": {"I": "amp"},
                  "sources": "Brian2 examples/CUBA.py (Brette et al. 2007, benchmark 2)",
                  "factory_kwargs": {"synapses": synapses, "refractory": _kw(refractory, ref), "units": False,
                                     **_si_kwargs(prm, params)}},
    ), defaults)


def adex(*, refractory: Refractory = None, units: bool = True, **params: QuantityLike) -> ModelIR:
    """Adaptive exponential integrate-and-fire neuron (Brette & Gerstner 2005, eqs. 1-2).

    ``C dv/dt = -g_l (v - E_l) + g_l Delta_T exp((v - V_T)/Delta_T) - w + I``,
    ``tau_w dw/dt = a (v - E_l) - w``; at ``v > v_peak``: ``v = v_reset``, ``w += b``.
    Defaults: the paper's Table 1 (it rests at E_l without input and fires tonically for a
    1 nA step). Method: Euler.
    """
    defaults = {
        "C": Default(281 * pF, "farad", "membrane capacitance", "positive"),
        "g_l": Default(30 * nS, "siemens", "leak conductance", "nonnegative"),
        "E_l": Default(-70.6 * mV, "volt", "leak reversal potential"),
        "V_T": Default(-50.4 * mV, "volt", "threshold slope factor centre"),
        "Delta_T": Default(2 * mV, "volt", "slope factor", "positive"),
        "tau_w": Default(144 * ms, "second", "adaptation time constant", "positive"),
        "a": Default(4 * nS, "siemens", "subthreshold adaptation"),
        "b": Default(0.0805 * nA, "amp", "spike-triggered adaptation"),
        "v_reset": Default(-70.6 * mV, "volt", "reset potential"),
        "v_peak": Default(-40.4 * mV, "volt", "spike cut-off (V_T + 5 Delta_T)"),
        "t_ref": Default(0.0, "second", "refractory period", "nonnegative"),
    }
    prm = _params(defaults, params, "adex", units)
    ref = _refractory(refractory, "v > v_peak", "adex", units, [*defaults, "v", "w"])
    return _built(ModelIR(
        name="adex",
        states=[State("v", "E_l", "volt", "membrane potential", clamped_when_refractory=True),
                State("w", 0.0, "amp", "adaptation current")],
        parameters=prm,
        derivatives={"v": "(-g_l*(v - E_l) + g_l*Delta_T*exp((v - V_T)/Delta_T) - w + I)/C",
                     "w": "(a*(v - E_l) - w)/tau_w"},
        inputs={"I": 0.0},
        events=[Event("spike", "v > v_peak", {"v": "v_reset", "w": "w + b"})],
        refractory=ref,
        metadata={"method": "euler", "threshold_state": "v", "factory": "adex", "input_units": {"I": "amp"},
                  "sources": "Brette & Gerstner 2005, Table 1",
                  "factory_kwargs": {"refractory": _kw(refractory, ref), "units": False, **_si_kwargs(prm, params)}},
    ), defaults)


#: Izhikevich (2003) Fig. 2 regimes: (a, b, c [mV], d [mV])
IZHIKEVICH_REGIMES: dict[str, tuple[float, float, float, float]] = {
    "regular_spiking": (0.02, 0.2, -65.0, 8.0),
    "intrinsically_bursting": (0.02, 0.2, -55.0, 4.0),
    "chattering": (0.02, 0.2, -50.0, 2.0),
    "fast_spiking": (0.1, 0.2, -65.0, 2.0),
}


def izhikevich(*, regime: str = "regular_spiking", units: bool = True, **params: QuantityLike) -> ModelIR:
    """Izhikevich (2003) simple model, eqs. (1)-(3), in SI units.

    ``dv/dt = (0.04/mV v^2 + 5 v + 140 mV - u + I_dc + I)/ms``, ``du/dt = a (b v - u)``;
    at ``v >= 30 mV``: ``v = c``, ``u += d``. ``regime`` picks (a, b, c, d) of the paper's
    Fig. 2: regular_spiking, intrinsically_bursting, chattering, fast_spiking; keyword
    arguments override single values (``a`` in 1/second, ``c``/``d`` in volt). The drive
    (the paper's dimensionless current times mV) is the input ``I`` plus the constant
    ``I_dc``, which defaults to 0: the neuron rests (near -70 mV) until driven; the paper's
    Fig. 2 uses ``I_dc=10*mV``. Method: Euler (as Brian2's Izhikevich example).
    """
    if regime not in IZHIKEVICH_REGIMES:
        raise ModelError(f"izhikevich: unknown regime {regime!r}; regimes: {', '.join(IZHIKEVICH_REGIMES)}")
    a, b, c, d = IZHIKEVICH_REGIMES[regime]
    defaults = {
        "a": Default(a / ms, "1/second", "recovery rate"),
        "b": Default(b, "1", "recovery sensitivity"),
        "c": Default(c * mV, "volt", "reset potential"),
        "d": Default(d * mV, "volt", "recovery jump"),
        "I_dc": Default(0.0, "volt", "constant drive (the paper's I, in mV; its Fig. 2 uses 10 mV)"),
        "v_peak": Default(30 * mV, "volt", "spike cut-off"),
        "k2": Default(0.04 / mV, "1/volt", "quadratic coefficient"),
        "k1": Default(5.0, "1", "linear coefficient"),
        "k0": Default(140 * mV, "volt", "constant term"),
        "tau": Default(1 * ms, "second", "time scale", "positive"),
    }
    prm = _params(defaults, params, "izhikevich", units)
    return _built(ModelIR(
        name="izhikevich",
        states=[State("v", "c", "volt", "membrane potential"),
                State("u", "b*c", "volt", "recovery variable")],
        parameters=prm,
        derivatives={"v": "(k2*v**2 + k1*v + k0 - u + I_dc + I)/tau", "u": "a*(b*v - u)"},
        inputs={"I": 0.0},
        events=[Event("spike", "v >= v_peak", {"v": "c", "u": "u + d"})],
        refractory=None,
        metadata={"method": "euler", "threshold_state": "v", "regime": regime, "factory": "izhikevich",
                  "input_units": {"I": "volt"}, "sources": "Izhikevich 2003, eqs. 1-3 and Fig. 2",
                  "factory_kwargs": {"regime": regime, "units": False, **_si_kwargs(prm, params)}},
    ), defaults)


def hh(*, refractory: Refractory = "threshold", units: bool = True, **params: QuantityLike) -> ModelIR:
    """Hodgkin & Huxley (1952) squid giant axon, modern sign convention (rest -65 mV).

    ``C_m dv/dt = g_na m^3 h (E_na - v) + g_k n^4 (E_k - v) + g_l (E_l - v) + I``
    (Hodgkin & Huxley 1952, eq. 26) with the rate functions of their eqs. 12, 13, 20, 21,
    23, 24 shifted to a -65 mV resting potential. Parameters are per unit area
    (F/m^2, S/m^2, input current density ``I`` in A/m^2; 1 uA/cm^2 = 0.01 A/m^2).
    Spikes: upward crossings of ``v_th`` (refractory while ``v > v_th``). Gates start at
    their steady state at ``v = v0``. Method: exponential Euler. Defaults: Hodgkin & Huxley
    1952 (conductances and reversals shifted to a -65 mV rest); it rests without input.
    """
    defaults = {
        "C_m": Default(1e-6 / cm2, "farad/meter**2", "membrane capacitance", "positive"),
        "g_na": Default(120e-3 / cm2, "siemens/meter**2", "sodium conductance", "nonnegative"),
        "g_k": Default(36e-3 / cm2, "siemens/meter**2", "potassium conductance", "nonnegative"),
        "g_l": Default(0.3e-3 / cm2, "siemens/meter**2", "leak conductance", "nonnegative"),
        "E_na": Default(50 * mV, "volt", "sodium reversal"),
        "E_k": Default(-77 * mV, "volt", "potassium reversal"),
        "E_l": Default(-54.387 * mV, "volt", "leak reversal"),
        "v0": Default(-65 * mV, "volt", "initial potential"),
        "v_th": Default(-20 * mV, "volt", "spike detection threshold"),
    }
    prm = _params(defaults, params, "hh", units)
    rate = 1 / ms
    assignments = {
        "alpha_m": f"{rate}/exprel(-(v + 0.040)/0.010)",
        "beta_m": f"{4 * rate}*exp(-(v + 0.065)/0.018)",
        "alpha_h": f"{0.07 * rate}*exp(-(v + 0.065)/0.020)",
        "beta_h": f"{rate}/(1 + exp(-(v + 0.035)/0.010))",
        "alpha_n": f"{0.1 * rate}/exprel(-(v + 0.055)/0.010)",
        "beta_n": f"{0.125 * rate}*exp(-(v + 0.065)/0.080)",
    }
    ref = _refractory(refractory, "v > v_th", "hh", units, [*defaults, "v", "m", "h", "n"])
    return _built(ModelIR(
        name="hh",
        states=[State("v", "v0", "volt", "membrane potential"),
                State("m", "alpha_m/(alpha_m + beta_m)", "1", "Na activation"),
                State("h", "alpha_h/(alpha_h + beta_h)", "1", "Na inactivation"),
                State("n", "alpha_n/(alpha_n + beta_n)", "1", "K activation")],
        parameters=prm,
        assignments=assignments,
        derivatives={"v": "(g_na*m**3*h*(E_na - v) + g_k*n**4*(E_k - v) + g_l*(E_l - v) + I)/C_m",
                     "m": "alpha_m*(1 - m) - beta_m*m",
                     "h": "alpha_h*(1 - h) - beta_h*h",
                     "n": "alpha_n*(1 - n) - beta_n*n"},
        inputs={"I": 0.0},
        events=[Event("spike", "v > v_th", {})],
        refractory=ref,
        metadata={"method": "exponential_euler", "threshold_state": "v", "factory": "hh",
                  "input_units": {"I": "amp/meter**2"}, "sources": "Hodgkin & Huxley 1952",
                  "factory_kwargs": {"refractory": _kw(refractory, ref), "units": False, **_si_kwargs(prm, params)}},
    ), defaults)


def traub_miles(*, synapses: bool = True, refractory: Refractory = "t_ref", gates: str = "steady", units: bool = True,
                **params: QuantityLike) -> ModelIR:
    """The Traub & Miles (1991) HH neuron of Brette et al. (2007) benchmark 3 (COBAHH),
    as Brian2 ``examples/COBAHH.py`` writes it (single compartment, area 20000 um^2).

    ``C_m dv/dt = g_l (E_l - v) + ge (E_e - v) + gi (E_i - v) - g_na m^3 h (v - E_na)
    - g_kd n^4 (v - E_k) + I``; gates ``dx/dt = alpha_x (1 - x) - beta_x x``; conductances
    ``dge/dt = -ge/tau_e``, ``dgi/dt = -gi/tau_i`` (siemens, jumped by ``ge += w``).
    ``synapses=False`` drops ge/gi (the single-neuron reference). ``refractory``: seconds,
    ``"t_ref"`` (3 ms, COBAHH) or ``"threshold"`` (refractory while ``v > v_th``).
    ``gates="steady"`` starts m, n, h at their steady state at ``v0``; ``"zero"`` at 0
    (COBAHH, Brian's default). Method: exponential Euler. Defaults: COBAHH's, with which
    the neuron fires on its own (about 13 Hz, as in Brian2's COBAHH); with
    ``E_l=-65*mV, v0=-65*mV`` it rests.
    """
    defaults = {
        "C_m": Default(200 * pF, "farad", "membrane capacitance (1 uF/cm^2 x 20000 um^2)", "positive"),
        "g_l": Default(10 * nS, "siemens", "leak conductance", "nonnegative"),
        "E_l": Default(-60 * mV, "volt", "leak reversal"),
        "E_k": Default(-90 * mV, "volt", "potassium reversal"),
        "E_na": Default(50 * mV, "volt", "sodium reversal"),
        "g_na": Default(20e-6, "siemens", "sodium conductance", "nonnegative"),
        "g_kd": Default(6e-6, "siemens", "potassium conductance", "nonnegative"),
        "V_T": Default(-63 * mV, "volt", "rate-function offset"),
        "v_th": Default(-20 * mV, "volt", "spike threshold"),
        "t_ref": Default(3 * ms, "second", "refractory period", "nonnegative"),
        "v0": Default(-60 * mV, "volt", "initial potential"),
    }
    if synapses:
        defaults.update({
            "tau_e": Default(5 * ms, "second", "excitatory conductance time constant", "positive"),
            "tau_i": Default(10 * ms, "second", "inhibitory conductance time constant", "positive"),
            "E_e": Default(0.0, "volt", "excitatory reversal"),
            "E_i": Default(-80 * mV, "volt", "inhibitory reversal"),
        })
    if gates not in ("steady", "zero"):
        raise ModelError(f"traub_miles: gates must be 'steady' or 'zero', not {gates!r}")
    prm = _params(defaults, params, "traub_miles", units)
    r = 1 / ms
    assignments = {
        "alpha_m": f"{0.32 * 4 * r}/exprel((0.013 - v + V_T)/0.004)",
        "beta_m": f"{0.28 * 5 * r}/exprel((v - V_T - 0.040)/0.005)",
        "alpha_h": f"{0.128 * r}*exp((0.017 - v + V_T)/0.018)",
        "beta_h": f"{4 * r}/(1 + exp((0.040 - v + V_T)/0.005))",
        "alpha_n": f"{0.032 * 5 * r}/exprel((0.015 - v + V_T)/0.005)",
        "beta_n": f"{0.5 * r}*exp((0.010 - v + V_T)/0.040)",
    }
    dv = "g_l*(E_l - v) - g_na*m**3*h*(v - E_na) - g_kd*n**4*(v - E_k) + I"
    states = [State("v", "v0", "volt", "membrane potential")]
    for g in ("m", "n", "h"):
        init = f"alpha_{g}/(alpha_{g} + beta_{g})" if gates == "steady" else 0.0
        states.append(State(g, init, "1", f"gating variable {g}"))
    derivs = {"v": None, **{g: f"alpha_{g}*(1 - {g}) - beta_{g}*{g}" for g in ("m", "n", "h")}}
    if synapses:
        dv += " + ge*(E_e - v) + gi*(E_i - v)"
        states += [State("ge", 0.0, "siemens", "excitatory conductance"),
                   State("gi", 0.0, "siemens", "inhibitory conductance")]
        derivs.update(ge="-ge/tau_e", gi="-gi/tau_i")
    derivs["v"] = f"({dv})/C_m"
    ref = _refractory(refractory, "v > v_th", "traub_miles", units, [*defaults, *(s.name for s in states)])
    return _built(ModelIR(
        name="traub_miles", states=states, parameters=prm, assignments=assignments, derivatives=derivs,
        inputs={"I": 0.0},
        events=[Event("spike", "v > v_th", {})],
        refractory=ref,
        metadata={"method": "exponential_euler", "threshold_state": "v", "factory": "traub_miles",
                  "input_units": {"I": "amp"}, "sources": "Brian2 examples/COBAHH.py (Traub & Miles 1991)",
                  "factory_kwargs": {"synapses": synapses, "refractory": _kw(refractory, ref), "gates": gates,
                                     "units": False, **_si_kwargs(prm, params)}},
    ), defaults)


def _kw(given: Any, resolved: Any) -> Any:
    """The refractory argument as ``factory_kwargs`` stores it (JSON-safe): ``None`` and
    strings as given, a duration as SI seconds."""
    return given if given is None or given is False or isinstance(given, str) and not isinstance(resolved, float) \
        else resolved


#: registry name -> factory (registered by the ``neurons`` plugin)
NEURONS = {"lif": lif, "adex": adex, "izhikevich": izhikevich, "hh": hh, "traub_miles": traub_miles}
