"""Layered energies, costs and nonlinearities for EqProp, with closed-form gradients.

Notation: layers ``l = 0..L`` with sizes ``dims``; ``u_0 = x`` is clamped (its activation
is the identity, rho_0(u) = u); ``u_1..u_L`` are free. Weights ``W_l`` have shape
``(d_{l+1}, d_l)``, biases ``b_l`` shape ``(d_{l+1},)``. Energies are per sample
(shape ``(B,)``); state gradients are per sample; parameter gradients are batch means.

``restr_hopfield`` (layered continuous Hopfield energy, Scellier & Bengio 2017 eq. 1):

    E = 1/2 sum_{l>=1} ||u_l||^2 - sum_{l=0}^{L-1} [rho(u_{l+1})^T W_l rho_l(u_l) + b_l^T rho(u_{l+1})]

``cond_gaussian`` (negative log joint of a conditional Gaussian / predictive coding):

    E = sum_{l=0}^{L-1} ||u_{l+1} - (W_l rho_l(u_l) + b_l)||^2

Costs act on the output pre-activation ``u_L`` (scaled by beta where they are used):
``squared_error`` C = 1/2 ||u_L - y||^2, ``cross_entropy`` C = logsumexp(u_L) - u_L[y].
No autograd anywhere: every gradient is written out.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from neuroplex.errors import ModelError

Tensor = torch.Tensor
LEAK = 0.01


def _sigmoid(u: Tensor) -> tuple[Tensor, Tensor]:
    s = torch.sigmoid(u)
    return s, s * (1 - s)


def _tanh(u: Tensor) -> tuple[Tensor, Tensor]:
    t = torch.tanh(u)
    return t, 1 - t * t


# relu / leaky_relu take rho'(0) = 1 (a valid one-sided derivative): with rho'(0) = 0 a
# Hopfield network relaxed from the zero state would never leave it.
def _relu(u: Tensor) -> tuple[Tensor, Tensor]:
    return u.clamp_min(0), (u >= 0).to(u.dtype)


def _leaky_relu(u: Tensor) -> tuple[Tensor, Tensor]:
    pos = u >= 0
    return torch.where(pos, u, LEAK * u), torch.where(pos, torch.ones_like(u), torch.full_like(u, LEAK))


def _hard_sigmoid(u: Tensor) -> tuple[Tensor, Tensor]:
    # derivative 1 on the closed interval [0, 1]: states clipped to [0, 1] keep moving
    return u.clamp(0, 1), ((u >= 0) & (u <= 1)).to(u.dtype)


#: name -> function returning (rho(u), rho'(u))
NONLINEARITIES: dict[str, Callable[[Tensor], tuple[Tensor, Tensor]]] = {
    "leaky_relu": _leaky_relu,
    "relu": _relu,
    "sigmoid": _sigmoid,
    "tanh": _tanh,
    "hard_sigmoid": _hard_sigmoid,
}


# --------------------------------------------------------------------------- costs
def cost(name: str, out: Tensor, target: Tensor) -> Tensor:
    """Per-sample cost (beta not applied); ``target`` is one-hot ``(B, d_L)``."""
    if name == "squared_error":
        return 0.5 * ((out - target) ** 2).sum(-1)
    if name == "cross_entropy":
        return torch.logsumexp(out, -1) - (out * target).sum(-1)
    raise ModelError(f"unknown cost {name!r} (use squared_error or cross_entropy)")


def cost_grad(name: str, out: Tensor, target: Tensor) -> Tensor:
    """dC/du_L per sample (beta not applied)."""
    if name == "squared_error":
        return out - target
    if name == "cross_entropy":
        return torch.softmax(out, -1) - target
    raise ModelError(f"unknown cost {name!r} (use squared_error or cross_entropy)")


COSTS = ("squared_error", "cross_entropy")

#: a unit whose slope rho'(u) is below this fraction of the nonlinearity's largest slope is
#: on a flat part of rho (no learning signal passes it)
FLAT_SLOPE = 1e-3
_MAX_SLOPE = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0, "leaky_relu": 1.0, "hard_sigmoid": 1.0}


# ------------------------------------------------------------------------ energies
class LayeredEnergy:
    """Base class: a layered energy with closed-form gradients in states and parameters.

    ``params`` is the flat list ``[W_0, b_0, W_1, b_1, ...]``; ``us`` the list of free
    layers ``[u_1, ..., u_L]``; ``x`` the clamped input ``u_0``.
    """

    name = ""
    #: the parameter gradients see the free layers only through rho(u) (Hopfield) rather
    #: than through the states themselves (predictive coding's prediction errors)
    through_rho = False

    def __init__(self, dims: Sequence[int], nonlinearity: str = "sigmoid"):
        if len(dims) < 2 or any(int(d) < 1 for d in dims):
            raise ModelError(f"{self.name}: dimensions need at least two positive sizes, got {list(dims)}")
        if nonlinearity not in NONLINEARITIES:
            raise ModelError(f"unknown nonlinearity {nonlinearity!r} (use {', '.join(NONLINEARITIES)})")
        self.dims = [int(d) for d in dims]
        self.nonlinearity = nonlinearity
        self.rho = NONLINEARITIES[nonlinearity]
        #: states are projected onto [0, 1] after every step (Scellier & Bengio's hard sigmoid)
        self.clip = nonlinearity == "hard_sigmoid"

    @property
    def n_layers(self) -> int:
        return len(self.dims) - 1

    def act(self, u: Tensor) -> tuple[Tensor, Tensor | None]:
        """(rho(u), rho'(u)) of a free layer's state; rho' is None where it is 1.

        With ``hard_sigmoid`` the relaxation keeps states in [0, 1], where rho(u) = u and
        rho'(u) = 1, so no work is done (callers pass states from the relaxation)."""
        if self.clip:
            return u, None
        return self.rho(u)

    def saturated(self, u: Tensor) -> Tensor:
        """Boolean mask of units on a flat part of rho: for ``hard_sigmoid`` a state at a
        bound of [0, 1] (its activity is pinned there), otherwise rho'(u) below
        :data:`FLAT_SLOPE` times the largest slope (``leaky_relu`` never saturates)."""
        if self.clip:
            return (u <= 0) | (u >= 1)
        if self.nonlinearity == "relu":
            return u < 0  # rho'(0) = 1 here, see _relu
        return self.rho(u)[1] < FLAT_SLOPE * _MAX_SLOPE[self.nonlinearity]

    def energy(self, x: Tensor, us: Sequence[Tensor], params: Sequence[Tensor]) -> Tensor:
        raise NotImplementedError

    def grad_states(self, x: Tensor, us: Sequence[Tensor], params: Sequence[Tensor],
                    x_drive: Tensor | None = None) -> list[Tensor]:
        """dE/du_l for l = 1..L. ``x_drive`` (optional) is ``x W_0^T + b_0`` precomputed."""
        raise NotImplementedError

    def grad_params(self, x: Tensor, us: Sequence[Tensor], params: Sequence[Tensor]) -> list[Tensor]:
        """Batch mean of dE/dtheta, same order as ``params``."""
        raise NotImplementedError

    def forward(self, x: Tensor, params: Sequence[Tensor]) -> list[Tensor]:
        """Feed-forward pass u_{l+1} = W_l rho_l(u_l) + b_l (states clipped when clipping)."""
        us: list[Tensor] = []
        a = x
        for l in range(self.n_layers):
            u = torch.addmm(params[2 * l + 1], a, params[2 * l].T)
            if self.clip:
                u = u.clamp(0, 1)
            us.append(u)
            a = self.act(u)[0]
        return us


class RestrictedHopfield(LayeredEnergy):
    """Layered continuous Hopfield energy (Scellier & Bengio 2017, eq. 1; input clamped)."""

    name = "restr_hopfield"
    through_rho = True

    def energy(self, x, us, params):
        e = sum(0.5 * (u * u).sum(-1) for u in us)
        acts = [x] + [self.act(u)[0] for u in us]
        for l in range(self.n_layers):
            W, b = params[2 * l], params[2 * l + 1]
            e = e - ((acts[l] @ W.T) * acts[l + 1]).sum(-1) - (acts[l + 1] * b).sum(-1)
        return e

    def grad_states(self, x, us, params, x_drive=None):
        L = self.n_layers
        r = [self.act(u) for u in us]
        grads = []
        for i, u in enumerate(us):  # u is layer l = i + 1
            if i == 0:
                drive = torch.addmm(params[1], x, params[0].T) if x_drive is None else x_drive
            else:
                drive = torch.addmm(params[2 * i + 1], r[i - 1][0], params[2 * i].T)
            if i + 1 < L:
                drive = drive.addmm(r[i + 1][0], params[2 * (i + 1)])
            grads.append(u - (drive if r[i][1] is None else r[i][1] * drive))
        return grads

    def grad_params(self, x, us, params):
        B = x.shape[0]
        acts = [x] + [self.act(u)[0] for u in us]
        out: list[Tensor] = []
        for l in range(self.n_layers):
            out.append(-(acts[l + 1].T @ acts[l]) / B)
            out.append(-acts[l + 1].mean(0))
        return out


class ConditionalGaussian(LayeredEnergy):
    """Conditional-Gaussian (predictive-coding) energy E = sum ||u_{l+1} - W_l rho(u_l) - b_l||^2."""

    name = "cond_gaussian"

    def _errors(self, x, us, params, x_drive=None):
        acts = [(x, None)] + [self.act(u) for u in us]
        errs = []
        for l in range(self.n_layers):
            pred = (acts[l][0] @ params[2 * l].T + params[2 * l + 1]) if (l or x_drive is None) else x_drive
            errs.append(us[l] - pred)
        return acts, errs

    def energy(self, x, us, params):
        _, errs = self._errors(x, us, params)
        return sum((e * e).sum(-1) for e in errs)

    def grad_states(self, x, us, params, x_drive=None):
        acts, errs = self._errors(x, us, params, x_drive)
        grads = []
        for i in range(len(us)):  # layer l = i + 1
            g = 2 * errs[i]
            if i + 1 < self.n_layers:
                back = errs[i + 1] @ params[2 * (i + 1)]
                g = g - 2 * (back if acts[i + 1][1] is None else acts[i + 1][1] * back)
            grads.append(g)
        return grads

    def grad_params(self, x, us, params):
        B = x.shape[0]
        acts, errs = self._errors(x, us, params)
        out: list[Tensor] = []
        for l in range(self.n_layers):
            out.append(-2 * (errs[l].T @ acts[l][0]) / B)
            out.append(-2 * errs[l].mean(0))
        return out


ENERGIES: dict[str, type[LayeredEnergy]] = {
    RestrictedHopfield.name: RestrictedHopfield,
    ConditionalGaussian.name: ConditionalGaussian,
}


def make_energy(name: str, dims: Sequence[int], nonlinearity: str) -> LayeredEnergy:
    """An energy by name (``restr_hopfield`` or ``cond_gaussian``)."""
    try:
        cls = ENERGIES[name]
    except KeyError:
        raise ModelError(f"unknown energy {name!r} (use {', '.join(ENERGIES)})") from None
    return cls(dims, nonlinearity)
