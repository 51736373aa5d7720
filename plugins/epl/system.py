"""The energy dynamical system of Equilibrium Point Learning (EPL), batched in torch.

State z = (x, p): x > 0 node masses, p momenta, both ``(..., n)``. Parameters (any of them may
carry leading batch dimensions, broadcast against the state's):

* ``a`` (n): enthalpy constants, ln x* = -a, so x^T ln(x/x*) = x^T ln x + a^T x;
* ``V`` (n, n): electric potential matrix (symmetric);
* ``m`` (n): masses; ``M`` (n, c): elemental matrix; ``Mperp`` (n, e): stoichiometric matrix
  with M^T Mperp = 0 (products positive, reactants negative);
* ``k`` (e), ``v`` (e): chemical and Hamiltonian rates per column of Mperp;
* ``c`` (n): collision damping; ``h`` (n), ``x_h`` (n): homeostasis rate and target;
* ``free`` (n): 1 for local nodes, 0 for external (clamped) nodes whose x never changes;
* ``catalysis`` (n, e): catalysts, nodes on both sides of a reaction (our extension, needed for
  BioModels: a net column of Mperp loses them). Both exponents of the chemical flow count them,
  exp(dH/dx (r(-Mperp) + K)) - exp(dH/dx (r(Mperp) + K)) = exp(dH/dx K) (...): a positive factor, so
  the flux keeps its sign and dH/dt <= 0 still holds. Default 0.

Equations (labels of the EPL paper):

* eqn:Energy  H(x, p) = x^T ln(x / x*) + 1/2 x^T V x + sum(p o p o x / (2 m))
* eqn:gradient  dH/dx = ln x + 1 + a + V x + p o p / (2 m),   dH/dp = p o x / m
* eqn:Dynamical_System, as four switchable flows (:class:`Flows`):
  chemical  dx = Mperp [k o (exp(dH/dx r(-Mperp)) - exp(dH/dx r(Mperp)))],
  Hamiltonian  dx = Mperp [w o (dH/dp Mperp)],  dp = -Mperp [w o (dH/dx Mperp)],
  w = v o exp(ln(x)^T |Mperp|),
  collision  dp = -c o dH/dp,   homeostasis  dx = h o (x_h - x).

The paper's chemical flow carries a sign typo in its stand-alone form; the total flow of
eqn:Dynamical_System (used here) is the one that lowers H. It writes c with e entries; c damps
momenta, so here it has one entry per node.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch

from neuroplex.errors import ModelError

FLOWS = ("chemical", "hamiltonian", "collision", "homeostasis")


@dataclass(frozen=True)
class Flows:
    """Which flows of eqn:Dynamical_System are on."""

    chemical: bool = True
    hamiltonian: bool = True
    collision: bool = True
    homeostasis: bool = True

    @classmethod
    def only(cls, *names: str) -> "Flows":
        bad = [n for n in names if n not in FLOWS]
        if bad:
            raise ModelError(f"unknown flow(s) {bad}; flows: {', '.join(FLOWS)}")
        return cls(**{f: f in names for f in FLOWS})

    def names(self) -> list[str]:
        return [f for f in FLOWS if getattr(self, f)]


def _mv(x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """Row vector times matrix with broadcasting: ``(..., n) @ (..., n, e) -> (..., e)``."""
    return (x.unsqueeze(-2) @ A).squeeze(-2)


def _Av(A: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Matrix times column: ``(..., n, e) @ (..., e) -> (..., n)``."""
    return (A @ y.unsqueeze(-1)).squeeze(-1)


def _monomial(x: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
    """prod_i x_i^E_ij per column j: ``(..., n), (..., n, e) -> (..., e)`` (0^0 = 1)."""
    return torch.pow(x.unsqueeze(-1), E).prod(-2)


@dataclass
class EnergySystem:
    """Parameters theta of one EPL energy DS or a batch of them (leading dimensions)."""

    Mperp: torch.Tensor
    a: torch.Tensor
    k: torch.Tensor
    V: torch.Tensor | None = None
    m: torch.Tensor | None = None
    v: torch.Tensor | None = None
    c: torch.Tensor | None = None
    h: torch.Tensor | None = None
    x_h: torch.Tensor | None = None
    M: torch.Tensor | None = None
    free: torch.Tensor | None = None
    x0: torch.Tensor | None = None
    p0: torch.Tensor | None = None
    flows: Flows = field(default_factory=Flows)
    node_names: list[str] | None = None
    catalysis: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n, e = self.Mperp.shape[-2:]
        like = self.Mperp
        z_n = torch.zeros(n, dtype=like.dtype, device=like.device)
        z_e = torch.zeros(e, dtype=like.dtype, device=like.device)
        defaults = {"V": torch.zeros(n, n, dtype=like.dtype, device=like.device), "m": z_n + 1.0, "v": z_e,
                    "c": z_n, "h": z_n, "x_h": z_n + 1.0, "free": z_n + 1.0, "x0": z_n + 1.0, "p0": z_n,
                    "catalysis": torch.zeros(n, e, dtype=like.dtype, device=like.device)}
        for name, value in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        for f in fields(self):
            val = getattr(self, f.name)
            if isinstance(val, torch.Tensor) and val.dtype != like.dtype:
                setattr(self, f.name, val.to(like.dtype))
        self.check()

    # ------------------------------------------------------------ shapes
    @property
    def n(self) -> int:
        return int(self.Mperp.shape[-2])

    @property
    def e(self) -> int:
        return int(self.Mperp.shape[-1])

    @property
    def batch_shape(self) -> torch.Size:
        return self.Mperp.shape[:-2]

    def check(self) -> None:
        """Shapes agree, masses positive and, when M is given, M^T Mperp = 0."""
        n, e = self.n, self.e
        for name, size in (("a", n), ("m", n), ("c", n), ("h", n), ("x_h", n), ("free", n), ("x0", n),
                           ("p0", n), ("k", e), ("v", e)):
            t = getattr(self, name)
            if t.shape[-1:] != (size,):
                raise ModelError(f"EPL system: {name} has shape {tuple(t.shape)}, expected (..., {size})")
        if self.V.shape[-2:] != (n, n):
            raise ModelError(f"EPL system: V has shape {tuple(self.V.shape)}, expected (..., {n}, {n})")
        if self.catalysis.shape[-2:] != (n, e):
            raise ModelError(f"EPL system: catalysis has shape {tuple(self.catalysis.shape)}, expected (..., {n}, {e})")
        if bool((self.catalysis < 0).any()):
            raise ModelError("EPL system: catalysis (catalyst counts) must be >= 0")
        if bool((self.m <= 0).any()):
            raise ModelError("EPL system: masses m must be positive")
        if bool((self.k < 0).any()):
            raise ModelError("EPL system: chemical rates k must be >= 0")
        if self.M is not None:
            if self.M.shape[-2] != n:
                raise ModelError(f"EPL system: M has {self.M.shape[-2]} rows, expected {n}")
            bad = (self.M.transpose(-1, -2) @ self.Mperp).abs().max() if self.M.shape[-1] and e else 0.0
            if float(bad) > 1e-9:
                raise ModelError(f"EPL system: M^T Mperp is not 0 (max |entry| {float(bad):.3g}): "
                                 "a reaction does not conserve the elements of M")

    def with_flows(self, *names: str) -> "EnergySystem":
        """A copy with only the named flows on."""
        return replace(self, flows=Flows.only(*names))

    def to(self, dtype: Any = None, device: Any = None) -> "EnergySystem":
        vals = {f.name: getattr(self, f.name) for f in fields(self)}
        vals = {k: (v.to(dtype=dtype, device=device) if isinstance(v, torch.Tensor) else v) for k, v in vals.items()}
        return EnergySystem(**vals)

    def initial_state(self) -> torch.Tensor:
        """z0 = (theta[x0], p0) as ``(..., 2n)``."""
        return torch.cat([self.x0, self.p0], -1)

    # ------------------------------------------------------------ energy
    def energy(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """H(x, p) of eqn:Energy, shape ``x.shape[:-1]``."""
        Vx = _Av(self.V, x)
        return (x * (torch.log(x) + self.a)).sum(-1) + 0.5 * (x * Vx).sum(-1) + (p * p * x / (2 * self.m)).sum(-1)

    def gradient(self, x: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(dH/dx, dH/dp) of eqn:gradient."""
        Hx = torch.log(x) + 1.0 + self.a + _Av(self.V, x) + p * p / (2 * self.m)
        Hp = p * x / self.m
        return Hx, Hp

    # ------------------------------------------------------------ flows
    def chemical(self, x: torch.Tensor, Hx: torch.Tensor, psi: torch.Tensor | None = None) -> torch.Tensor:
        """dx/dt of the chemical flow. exp(dH/dx R) is evaluated as prod(x^R) exp(psi R) with
        psi = dH/dx - ln x (the same value; mass action in product form, finite at x = 0).
        Catalysts (``catalysis``) count on both sides. ``psi`` may be passed (as :meth:`rhs` does):
        computed from Hx it is undefined at x = 0 and so are its derivatives (implicit solvers)."""
        P = self.Mperp.clamp(min=0) + self.catalysis
        R = (-self.Mperp).clamp(min=0) + self.catalysis
        if psi is None:
            psi = Hx - torch.log(x)
            psi = torch.where(torch.isfinite(psi), psi, self._psi(x))
        fwd = self.k * torch.exp(_mv(psi, R)) * _monomial(x, R)
        bwd = self.k * torch.exp(_mv(psi, P)) * _monomial(x, P)
        return _Av(self.Mperp, fwd - bwd)

    def _psi(self, x: torch.Tensor) -> torch.Tensor:
        return 1.0 + self.a + _Av(self.V, x)

    def hamiltonian(self, x: torch.Tensor, Hx: torch.Tensor, Hp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(dx/dt, dp/dt) of the Hamiltonian flow: conserves H (antisymmetric coupling)."""
        w = self.v * _monomial(x, self.Mperp.abs())
        dx = _Av(self.Mperp, w * _mv(Hp, self.Mperp))
        dp = -_Av(self.Mperp, w * _mv(Hx, self.Mperp))
        return dx, dp

    def rhs(self, x: torch.Tensor, p: torch.Tensor, flows: Flows | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(dx/dt, dp/dt) of eqn:Dynamical_System with the switched-on flows."""
        flows = flows or self.flows
        Hx, Hp = self.gradient(x, p)
        dx = torch.zeros_like(x + Hx)
        dp = torch.zeros_like(p + Hp)
        if flows.chemical:
            dx = dx + self.chemical(x, Hx, self._psi(x) + p * p / (2 * self.m))
        if flows.hamiltonian:
            hx, hp = self.hamiltonian(x, Hx, Hp)
            dx, dp = dx + hx, dp + hp
        if flows.collision:
            dp = dp - self.c * Hp
        if flows.homeostasis:
            dx = dx + self.h * (self.x_h - x)
        return dx * self.free, dp * self.free

    def energy_rate(self, x: torch.Tensor, p: torch.Tensor, flows: Flows | None = None) -> torch.Tensor:
        """dH/dt = dH/dx . dx/dt + dH/dp . dp/dt along the flows (exact, no integration)."""
        Hx, Hp = self.gradient(x, p)
        dx, dp = self.rhs(x, p, flows)
        return (Hx * dx).sum(-1) + (Hp * dp).sum(-1)
