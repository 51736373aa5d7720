"""Run a :class:`neuroplex.plugins.snn.Network` on Brian2.

Every population becomes one ``NeuronGroup`` (or ``PoissonGroup``) of ``B*n`` neurons
(``B`` independent networks, sample-major: neuron ``j`` of sample ``b`` is ``b*n + j``);
every synapse set becomes a ``Synapses`` object with ``on_pre: target += w`` connected
with exactly the network's ``(i, j)`` lists (``connect(i=..., j=...)``), so Brian2 runs
the *same* network instance as the torch engine. Delays (steps) become ``delay = d*dt``.
The returned :class:`~neuroplex.solution.Solution` has the torch engine's shape: spikes
with ``sample`` = network, ``index`` = global neuron index (population offsets), ``time``
in seconds; monitored traces in ``ys`` named ``"<population>.<state>[<index>]"`` recorded
at the start of every ``every``-th step.
"""
from __future__ import annotations

import time as _time
from typing import Any

import numpy as np
import torch

from neuroplex.errors import NeuroplexError
from neuroplex.plugins.snn import Network as SpikingNetwork
from neuroplex.plugins.snn import TimedArray, population_rate, population_spikes, timestep
from neuroplex.solution import Solution, SpikeTrain, Status

from .continuation import check_start, end_state, load_groups
from .neuron_run import initial_values, with_unit_fallback
from .plastic import plastic_state, plastic_text, set_plastic_state
from .session import brian_session, progress_report, ran_targets
from .translate import NeuronSpec, dims_text, translate_neuron


def is_network(model: Any) -> bool:
    """True for a spiking :class:`neuroplex.plugins.snn.Network`."""
    return isinstance(model, SpikingNetwork)


def _flat(value: Any, batch: int, n: int, what: str) -> np.ndarray:
    """A scalar, ``(n,)`` or ``(B, n)`` value as a flat ``(B*n,)`` float64 array."""
    arr = np.asarray(value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value, dtype=float)
    if arr.ndim == 0:
        return np.full(batch * n, float(arr))
    if arr.shape == (n,):
        return np.tile(arr, batch)
    if arr.shape == (batch, n):
        return arr.reshape(-1).copy()
    if arr.shape == (batch, 1):  # one value per network
        return np.repeat(arr.reshape(-1), n)
    raise NeuroplexError(f"{what}: expected a scalar, ({n},), ({batch}, 1) or ({batch}, {n}) values, "
                         f"got {arr.shape}")


def _np(value: Any) -> np.ndarray:
    return np.asarray(value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value)


def _is_scalar(value: Any) -> bool:
    return np.ndim(value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value) == 0


def run_network(net: Any, t_span: tuple[float, float], *, dt: float | None, method: str | None, target: str,
                dtype: str, units: str, seed: int | None, t_eval: Any = None, progress: bool = False,
                directory: str | None = None) -> Solution:
    """Simulate ``net`` on Brian2 for ``t_span``. A span starting at 0 runs from the initial
    values; one starting later continues the network's previous run (``net.end_state``, left by
    a run on either engine, or by ``net.restore``), which must have ended there. Afterwards
    ``net.end_state`` holds where this run ended."""
    t0, t1 = float(t_span[0]), float(t_span[1])
    if not net.populations:
        raise NeuroplexError(f"network {net.name!r} has no populations")
    dt = float(dt or net.dt)
    start, first = None, 0
    if t0 != 0.0:
        if net.end_state is None:
            raise NeuroplexError(f"network {net.name!r}: t_span must start at 0, or at the end of a previous "
                                 f"run to continue it (no run to continue; t_span starts at {t0})")
        start = net.end_state
        first = check_start(start, dt, t0, net.name)
    n_steps = timestep(t1, dt) - first
    if n_steps < 0:
        raise NeuroplexError(f"network {net.name!r}: t_span {t_span} ends before it starts")
    wall0 = _time.perf_counter()
    result = with_unit_fallback(lambda mode: _build_and_run(net, n_steps, dt, method, target, dtype, mode, seed, progress,
                                                            directory, start, first), units, f"network {net.name!r}")
    net.end_state = result["end_state"]
    sol = _solution(net, result, n_steps, dt, target, dtype, first)
    sol.meta["wall_time_s"] = _time.perf_counter() - wall0
    if t_eval is not None and sol.ts is not None and sol.ts.numel():
        te = torch.as_tensor(t_eval, dtype=torch.float64)
        every = float(sol.ts[1] - sol.ts[0]) if sol.ts.numel() > 1 else dt
        k = torch.clamp(torch.round(te / every).long(), 0, sol.ts.numel() - 1)
        sol.ys, sol.ts = sol.ys[:, k], sol.ts[k]
    return sol


def _population_spec(pop: Any, method: str | None, units: str, target: str) -> tuple[NeuronSpec, dict[str, np.ndarray]]:
    """Translate one population: scalar parameter overrides go into the namespace, per-neuron
    ones become per-neuron constants (returned as flat arrays to set)."""
    model = pop.model
    scalars = {k: float(np.asarray(v)) for k, v in pop.params.items() if _is_scalar(v)}
    if scalars:
        model = model.with_parameters(**scalars)
    per_neuron = [k for k, v in pop.params.items() if not _is_scalar(v)]
    timed = {k: v for k, v in pop.inputs.items() if isinstance(v, TimedArray)}
    calls = {k: f"{_timed_name(pop.name, k)}(t{', i' if np.ndim(_np(v.values)) > 1 else ''})" for k, v in timed.items()}
    spec = translate_neuron(model, units=units, per_neuron=per_neuron, method=method or pop.method,
                            timed_inputs=calls, target=target)
    return spec, {k: v for k, v in pop.params.items() if k in per_neuron}


def _timed_name(pop: str, name: str) -> str:
    return f"ta_{pop}_{name}"


def _build_and_run(net: Any, n_steps: int, dt: float, method: str | None, target: str, dtype: str, units: str,
                   seed: int | None, progress: bool = False, directory: str | None = None,
                   start: dict[str, Any] | None = None, first: int = 0) -> dict[str, Any]:
    import brian2
    from brian2 import (Hz, Network, NeuronGroup, PoissonGroup, PoissonInput, Quantity, SpikeGeneratorGroup,
                        SpikeMonitor, StateMonitor, Synapses, TimedArray, second)

    B = net.batch
    dt_q = dt * second
    build0 = _time.perf_counter()
    with brian_session(target, dtype, directory) as session:
        target = session.resolved
        if seed is not None:
            brian2.seed(int(seed))
        groups: dict[str, Any] = {}
        specs: dict[str, NeuronSpec] = {}
        objects: list[Any] = []
        spike_mons: dict[str, Any] = {}
        for pop in net.populations.values():
            if getattr(pop, "kind", "neurons") == "poisson":
                rates = _flat(pop.rates, B, pop.n, f"Poisson group {pop.name!r} rates")
                g = PoissonGroup(B * pop.n, rates=rates * Hz, dt=dt_q, name=f"np_{pop.name}")
            elif pop.kind == "generator":
                g = SpikeGeneratorGroup(B * pop.n, pop.sample * pop.n + pop.indices, pop.steps * dt_q, dt=dt_q,
                                        name=f"np_{pop.name}")
            else:
                spec, per_neuron = _population_spec(pop, method, units, target)
                specs[pop.name] = spec
                ns = dict(spec.namespace)
                for key, ta in pop.inputs.items():
                    if key in spec.timed_inputs:
                        ns[_timed_name(pop.name, key)] = _timed_array(ta, B, pop.n, spec, key, TimedArray, Quantity)
                g = NeuronGroup(B * pop.n, spec.equations, threshold=spec.threshold, reset=spec.reset,
                                refractory=spec.refractory if spec.refractory is not None else False,
                                method=spec.method or ("exact", "euler", "heun"), namespace=ns, dt=dt_q,
                                name=f"np_{pop.name}")
                _set_initial(g, pop, spec, per_neuron, B)
            groups[pop.name] = g
            objects.append(g)
            if pop.record_spikes:
                spike_mons[pop.name] = SpikeMonitor(g, name=f"np_spikes_{pop.name}")
                objects.append(spike_mons[pop.name])
        plastic = {}
        for syn in net.synapses.values():
            S = _synapses(syn, net, groups, specs, dt_q, Synapses, Quantity)
            objects.append(S)
            if syn.model is not None:
                plastic[syn.name] = S
        for inp in net.poisson_inputs.values():
            objects.append(_poisson_input(inp, groups, specs, PoissonInput, Quantity, Hz))
        state_mons = []
        for m, mon in enumerate(net.monitors):
            spec = specs[mon.population]
            n = net.populations[mon.population].n
            record = [b * n + j for b in range(B) for j in mon.indices]
            sm = StateMonitor(groups[mon.population], [spec.names[v] for v in mon.variables], record=record,
                              when="start", dt=dt_q * mon.every, name=f"np_states_{m}")
            state_mons.append(sm)
            objects.append(sm)
        bnet = Network(*objects)
        if start is not None:
            if session.standalone:
                raise NeuroplexError(f"network {net.name!r}: continuing a run needs a runtime target "
                                     f"(cython or numpy), not {target}")
            load_groups(start, groups, specs, plastic, dt)
            bnet.t_ = first * dt
        build_time = _time.perf_counter() - build0
        run0 = _time.perf_counter()
        report, close = progress_report(progress and not session.standalone, net.name)
        try:
            bnet.run(n_steps * dt_q, namespace={}, report=report, report_period=1 * second)
        finally:
            if close is not None:
                close()
        session.build()
        run_time = _time.perf_counter() - run0
        loop = session.last_run_time()
        spikes = {name: (np.asarray(sm.i[:], dtype=np.int64), np.asarray(sm.t_[:], dtype=float))
                  for name, sm in spike_mons.items()}
        traces = []
        for mon, sm in zip(net.monitors, state_mons):
            spec = specs[mon.population]
            traces.append([np.asarray(getattr(sm, spec.names[v] + "_"), dtype=float) for v in mon.variables])
        final = {}
        for name, spec in specs.items():
            g = groups[name]
            n = net.populations[name].n
            final[name] = torch.as_tensor(np.stack([np.asarray(getattr(g, spec.names[s] + "_"), dtype=float)
                                                    for s in spec.model.state_names]).reshape(-1, B, n))
        synapses = {name: plastic_state(S, net.synapses[name].model) for name, S in plastic.items()}
        end = end_state(first + n_steps, dt, groups, specs, synapses)
        ran = ran_targets(bnet)
        units_used = sorted({s.units for s in specs.values()})
        methods = sorted({s.method or "auto" for s in specs.values()})
    return {"spikes": spikes, "traces": traces, "final": final, "synapses": synapses, "end_state": end, "loop_time": loop, "run_time": run_time,
            "build_time": build_time, "units": ",".join(units_used), "method": ",".join(methods), "target": ran,
            "equations": {k: s.equations for k, s in specs.items()}}


def _timed_array(ta: Any, B: int, n: int, spec: NeuronSpec, key: str, TimedArray: Any, Quantity: Any) -> Any:
    from brian2 import second

    values = np.asarray(ta.values.detach().cpu().numpy() if isinstance(ta.values, torch.Tensor) else ta.values,
                        dtype=float)
    if values.ndim == 3:
        values = values.reshape(values.shape[0], B * n)
    elif values.ndim == 2 and values.shape[1] == n and B > 1:
        values = np.tile(values, (1, B))
    if spec.units == "si":
        values = Quantity(values, dim=spec.input_dims[key])
    return TimedArray(values, dt=float(ta.dt) * second)


def _set_initial(g: Any, pop: Any, spec: NeuronSpec, per_neuron: dict[str, Any], B: int) -> None:
    """Initial states: given values, else the model's initial-value expressions evaluated
    with each neuron's parameters and inputs."""
    model = spec.model
    n = pop.n
    params = np.tile(np.array([[p.value for p in model.parameters]], dtype=float), (B * n, 1))
    for k, v in per_neuron.items():
        params[:, model.parameter_names.index(k)] = _flat(v, B, n, f"population {pop.name!r} parameter {k!r}")
        g.__setattr__(spec.names[k] + "_", params[:, model.parameter_names.index(k)])
    inputs = np.tile(np.array([list(model.inputs.values())], dtype=float).reshape(1, -1), (B * n, 1))
    for col, k in enumerate(model.inputs):
        if k in spec.timed_inputs:
            continue
        if k in pop.inputs:
            inputs[:, col] = _flat(pop.inputs[k], B, n, f"population {pop.name!r} input {k!r}")
        g.__setattr__(spec.names[k] + "_", inputs[:, col])
    missing = [s for s in model.state_names if s not in pop.init]
    computed = initial_values(model, params, inputs) if missing else None
    for col, s in enumerate(model.state_names):
        value = _flat(pop.init[s], B, n, f"population {pop.name!r} init {s!r}") if s in pop.init else computed[:, col]
        g.__setattr__(spec.names[s] + "_", value)


def _poisson_input(inp: Any, groups: dict[str, Any], specs: dict[str, NeuronSpec], PoissonInput: Any,
                   Quantity: Any, Hz: Any) -> Any:
    """Brian2's ``PoissonInput`` (one rate for the whole group: Brian2 takes a scalar rate)."""
    rate = np.asarray(_np(inp.rate), dtype=float)
    if rate.size != 1 and not np.all(rate == rate.ravel()[0]):
        raise NeuroplexError(f"PoissonInput {inp.name!r}: Brian2's PoissonInput takes one rate, "
                             f"not per-network or per-neuron rates")
    spec = specs[inp.population]
    weight: Any = inp.weight
    if spec.units == "si":
        weight = Quantity(inp.weight, dim=spec.state_dims.get(inp.target))
    return PoissonInput(groups[inp.population], spec.names[inp.target], inp.N, float(rate.ravel()[0]) * Hz, weight)


def _synapses(syn: Any, net: Any, groups: dict[str, Any], specs: dict[str, NeuronSpec], dt_q: Any,
              Synapses: Any, Quantity: Any) -> Any:
    """One Brian2 ``Synapses`` object with the network's connection lists (batch offsets added)."""
    pre_n, post_n = net.populations[syn.pre].n, net.populations[syn.post].n
    spec = specs[syn.post]
    tgt = spec.names[syn.target]
    if syn.model is not None:
        model, on_pre, on_post, namespace = plastic_text(syn.model, syn.target, spec, f"synapses {syn.name!r}")
        S = Synapses(groups[syn.pre], groups[syn.post], model=model, on_pre=on_pre, on_post=on_post or None,
                     namespace=namespace, name=f"np_syn_{syn.name}")
        S.connect(i=np.asarray(syn.sample) * pre_n + np.asarray(syn.i), j=np.asarray(syn.sample) * post_n
                  + np.asarray(syn.j))
        set_plastic_state(S, syn)
        return S
    weights = np.asarray(syn.weight, dtype=float)
    shared = weights.size > 0 and bool(np.all(weights == weights[0]))
    unit = spec.state_dims.get(syn.target)
    if shared:
        w = float(weights[0]) if spec.units != "si" else Quantity(float(weights[0]), dim=unit)
        S = Synapses(groups[syn.pre], groups[syn.post], on_pre=f"{tgt} += w_syn", namespace={"w_syn": w},
                     name=f"np_syn_{syn.name}")
    else:
        unit_text = dims_text(unit) if spec.units == "si" else "1"
        S = Synapses(groups[syn.pre], groups[syn.post], model=f"w_syn : {unit_text} (constant)",
                     on_pre=f"{tgt} += w_syn", name=f"np_syn_{syn.name}")
    i = np.asarray(syn.sample, dtype=np.int64) * pre_n + np.asarray(syn.i, dtype=np.int64)
    j = np.asarray(syn.sample, dtype=np.int64) * post_n + np.asarray(syn.j, dtype=np.int64)
    if i.size:
        S.connect(i=i, j=j)
    else:
        S.active = False
    if i.size and not shared:
        S.w_syn_ = weights
    if syn.delay is not None and i.size:
        S.delay_ = np.asarray(syn.delay, dtype=float) * float(dt_q)
    return S


def _solution(net: Any, result: dict[str, Any], n_steps: int, dt: float, target: str, dtype: str,
              first: int = 0) -> Solution:
    B = net.batch
    offsets = net.population_offsets()
    samples, index, times = [], [], []
    for name, (gi, gt) in result["spikes"].items():
        n = net.populations[name].n
        samples.append(gi // n)
        index.append(gi % n + offsets[name][0])
        times.append(gt)
    if samples:
        s, i, t = np.concatenate(samples), np.concatenate(index), np.concatenate(times)
        k = np.rint(t / dt).astype(np.int64)
        order = np.lexsort((i, k, s))
        s, i, k = s[order], i[order], k[order]
    else:
        s = i = k = np.zeros(0, dtype=np.int64)
    spikes = SpikeTrain(torch.as_tensor(s), torch.as_tensor(i), torch.as_tensor(k, dtype=torch.float64) * dt)
    names: list[str] = []
    blocks = []
    ts = None
    for mon, arrays in zip(net.monitors, result["traces"]):
        n_idx = len(mon.indices)
        n_rec = min(a.shape[1] for a in arrays) if arrays else 0
        n_rec = min(n_rec, (n_steps + mon.every - 1) // mon.every)
        block = np.zeros((B, n_rec, len(mon.variables) * n_idx))
        for v, arr in enumerate(arrays):
            for b in range(B):
                block[b, :, v * n_idx:(v + 1) * n_idx] = arr[b * n_idx:(b + 1) * n_idx, :n_rec].T
        names += [f"{mon.population}.{var}[{j}]" for var in mon.variables for j in mon.indices]
        blocks.append(block)
        t_mon = torch.arange(n_rec, dtype=torch.float64) * mon.every * dt
        if ts is None:
            ts = t_mon
        elif ts.shape != t_mon.shape:
            raise NeuroplexError("state monitors with different 'every' cannot share one Solution")
    if blocks:
        ys = torch.as_tensor(np.concatenate(blocks, axis=-1))
    else:
        ys = torch.zeros((B, 0, 0), dtype=torch.float64)
        ts = torch.zeros(0, dtype=torch.float64)
    finite = torch.ones(B, dtype=torch.bool)
    for name, y in result["final"].items():
        finite &= torch.isfinite(y).all(dim=2).all(dim=0)
    status = torch.where(finite, int(Status.SUCCESS), int(Status.NONFINITE)).to(torch.int64)
    counts = torch.bincount(torch.as_tensor(s), minlength=B) if len(s) else torch.zeros(B, dtype=torch.int64)
    by_pop = population_spikes(spikes, offsets)
    rates = {name: population_rate(by_pop[name], offsets[name][1], B, first, n_steps, dt) for name in net.rate_monitors}
    synapses = {name: {k: torch.as_tensor(v) for k, v in state.items()} for name, state in result["synapses"].items()}
    return Solution(
        ys=ys, ts=ts, names=names, status=status,
        stats={"n_steps": torch.full((B,), n_steps, dtype=torch.int64), "n_spikes": counts},
        spikes=spikes, solver="brian2", method=result["method"],
        meta={"model": net.name, "dt": dt, "populations": offsets, "loop_time": result["loop_time"],
              "run_time": result["run_time"], "build_time": result["build_time"], "final_state": result["final"],
              "spikes": by_pop, "rates": rates, "synapses": synapses,
              "dtype": dtype, "target": result["target"], "target_requested": target, "units": result["units"],
              "brian_equations": result["equations"], "units_of": net.units_of(), "time_unit": "second"},
    )


__all__ = ["is_network", "run_network"]
