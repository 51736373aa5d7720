"""EqProp relaxation as a :class:`neuroplex.dynamics.Dynamics`: gradient flow on E + beta C.

The state ``y`` is ``(B, d_1 + ... + d_L)``, the free layers concatenated. One relaxation
step (explicit Euler on the energy, closed-form gradients; Scellier & Bengio 2017 eq. 6
discretised) is the fixed-point map

    y <- y - eps * (dE/dy + beta * dC/dy)      (then clipped to [0, 1] for hard_sigmoid)

whose fixed points are the stationary points of F = E + beta C, so the core
``neuroplex.equilibrate(..., method="iteration")`` drives the free phase (beta = 0).
"""
from __future__ import annotations

from typing import Sequence

import torch

from neuroplex.dynamics import Dynamics

from .energies import LayeredEnergy, cost, cost_grad

Tensor = torch.Tensor


class EqPropDynamics(Dynamics):
    """Relaxation dynamics of a layered energy with clamped input and optional nudging.

    ``bind(x, target, beta)`` sets the clamped input (``(B, d_0)``), the one-hot target and
    the nudging strength; ``fixed_point_map(y, p, u)`` takes ``u`` as the clamped input when
    given (a solver may pass a subset of the batch) and the bound input otherwise.
    """

    def __init__(self, energy: LayeredEnergy, params: Sequence[Tensor], *, step_size: float,
                 cost_name: str = "squared_error"):
        self.energy_fn = energy
        self.params = list(params)
        self.step_size = float(step_size)
        self.cost_name = cost_name
        self.name = f"eqprop-{energy.name}"
        self.sizes = energy.dims[1:]
        self.state_names = [f"h{l + 1}_{i}" for l, d in enumerate(self.sizes) for i in range(d)]
        self.input_names = [f"x_{i}" for i in range(energy.dims[0])]
        self.x: Tensor | None = None
        self.target: Tensor | None = None
        self.beta = 0.0
        self._drive: tuple[Tensor, int | None, Tensor] | None = None
        self._affine: tuple[Tensor, Tensor] | None = None
        self._affine_base: tuple[Tensor, tuple[int | None, ...], Tensor, Tensor] | None = None

    # ------------------------------------------------------------------ binding
    def bind(self, x: Tensor, target: Tensor | None = None, beta: float = 0.0) -> "EqPropDynamics":
        self.x, self.target, self.beta = x, target, float(beta)  # the fast path reads x now
        self._drive = None  # parameters may have changed since the last batch
        self._affine = self._affine_step(x) if self._affine_ok() else None
        return self

    # ------------------------------------------------- affine fast path
    def _affine_ok(self) -> bool:
        """Hopfield + hard_sigmoid: inside [0, 1] rho is the identity, so the step is affine in
        the state (and stays affine under squared-error nudging)."""
        return (self.energy_fn.name == "restr_hopfield" and self.energy_fn.clip
                and (self.beta == 0.0 or self.cost_name == "squared_error"))

    def _affine_step(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(c, A) with step(y) = clip(c + y A): A = (1 - eps) I + eps K, K the symmetric
        block-tridiagonal coupling [[0, W_1^T], [W_1, 0]] (deeper: more blocks), c = eps *
        [x W_0^T + b_0, b_1, ...]; squared-error nudging adds -eps beta on the output
        diagonal and eps beta y to c."""
        eps, ps, sizes = self.step_size, self.params, self.sizes
        versions = tuple(_stamp(t) for t in (*ps, x))  # bumped by every in-place update
        base = self._affine_base
        if base is None or base[0] is not x or base[1] != versions or None in versions:
            n = sum(sizes)
            offs = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
            A = torch.zeros(n, n, dtype=ps[0].dtype, device=ps[0].device)
            A.diagonal().fill_(1.0 - eps)
            for i in range(1, len(sizes)):
                W = ps[2 * i]  # (d_{i+1}, d_i): couples layer i (rows of A) to layer i+1 (cols)
                A[offs[i - 1]:offs[i], offs[i]:offs[i + 1]] = eps * W.T
                A[offs[i]:offs[i + 1], offs[i - 1]:offs[i]] = eps * W
            c = torch.cat([torch.addmm(ps[1], x, ps[0].T)] + [ps[2 * i + 1].expand(x.shape[0], -1)
                                                               for i in range(1, len(sizes))], dim=-1).mul_(eps)
            base = self._affine_base = (x, versions, c, A)
        c, A = base[2], base[3]
        if self.beta != 0.0:
            out = sum(sizes[:-1])
            A = A.clone()
            A.diagonal()[out:] -= eps * self.beta
            c = c.clone()
            c[:, out:] += (eps * self.beta) * self._target(c)
        return c, A

    def split(self, y: Tensor) -> list[Tensor]:
        return list(torch.split(y, self.sizes, dim=-1))

    def _input(self, y: Tensor, u: Tensor | None) -> Tensor:
        x = self.x if u is None else u
        if x is None or x.shape[0] != y.shape[0]:
            raise ValueError("EqPropDynamics: bind(x) an input batch matching the state batch first")
        return x

    def _x_drive(self, x: Tensor) -> Tensor:
        W0, b0 = self.params[0], self.params[1]
        stamp = _stamp(x)
        if self._drive is None or self._drive[0] is not x or self._drive[1] != stamp or stamp is None:
            self._drive = (x, stamp, torch.addmm(b0, x, W0.T))
        return self._drive[2]

    def _target(self, y: Tensor) -> Tensor:
        if self.target is None or self.target.shape[0] != y.shape[0]:
            raise ValueError("EqPropDynamics: nudging (beta != 0) needs a target batch matching the state")
        return self.target

    # ---------------------------------------------------------------- interface
    def grad(self, y: Tensor, u: Tensor | None = None) -> Tensor:
        """dF/dy = dE/dy + beta dC/dy, ``(B, n)``."""
        x = self._input(y, u)
        us = self.split(y)
        gs = self.energy_fn.grad_states(x, us, self.params, x_drive=self._x_drive(x))
        if self.beta != 0.0:
            gs[-1] = gs[-1] + self.beta * cost_grad(self.cost_name, us[-1], self._target(y))
        return torch.cat(gs, dim=-1) if len(gs) > 1 else gs[0]

    def fixed_point_map(self, y: Tensor, p: Tensor | None = None, u: Tensor | None = None) -> Tensor:
        """One relaxation step y - eps dF/dy (clipped to [0, 1] for hard_sigmoid)."""
        if self._affine is not None and (u is None or u is self.x) and y.shape[0] == self._affine[0].shape[0]:
            c, A = self._affine
            return torch.addmm(c, y, A).clamp_(0, 1)
        y_new = torch.add(y, self.grad(y, u), alpha=-self.step_size)
        return y_new.clamp_(0, 1) if self.energy_fn.clip else y_new

    def rhs(self, t: Tensor, y: Tensor, p: Tensor | None = None, u: Tensor | None = None) -> Tensor:
        """Gradient flow dy/dt = -dF/dy (for ODE solvers)."""
        return -self.grad(y, u)

    def energy(self, y: Tensor, p: Tensor | None = None) -> Tensor:
        """Total energy F = E + beta C per sample."""
        x = self._input(y, None)
        us = self.split(y)
        e = self.energy_fn.energy(x, us, self.params)
        if self.beta != 0.0:
            e = e + self.beta * cost(self.cost_name, us[-1], self._target(y))
        return e

    def initial_state(self, p=None, batch=None, *, dtype=None, device=None):
        dtype = dtype or self.params[0].dtype
        device = device or self.params[0].device
        n = sum(self.sizes)
        return torch.zeros(n if batch is None else (batch, n), dtype=dtype, device=device)


def _stamp(t: Tensor) -> int | None:
    """``t``'s version counter (bumped by every in-place write), so a cache keyed on a tensor
    misses when its values change under the same object; None for an inference tensor (no
    counter: never cached)."""
    return None if t.is_inference() else t._version
