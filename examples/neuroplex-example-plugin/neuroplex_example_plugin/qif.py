"""The quadratic integrate-and-fire neuron as a neuroplex model IR."""
from __future__ import annotations

from neuroplex import Event, ModelIR, Parameter, State


def qif(tau: float = 10.0, a: float = 0.2, v_rest: float = -65.0, v_c: float = -50.0,
        v_peak: float = 30.0, v_reset: float = -70.0, R: float = 1.0, I: float = 20.0) -> ModelIR:
    """Quadratic integrate-and-fire neuron (Latham et al. 2000, eq. 1).

    ``tau dv/dt = a (v - v_rest)(v - v_c) + R I``; when ``v > v_peak`` the membrane is reset
    to ``v_reset``. Time in ms, voltages in mV, ``a`` in 1/mV, ``R I`` in mV; ``I`` is an input
    (per-sample input tensors override its default).
    """
    params = dict(tau=(tau, "ms"), a=(a, "1/mV"), v_rest=(v_rest, "mV"), v_c=(v_c, "mV"),
                  v_peak=(v_peak, "mV"), v_reset=(v_reset, "mV"), R=(R, "1"))
    return ModelIR(
        name="qif",
        states=[State("v", initial="v_rest", unit="mV", description="membrane potential")],
        parameters=[Parameter(k, float(v), unit=u) for k, (v, u) in params.items()],
        inputs={"I": float(I)},
        derivatives={"v": "(a * (v - v_rest) * (v - v_c) + R * I) / tau"},
        events=[Event("spike", trigger="v > v_peak", assignments={"v": "v_reset"})],
        time_unit="ms",
        metadata={"reference": "Latham et al., J. Neurophysiol. 83:808-827 (2000)"},
    )
