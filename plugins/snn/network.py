"""Spiking networks: populations of one neuron IR, synapses, Poisson inputs and monitors.

A :class:`Network` is a plain description (numpy connectivity, torch initial values); the
clock-driven engine (:mod:`neuroplex.plugins.snn.engine`) runs it on torch, the Brian2
backend builds Brian objects from the same description, and :meth:`Network.export` /
:meth:`Network.load` move one network *instance* between simulators.

Conventions (Brian2's):

* Time in seconds, fixed step ``dt`` (default 0.1 ms), step ``k`` covers ``[k dt, (k+1) dt)``.
* Order inside a step: state update of every population, threshold of every population,
  synaptic propagation (``target += weight`` on the post-synaptic state, after ``delay``
  steps; no delay acts on the next update), reset of spiking neurons.
* A spike detected in step ``k`` has time ``k dt``; refractoriness is
  ``timestep(t - lastspike) < timestep(refractory)``.
* ``batch = B`` runs B independent networks in one call: initial values may be ``(n,)``
  (shared) or ``(B, n)``; connectivity is one list of synapses with a ``sample`` column.

Example::

    net = Network(dt=1e-4)
    P = net.add_population("P", get_neuron("lif")(synapses="current"), 4000,
                           init={"v": v0})
    net.connect("P", "P", "ge", p=0.02, weight=1.62e-3, pre_range=(0, 3200), seed=1)
    net.monitor("P", ["v"], [0, 1, 2])
    sol = net.run(1.0)          # neuroplex.Solution; sol.spikes is a SpikeTrain
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch

from neuroplex.errors import ModelError, NeuroplexError
from neuroplex.host import get_neuron
from neuroplex.ir import ModelIR
from neuroplex.units import Quantity, to_si

from .elements import (ArrayLike, PoissonGroup, PoissonInput, Population, SpikeGeneratorGroup, StateMonitor, Synapses,
                       TimedArray)
from .engine import Engine
from .plasticity import SynapseModel

FORMAT_VERSION = 1


class Network:
    """A spiking network description (see the module docstring)."""

    #: the model kind: solvers run networks through a registered ``network`` runner or natively
    kind: ClassVar[str] = "network"

    def __init__(self, *, dt: float = 1e-4, batch: int = 1, name: str = "network"):
        if batch < 1:
            raise NeuroplexError(f"network batch must be >= 1, not {batch}")
        self.dt = float(dt)
        self.batch = int(batch)
        self.name = name
        self.populations: dict[str, Population | PoissonGroup | SpikeGeneratorGroup] = {}
        self.synapses: dict[str, Synapses] = {}
        self.monitors: list[StateMonitor] = []
        self.poisson_inputs: dict[str, PoissonInput] = {}
        self.rate_monitors: list[str] = []
        self.meta: dict[str, Any] = {}
        #: where the next ``run(resume=True)`` starts (set by a run, or by :meth:`restore`)
        self.end_state: dict[str, Any] | None = None
        self._stored: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ building
    def add_population(self, name: str, model: ModelIR, n: int, *, method: str | None = None,
                       init: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
                       inputs: dict[str, Any] | None = None, record_spikes: bool = True) -> Population:
        """Add ``n`` neurons of ``model`` (a :class:`ModelIR`, e.g. ``get_neuron("lif")()``).

        ``init``/``params`` values: one value for every neuron or an array per neuron (SI numbers,
        the engines' arrays), or a quantity (``-60*mV``, a Brian2 quantity, ``"-60 mV"``) checked
        against the state's or parameter's unit. Parameters outside the neuron's allowed range
        (``metadata["bounds"]``, e.g. a time constant of 0) are refused naming the neuron index."""
        self._check_name(name)
        if not isinstance(model, ModelIR):
            raise ModelError(f"population {name!r}: model must be a ModelIR, not {type(model).__name__}")
        model.validate()
        init = {key: _si(name, key, value, model.state(key).unit) for key, value in (init or {}).items()}
        params = {key: _si(name, key, value, model.parameter(key).unit) for key, value in (params or {}).items()}
        for key, value in params.items():
            _check_range(name, model, key, value)
        for key in inputs or {}:
            if key not in model.inputs:
                raise ModelError(f"population {name!r}: model {model.name!r} has no input {key!r} "
                                 f"(inputs: {', '.join(model.inputs) or 'none'})")
        pop = Population(name, model, int(n), method, init, params, dict(inputs or {}), record_spikes)
        self.populations[name] = pop
        return pop

    def add_poisson(self, name: str, n: int, rates: ArrayLike, *, record_spikes: bool = False) -> PoissonGroup:
        """Add ``n`` Poisson sources firing at ``rates`` Hz."""
        self._check_name(name)
        group = PoissonGroup(name, int(n), rates, record_spikes)
        self.populations[name] = group
        return group

    def add_spike_generator(self, name: str, n: int, indices: ArrayLike, times: ArrayLike, *,
                            sample: ArrayLike | None = None,
                            record_spikes: bool = False) -> SpikeGeneratorGroup:
        """Add ``n`` sources spiking at ``times`` (seconds; source ``indices[k]`` at ``times[k]``),
        Brian2's ``SpikeGeneratorGroup``. A time falls in step ``floor(time/dt + 1e-3)``, as in Brian2
        (the step whose interval holds it; the shift keeps a time on the grid in its own step). ``sample``:
        which network each spike belongs to (default: the same spikes in every network)."""
        self._check_name(name)
        idx = np.asarray(indices, dtype=np.int64).ravel()
        t = np.asarray(times, dtype=np.float64).ravel()
        if idx.shape != t.shape:
            raise NeuroplexError(f"spike generator {name!r}: {idx.size} indices but {t.size} times")
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise NeuroplexError(f"spike generator {name!r}: index outside 0..{n - 1}")
        if idx.size and (not np.isfinite(t).all() or t.min() < 0):
            raise NeuroplexError(f"spike generator {name!r}: times must be finite and >= 0")
        steps = np.floor((t + 1e-3 * self.dt) / self.dt).astype(np.int64)  # Brian2's _timebins
        if sample is None:
            ss = np.repeat(np.arange(self.batch), idx.size)
            idx, steps = np.tile(idx, self.batch), np.tile(steps, self.batch)
        else:
            ss = np.asarray(sample, dtype=np.int64).ravel()
            if ss.shape != idx.shape or (ss.size and (ss.min() < 0 or ss.max() >= self.batch)):
                raise NeuroplexError(f"spike generator {name!r}: sample must give one network in "
                                     f"0..{self.batch - 1} per spike")
        key = np.stack([ss, steps, idx])
        if key.shape[1] and np.unique(key, axis=1).shape[1] != key.shape[1]:
            raise NeuroplexError(f"spike generator {name!r}: a source spikes twice in one step")
        group = SpikeGeneratorGroup(name, int(n), idx, steps, ss, record_spikes)
        self.populations[name] = group
        return group

    def add_poisson_input(self, population: str, target: str, N: int, rate: ArrayLike, weight: float, *,
                          name: str | None = None) -> PoissonInput:
        """Brian2's ``PoissonInput``: each step ``target += weight * Binomial(N, rate*dt)`` on every
        neuron of ``population`` (``rate`` in Hz: scalar, ``(B, 1)`` or ``(B, n)``)."""
        pop = self._pop(population)
        if not isinstance(pop, Population):
            raise NeuroplexError(f"PoissonInput: {population!r} is not a population of neurons")
        pop.model.state(target)
        if int(N) < 0:
            raise NeuroplexError(f"PoissonInput on {population!r}: N must be >= 0, not {N}")
        name = name or f"poissoninput_{population}_{target}_{len(self.poisson_inputs)}"
        if name in self.poisson_inputs:
            raise NeuroplexError(f"PoissonInput {name!r} already exists")
        inp = PoissonInput(name, population, target, int(N), rate, float(weight))
        self.poisson_inputs[name] = inp
        return inp

    def connect(self, pre: str, post: str, target: str, *, weight: Any, i: Any = None, j: Any = None,
                p: float | None = None, in_degree: int | None = None, seed: int | None = None,
                pre_range: tuple[int, int] | None = None, post_range: tuple[int, int] | None = None,
                autapses: bool = True, delay: Any = None, sample: Any = None, name: str | None = None,
                model: SynapseModel | None = None) -> Synapses:
        """Connect ``pre`` to ``post`` so that a pre spike does ``target += weight``.

        ``model``: a plastic synapse (:class:`~.plasticity.SynapseModel`, e.g.
        ``get_learning_rule("stdp")()``): each synapse then has its own ``w`` (starting at
        ``weight``) and the model's variables, changed by its ``on_pre``/``on_post`` statements.

        Give either explicit lists ``i`` (pre) and ``j`` (post) (with ``sample`` for batched
        networks; default: the same list in every sample), or ``p`` (independent Bernoulli
        per pair, Brian2's ``connect(p=...)``) or ``in_degree`` (each post neuron draws that
        many distinct pre neurons). ``pre_range``/``post_range`` restrict to index ranges
        ``[a, b)`` (e.g. the excitatory part). Random connectivity differs per sample and is
        reproducible from ``seed``. ``weight``: scalar or per synapse; ``delay``: whole steps of dt
        (scalar or per synapse), default none.
        """
        name = name or f"{pre}_{post}_{target}_{len(self.synapses)}"
        if name in self.synapses:
            raise NeuroplexError(f"synapses {name!r} already exist")
        src, dst = self._pop(pre), self._pop(post)
        if not isinstance(dst, Population):
            raise NeuroplexError(f"synapses {name!r}: post-synaptic group {post!r} is not a population of neurons")
        dst.model.state(target)
        a0, a1 = pre_range or (0, src.n)
        b0, b1 = post_range or (0, dst.n)
        if explicit := (i is not None or j is not None):
            if i is None or j is None or p is not None or in_degree is not None:
                raise NeuroplexError(f"synapses {name!r}: give i and j together, without p/in_degree")
            ii = _whole(i, name, "i").ravel()
            jj = _whole(j, name, "j").ravel()
            if ii.shape != jj.shape:
                raise NeuroplexError(f"synapses {name!r}: i has {ii.size} entries, j has {jj.size}")
            if sample is None:  # the same list in every sample
                ss = np.repeat(np.arange(self.batch), ii.size)
                ii, jj = np.tile(ii, self.batch), np.tile(jj, self.batch)
                weight, delay = (x if x is None or np.ndim(x) == 0 else
                                 np.tile(np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x),
                                         self.batch) for x in (weight, delay))
            else:
                ss = _whole(sample, name, "sample").ravel()
        else:
            rng = np.random.default_rng(seed)
            parts = [_random_connect(rng, a0, a1, b0, b1, p, in_degree, pre == post and not autapses)
                     for _ in range(self.batch)]
            ii = np.concatenate([q[0] for q in parts])
            jj = np.concatenate([q[1] for q in parts])
            ss = np.concatenate([np.full(q[0].size, b, dtype=np.int64) for b, q in enumerate(parts)])
        n_syn = ii.size
        if n_syn and (ii.min() < 0 or ii.max() >= src.n or jj.min() < 0 or jj.max() >= dst.n):
            raise NeuroplexError(f"synapses {name!r}: indices outside {pre!r} (n={src.n}) or {post!r} (n={dst.n})")
        if n_syn and (ss.min() < 0 or ss.max() >= self.batch):
            raise NeuroplexError(f"synapses {name!r}: sample index outside 0..{self.batch - 1}")
        w = _per_synapse(weight, n_syn, np.float64, name, "weight", explicit)
        d = None if delay is None else _per_synapse(_whole(delay, name, "delay (in steps of dt)"), n_syn, np.int64,
                                                    name, "delay", explicit)
        if d is not None and n_syn and d.min() < 0:
            raise NeuroplexError(f"synapses {name!r}: negative delay")
        if model is not None:
            if not isinstance(model, SynapseModel):
                raise NeuroplexError(f"synapses {name!r}: model must be a SynapseModel, not {type(model).__name__}")
            if d is not None and n_syn and d.max() > 0:
                raise NeuroplexError(f"synapses {name!r}: plastic synapses with delays are not supported")
            d = None
        state = {} if model is None else {k: np.full(n_syn, v) for k, v in model.variables.items() if k != "w"}
        syn = Synapses(name, pre, post, target, ii, jj, w, ss, d, model, state)
        self.synapses[name] = syn
        return syn

    def monitor(self, population: str, variables: Sequence[str], indices: Sequence[int] | None = None,
                every: int = 1) -> StateMonitor:
        """Record state ``variables`` of ``indices`` (default all) of ``population``."""
        pop = self._pop(population)
        if not isinstance(pop, Population):
            raise NeuroplexError(f"cannot monitor the state of Poisson group {population!r}")
        for v in variables:
            pop.model.state(v)
        idx = list(range(pop.n)) if indices is None else [int(x) for x in indices]
        if any(x < 0 or x >= pop.n for x in idx):
            raise NeuroplexError(f"monitor of {population!r}: index outside 0..{pop.n - 1}")
        mon = StateMonitor(population, list(variables), idx, int(every))
        self.monitors.append(mon)
        return mon

    def units_of(self) -> dict[str, str]:
        """The unit of every monitored trace (``"P.v[3]" -> "volt"``), from the population's
        model, for ``Solution.meta["units_of"]`` (plots label their axes with it)."""
        out = {}
        for mon in self.monitors:
            model = self.populations[mon.population].model
            for var in mon.variables:
                unit = model.state(var).unit
                out.update({f"{mon.population}.{var}[{j}]": unit for j in mon.indices})
        return out

    def rate_monitor(self, population: str) -> None:
        """Record ``population``'s rate (Brian2's ``PopulationRateMonitor``): the run's
        ``meta["rates"][population]`` is ``(B, steps)``, spikes per step / (n dt) in Hz."""
        pop = self._pop(population)
        pop.record_spikes = True
        if population not in self.rate_monitors:
            self.rate_monitors.append(population)

    # ------------------------------------------------------------------- running
    def run(self, duration: float, *, method: str | None = None, dtype: Any = torch.float64,
            device: Any = "cpu", dt: float | None = None, progress: bool = False, seed: int | None = None,
            chunk: int | None = None, backend: str = "auto", resume: bool = False) -> Any:
        """Run for ``duration`` seconds on the clock-driven engine (``backend``: ``auto``, ``c``
        or ``torch``, see :mod:`neuroplex.plugins.snn.engine`); a
        :class:`neuroplex.solution.Solution` (spikes in ``.spikes``, per population in
        ``.meta["spikes"]``, monitored traces in ``.ys`` named ``"<population>.<state>[<index>]"``,
        plastic synapses' final variables in ``.meta["synapses"]``).

        Each run starts from the initial values unless ``resume=True``: then it continues from
        where the previous run ended (or from :meth:`restore`), as a second ``run()`` in Brian2:
        states, refractoriness, synaptic variables and time go on (spike times count from the
        network's start)."""
        start = self.end_state if resume else None
        if start is not None and backend == "auto":
            backend = "torch"
        engine = Engine(self, dt=dt or self.dt, method=method, dtype=dtype, device=device, backend=backend)
        sol = engine.run(duration, progress=progress, seed=seed, chunk=chunk, start=start)
        self.end_state = engine.end_state
        return sol

    def store(self, name: str = "default") -> None:
        """Remember the state the next ``run(resume=True)`` would start from (Brian2's
        ``store``); before any run, the initial state."""
        self._stored[name] = {"state": None if self.end_state is None else _clone(self.end_state)}

    def restore(self, name: str = "default") -> None:
        """Go back to the state saved by :meth:`store` (the next ``run(resume=True)`` starts there)."""
        if name not in self._stored:
            raise NeuroplexError(f"network {self.name!r}: nothing stored as {name!r} "
                                 f"(stored: {', '.join(self._stored) or 'none'})")
        saved = self._stored[name]["state"]
        self.end_state = None if saved is None else _clone(saved)

    # --------------------------------------------------------- export / import
    def export(self, path: str | os.PathLike) -> Path:
        """Write the network instance (connectivity, weights, delays, initial values,
        parameters, inputs, monitors) to ``path`` (``.npz``), atomically."""
        spec: dict[str, Any] = {"format": "neuroplex-network", "version": FORMAT_VERSION, "name": self.name,
                                "dt": self.dt, "batch": self.batch, "populations": [], "synapses": [],
                                "monitors": [vars(m) for m in self.monitors], "meta": self.meta}
        arrays: dict[str, np.ndarray] = {}
        spec["rate_monitors"] = list(self.rate_monitors)
        spec["poisson_inputs"] = []
        for inp in self.poisson_inputs.values():
            arrays[f"pin.{inp.name}.rate"] = _np(torch.as_tensor(inp.rate, dtype=torch.float64))
            spec["poisson_inputs"].append({"name": inp.name, "population": inp.population, "target": inp.target,
                                           "N": inp.N, "weight": inp.weight})
        for pop in self.populations.values():
            if isinstance(pop, SpikeGeneratorGroup):
                for key in ("indices", "steps", "sample"):
                    arrays[f"pop.{pop.name}.{key}"] = getattr(pop, key)
                spec["populations"].append({"name": pop.name, "kind": "generator", "n": pop.n,
                                            "record_spikes": pop.record_spikes})
                continue
            if isinstance(pop, PoissonGroup):
                arrays[f"pop.{pop.name}.rates"] = np.asarray(torch.as_tensor(pop.rates, dtype=torch.float64))
                spec["populations"].append({"name": pop.name, "kind": "poisson", "n": pop.n,
                                            "record_spikes": pop.record_spikes})
                continue
            factory = pop.model.metadata.get("factory")
            if not factory:
                raise NeuroplexError(f"population {pop.name!r}: only registered neurons can be exported "
                                     f"(model {pop.model.name!r} has no metadata['factory'])")
            entry = {"name": pop.name, "kind": "neurons", "n": pop.n, "method": pop.method,
                     "factory": factory, "factory_kwargs": pop.model.metadata.get("factory_kwargs", {}),
                     "record_spikes": pop.record_spikes, "params": {}, "inputs": {}, "init": [], "timed": {}}
            for key, val in pop.params.items():
                if _is_scalar(val):
                    entry["params"][key] = float(val)
                else:
                    arrays[f"pop.{pop.name}.param.{key}"] = _np(val)
                    entry["params"][key] = None
            for key, val in pop.init.items():
                arrays[f"pop.{pop.name}.init.{key}"] = _np(val)
                entry["init"].append(key)
            for key, val in pop.inputs.items():
                if isinstance(val, TimedArray):
                    arrays[f"pop.{pop.name}.input.{key}"] = _np(val.values)
                    entry["timed"][key] = val.dt
                elif _is_scalar(val):
                    entry["inputs"][key] = float(val)
                else:
                    arrays[f"pop.{pop.name}.input.{key}"] = _np(val)
                    entry["inputs"][key] = None
            spec["populations"].append(entry)
        for syn in self.synapses.values():
            model = None if syn.model is None else {
                "name": syn.model.name, "params": syn.model.params, "variables": syn.model.variables,
                "traces": syn.model.traces, "clock_driven": syn.model.clock_driven, "on_pre": syn.model.on_pre, "on_post": syn.model.on_post,
                "units": syn.model.units}
            spec["synapses"].append({"name": syn.name, "pre": syn.pre, "post": syn.post, "target": syn.target,
                                     "has_delay": syn.delay is not None, "model": model, "state": list(syn.state)})
            for key in ("i", "j", "weight", "sample") + (("delay",) if syn.delay is not None else ()):
                arrays[f"syn.{syn.name}.{key}"] = getattr(syn, key)
            for key, values in syn.state.items():
                arrays[f"syn.{syn.name}.state.{key}"] = values
        arrays["__network__"] = np.frombuffer(json.dumps(spec).encode(), dtype=np.uint8)
        return _atomic_savez(Path(path), arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Network":
        """Read a network written by :meth:`export`, or Brian2's exported CUBA instance
        (keys ``exc_pre, exc_post, inh_pre, inh_post, v0_mV``: see ``builders.cuba``)."""
        path = Path(path)
        if not path.exists():
            raise NeuroplexError(f"{path}: no such network file")
        try:
            data = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise NeuroplexError(f"{path}: not a readable .npz network file ({exc})") from None
        keys = set(data.files)
        if "__network__" not in keys:
            if {"exc_pre", "exc_post", "inh_pre", "inh_post", "v0_mV"} <= keys:
                from .builders import cuba_from_instance  # builders build on this module

                return cuba_from_instance(path)
            raise NeuroplexError(f"{path}: not a neuroplex network file (no '__network__' entry; "
                                 f"keys: {', '.join(sorted(keys))})")
        spec = json.loads(bytes(data["__network__"]).decode())
        if spec.get("format") != "neuroplex-network":
            raise NeuroplexError(f"{path}: unknown network format {spec.get('format')!r}")
        net = cls(dt=spec["dt"], batch=spec["batch"], name=spec.get("name", "network"))
        net.meta = dict(spec.get("meta", {}))
        for entry in spec["populations"]:
            name = entry["name"]
            if entry["kind"] == "poisson":
                net.add_poisson(name, entry["n"], torch.as_tensor(data[f"pop.{name}.rates"]),
                                record_spikes=entry["record_spikes"])
                continue
            if entry["kind"] == "generator":
                steps = data[f"pop.{name}.steps"].astype(np.int64)
                net.populations[name] = SpikeGeneratorGroup(
                    name, entry["n"], data[f"pop.{name}.indices"].astype(np.int64), steps,
                    data[f"pop.{name}.sample"].astype(np.int64), entry["record_spikes"])
                continue
            model = get_neuron(entry["factory"])(**entry["factory_kwargs"])
            params = {k: (v if v is not None else torch.as_tensor(data[f"pop.{name}.param.{k}"]))
                      for k, v in entry["params"].items()}
            init = {k: torch.as_tensor(data[f"pop.{name}.init.{k}"]) for k in entry["init"]}
            inputs: dict[str, Any] = {k: (v if v is not None else torch.as_tensor(data[f"pop.{name}.input.{k}"]))
                                      for k, v in entry["inputs"].items()}
            for k, tdt in entry["timed"].items():
                inputs[k] = TimedArray(torch.as_tensor(data[f"pop.{name}.input.{k}"]), tdt)
            net.add_population(name, model, entry["n"], method=entry["method"], init=init, params=params,
                               inputs=inputs, record_spikes=entry["record_spikes"])
        for entry in spec["synapses"]:
            name = entry["name"]
            arr = {k: data[f"syn.{name}.{k}"] for k in ("i", "j", "weight", "sample")}
            delay = data[f"syn.{name}.delay"] if entry["has_delay"] else None
            model = None if entry.get("model") is None else SynapseModel(**entry["model"])
            state = {k: data[f"syn.{name}.state.{k}"].astype(np.float64) for k in entry.get("state", [])}
            net.synapses[name] = Synapses(name, entry["pre"], entry["post"], entry["target"],
                                          arr["i"].astype(np.int64), arr["j"].astype(np.int64),
                                          arr["weight"].astype(np.float64), arr["sample"].astype(np.int64),
                                          None if delay is None else delay.astype(np.int64), model, state)
        for m in spec["monitors"]:
            net.monitors.append(StateMonitor(m["population"], list(m["variables"]), list(m["indices"]),
                                             int(m["every"])))
        for entry in spec.get("poisson_inputs", []):
            net.add_poisson_input(entry["population"], entry["target"], entry["N"],
                                  torch.as_tensor(data[f"pin.{entry['name']}.rate"]), entry["weight"],
                                  name=entry["name"])
        for name in spec.get("rate_monitors", []):
            net.rate_monitor(name)
        return net

    # ------------------------------------------------------------------ helpers
    def _check_name(self, name: str) -> None:
        if not name or not name.replace("_", "").isalnum():
            raise NeuroplexError(f"population name {name!r} must be alphanumeric (underscores allowed)")
        if name in self.populations:
            raise NeuroplexError(f"population {name!r} already exists")

    def _pop(self, name: str) -> Population | PoissonGroup:
        try:
            return self.populations[name]
        except KeyError:
            raise NeuroplexError(f"no population {name!r}; have {', '.join(self.populations) or 'none'}") from None

    def population_offsets(self) -> dict[str, tuple[int, int]]:
        """``{name: (offset, n)}``: global spike indices of each population's neurons."""
        out, off = {}, 0
        for pop in self.populations.values():
            out[pop.name] = (off, pop.n)
            off += pop.n
        return out

    def __repr__(self) -> str:
        pops = ", ".join(f"{p.name}[{p.n}]" for p in self.populations.values())
        return f"Network({pops}; {sum(len(s) for s in self.synapses.values())} synapses; batch {self.batch})"


def _clone(state: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of an engine state (tensors cloned, nested dicts copied)."""
    return {k: v.clone() if isinstance(v, torch.Tensor) else _clone(v) if isinstance(v, dict) else v
            for k, v in state.items()}


def _random_connect(rng: np.random.Generator, a0: int, a1: int, b0: int, b1: int, p: float | None,
                    in_degree: int | None, no_autapses: bool) -> tuple[np.ndarray, np.ndarray]:
    n_pre, n_post = a1 - a0, b1 - b0
    if (p is None) == (in_degree is None):
        raise NeuroplexError("connect: give exactly one of i/j, p or in_degree")
    if p is not None:
        if not 0.0 <= p <= 1.0:
            raise NeuroplexError(f"connect: p must be in [0, 1], not {p}")
        ii, jj = [], []
        rows = max(1, 4_000_000 // max(n_post, 1))
        for r0 in range(0, n_pre, rows):
            r1 = min(n_pre, r0 + rows)
            hit = rng.random((r1 - r0, n_post), dtype=np.float32) < p
            ri, rj = np.nonzero(hit)
            ii.append(ri + r0 + a0)
            jj.append(rj + b0)
        i, j = np.concatenate(ii).astype(np.int64), np.concatenate(jj).astype(np.int64)
    else:
        k = int(in_degree)
        if not 0 <= k <= n_pre:
            raise NeuroplexError(f"connect: in_degree {k} outside 0..{n_pre}")
        # k distinct pre neurons per post neuron: the k smallest of n_pre random keys
        jj, ii = [], []
        rows = max(1, 2_000_000 // max(n_pre, 1))
        for c0 in range(0, n_post, rows):
            c1 = min(n_post, c0 + rows)
            keys = rng.random((c1 - c0, n_pre))
            pick = np.argpartition(keys, k - 1, axis=1)[:, :k] if 0 < k < n_pre else np.tile(np.arange(k), (c1 - c0, 1))
            ii.append(np.sort(pick, axis=1).ravel() + a0)
            jj.append(np.repeat(np.arange(c0, c1), k) + b0)
        i, j = np.concatenate(ii).astype(np.int64), np.concatenate(jj).astype(np.int64)
        order = np.lexsort((j, i))
        i, j = i[order], j[order]
    if no_autapses:
        keep = i != j
        i, j = i[keep], j[keep]
    return i, j


def _per_synapse(value: Any, n: int, dtype: Any, name: str, what: str, explicit: bool) -> np.ndarray:
    arr = np.asarray(value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value, dtype=dtype)
    if arr.ndim == 0:
        return np.full(n, arr, dtype=dtype)
    arr = arr.ravel()
    if arr.size != n:
        raise NeuroplexError(f"synapses {name!r}: {what} has {arr.size} entries for {n} synapses")
    return arr


def _whole(value: Any, name: str, what: str) -> np.ndarray:
    """``value`` as int64, refusing what is not a whole number (casting would truncate it).

    A delay of ``2e-3`` (seconds, Brian2's way) or ``0.0029 / 1e-4`` (28.999999999999996)
    would otherwise become 0 or 28 steps; values within 1e-9 of a whole number are rounded.
    """
    arr = np.asarray(_np(value))
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64)
    num = arr.astype(np.float64)
    whole = np.round(num)
    bad = ~np.isfinite(num) | (np.abs(num - whole) > 1e-9 * np.maximum(1.0, np.abs(whole)))
    if bad.any():
        raise NeuroplexError(f"synapses {name!r}: {what} must be whole numbers; got {num.ravel()[bad.ravel()][0]!r}"
                             + (" (a delay counts steps of dt: give round(delay_s / dt))" if "delay" in what else ""))
    return whole.astype(np.int64)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (int, float)) or (isinstance(value, (torch.Tensor, np.ndarray)) and np.ndim(value) == 0)


def _np(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _si(population: str, key: str, value: Any, unit: str) -> Any:
    """A quantity or a unit string as its SI number (checked against ``unit``); numbers and arrays
    (already SI) unchanged."""
    brian_scalar = hasattr(value, "dim") and not isinstance(value, torch.Tensor) and np.ndim(value) == 0
    if isinstance(value, (str, Quantity)) or brian_scalar:
        return to_si(value, unit, f"population {population!r}: {key}")
    return value


def _check_range(population: str, model: ModelIR, key: str, value: Any) -> None:
    """Refuse a parameter value outside the bound the neuron declares (``"positive"``,
    ``"nonnegative"``), or a NaN, naming the first offending neuron."""
    bound = model.metadata.get("bounds", {}).get(key, "")
    values = np.atleast_1d(value.detach().cpu().numpy() if isinstance(value, torch.Tensor)
                           else np.asarray(value, dtype=np.float64)).ravel()
    bad = ~np.isfinite(values)
    if bound == "positive":
        bad |= values <= 0
    elif bound == "nonnegative":
        bad |= values < 0
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        need = {"positive": "> 0", "nonnegative": ">= 0"}.get(bound, "finite")
        raise ModelError(f"population {population!r} (model {model.name!r}): {key} = {values[first]:g} "
                         f"(neuron {first}) is degenerate; {key} must be {need}")
