"""The parts of a spiking network: populations of one neuron model, Poisson groups, synapse
sets, state monitors and ``TimedArray`` inputs (plain data; :class:`~.network.Network` puts
them together, the engine and the Brian2 backend read them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence, Union

import numpy as np
import torch

from neuroplex.ir import ModelIR

from .plasticity import SynapseModel

#: Brian2's ``Clock.epsilon_dt``: a time this close to a grid point (in units of dt) is on it
EPSILON_DT = 1e-4


def timestep(t: float, dt: float) -> int:
    """The step count of a run to time ``t`` on a clock of step ``dt``, as Brian2's
    ``Clock._calc_timestep`` counts it: ``round(t/dt)`` when that grid point is within
    ``1e-4 dt`` of ``t``, else rounded up, so that the step holding ``t`` is simulated
    (a run of 1.234 ms at dt 0.1 ms takes 13 steps, one of 0.25 ms 3)."""
    k = int(np.round(t / dt))
    if abs(k * dt - t) / dt <= EPSILON_DT:
        return k
    return int(np.ceil(t / dt))

#: numbers given per neuron, synapse or spike: a scalar, a sequence, a numpy array or a tensor
ArrayLike = Union[float, Sequence[float], np.ndarray, torch.Tensor]


@dataclass
class TimedArray:
    """An input sampled every ``dt`` seconds: ``values[i]`` holds for ``[i dt, (i+1) dt)``
    (the last value after the end, as Brian2's ``TimedArray``). ``values`` is ``(T,)``
    (all neurons), ``(T, n)`` or ``(T, B, n)``."""

    values: torch.Tensor
    dt: float

    def __post_init__(self) -> None:
        self.values = torch.as_tensor(self.values, dtype=torch.float64)
        self.dt = float(self.dt)


@dataclass
class Population:
    """``n`` neurons of one model. ``init``: initial values per state (scalar, ``(n,)`` or
    ``(B, n)``), others from the model; ``params``: parameter overrides (scalar or per
    neuron); ``inputs``: values of the model's inputs (scalar, tensor or :class:`TimedArray`);
    ``method``: integration method (default ``model.metadata['method']``)."""

    name: str
    model: ModelIR
    n: int
    method: str | None = None
    init: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    record_spikes: bool = True
    kind: str = "neurons"

    @property
    def integration_method(self) -> str:
        return self.method or str(self.model.metadata.get("method", "euler"))


@dataclass
class PoissonGroup:
    """``n`` independent Poisson sources: spike in a step iff ``rand() < rate dt`` (Brian2's
    ``PoissonGroup``). ``rates`` in Hz, scalar or ``(n,)``."""

    name: str
    n: int
    rates: Any
    record_spikes: bool = False
    kind: str = "poisson"


@dataclass
class Synapses:
    """Synapses ``pre -> post`` acting on the post-synaptic state ``target`` by
    ``target += weight`` when the pre-synaptic neuron spikes (``delay`` steps later).

    ``i``, ``j``, ``sample``: int64 arrays, one entry per synapse (``sample`` = which of the
    B independent networks); ``weight``: float64 array (target's unit); ``delay``: int64
    steps or None. ``model``: a plastic :class:`~.plasticity.SynapseModel` (then ``weight`` is
    the initial per-synapse ``w``, and ``state`` holds the initial values of its other
    variables, float64 per synapse), or None for fixed weights."""

    name: str
    pre: str
    post: str
    target: str
    i: np.ndarray
    j: np.ndarray
    weight: np.ndarray
    sample: np.ndarray
    delay: np.ndarray | None = None
    model: SynapseModel | None = None
    state: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.i.size)


@dataclass
class StateMonitor:
    """Record ``variables`` of the neurons ``indices`` of ``population`` at the start of
    every ``every``-th step (Brian2's ``StateMonitor(when='start')``)."""

    population: str
    variables: list[str]
    indices: list[int]
    every: int = 1


@dataclass
class SpikeGeneratorGroup:
    """``n`` sources that spike at given steps (Brian2's ``SpikeGeneratorGroup``): one entry
    per spike in ``indices`` (source), ``steps`` (``floor(time/dt + 1e-3)``, Brian2's bins) and ``sample`` (which of
    the B networks), int64 arrays."""

    name: str
    n: int
    indices: np.ndarray
    steps: np.ndarray
    sample: np.ndarray
    record_spikes: bool = False
    kind: str = "generator"


@dataclass
class PoissonInput:
    """Brian2's ``PoissonInput``: every step, each neuron of ``population`` gets
    ``target += weight * Binomial(N, rate dt)`` (``N`` independent Poisson sources at ``rate``
    Hz, without a group of their own). ``rate``: scalar, ``(B, 1)`` or ``(B, n)``."""

    name: str
    population: str
    target: str
    N: int
    rate: Any
    weight: float
