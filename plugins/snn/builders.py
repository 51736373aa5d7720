"""Builders for the standard network benchmarks (Brette et al. 2007) as :class:`Network`\\ s.

* :func:`cuba` - benchmark 2, exactly Brian2 ``examples/CUBA.py`` at ``n=4000``
  (80 % excitatory, ``p = 80/n`` = 0.02 at n = 4000, or a fixed in-degree of 80);
* :func:`cuba_from_instance` - Brian2's exported CUBA instance (connectivity + initial v);
* :func:`cobahh` - benchmark 3, Brian2 ``examples/COBAHH.py`` (Traub-Miles HH neurons,
  conductance synapses).

``batch=B`` builds B independent networks (own connectivity and initial values per
sample, all reproducible from ``seed``) that run in one engine call.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuroplex.errors import NeuroplexError
from neuroplex.host import get_neuron
from neuroplex.ir import Event, ModelIR, Parameter, State
from neuroplex.units import QuantityLike, to_si

from .elements import timestep
from .network import Network
from .plasticity import SynapseModel, stdp_additive

mV, ms, nS = 1e-3, 1e-3, 1e-9

#: Brian2 examples/CUBA.py synaptic jumps (volts)
CUBA_WE = 60 * 0.27 / 10 * mV
CUBA_WI = -20 * 4.5 / 10 * mV


def cuba(n: int = 4000, *, p: float | None = None, in_degree: int | None = None, seed: int | None = 1,
         batch: int = 1, dt: float = 0.1 * ms, monitor: list[int] | None = None) -> Network:
    """CUBA (Brette et al. 2007 benchmark 2; Brian2 ``examples/CUBA.py``).

    ``n`` LIF neurons (the ``lif`` neuron with ``synapses="current"``: taum 20 ms, taue 5 ms, taui 10 ms,
    Vt -50 mV, Vr -60 mV, El -49 mV, refractory 5 ms, method exact), the first 80 %
    excitatory (``ge += 1.62 mV``), the rest inhibitory (``gi += -9 mV``), each pair
    connected with probability ``p`` (default ``80/n``, i.e. 0.02 at n = 4000) or, with
    ``in_degree=K``, every neuron receiving ``0.8 K`` excitatory and ``0.2 K`` inhibitory
    inputs. ``v(0) = Vr + U(0,1) (Vt - Vr)``. ``monitor``: neuron indices whose v is recorded.
    """
    if n < 5:
        raise NeuroplexError(f"cuba: n must be >= 5, not {n}")
    ne = int(round(0.8 * n))
    if in_degree is None and p is None:
        p = 80.0 / n
    net = Network(dt=dt, batch=batch, name=f"cuba_n{n}")
    gen = torch.Generator().manual_seed(int(seed) if seed is not None else 0)
    v_th, v_r = -50 * mV, -60 * mV
    v0 = v_r + torch.rand((batch, n), generator=gen, dtype=torch.float64) * (v_th - v_r)
    net.add_population("P", get_neuron("lif")(synapses="current"), n, init={"v": v0})
    rng_seed = None if seed is None else int(seed)
    if in_degree is None:
        net.connect("P", "P", "ge", p=p, weight=CUBA_WE, pre_range=(0, ne), seed=rng_seed, name="exc")
        net.connect("P", "P", "gi", p=p, weight=CUBA_WI, pre_range=(ne, n),
                    seed=None if rng_seed is None else rng_seed + 7919, name="inh")
    else:
        ke = int(round(0.8 * in_degree))
        net.connect("P", "P", "ge", in_degree=ke, weight=CUBA_WE, pre_range=(0, ne), seed=rng_seed, name="exc")
        net.connect("P", "P", "gi", in_degree=in_degree - ke, weight=CUBA_WI, pre_range=(ne, n),
                    seed=None if rng_seed is None else rng_seed + 7919, name="inh")
    if monitor:
        net.monitor("P", ["v"], monitor)
    net.meta.update({"benchmark": "CUBA", "n": n, "p": p, "in_degree": in_degree, "seed": seed})
    return net


def cuba_from_instance(path: str | os.PathLike, *, dt: float = 0.1 * ms, monitor: list[int] | None = None) -> Network:
    """The CUBA network of a Brian2-exported instance (``exc_pre, exc_post, inh_pre,
    inh_post`` neuron indices, ``v0_mV`` initial potentials): the same network Brian ran."""
    path = Path(path)
    try:
        data = np.load(path)
        arrays = {k: data[k] for k in ("exc_pre", "exc_post", "inh_pre", "inh_post", "v0_mV")}
    except (OSError, ValueError, KeyError) as exc:
        raise NeuroplexError(f"{path}: not a CUBA instance file ({exc})") from None
    n = int(arrays["v0_mV"].size)
    net = Network(dt=dt, name=f"cuba_n{n}_instance")
    net.add_population("P", get_neuron("lif")(synapses="current"), n,
                       init={"v": torch.as_tensor(arrays["v0_mV"], dtype=torch.float64) * mV})
    net.connect("P", "P", "ge", i=arrays["exc_pre"], j=arrays["exc_post"], weight=CUBA_WE, name="exc")
    net.connect("P", "P", "gi", i=arrays["inh_pre"], j=arrays["inh_post"], weight=CUBA_WI, name="inh")
    if monitor:
        net.monitor("P", ["v"], monitor)
    net.meta.update({"benchmark": "CUBA", "n": n, "instance": path.name})
    return net


def cobahh(n: int = 4000, *, p: float | None = None, in_degree: int | None = None, seed: int | None = 1,
           batch: int = 1, dt: float = 0.1 * ms, monitor: list[int] | None = (1, 10, 100),
           we: float = 6 * nS, wi: float = 67 * nS) -> Network:
    """COBAHH (Brette et al. 2007 benchmark 3; Brian2 ``examples/COBAHH.py``).

    ``n`` Traub-Miles neurons (the ``traub_miles`` neuron: El -60 mV, threshold -20 mV, refractory
    3 ms, exponential Euler), 80 % excitatory (``ge += 6 nS``, Ee 0 mV), 20 % inhibitory
    (``gi += 67 nS``, Ei -80 mV), ``p`` default ``80/n`` (0.02 at n = 4000) or fixed
    ``in_degree``. ``v(0) = El + (5 randn - 5) mV``, ``ge(0) = (1.5 randn + 4) 10 nS``,
    ``gi(0) = (12 randn + 20) 10 nS``, gates 0 (Brian's default). ``monitor``: indices
    whose v is recorded (the example records 1, 10, 100).
    """
    ne = int(round(0.8 * n))
    if in_degree is None and p is None:
        p = 80.0 / n
    net = Network(dt=dt, batch=batch, name=f"cobahh_n{n}")
    gen = torch.Generator().manual_seed(int(seed) if seed is not None else 0)
    shape = (batch, n)
    e_l = -60 * mV
    init = {"v": e_l + (torch.randn(shape, generator=gen, dtype=torch.float64) * 5 - 5) * mV,
            "ge": (torch.randn(shape, generator=gen, dtype=torch.float64) * 1.5 + 4) * 10 * nS,
            "gi": (torch.randn(shape, generator=gen, dtype=torch.float64) * 12 + 20) * 10 * nS}
    net.add_population("P", get_neuron("traub_miles")(gates="zero"), n, init=init)
    rs = None if seed is None else int(seed)
    kw: dict[str, Any] = {"p": p} if in_degree is None else {}
    ke = None if in_degree is None else int(round(0.8 * in_degree))
    net.connect("P", "P", "ge", weight=we, pre_range=(0, ne), seed=rs, name="exc",
                **(kw or {"in_degree": ke}))
    net.connect("P", "P", "gi", weight=wi, pre_range=(ne, n), seed=None if rs is None else rs + 7919, name="inh",
                **(kw or {"in_degree": in_degree - ke}))
    valid = [i for i in (monitor or ()) if i < n]
    if valid:
        net.monitor("P", ["v"], valid)
    net.meta.update({"benchmark": "COBAHH", "n": n, "p": p, "in_degree": in_degree, "seed": seed})
    return net


def song_neuron(**params: QuantityLike) -> ModelIR:
    """The neuron of Brian2's ``examples/synapses/STDP.py`` (after Song, Miller & Abbott 2000):
    ``taum dv/dt = ge (Ee - vr) + El - v``, ``dge/dt = -ge/taue`` (``ge`` dimensionless, jumped
    by the synaptic weight), threshold ``v > vt``, reset ``v = vr``, no refractory period, ``v``
    starting at 0 V as in the example (Brian2's default). Integrated exactly. Overrides carry
    their units (``vt=-50 * mV``, ``"-50 mV"``), checked by :func:`neuroplex.units.to_si`."""
    defaults = {"taum": (10 * ms, "second"), "taue": (5 * ms, "second"), "Ee": (0.0, "volt"),
                "vt": (-54 * mV, "volt"), "vr": (-60 * mV, "volt"), "El": (-74 * mV, "volt")}
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise NeuroplexError(f"song_neuron has no parameter {unknown[0]!r} (parameters: {', '.join(defaults)})")
    return ModelIR(
        name="song_stdp_neuron",
        states=[State("v", 0.0, "volt", "membrane potential"), State("ge", 0.0, "1", "excitatory conductance")],
        parameters=[Parameter(k, to_si(params[k], u, f"song_neuron: {k}") if k in params else v, u)
                    for k, (v, u) in defaults.items()],
        derivatives={"v": "(ge*(Ee - vr) + El - v)/taum", "ge": "-ge/taue"},
        events=[Event("spike", "v > vt", {"v": "vr"})],
        metadata={"method": "exact", "threshold_state": "v"})


def poisson_trains(n: int, rate: float, duration: float, *, dt: float = 0.1 * ms, seed: int = 0,
                   batch: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indices, times, sample)`` of ``n`` Poisson trains at ``rate`` Hz drawn as Brian2's
    ``PoissonGroup`` draws them (a spike in a step iff ``rand() < rate dt``), for a
    :meth:`Network.add_spike_generator` that both engines then see identically."""
    rng = np.random.default_rng(seed)
    n_steps = timestep(duration, dt)
    idx, times, sample = [], [], []
    for b in range(batch):
        for k0 in range(0, n_steps, 10000):
            k1 = min(n_steps, k0 + 10000)
            ks, js = np.nonzero(rng.random((k1 - k0, n)) < rate * dt)
            idx.append(js)
            times.append((ks + k0) * dt)
            sample.append(np.full(js.size, b))
    return (np.concatenate(idx).astype(np.int64), np.concatenate(times), np.concatenate(sample).astype(np.int64))


def song_stdp(n_inputs: int = 1000, *, rate: float = 15.0, batch: int = 1, seed: int | None = 1,
              dt: float = 0.1 * ms, rule: SynapseModel | None = None,
              input_spikes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> Network:
    """Brian2's ``examples/synapses/STDP.py`` (Song, Miller & Abbott 2000): ``n_inputs`` Poisson
    inputs at ``rate`` Hz, all onto one :func:`song_neuron`, through additive STDP
    (``taupre = taupost = 20 ms``, ``dApre = 0.01 gmax``, ``dApost = -1.05 dApre``,
    ``gmax = 0.01``; ``rule`` replaces it), initial ``w = rand() gmax`` (per network,
    reproducible from ``seed``). ``input_spikes``: ``(indices, times, sample)`` (e.g. from
    :func:`poisson_trains`) replace the Poisson group by a spike generator. Population
    ``input`` (the sources) and ``out`` (the neuron); synapses ``S``."""
    gmax = 0.01
    if rule is None:
        taupre = taupost = 20 * ms
        dApre = .01
        dApost = -dApre * taupre / taupost * 1.05
        rule = stdp_additive(taupre=taupre, taupost=taupost, dApre=dApre * gmax, dApost=dApost * gmax, wmax=gmax)
    net = Network(dt=dt, batch=batch, name=f"song_stdp_n{n_inputs}")
    if input_spikes is None:
        net.add_poisson("input", n_inputs, rate)
    else:
        idx, times, sample = input_spikes
        net.add_spike_generator("input", n_inputs, idx, times, sample=sample)
    net.add_population("out", song_neuron(), 1)
    rng = np.random.default_rng(seed)
    w0 = rng.random((batch, n_inputs)) * gmax
    net.connect("input", "out", "ge", i=np.tile(np.arange(n_inputs), batch), j=np.zeros(batch * n_inputs),
                sample=np.repeat(np.arange(batch), n_inputs), weight=w0.ravel(), model=rule, name="S")
    net.meta.update({"benchmark": "STDP (Song, Miller & Abbott 2000)", "n_inputs": n_inputs, "rate": rate,
                     "seed": seed, "gmax": gmax})
    return net


#: the builders by name (``neuroplex compare-snn NETWORK``; also registered as tasks)
BUILDERS = {"cuba": cuba, "cobahh": cobahh}
