"""Plastic synapses written as Brian2 writes them: ``Synapses(model=..., on_pre=..., on_post=...)``
text, read into the same :class:`~.plasticity.SynapseModel` the shipped rules build.

``model`` lines (Brian2's ``Equations`` for synapses):

* ``w : 1`` (or any unit): a per-synapse variable (``w`` is the weight the network gives);
* ``dX/dt = -X/tau : unit (event-driven)`` or ``(clock-driven)``: a decaying trace, ``tau`` a
  parameter. Other synaptic differential equations, and ones without a flag, are refused.

``on_pre`` / ``on_post``: statements one per line or separated by ``;``. Brian2's on_pre adds
the weight to the post-synaptic target itself (``ge += w``); the network does that for every
synapse (:meth:`Network.connect(..., target) <neuroplex.plugins.snn.network.Network.connect>`),
so the statement ``<target> += w`` (or ``<target>_post += w``) is taken out when ``target``
is given. ``parameters``: values with units (``20*ms``, ``"20 ms"``, a Brian2 quantity) or
plain numbers (dimensionless); a trace's time constant must be a time.
"""
from __future__ import annotations

import re
from typing import Mapping

import sympy

from neuroplex.errors import ModelError
from neuroplex.units import QuantityLike, as_quantity, dimension

from .plasticity import SynapseModel

_DIFFERENTIAL = re.compile(r"^d(?P<var>[A-Za-z_]\w*)/dt\s*=\s*(?P<rhs>[^:]+?)\s*:\s*(?P<unit>[^()]+?)\s*"
                           r"(?:\((?P<flags>[^)]*)\))?\s*$")
_VARIABLE = re.compile(r"^(?P<var>[A-Za-z_]\w*)\s*:\s*(?P<unit>[^()]+?)\s*(?:\((?P<flags>[^)]*)\))?\s*$")
_SECOND = dimension("second")


def _lines(text: str) -> list[str]:
    parts = (part.split("#", 1)[0].strip() for line in text.splitlines() for part in line.split(";"))
    return [part for part in parts if part]


def _unit_kind(var: str, unit: str, where: str) -> str:
    if var == "w":
        return "weight"
    return "1" if dimension(unit, where).dimensionless else "weight"


def synapse_from_equations(model: str, on_pre: str = "", on_post: str = "", *,
                           parameters: Mapping[str, QuantityLike] | None = None, target: str | None = None,
                           name: str = "synapse") -> SynapseModel:
    """A :class:`~.plasticity.SynapseModel` from Brian2-style synapse text (module docstring).
    Errors name the synapse model and the line."""
    where = f"synapse model {name!r}"
    params: dict[str, float] = {}
    units: dict[str, str] = {}
    for key, value in (parameters or {}).items():
        q = as_quantity(value, f"{where}: parameter {key}")
        params[key] = float(q.si)
        units[key] = "second" if q.dim == _SECOND else ("1" if q.dim.dimensionless else "weight")
    variables: dict[str, float] = {}
    traces: dict[str, str] = {}
    clock: dict[str, str] = {}
    for line in _lines(model):
        diff = _DIFFERENTIAL.match(line)
        plain = None if diff else _VARIABLE.match(line)
        if not (diff or plain):
            raise ModelError(f"{where}: cannot read model line {line!r} (expected 'dX/dt = -X/tau : unit "
                             f"(event-driven)' or 'x : unit')")
        match = diff or plain
        assert match is not None
        var, unit, flags = match["var"], match["unit"].strip(), {f.strip() for f in (match["flags"] or "").split(",")
                                                                  if f.strip()}
        units[var] = _unit_kind(var, unit, f"{where}: {line!r}")
        if plain:
            variables[var] = 0.0
            continue
        decay = _decay_constant(var, match["rhs"], params, f"{where}: {line!r}")
        if units.get(decay) != "second":
            raise ModelError(f"{where}: time constant {decay!r} of {var!r} must be a time (e.g. 20*ms), "
                             f"not {(parameters or {})[decay]!r}")
        if "event-driven" in flags:
            traces[var] = decay
        elif "clock-driven" in flags:
            clock[var] = decay
        else:
            raise ModelError(f"{where}: {line!r} needs (event-driven) or (clock-driven), as in Brian2")
    pre = [s for s in _lines(on_pre) if not (target and re.fullmatch(rf"{target}(_post)?\s*\+=\s*w", s))]
    return SynapseModel(name, params=params, variables=variables, traces=traces, clock_driven=clock,
                        on_pre=pre, on_post=_lines(on_post), units=units)


def _decay_constant(var: str, rhs: str, params: Mapping[str, float], where: str) -> str:
    """The ``tau`` of ``dX/dt = -X/tau``, a time parameter; anything else is refused."""
    x = sympy.Symbol(var)
    try:
        expr = sympy.sympify(rhs, locals={n: sympy.Symbol(n) for n in re.findall(r"[A-Za-z_]\w*", rhs)})
    except (sympy.SympifyError, SyntaxError, TypeError) as exc:
        raise ModelError(f"{where}: cannot parse {rhs!r}: {exc}") from None
    rate = sympy.simplify(-expr / x)
    tau = sympy.simplify(1 / rate) if rate != 0 else None
    if tau is None or not isinstance(tau, sympy.Symbol) or sympy.simplify(expr + x / tau) != 0:
        raise ModelError(f"{where}: only decaying traces dX/dt = -X/tau are supported (got {rhs!r})")
    if tau.name not in params:
        raise ModelError(f"{where}: {tau.name!r} is not a parameter (parameters: {', '.join(params) or 'none'})")
    return tau.name
