"""Spiking neuron models, each defined once as a :class:`neuroplex.ir.ModelIR`.

Units are SI throughout (volt, second, siemens, amp, farad); every :class:`State` and
:class:`Parameter` carries its unit string. A neuron's threshold is an :class:`Event`
whose trigger is the threshold condition and whose assignments are the reset;
``ModelIR.refractory`` is either a duration (seconds, Brian2's ``refractory=5*ms``) or a
condition (Brian2's ``refractory='v > -20*mV'``); states flagged
``clamped_when_refractory`` are Brian2's ``(unless refractory)`` variables.

``ModelIR.metadata`` holds what a clock-driven backend needs beyond the equations:

* ``method``: the integration method Brian2's example for this model uses (``exact``,
  ``euler``, ``exponential_euler``);
* ``threshold_state``: the state the threshold tests (``v``);
* ``factory`` / ``factory_kwargs``: the registered name and the arguments that rebuild the
  model (used by :meth:`neuroplex.plugins.snn.network.Network.export`).
"""
from __future__ import annotations

from typing import Any

from neuroplex.errors import ModelError
from neuroplex.ir import Event, ModelIR, Parameter, State

mV = 1e-3
ms = 1e-3
nS = 1e-9
pF = 1e-12
nA = 1e-9
pA = 1e-12
cm2 = 1e-4  # m^2


def _params(defaults: dict[str, tuple[float, str, str]], overrides: dict[str, Any], model: str) -> list[Parameter]:
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ModelError(f"neuron {model!r} has no parameter(s) {', '.join(unknown)}; "
                         f"parameters: {', '.join(defaults)}")
    return [Parameter(name, float(overrides.get(name, value)), unit, description=desc)
            for name, (value, unit, desc) in defaults.items()]


def _refractory(value: Any, threshold: str) -> Any:
    """``None`` (no refractory period), a duration in seconds, or ``"threshold"`` meaning
    'refractory while the threshold condition holds' (one spike per upward crossing)."""
    if value is None or value is False:
        return None
    if isinstance(value, str):
        return threshold if value == "threshold" else value
    return float(value)


def lif(*, synapses: str | None = None, refractory: Any = "t_ref", **params: float) -> ModelIR:
    """Leaky integrate-and-fire neuron with a refractory period (Brian2 ``examples/CUBA.py``).

    ``tau_m dv/dt = E_l - v + R_m I (+ ge + gi)``, threshold ``v > v_th``, reset ``v = v_reset``,
    ``v`` clamped for ``t_ref`` after a spike. ``synapses="current"`` adds the CUBA synaptic
    variables ``dge/dt = -ge/tau_e``, ``dgi/dt = -gi/tau_i`` (volts, jumped by ``ge += w``;
    Brette et al. 2007, benchmark 2). Integrated exactly (linear equations).
    """
    defaults = {
        "E_l": (-49 * mV, "volt", "resting (leak reversal) potential"),
        "tau_m": (20 * ms, "second", "membrane time constant"),
        "v_th": (-50 * mV, "volt", "threshold"),
        "v_reset": (-60 * mV, "volt", "reset potential"),
        "t_ref": (5 * ms, "second", "refractory period"),
        "R_m": (1e8, "ohm", "membrane resistance (input I in amp)"),
    }
    if synapses == "current":
        defaults["tau_e"] = (5 * ms, "second", "excitatory synaptic time constant")
        defaults["tau_i"] = (10 * ms, "second", "inhibitory synaptic time constant")
    elif synapses is not None:
        raise ModelError(f"lif: synapses must be None or 'current', not {synapses!r}")
    prm = _params(defaults, params, "lif")
    states = [State("v", "v_reset", "volt", "membrane potential", clamped_when_refractory=True)]
    dv = "(E_l - v + R_m*I)/tau_m"
    derivs = {}
    if synapses == "current":
        states += [State("ge", 0.0, "volt", "excitatory synaptic input"),
                   State("gi", 0.0, "volt", "inhibitory synaptic input")]
        dv = "(ge + gi + E_l - v + R_m*I)/tau_m"
        derivs.update(ge="-ge/tau_e", gi="-gi/tau_i")
    derivs = {"v": dv, **derivs}
    return ModelIR(
        name="lif", states=states, parameters=prm, derivatives=derivs, inputs={"I": 0.0},
        events=[Event("spike", "v > v_th", {"v": "v_reset"})],
        refractory=_refractory(refractory, "v > v_th"),
        metadata={"method": "exact", "threshold_state": "v", "factory": "lif",
                  "factory_kwargs": {"synapses": synapses, "refractory": refractory, **params}},
    )


def adex(*, refractory: Any = None, **params: float) -> ModelIR:
    """Adaptive exponential integrate-and-fire neuron (Brette & Gerstner 2005, eqs. 1-2).

    ``C dv/dt = -g_l (v - E_l) + g_l Delta_T exp((v - V_T)/Delta_T) - w + I``,
    ``tau_w dw/dt = a (v - E_l) - w``; at ``v > v_peak``: ``v = v_reset``, ``w += b``.
    Defaults: the paper's Table 1 (tonic spiking with a 1 nA step). Method: Euler.
    """
    defaults = {
        "C": (281 * pF, "farad", "membrane capacitance"),
        "g_l": (30 * nS, "siemens", "leak conductance"),
        "E_l": (-70.6 * mV, "volt", "leak reversal potential"),
        "V_T": (-50.4 * mV, "volt", "threshold slope factor centre"),
        "Delta_T": (2 * mV, "volt", "slope factor"),
        "tau_w": (144 * ms, "second", "adaptation time constant"),
        "a": (4 * nS, "siemens", "subthreshold adaptation"),
        "b": (0.0805 * nA, "amp", "spike-triggered adaptation"),
        "v_reset": (-70.6 * mV, "volt", "reset potential"),
        "v_peak": (-40.4 * mV, "volt", "spike cut-off (V_T + 5 Delta_T)"),
        "t_ref": (0.0, "second", "refractory period"),
    }
    prm = _params(defaults, params, "adex")
    return ModelIR(
        name="adex",
        states=[State("v", "E_l", "volt", "membrane potential", clamped_when_refractory=True),
                State("w", 0.0, "amp", "adaptation current")],
        parameters=prm,
        derivatives={"v": "(-g_l*(v - E_l) + g_l*Delta_T*exp((v - V_T)/Delta_T) - w + I)/C",
                     "w": "(a*(v - E_l) - w)/tau_w"},
        inputs={"I": 0.0},
        events=[Event("spike", "v > v_peak", {"v": "v_reset", "w": "w + b"})],
        refractory=_refractory(refractory, "v > v_peak"),
        metadata={"method": "euler", "threshold_state": "v", "factory": "adex",
                  "factory_kwargs": {"refractory": refractory, **params}},
    )


#: Izhikevich (2003) Fig. 2 regimes: (a, b, c [mV], d [mV])
IZHIKEVICH_REGIMES: dict[str, tuple[float, float, float, float]] = {
    "regular_spiking": (0.02, 0.2, -65.0, 8.0),
    "intrinsically_bursting": (0.02, 0.2, -55.0, 4.0),
    "chattering": (0.02, 0.2, -50.0, 2.0),
    "fast_spiking": (0.1, 0.2, -65.0, 2.0),
}


def izhikevich(*, regime: str = "regular_spiking", **params: float) -> ModelIR:
    """Izhikevich (2003) simple model, eqs. (1)-(3), in SI units.

    ``dv/dt = (0.04/mV v^2 + 5 v + 140 mV - u + I)/ms``, ``du/dt = a (b v - u)``;
    at ``v >= 30 mV``: ``v = c``, ``u += d``. ``regime`` picks (a, b, c, d) of the paper's
    Fig. 2: regular_spiking, intrinsically_bursting, chattering, fast_spiking; keyword
    arguments override single values (``a`` in 1/s, ``c``/``d`` in volts). ``I`` (volts,
    the paper's dimensionless current times mV) is a parameter; it defaults to 10 mV.
    Method: Euler (as Brian2's Izhikevich example).
    """
    if regime not in IZHIKEVICH_REGIMES:
        raise ModelError(f"izhikevich: unknown regime {regime!r}; regimes: {', '.join(IZHIKEVICH_REGIMES)}")
    a, b, c, d = IZHIKEVICH_REGIMES[regime]
    defaults = {
        "a": (a / ms, "1/second", "recovery rate"),
        "b": (b, "1", "recovery sensitivity"),
        "c": (c * mV, "volt", "reset potential"),
        "d": (d * mV, "volt", "recovery jump"),
        "I_dc": (10 * mV, "volt", "constant drive (the paper's I, in mV)"),
        "v_peak": (30 * mV, "volt", "spike cut-off"),
        "k2": (0.04 / mV, "1/volt", "quadratic coefficient"),
        "k1": (5.0, "1", "linear coefficient"),
        "k0": (140 * mV, "volt", "constant term"),
        "tau": (1 * ms, "second", "time scale"),
    }
    prm = _params(defaults, params, "izhikevich")
    return ModelIR(
        name="izhikevich",
        states=[State("v", "c", "volt", "membrane potential"),
                State("u", "b*c", "volt", "recovery variable")],
        parameters=prm,
        derivatives={"v": "(k2*v**2 + k1*v + k0 - u + I_dc + I)/tau", "u": "a*(b*v - u)"},
        inputs={"I": 0.0},
        events=[Event("spike", "v >= v_peak", {"v": "c", "u": "u + d"})],
        refractory=None,
        metadata={"method": "euler", "threshold_state": "v", "regime": regime, "factory": "izhikevich",
                  "factory_kwargs": {"regime": regime, **params}},
    )


def hh(*, refractory: Any = "threshold", **params: float) -> ModelIR:
    """Hodgkin & Huxley (1952) squid giant axon, modern sign convention (rest -65 mV).

    ``C_m dv/dt = g_na m^3 h (E_na - v) + g_k n^4 (E_k - v) + g_l (E_l - v) + I``
    (Hodgkin & Huxley 1952, eq. 26) with the rate functions of their eqs. 12, 13, 20, 21,
    23, 24 shifted to a -65 mV resting potential. Parameters are per unit area
    (F/m^2, S/m^2, input current density ``I`` in A/m^2; 1 uA/cm^2 = 0.01 A/m^2).
    Spikes: upward crossings of ``v_th`` (refractory while ``v > v_th``). Gates start at
    their steady state at ``v = v0``. Method: exponential Euler.
    """
    defaults = {
        "C_m": (1e-6 / cm2, "farad/meter**2", "membrane capacitance"),
        "g_na": (120e-3 / cm2, "siemens/meter**2", "sodium conductance"),
        "g_k": (36e-3 / cm2, "siemens/meter**2", "potassium conductance"),
        "g_l": (0.3e-3 / cm2, "siemens/meter**2", "leak conductance"),
        "E_na": (50 * mV, "volt", "sodium reversal"),
        "E_k": (-77 * mV, "volt", "potassium reversal"),
        "E_l": (-54.387 * mV, "volt", "leak reversal"),
        "v0": (-65 * mV, "volt", "initial potential"),
        "v_th": (-20 * mV, "volt", "spike detection threshold"),
    }
    prm = _params(defaults, params, "hh")
    rate = 1 / ms
    assignments = {
        "alpha_m": f"{rate}/exprel(-(v + 0.040)/0.010)",
        "beta_m": f"{4 * rate}*exp(-(v + 0.065)/0.018)",
        "alpha_h": f"{0.07 * rate}*exp(-(v + 0.065)/0.020)",
        "beta_h": f"{rate}/(1 + exp(-(v + 0.035)/0.010))",
        "alpha_n": f"{0.1 * rate}/exprel(-(v + 0.055)/0.010)",
        "beta_n": f"{0.125 * rate}*exp(-(v + 0.065)/0.080)",
    }
    return ModelIR(
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
        refractory=_refractory(refractory, "v > v_th"),
        metadata={"method": "exponential_euler", "threshold_state": "v", "factory": "hh",
                  "factory_kwargs": {"refractory": refractory, **params}},
    )


def traub_miles(*, synapses: bool = True, refractory: Any = "t_ref", gates: str = "steady", **params: float) -> ModelIR:
    """The Traub & Miles (1991) HH neuron of Brette et al. (2007) benchmark 3 (COBAHH),
    as Brian2 ``examples/COBAHH.py`` writes it (single compartment, area 20000 um^2).

    ``C_m dv/dt = g_l (E_l - v) + ge (E_e - v) + gi (E_i - v) - g_na m^3 h (v - E_na)
    - g_kd n^4 (v - E_k) + I``; gates ``dx/dt = alpha_x (1 - x) - beta_x x``; conductances
    ``dge/dt = -ge/tau_e``, ``dgi/dt = -gi/tau_i`` (siemens, jumped by ``ge += w``).
    ``synapses=False`` drops ge/gi (the single-neuron reference). ``refractory``: seconds,
    ``"t_ref"`` (3 ms, COBAHH) or ``"threshold"`` (refractory while ``v > v_th``).
    ``gates="steady"`` starts m, n, h at their steady state at ``v0``; ``"zero"`` at 0
    (COBAHH, Brian's default). Method: exponential Euler.
    """
    defaults = {
        "C_m": (200 * pF, "farad", "membrane capacitance (1 uF/cm^2 x 20000 um^2)"),
        "g_l": (10 * nS, "siemens", "leak conductance"),
        "E_l": (-60 * mV, "volt", "leak reversal"),
        "E_k": (-90 * mV, "volt", "potassium reversal"),
        "E_na": (50 * mV, "volt", "sodium reversal"),
        "g_na": (20e-6, "siemens", "sodium conductance"),
        "g_kd": (6e-6, "siemens", "potassium conductance"),
        "V_T": (-63 * mV, "volt", "rate-function offset"),
        "v_th": (-20 * mV, "volt", "spike threshold"),
        "t_ref": (3 * ms, "second", "refractory period"),
        "v0": (-60 * mV, "volt", "initial potential"),
    }
    if synapses:
        defaults.update({
            "tau_e": (5 * ms, "second", "excitatory conductance time constant"),
            "tau_i": (10 * ms, "second", "inhibitory conductance time constant"),
            "E_e": (0.0, "volt", "excitatory reversal"),
            "E_i": (-80 * mV, "volt", "inhibitory reversal"),
        })
    if gates not in ("steady", "zero"):
        raise ModelError(f"traub_miles: gates must be 'steady' or 'zero', not {gates!r}")
    prm = _params(defaults, params, "traub_miles")
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
    return ModelIR(
        name="traub_miles", states=states, parameters=prm, assignments=assignments, derivatives=derivs,
        inputs={"I": 0.0},
        events=[Event("spike", "v > v_th", {})],
        refractory=_refractory(refractory, "v > v_th"),
        metadata={"method": "exponential_euler", "threshold_state": "v", "factory": "traub_miles",
                  "factory_kwargs": {"synapses": synapses, "refractory": refractory, "gates": gates, **params}},
    )


#: registry name -> factory (registered by the ``neurons`` plugin)
NEURONS = {"lif": lif, "adex": adex, "izhikevich": izhikevich, "hh": hh, "traub_miles": traub_miles}
