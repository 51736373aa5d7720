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
from typing import Any

import torch

import neuroplex
from neuroplex.dynamics import Dynamics
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
