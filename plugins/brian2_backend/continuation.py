"""Continuing a network run on Brian2 from where an earlier run ended (on either engine).

The end of a run is the torch engine's ``end_state`` format (see
:meth:`neuroplex.plugins.snn.Engine.run`): the next ``step``, ``dt``, per neuron population its
flat state ``(S*B*n,)`` (state-major) and last spike steps ``(B*n,)``, per plastic synapse set
its variables and ``lastupdate``, the delay ring buffers. A Brian2 run reads it into the groups
(``lastspike`` in seconds, never-spiked as Brian2's ``-1e4 s``) and starts its clock at
``step*dt``; after the run it writes the same format back, so a run can go on on the other
engine. Spikes still in flight in delayed synapses cannot be handed to Brian2's queues.
"""
from __future__ import annotations

import numpy as np
import torch

from neuroplex.errors import NeuroplexError

from .translate import NeuronSpec

#: the engine's "never spiked" step and Brian2's "never spiked" time
NEVER = -(2 ** 30)
BRIAN_NEVER = -1e4


def check_start(start: dict[str, object], dt: float, t0: float, name: str) -> int:
    """The step a run starting at ``t0`` continues from (errors name the mismatch)."""
    step = int(start["step"])  # type: ignore[call-overload]
    if abs(float(start["dt"]) - dt) > 1e-12 * dt:  # type: ignore[arg-type]
        raise NeuroplexError(f"network {name!r}: cannot continue a run made with dt={start['dt']} at dt={dt}")
    if abs(step * dt - t0) > 0.5 * dt:
        raise NeuroplexError(f"network {name!r}: the previous run ended at t={step * dt:g} s, "
                             f"not at the requested start {t0:g} s")
    delays = start.get("delays") or {}
    if any(bool(torch.as_tensor(buf).any()) for buf in delays.values()):  # type: ignore[union-attr]
        raise NeuroplexError(f"network {name!r}: spikes are still in flight in delayed synapses; Brian2 "
                             f"cannot take them over (continue on the torch engine)")
    return step


def load_groups(start: dict[str, object], groups: dict[str, object], specs: dict[str, NeuronSpec],
                plastic: dict[str, object], dt: float) -> None:
    """Put the neuron states, last spikes and plastic variables of ``start`` into Brian2 objects."""
    pops = start["pops"]
    for name, spec in specs.items():
        Y, L = pops[name]  # type: ignore[index]
        g = groups[name]
        rows = torch.as_tensor(Y, dtype=torch.float64).view(len(spec.model.state_names), -1).numpy()
        for r, state in enumerate(spec.model.state_names):
            setattr(g, spec.names[state] + "_", rows[r])
        if "lastspike" in getattr(g, "variables"):
            steps = torch.as_tensor(L).to(torch.int64).numpy()
            setattr(g, "lastspike_", np.where(steps <= NEVER // 2, BRIAN_NEVER, steps * dt))
    synapses = start.get("synapses") or {}
    for name, S in plastic.items():
        for var, values in synapses[name].items():  # type: ignore[index, union-attr]
            if var in getattr(S, "variables"):  # lastupdate only exists with event-driven variables
                setattr(S, var + "_", torch.as_tensor(values, dtype=torch.float64).numpy())


def end_state(step: int, dt: float, groups: dict[str, object], specs: dict[str, NeuronSpec],
              synapses: dict[str, dict[str, np.ndarray]]) -> dict[str, object]:
    """Where a Brian2 run ended, in the engine's ``end_state`` format."""
    pops: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for name, spec in specs.items():
        g = groups[name]
        Y = np.concatenate([np.asarray(getattr(g, spec.names[s] + "_"), dtype=float) for s in spec.model.state_names])
        size = Y.size // max(len(spec.model.state_names), 1)
        if "lastspike" in getattr(g, "variables"):
            ls = np.asarray(getattr(g, "lastspike_"), dtype=float)
            L = np.where(ls < BRIAN_NEVER / 2, NEVER, np.rint(ls / dt)).astype(np.int32)
        else:
            L = np.full(size, NEVER, dtype=np.int32)
        pops[name] = (torch.as_tensor(Y), torch.as_tensor(L))
    return {"step": step, "dt": dt, "pops": pops, "delays": {},
            "synapses": {k: {v: torch.as_tensor(a) for v, a in d.items()} for k, d in synapses.items()}}
