"""Synapse models with per-synapse state: what a plastic synapse stores and does on pre- and
post-synaptic spikes, written as Brian2 writes it (``Synapses(model, on_pre, on_post)``).

A :class:`SynapseModel` holds

* ``variables``: per-synapse variables and their initial values (``w`` always exists: the
  weight given to :meth:`Network.connect <neuroplex.plugins.snn.network.Network.connect>`);
* ``traces``: event-driven traces ``dX/dt = -X/tau`` (Brian2's ``(event-driven)``): each is
  decayed to the current time from the synapse's ``lastupdate`` when the synapse receives an
  event, before the statements run;
* ``clock_driven``: traces ``dX/dt = -X/tau`` integrated every step on every synapse
  (Brian2's ``(clock-driven)``; exact: ``X *= exp(-dt/tau)`` at the start of the step);
* ``on_pre`` / ``on_post``: statements (``x = e``, ``x += e``, ``x -= e``, ``x *= e``) over
  the synapse's variables, the rule's ``params``, ``t`` and post-synaptic states (``ge`` or
  ``ge_post``; written only with ``+=``/``-=`` from ``on_pre``), with ``clip``, ``exp``,
  ``sqrt``, ``abs``. The network puts ``<target> += w`` first in ``on_pre``;
* ``units``: per variable / parameter, ``"weight"`` (the unit of the synapse's target),
  ``"second"`` or ``"1"`` (used where Brian2 runs with units).

Order inside a step (Brian2's schedule): every synapse set's ``on_pre`` (sorted by name), then
every ``on_post``; both after the threshold, before the reset.

The rules shipped (registered through ``register_learning_rules``; ``get_learning_rule(name)``
returns the factory):

* ``stdp`` (:func:`stdp_additive`): additive pair STDP with hard bounds (Song, Miller & Abbott
  2000, as in Brian2's ``examples/synapses/STDP.py``);
* ``stdp_multiplicative`` (:func:`stdp_multiplicative`): soft-bounded STDP, potentiation
  proportional to ``wmax - w`` and depression to ``w`` (van Rossum, Bi & Turrigiano 2000;
  Gutig et al. 2003 with mu = 1);
* ``triplet_stdp`` (:func:`triplet_stdp`): the all-to-all triplet rule of Pfister & Gerstner
  (2006, eqs. 2-3 with traces r1, r2, o1, o2), default parameters their visual-cortex fit.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import sympy

from neuroplex.errors import ModelError

#: the statement operators
OPERATORS = ("=", "+=", "-=", "*=")
#: functions a statement may call
FUNCTIONS = ("clip", "exp", "sqrt", "abs")
_STATEMENT = re.compile(r"^\s*([A-Za-z_]\w*)\s*(\+=|-=|\*=|=)\s*(.+?)\s*$")
_UNIT_KINDS = ("weight", "second", "1")

#: sympy's stand-in for Brian2's ``clip(x, low, high)``
clip = sympy.Function("clip")


@dataclass(frozen=True)
class Statement:
    """``target op expr`` (``op`` one of :data:`OPERATORS`); ``text`` is the line as written."""

    target: str
    op: str
    expr: sympy.Expr
    text: str


@dataclass
class SynapseModel:
    """A plastic synapse (see the module docstring)."""

    name: str
    params: dict[str, float] = field(default_factory=dict)
    variables: dict[str, float] = field(default_factory=dict)
    traces: dict[str, str] = field(default_factory=dict)
    clock_driven: dict[str, str] = field(default_factory=dict)
    on_pre: list[str] = field(default_factory=list)
    on_post: list[str] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.params = {k: float(v) for k, v in self.params.items()}
        self.variables = {"w": 0.0, **{k: float(v) for k, v in self.variables.items()}}
        both = set(self.traces) & set(self.clock_driven)
        if both:
            raise ModelError(f"synapse model {self.name!r}: {sorted(both)[0]!r} is both event- and clock-driven")
        for name in [*self.traces, *self.clock_driven]:
            self.variables.setdefault(name, 0.0)
        clash = set(self.params) & set(self.variables)
        if clash:
            raise ModelError(f"synapse model {self.name!r}: {sorted(clash)[0]!r} is both a parameter and a variable")
        for name, tau in {**self.traces, **self.clock_driven}.items():
            if tau not in self.params:
                raise ModelError(f"synapse model {self.name!r}: trace {name!r} decays with {tau!r}, "
                                 f"which is not a parameter (parameters: {', '.join(self.params) or 'none'})")
            if not self.params[tau] > 0:
                raise ModelError(f"synapse model {self.name!r}: time constant {tau!r} must be > 0, "
                                 f"not {self.params[tau]}")
        for name, kind in self.units.items():
            if kind not in _UNIT_KINDS:
                raise ModelError(f"synapse model {self.name!r}: unit of {name!r} must be one of "
                                 f"{', '.join(_UNIT_KINDS)}, not {kind!r}")
        self.statements("pre")
        self.statements("post")

    def unit(self, name: str) -> str:
        """The unit kind of a variable or parameter (traces' time constants: ``second``)."""
        if name in self.traces.values() or name in self.clock_driven.values():
            return "second"
        return self.units.get(name, "weight" if name == "w" else "1")

    def with_params(self, **changes: float) -> "SynapseModel":
        """A copy with some parameters changed."""
        unknown = sorted(set(changes) - set(self.params))
        if unknown:
            raise ModelError(f"synapse model {self.name!r} has no parameter {unknown[0]!r} "
                             f"(parameters: {', '.join(self.params)})")
        return SynapseModel(self.name, {**self.params, **changes}, dict(self.variables), dict(self.traces),
                            dict(self.clock_driven), list(self.on_pre), list(self.on_post), dict(self.units))

    def statements(self, pathway: str) -> list[Statement]:
        """The parsed ``on_pre`` (``pathway="pre"``) or ``on_post`` statements."""
        lines = self.on_pre if pathway == "pre" else self.on_post
        return [parse_statement(line, f"synapse model {self.name!r} on_{pathway}") for line in lines]


def parse_statement(line: str, where: str) -> Statement:
    """One statement line as a :class:`Statement` (a clear error naming ``where`` otherwise)."""
    match = _STATEMENT.match(line)
    if not match:
        raise ModelError(f"{where}: cannot read statement {line!r} (expected 'name = expr', 'name += expr', ...)")
    target, op, text = match.groups()
    names = set(re.findall(r"[A-Za-z_]\w*", text)) - set(FUNCTIONS)
    local = {name: sympy.Symbol(name) for name in names}
    local.update({"clip": clip, "exp": sympy.exp, "sqrt": sympy.sqrt, "abs": sympy.Abs})
    try:
        expr = sympy.sympify(text, locals=local)
    except (sympy.SympifyError, SyntaxError, TypeError) as exc:
        raise ModelError(f"{where}: cannot parse {text!r} in {line!r}: {exc}") from None
    return Statement(target, op, expr, line.strip())


# ------------------------------------------------------------------------- the rules
def stdp_additive(*, taupre: float = 20e-3, taupost: float = 20e-3, dApre: float = 1e-4,
                  dApost: float | None = None, wmax: float = 0.01) -> SynapseModel:
    """Additive pair STDP with hard bounds ``[0, wmax]`` (Song, Miller & Abbott 2000, eq. 1 with
    all-to-all traces, as Brian2's ``examples/synapses/STDP.py``): a pre spike adds ``dApre`` to
    the trace ``Apre`` and ``Apost`` to ``w``; a post spike adds ``dApost`` to ``Apost`` and
    ``Apre`` to ``w``. Default ``dApost = -dApre * taupre / taupost * 1.05`` (depression 5 %
    stronger, as the example). Traces and increments are in the weight's unit."""
    if dApost is None:
        dApost = -dApre * taupre / taupost * 1.05
    return SynapseModel(
        "stdp", params={"taupre": taupre, "taupost": taupost, "dApre": dApre, "dApost": dApost, "wmin": 0.0,
                        "wmax": wmax},
        traces={"Apre": "taupre", "Apost": "taupost"},
        on_pre=["Apre += dApre", "w = clip(w + Apost, wmin, wmax)"],
        on_post=["Apost += dApost", "w = clip(w + Apre, wmin, wmax)"],
        units={"Apre": "weight", "Apost": "weight", "dApre": "weight", "dApost": "weight", "wmin": "weight",
               "wmax": "weight"})


def stdp_multiplicative(*, taupre: float = 20e-3, taupost: float = 20e-3, dApre: float = 0.01,
                        dApost: float | None = None, wmax: float = 0.01) -> SynapseModel:
    """Soft-bounded (multiplicative) pair STDP: potentiation ``(wmax - w) Apre``, depression
    ``w Apost`` with dimensionless traces (van Rossum, Bi & Turrigiano 2000; Gutig et al. 2003,
    eq. 2 with mu = 1). ``w`` stays inside ``[0, wmax]`` without clipping for increments
    below 1; the result is still clipped against rounding. Default ``dApost = -1.05 dApre``."""
    if dApost is None:
        dApost = -dApre * taupre / taupost * 1.05
    return SynapseModel(
        "stdp_multiplicative",
        params={"taupre": taupre, "taupost": taupost, "dApre": dApre, "dApost": dApost, "wmin": 0.0, "wmax": wmax},
        traces={"Apre": "taupre", "Apost": "taupost"},
        on_pre=["Apre += dApre", "w = clip(w + w*Apost, wmin, wmax)"],
        on_post=["Apost += dApost", "w = clip(w + (wmax - w)*Apre, wmin, wmax)"],
        units={"wmin": "weight", "wmax": "weight"})


def triplet_stdp(*, tau_plus: float = 16.8e-3, tau_minus: float = 33.7e-3, tau_x: float = 101e-3,
                 tau_y: float = 125e-3, A2p: float = 5e-10, A3p: float = 6.2e-3, A2m: float = 7e-3,
                 A3m: float = 2.3e-4, wmax: float = 0.01) -> SynapseModel:
    """Triplet STDP (Pfister & Gerstner 2006, all-to-all interactions, eqs. 2-3): pre traces
    ``r1`` (``tau_plus``), ``r2`` (``tau_x``), post traces ``o1`` (``tau_minus``), ``o2``
    (``tau_y``). A pre spike depresses ``w -= wmax o1 (A2m + A3m r2)`` with ``r2`` taken before
    its own increment, then ``r1 += 1``, ``r2 += 1``; a post spike potentiates
    ``w += wmax r1 (A2p + A3p o2)``, then ``o1 += 1``, ``o2 += 1``. The amplitudes are relative
    to ``wmax`` (hard bounds ``[0, wmax]``). Defaults: the paper's Table 4 visual-cortex
    all-to-all fit."""
    return SynapseModel(
        "triplet_stdp",
        params={"tau_plus": tau_plus, "tau_minus": tau_minus, "tau_x": tau_x, "tau_y": tau_y,
                "A2p": A2p, "A3p": A3p, "A2m": A2m, "A3m": A3m, "wmin": 0.0, "wmax": wmax},
        traces={"r1": "tau_plus", "r2": "tau_x", "o1": "tau_minus", "o2": "tau_y"},
        on_pre=["w = clip(w - wmax*o1*(A2m + A3m*r2), wmin, wmax)", "r1 += 1", "r2 += 1"],
        on_post=["w = clip(w + wmax*r1*(A2p + A3p*o2), wmin, wmax)", "o1 += 1", "o2 += 1"],
        units={"wmin": "weight", "wmax": "weight"})


#: the learning rules this plugin registers (name -> factory returning a :class:`SynapseModel`)
RULES = {"stdp": stdp_additive, "stdp_multiplicative": stdp_multiplicative, "triplet_stdp": triplet_stdp}
