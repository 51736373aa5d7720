"""Refractory periods for the ODE path (``ModelIR.refractory``, ``State.clamped_when_refractory``).

Brian2's semantics in continuous time, per sample of a batch:

* a **duration** (an expression of parameters, seconds): after an event fires at ``t_s`` the
  sample is refractory on ``[t_s, t_s + duration)``; its clamped states have zero derivative
  and its events cannot fire. The end time is an extra (hidden) event column ``t - t_end``,
  located exactly, so a step never integrates across it with the wrong right-hand side;
* a **condition** (one relation of states/parameters, e.g. ``v > v_th``): Brian2's
  ``not_refractory = not_refractory or not (cond)``: refractory from a spike (when the
  condition holds after the reset) until the condition turns false, located exactly as an
  extra hidden event column (``b - a`` for ``a > b``); a sample that never spiked is not
  refractory, whatever the condition. Conditions combining relations are refused.

:class:`Refractory` wraps the right-hand side and the :class:`~.events.EventSpec` of a model.
"""
from __future__ import annotations

from typing import Any, Callable

import sympy
import torch

from neuroplex.codegen import TorchPrinter, build_function
from neuroplex.errors import SolverError
from neuroplex.ir import ModelIR

from .events import EventSpec


def _compile(model: ModelIR, expr: Any, what: str) -> Callable[..., torch.Tensor]:
    """``fn(t, y, p, u) -> (B,)`` evaluating ``expr`` of time, states, parameters and inputs."""
    names = {model.time.name: "t"}
    body = []
    for i, s in enumerate(model.state_names):
        names[s] = f"_s{i}"
        body.append(f"_s{i} = y[..., {i}]")
    for i, s in enumerate(model.parameter_names):
        names[s] = f"_p{i}"
        body.append(f"_p{i} = p[..., {i}]")
    for i, (s, default) in enumerate(model.inputs.items()):
        names[s] = f"_u{i}"
        body.append(f"_u{i} = _rt.const({float(default)!r}, y) if u is None else u[..., {i}]")
    unknown = sorted(str(s) for s in expr.free_symbols if s.name not in names)
    if unknown:
        raise SolverError(f"refractory {what} of model {model.name!r} uses unknown symbols: {', '.join(unknown)}")
    code = TorchPrinter(names)(expr)
    zero = "torch.zeros(y.shape[:-1], dtype=torch.bool, device=y.device)" if what == "condition" else \
        "torch.zeros(y.shape[:-1], dtype=y.dtype, device=y.device)"
    ret = f"({code}) | {zero}" if what == "condition" else f"({code}) + {zero}"
    return build_function(f"refractory_{what}", ["t", "y", "p", "u=None"], [*body, f"return {ret}"])


class Refractory:
    """Refractory state of a batch and the wrapped ``rhs``/events (see module docstring)."""

    def __init__(self, model: ModelIR, t: torch.Tensor, y: torch.Tensor, p: torch.Tensor, u: torch.Tensor | None):
        ref = model.refractory
        self.p, self.u = p, u
        self.clamp = torch.tensor([s.clamped_when_refractory for s in model.states], dtype=torch.bool,
                                  device=y.device)
        self.is_condition = isinstance(ref, (sympy.Rel, sympy.And, sympy.Or, sympy.Not))
        b = y.shape[0]
        if self.is_condition:
            self._cond = _compile(model, ref, "condition")
            if not isinstance(ref, (sympy.StrictGreaterThan, sympy.GreaterThan, sympy.StrictLessThan, sympy.LessThan)):
                raise SolverError(f"refractory condition {ref} of model {model.name!r}: the torch solver takes one "
                                  f"relation (a > b, a < b, ...); run a Network on the engine or solver='brian2'")
            ends = ref.rhs - ref.lhs if isinstance(ref, (sympy.StrictGreaterThan, sympy.GreaterThan)) else ref.lhs - ref.rhs
            self._ends = _compile(model, ends, "duration")  # crosses 0 upwards where the condition turns false
        else:
            dur = _compile(model, ref, "duration")(t, y, p, u)
            self.duration = dur.expand(b).to(y.dtype)
            if bool((self.duration < 0).any()):
                raise SolverError(f"refractory period of model {model.name!r} is negative")
        self.active = torch.zeros(b, dtype=torch.bool, device=y.device)
        self.until = torch.zeros(b, dtype=y.dtype, device=y.device)

    def mask(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``(B,)`` bool: which samples are refractory now."""
        return self.active

    def rhs(self, f: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable[..., torch.Tensor]:
        """``f`` with the clamped states' derivatives zeroed while refractory."""
        clamp = self.clamp

        def wrapped(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            d = f(t, y)
            held = self.mask(t, y)[:, None] & clamp
            return torch.where(held, torch.zeros_like(d), d)

        return wrapped

    def events(self, spec: EventSpec) -> EventSpec:
        """The model's events blocked while refractory (their functions read -1); a duration
        adds a last, hidden column ``t - t_end`` whose firing ends the period."""
        k = int(spec.bisect.shape[0])
        g0, apply0 = spec.g, spec.apply

        def g(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            cols = g0(t, y)
            m = self.mask(t, y)
            cols = torch.where(m[:, None], -torch.ones_like(cols), cols)
            ends = self._ends(t, y, self.p, self.u) if self.is_condition else t - self.until
            end = torch.where(self.active, ends, -torch.ones_like(t))
            return torch.cat([cols, end[:, None]], -1)

        def apply(t: torch.Tensor, y: torch.Tensor, fired: torch.Tensor) -> torch.Tensor:
            if apply0 is not None:
                y = apply0(t, y, fired[:, :k])
            spiked = fired[:, :k].any(-1)
            if self.is_condition:  # refractory from the spike while the condition holds after the reset
                spiked = spiked & self._cond(t, y, self.p, self.u)
            else:
                spiked = spiked & (self.duration > 0)
                self.until = torch.where(spiked, t + self.duration, self.until)
            ended = fired[:, k] & ~spiked
            self.active = (self.active | spiked) & ~ended
            return y

        false = torch.zeros(1, dtype=torch.bool, device=spec.bisect.device)
        return EventSpec(g, torch.cat([spec.bisect, false]), torch.cat([spec.terminal, false]), apply)

    @property
    def hidden_columns(self) -> int:
        """Event columns added after the model's own (not spikes)."""
        return 1
