"""Plastic synapses of a :class:`neuroplex.plugins.snn.Network` as Brian2 ``Synapses``.

A :class:`~neuroplex.plugins.snn.SynapseModel` becomes Brian2 text: ``w`` and the model's
variables as per-synapse variables, its traces as ``dX/dt = -X/tau : unit (event-driven)``
(clock-driven ones ``(clock-driven)``),
``on_pre`` = ``<target>_post += w`` followed by the model's ``on_pre`` lines, ``on_post`` the
model's ``on_post`` lines. Post-synaptic states are written ``<name>_post`` with the Brian2
name of the state; the model's parameters go into the namespace as ``p_<name>`` (no clash with
Brian2's own identifiers). Units (``"si"`` mode): ``"weight"`` is the unit of the target state,
time constants are seconds, the rest dimensionless.
"""
from __future__ import annotations

import re

import numpy as np

from neuroplex.errors import ModelError
from neuroplex.plugins.snn import SynapseModel, Synapses

from .translate import NeuronSpec, dims_text

_IDENT = re.compile(r"[A-Za-z_]\w*")
_FUNCTIONS = {"clip", "exp", "sqrt", "abs"}


def _rename(line: str, names: dict[str, str]) -> str:
    return _IDENT.sub(lambda m: names.get(m.group(0), m.group(0)), line)


def plastic_text(model: SynapseModel, target: str, spec: NeuronSpec, where: str) -> tuple[str, str, str, dict[str, object]]:
    """``(model, on_pre, on_post, namespace)`` of a Brian2 ``Synapses`` for ``model`` acting on
    the post-synaptic state ``target`` of a population translated as ``spec``."""
    from brian2 import Quantity, second

    si = spec.units == "si"
    weight_dims = spec.state_dims.get(target) if si else None

    def unit_text(name: str) -> str:
        kind = model.unit(name)
        return dims_text(weight_dims) if si and kind == "weight" else "1"

    names: dict[str, str] = {p: f"p_{p}" for p in model.params}
    for state, brian in spec.names.items():
        if state in spec.model.state_names and state not in model.variables and state not in model.params:
            names[state] = f"{brian}_post"
            names[f"{state}_post"] = f"{brian}_post"
    lines = []
    for var in model.variables:
        if var in model.traces:
            lines.append(f"d{var}/dt = -{var}/p_{model.traces[var]} : {unit_text(var)} (event-driven)")
        elif var in model.clock_driven:
            lines.append(f"d{var}/dt = -{var}/p_{model.clock_driven[var]} : {unit_text(var)} (clock-driven)")
        else:
            lines.append(f"{var} : {unit_text(var)}")
    namespace: dict[str, object] = {}
    for p, value in model.params.items():
        kind = model.unit(p)
        if kind == "second":
            namespace[f"p_{p}"] = value * second
        elif si and kind == "weight" and weight_dims is not None:
            namespace[f"p_{p}"] = Quantity(value, dim=weight_dims)
        else:
            namespace[f"p_{p}"] = value
    for line in model.on_pre + model.on_post:
        unknown = sorted(set(_IDENT.findall(line)) - set(names) - set(model.variables) - _FUNCTIONS - {"t"})
        if unknown:
            raise ModelError(f"{where}: {line!r} uses {unknown[0]!r}, which is neither a synapse variable, "
                             f"a parameter nor a post-synaptic state")
    on_pre = "\n".join([f"{spec.names[target]}_post += w"] + [_rename(x, names) for x in model.on_pre])
    on_post = "\n".join(_rename(x, names) for x in model.on_post)
    return "\n".join(lines), on_pre, on_post, namespace


def set_plastic_state(S: object, syn: Synapses) -> None:
    """Initial per-synapse values of a connected plastic ``Synapses`` (raw SI values)."""
    setattr(S, "w_", np.asarray(syn.weight, dtype=float))
    for name, values in syn.state.items():
        setattr(S, f"{name}_", np.asarray(values, dtype=float))


def plastic_state(S: object, model: SynapseModel) -> dict[str, np.ndarray]:
    """The final per-synapse variables and ``lastupdate`` (in the network's synapse order)."""
    out = {name: np.asarray(getattr(S, f"{name}_"), dtype=float).copy() for name in model.variables}
    if "lastupdate" in getattr(S, "variables"):  # Brian2 keeps it only for event-driven variables
        out["lastupdate"] = np.asarray(getattr(S, "lastupdate_"), dtype=float).copy()
    return out
