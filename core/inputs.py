"""Model inputs given by name: ``simulate(model, inputs={"I": 0.5 * nA})`` or a time series
``inputs={"I": TimedArray(values, dt)}``.

A constant (number in SI, quantity, string such as ``"0.5 nA"``, or a ``(batch,)`` tensor)
becomes a column of the usual ``(batch, n_inputs)`` tensor. A time series (any object with
``values`` and ``dt``, e.g. :class:`neuroplex.plugins.snn.TimedArray`; ``values`` ``(T,)`` for
every sample or ``(T, batch)``) is read as Brian2 reads a ``TimedArray``: ``values[k]`` holds
on ``[k dt, (k+1) dt)``, the last value after the end. The model then runs as
:class:`TimedInputDynamics`, its compiled dynamics with the input looked up at each
right-hand-side evaluation's own time.
"""
from __future__ import annotations

from typing import Mapping, Protocol, Union, runtime_checkable

import torch

from .dynamics import Dynamics
from .errors import ModelError
from .ir import ModelIR
from .units import QuantityLike, to_si


@runtime_checkable
class TimeSeries(Protocol):
    """Values sampled every ``dt`` seconds (Brian2's ``TimedArray``)."""

    values: torch.Tensor
    dt: float


InputValue = Union[QuantityLike, torch.Tensor, TimeSeries]


class TimedInputDynamics(Dynamics):
    """``model``'s compiled dynamics with some inputs read from time series."""

    kind = "dynamics"

    def __init__(self, model: ModelIR, series: Mapping[str, TimeSeries], *, dtype: torch.dtype = torch.float64):
        self.model = model  # the IR (the torch solver reads its refractory period from it)
        self.inner = model.compile(dtype=dtype)
        self.name = model.name
        self.state_names = self.inner.state_names
        self.param_names = self.inner.param_names
        self.input_names = self.inner.input_names
        self.events = self.inner.events
        self.observable_names = getattr(self.inner, "observable_names", ())
        self.series = {self.input_names.index(k): (torch.as_tensor(v.values, dtype=torch.float64), float(v.dt))
                       for k, v in series.items()}

    def default_params(self, batch: int | None = None, *, dtype: torch.dtype | None = None,
                       device: torch.device | str | None = None) -> torch.Tensor:
        return self.inner.default_params(batch, dtype=dtype, device=device)

    def initial_state(self, p: torch.Tensor | None = None, batch: int | None = None, *,
                      dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> torch.Tensor:
        return self.inner.initial_state(p, batch, dtype=dtype, device=device)

    def observe(self, t: torch.Tensor, y: torch.Tensor, p: torch.Tensor | None = None,
                u: torch.Tensor | None = None) -> torch.Tensor:
        return self.inner.observe(t, y, p, None if u is None else self.at(t, u))

    def at(self, t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """``u`` with the time-series columns replaced by their values at ``t``."""
        cols = list(u.unbind(-1))
        t = torch.as_tensor(t, dtype=u.dtype, device=u.device)
        for col, (values, dt) in self.series.items():
            k = torch.clamp(torch.floor(t / dt + 1e-9), 0, values.shape[0] - 1).long()
            v = values.to(dtype=u.dtype, device=u.device)
            value = v[k] if v.dim() == 1 or k.dim() == 0 else v[k, torch.arange(v.shape[1], device=u.device)]
            cols[col] = torch.broadcast_to(value, cols[col].shape)
        return torch.stack(cols, -1)

    def rhs(self, t: torch.Tensor, y: torch.Tensor, p: torch.Tensor | None = None,
            u: torch.Tensor | None = None) -> torch.Tensor:
        if u is None:
            u = torch.zeros(*y.shape[:-1], len(self.input_names), dtype=y.dtype, device=y.device)
        return self.inner.rhs(t, y, p, self.at(t, u))


def resolve_inputs(model: object, inputs: Mapping[str, InputValue]) -> tuple[object, torch.Tensor]:
    """``(model, inputs tensor)`` for inputs given by name (see the module docstring)."""
    if isinstance(model, TimedInputDynamics):
        model = model.model
    if not isinstance(model, ModelIR):
        raise ModelError(f"inputs by name need a model with named inputs (a ModelIR), not {type(model).__name__}; "
                         f"give a (batch, n_inputs) tensor")
    unknown = sorted(set(inputs) - set(model.inputs))
    if unknown:
        raise ModelError(f"model {model.name!r} has no input(s) {', '.join(unknown)} "
                         f"(inputs: {', '.join(model.inputs) or 'none'})")
    units = model.units()
    columns: list[torch.Tensor] = []
    series: dict[str, TimeSeries] = {}
    for name, default in model.inputs.items():
        value = inputs.get(name, default)
        if isinstance(value, TimeSeries) and not isinstance(value, torch.Tensor):
            series[name] = value
            values = torch.as_tensor(value.values)
            if values.dim() not in (1, 2):
                raise ModelError(f"input {name} of model {model.name!r}: time-series values must be (T,) or "
                                 f"(T, batch), not {tuple(values.shape)}")
            columns.append(torch.zeros(values.shape[1:], dtype=torch.float64))
        elif isinstance(value, torch.Tensor):
            columns.append(value.to(torch.float64))
        else:
            columns.append(torch.tensor(to_si(value, units.get(name, "1"), f"input {name} of model {model.name!r}"),
                                        dtype=torch.float64))
    batch = torch.broadcast_shapes(*(c.shape for c in columns))
    u = torch.stack([c.expand(batch) for c in columns], -1)
    if not series:
        return model, u
    _refuse_timed_events(model, series)
    return TimedInputDynamics(model, series), u


def _refuse_timed_events(model: ModelIR, series: Mapping[str, TimeSeries]) -> None:
    """Events read constant inputs: a threshold or reset using a time series would be wrong."""
    for event in model.events:
        used = {s.name for s in event.trigger.free_symbols}
        for value in event.assignments.values():
            used |= {s.name for s in getattr(value, "free_symbols", ())}
        hit = sorted(used & set(series))
        if hit:
            raise ModelError(f"model {model.name!r}: event {event.name!r} uses the time-series input(s) "
                             f"{', '.join(hit)}; run it in a Network (clock-driven) instead")


__all__ = ["TimeSeries", "InputValue", "TimedInputDynamics", "resolve_inputs"]
