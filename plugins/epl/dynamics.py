"""The EPL energy DS as a core :class:`~neuroplex.dynamics.Dynamics`, so that the core
``neuroplex.simulate`` integrates it and ``neuroplex.equilibrate`` finds its equilibria.

The state is y = (x, p) ``(batch, 2n)``; theta is packed per sample into the parameter vector
(so a batch of systems of one shape runs in one call and solvers may slice the batch freely).
As an implicit layer (paper, section "Design Implicit Layer") z <- z + dt F(z): the fixed-point
map takes that Euler step, shortened per sample where it would change some x by over 10%
(our choice: a scalar step factor keeps M^T x exactly, keeps x > 0 and leaves the fixed points
F(z*) = 0 unchanged).
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Callable

import torch

import neuroplex
from neuroplex.dynamics import Dynamics
from neuroplex.errors import ModelError
from neuroplex.solution import Solution

from .system import EnergySystem, Flows

#: theta entries packed into the parameter vector, in order
PACKED = ("Mperp", "a", "k", "V", "m", "v", "c", "h", "x_h", "free", "catalysis")


class EPLDynamics(Dynamics):
    """Batched dynamics of :class:`EnergySystem` (eqn:Dynamical_System), energy eqn:Energy."""

    def __init__(self, system: EnergySystem, *, dt: float = 0.05, flows: Flows | None = None):
        self.system = system
        self.flows = flows or system.flows
        self.dt = float(dt)
        self.dtype = system.Mperp.dtype
        self.device = system.Mperp.device
        n, e = system.n, system.e
        self._shapes = {"Mperp": (n, e), "catalysis": (n, e), "V": (n, n), "k": (e,), "v": (e,)}
        names = system.node_names or [f"n{i}" for i in range(n)]
        self.state_names = [f"x_{s}" for s in names] + [f"p_{s}" for s in names]
        self.param_names = [f"{f}[{i}]" for f in PACKED for i in range(self._size(f))]
        self.name = "epl"

    def _size(self, f: str) -> int:
        shape = self._shapes.get(f, (self.system.n,))
        out = 1
        for s in shape:
            out *= s
        return out

    # ----------------------------------------------------------- packing
    def pack(self, system: EnergySystem | None = None) -> torch.Tensor:
        """theta as ``(n_params,)`` or ``(batch, n_params)`` (batched systems)."""
        s = system or self.system
        bshape = s.batch_shape
        parts = [getattr(s, f).expand(*bshape, *self._shapes.get(f, (s.n,))).reshape(*bshape, -1) for f in PACKED]
        return torch.cat(parts, -1)

    def unpack(self, p: torch.Tensor) -> EnergySystem:
        vals: dict[str, Any] = {}
        i = 0
        for f in PACKED:
            size = self._size(f)
            vals[f] = p[..., i:i + size].reshape(*p.shape[:-1], *self._shapes.get(f, (self.system.n,)))
            i += size
        return _Unchecked(vals, self.flows)

    def default_params(self, batch: int | None = None, *, dtype: Any = None, device: Any = None) -> torch.Tensor:
        p = self.pack().to(dtype=dtype or self.dtype, device=device or self.device)
        if p.dim() == 1 and batch is not None:
            p = p.expand(batch, -1).clone()
        return p

    def initial_state(self, p: torch.Tensor | None = None, batch: int | None = None, *,
                      dtype: Any = None, device: Any = None) -> torch.Tensor:
        y = self.system.initial_state().to(dtype=dtype or self.dtype, device=device or self.device)
        if y.dim() == 1 and batch is not None:
            y = y.expand(batch, -1).clone()
        return y

    # ----------------------------------------------------------- dynamics
    def split(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.system.n
        return y[..., :n], y[..., n:]

    def rhs(self, t: torch.Tensor, y: torch.Tensor, p: torch.Tensor | None = None,
            u: torch.Tensor | None = None) -> torch.Tensor:
        s = self.system if p is None else self.unpack(p)
        x, q = self.split(y)
        dx, dq = s.rhs(x, q, self.flows)
        return torch.cat([dx, dq], -1)

    def fixed_point_map(self, y: torch.Tensor, p: torch.Tensor | None = None,
                        u: torch.Tensor | None = None) -> torch.Tensor:
        """One implicit-layer step z <- z + h F(z), h = dt shortened so no x loses over half."""
        s = self.system if p is None else self.unpack(p)
        x, q = self.split(y)
        dx, dq = s.rhs(x, q, self.flows)
        h = step_size(x, dx, self.dt)
        return torch.cat([x + h * dx, q + h * dq], -1)

    def energy(self, y: torch.Tensor, p: torch.Tensor | None = None) -> torch.Tensor:
        s = self.system if p is None else self.unpack(p)
        x, q = self.split(y)
        return s.energy(x, q)


#: the largest relative change of any x in one implicit-layer step
MAX_RELATIVE_STEP = 0.1


def step_size(x: torch.Tensor, dx: torch.Tensor, dt: float) -> torch.Tensor:
    """Per-sample step ``(..., 1)``: ``dt``, or less where some x would change by more than
    ``MAX_RELATIVE_STEP`` of itself (keeps x > 0 and damps the stiff chemical modes)."""
    shrink = (dt * dx.abs() / (MAX_RELATIVE_STEP * x)).amax(-1, keepdim=True).clamp(min=1.0)
    return dt / shrink


class MassActionDynamics(Dynamics):
    """The chemical (and homeostasis) flow of eqn:Dynamical_System on the free nodes only, for a
    system whose potential is chemical alone (V = 0, p = 0, Hamiltonian flow off: every imported
    BioModel). Then psi = dH/dx - ln x = 1 + a is constant and each column j of Mperp runs
    k_j e^{psi R_j} prod(x^R_j) - k_j e^{psi P_j} prod(x^P_j) (eqn:gradient in eqn:Dynamical_System):
    the external (clamped) nodes fold into those two constants, so the state is the free x only
    (67 of BIOMD0000000183's 419 nodes) and the solver gets the exact Jacobian
    (``rhs_bound(p).jacobian``) instead of autograd over all 2n states. Same trajectories as
    :class:`EPLDynamics` on the free nodes (:meth:`full_state` puts the clamped ones back)."""

    def __init__(self, system: EnergySystem, *, flows: Flows | None = None):
        flows = flows or system.flows
        if system.batch_shape:
            raise ModelError("MassActionDynamics takes one system, not a batch")
        if flows.hamiltonian and bool((system.v != 0).any()) or bool((system.V != 0).any()) \
                or bool((system.p0 != 0).any()):
            raise ModelError("MassActionDynamics needs V = 0, p = 0 and no Hamiltonian flow "
                             "(a chemical potential alone); use EPLDynamics")
        self.system, self.flows = system, flows
        self.dtype = system.Mperp.dtype
        free = system.free > 0
        self.free = torch.nonzero(free).flatten()
        R = (-system.Mperp).clamp(min=0) + system.catalysis
        P = system.Mperp.clamp(min=0) + system.catalysis
        psi = 1.0 + system.a
        on = system.k * float(flows.chemical)
        x_ext = torch.where(free, torch.ones_like(system.x0), system.x0)  # clamped nodes as constants
        self.cf = on * torch.exp(psi @ R) * torch.pow(x_ext.unsqueeze(-1), R).prod(0)
        self.cb = on * torch.exp(psi @ P) * torch.pow(x_ext.unsqueeze(-1), P).prod(0)
        self.R, self.P, self.N = R[free], P[free], system.Mperp[free]
        self.h = system.h[free] * float(flows.homeostasis)
        self.x_h = system.x_h[free]
        names = system.node_names or [f"n{i}" for i in range(system.n)]
        self.state_names = [f"x_{names[i]}" for i in self.free.tolist()]
        self.param_names = ()
        self.name = "epl-mass-action"

    def initial_state(self, p: torch.Tensor | None = None, batch: int | None = None, *,
                      dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> torch.Tensor:
        y = self.system.x0[self.free].to(dtype=dtype or self.dtype)
        return y if batch is None else y.expand(batch, -1).clone()

    def default_params(self, batch: int | None = None, *, dtype: torch.dtype | None = None,
                       device: torch.device | str | None = None) -> torch.Tensor:
        p = torch.zeros(0, dtype=dtype or self.dtype)
        return p if batch is None else p.expand(batch, -1).clone()

    def full_state(self, y: torch.Tensor) -> torch.Tensor:
        """``(..., n_free) -> (..., n)``: the free x with the clamped nodes at theta[x0]."""
        x = self.system.x0.expand(*y.shape[:-1], self.system.n).clone()
        x[..., self.free] = y
        return x

    def rhs(self, t: torch.Tensor, y: torch.Tensor, p: torch.Tensor | None = None,
            u: torch.Tensor | None = None) -> torch.Tensor:
        flux = self.cf * _monomial(y, self.R) - self.cb * _monomial(y, self.P)
        return flux @ self.N.T + self.h * (self.x_h - y)

    def jacobian(self, y: torch.Tensor) -> torch.Tensor:
        """d rhs / dy ``(B, n_free, n_free)``, exact (prefix/suffix products, finite at x = 0)."""
        D = self.cf * _monomial_grad(y, self.R) - self.cb * _monomial_grad(y, self.P)  # (B, i, j)
        J = torch.einsum("aj,bij->bai", self.N, D)
        return J - torch.diag_embed(self.h.expand_as(y))

    def rhs_bound(self, p: torch.Tensor,
                  u: torch.Tensor | None = None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        def f(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return self.rhs(t, y)

        f.jacobian = lambda t, y: (self.jacobian(y), torch.zeros_like(y))  # type: ignore[attr-defined]
        f.select = lambda index: f  # type: ignore[attr-defined]  # no per-sample parameters
        return f


def _monomial(x: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
    """prod_i x_i^E_ij ``(B, n), (n, e) -> (B, e)``."""
    return torch.pow(x.unsqueeze(-1), E).prod(-2)


def _monomial_grad(x: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
    """d prod_l x_l^E_lj / d x_i = E_ij x_i^(E_ij - 1) prod_{l != i} x_l^E_lj, ``(B, n, e)``
    (products of the other rows from prefix and suffix products: no division by x)."""
    pw = torch.pow(x.unsqueeze(-1), E)
    ones = torch.ones_like(pw[..., :1, :])
    before = torch.cat([ones, torch.cumprod(pw, -2)[..., :-1, :]], -2)
    after = torch.cat([torch.flip(torch.cumprod(torch.flip(pw, [-2]), -2), [-2])[..., 1:, :], ones], -2)
    own = torch.where(E > 0, E * torch.pow(x.unsqueeze(-1), (E - 1).clamp(min=0)), torch.zeros_like(pw))
    return own * before * after


class _Unchecked(EnergySystem):
    """theta views unpacked from a parameter vector (shapes known good: no checks, no copies)."""

    def __init__(self, vals: dict[str, Any], flows: Flows):  # noqa: D107 - see class docstring
        for f in fields(EnergySystem):
            object.__setattr__(self, f.name, vals.get(f.name))
        self.flows = flows


def relax(system: EnergySystem, z0: torch.Tensor | None = None, *, method: str = "iteration", dt: float = 0.05,
          tol: float = 1e-8, max_iter: int = 20000, flows: Flows | None = None, **options: Any) -> Solution:
    """The equilibrium z* of ``system`` from ``z0`` (default theta[x0], p0) through the core
    ``neuroplex.equilibrate``: ``method="iteration"`` runs the implicit layer z <- z + dt F(z)
    (fixed-point iteration), ``"ode"`` (or any ODE method name, e.g. ``"dopri5"``) integrates
    eqn:Dynamical_System to steady state. ``solution.stats["residual"]`` is per system."""
    dyn = EPLDynamics(system, dt=dt, flows=flows)
    y0 = dyn.initial_state() if z0 is None else z0
    params = dyn.pack()
    if method == "ode":
        method, options = "ode", {"ode_method": options.pop("ode_method", "dopri5"), **options}
    return neuroplex.equilibrate(dyn, y0, params=params, method=method, tol=tol, max_iter=max_iter, **options)


def trajectory(system: EnergySystem, t1: float, *, z0: torch.Tensor | None = None, n_points: int = 101,
               flows: Flows | None = None, method: str = "dopri5", **options: Any) -> Solution:
    """Integrate eqn:Dynamical_System over ``(0, t1)`` through the core ``neuroplex.simulate``."""
    dyn = EPLDynamics(system, flows=flows)
    y0 = dyn.initial_state() if z0 is None else z0
    return neuroplex.simulate(dyn, (0.0, t1), y0=y0, params=dyn.pack(), n_points=n_points, method=method, **options)
