"""The ``eqprop`` learning rule: Equilibrium Propagation (Scellier & Bengio 2017).

Per mini-batch:

1. **Free phase**: relax the free layers from the zero state (or from a feed-forward pass
   with ``fast_ff_init``) to a fixed point of the energy through the core
   ``neuroplex.equilibrate(..., method="iteration", accept="residual")`` with a residual test
   (``tol``, at most ``free_steps`` relaxation steps; the state is used whether or not it
   converged, so the solver's distance test is off).
2. **Nudged phase(s)**: continue from the free state for ``nudged_steps`` steps on
   F = E + beta' C, with beta' = +beta (``positive``), +-beta with a random sign per batch
   (``random``), or both +beta and -beta (``centered``, Laborieux et al. 2021).
3. **Update**: the EqProp gradient estimate (Scellier & Bengio 2017, eq. 10 / Theorem 1)

       g = (dE/dtheta(u^beta') - dE/dtheta(u^0)) / beta'       (positive / random)
       g = (dE/dtheta(u^+beta) - dE/dtheta(u^-beta)) / (2 beta)  (centered)

   goes to a torch optimizer (``sgd``, ``adam``, ``adagrad``) with per-layer learning rates.

``fast_ff_init`` starts the free phase from the forward pass u_{l+1} = W_l rho(u_l) + b_l.
For ``cond_gaussian`` that state *is* the free equilibrium (E = 0, residual 0), so the
relaxation stops at once and dE/dtheta there is exactly zero: the forward pass replaces the
free phase and prediction is the forward pass. For ``restr_hopfield`` it only warm-starts
the relaxation.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping, Sequence

import torch

import neuroplex
from neuroplex.errors import NeuroplexError

from .dynamics import EqPropDynamics
from .energies import COSTS, ENERGIES, NONLINEARITIES, cost, cost_grad, make_energy

BETA_SIGNS = ("positive", "random", "centered")
#: an output unit is *pinned* on a sample when the cost asks to move it (|dC/du_L| above
#: PIN_COST_GRAD at the free state) and a nudge of +beta toward the target leaves it where it is
#: (change <= PIN_TOL): it gets no EqProp signal there. It counts as a pinned unit when that holds
#: on >= PIN_SHARE of its own class's samples or of the other classes' samples (>= PIN_MIN each).
PIN_COST_GRAD, PIN_TOL, PIN_SHARE, PIN_MIN = 0.25, 1e-6, 0.8, 5
#: a hidden unit is saturated when it sits on a flat part of rho for >= SATURATED_SHARE of a
#: split's samples; a run whose training split has more than SATURATED_LIMIT of them is stalled
SATURATED_SHARE, SATURATED_LIMIT = 0.99, 0.5
OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad}

#: defaults per energy (the options a user leaves unset); the Hopfield preset is Scellier &
#: Bengio's recipe with centered nudging at beta 1 instead of beta 0.5 with a random sign: a
#: hard-sigmoid output unit pinned at a bound beyond the nudge's reach learns nothing, and with
#: beta 0.5 that stalls 5 of 20 seeds on digits (docs/eqprop.md, "Stalled runs"); the
#: cond_gaussian preset is the reference trainer's (predictive coding + FF init)
PRESETS: dict[str, dict[str, Any]] = {
    "restr_hopfield": dict(nonlinearity="hard_sigmoid", c_energy="squared_error", beta=1.0, beta_sign="centered",
                           step_size=0.5, free_steps=20, nudged_steps=6, optimizer="sgd",
                           learning_rate=(0.1, 0.05), fast_ff_init=False),
    "cond_gaussian": dict(nonlinearity="sigmoid", c_energy="cross_entropy", beta=1.0, beta_sign="positive",
                          step_size=0.1, free_steps=20, nudged_steps=20, optimizer="adam",
                          learning_rate=(1e-3,), fast_ff_init=True),
}


@dataclass
class EqPropConfig:
    """Settings of the ``eqprop`` rule; ``None`` takes the energy's preset (:data:`PRESETS`)."""

    dimensions: Sequence[int] = (64, 100, 10)
    energy: str = "restr_hopfield"
    nonlinearity: str | None = None
    c_energy: str | None = None
    beta: float | None = None
    beta_sign: str | None = None
    step_size: float | None = None
    free_steps: int | None = None
    nudged_steps: int | None = None
    tol: float = 1e-4
    fast_ff_init: bool | None = None
    optimizer: str | None = None
    learning_rate: float | Sequence[float] | None = None
    dtype: str = "float32"
    extra: dict[str, Any] = field(default_factory=dict)

    def resolved(self) -> "EqPropConfig":
        """A copy with every ``None`` filled from the energy's preset, validated."""
        if self.energy not in ENERGIES:
            raise NeuroplexError(f"unknown energy {self.energy!r} (use {', '.join(ENERGIES)})")
        values = asdict(self)
        lr_from_preset = values["learning_rate"] is None
        for k, v in PRESETS[self.energy].items():
            if values.get(k) is None:
                values[k] = v
        cfg = EqPropConfig(**values)
        checks = [("nonlinearity", cfg.nonlinearity, NONLINEARITIES), ("c_energy", cfg.c_energy, COSTS),
                  ("beta_sign", cfg.beta_sign, BETA_SIGNS), ("optimizer", cfg.optimizer, OPTIMIZERS),
                  ("dtype", cfg.dtype, ("float32", "float64"))]
        for name, value, allowed in checks:
            if value not in allowed:
                raise NeuroplexError(f"eqprop: {name} must be one of {', '.join(allowed)}, not {value!r}")
        if not cfg.beta or cfg.beta <= 0:
            raise NeuroplexError(f"eqprop: beta must be > 0 (got {cfg.beta}); use beta_sign for the sign")
        if cfg.free_steps < 1 or cfg.nudged_steps < 1 or cfg.step_size <= 0:
            raise NeuroplexError("eqprop: free_steps and nudged_steps must be >= 1 and step_size > 0")
        lrs = [float(cfg.learning_rate)] if isinstance(cfg.learning_rate, (int, float)) else [float(v) for v in cfg.learning_rate]
        n_layers = len(cfg.dimensions) - 1
        if len(lrs) == 1 or lr_from_preset:  # a preset's last rate repeats for deeper networks
            lrs = (lrs + lrs[-1:] * n_layers)[:n_layers]
        if len(lrs) != n_layers:
            raise NeuroplexError(f"eqprop: {len(lrs)} learning rates for {n_layers} weight layers")
        cfg.learning_rate = tuple(lrs)
        cfg.dimensions = tuple(int(d) for d in cfg.dimensions)
        return cfg


class EqPropRule:
    """Equilibrium Propagation as a :class:`neuroplex.trainer.LearningRule`."""

    name = "eqprop"

    def __init__(self, config: EqPropConfig | None = None, **options: Any):
        base = config or EqPropConfig()
        known = {f.name for f in fields(EqPropConfig)}
        unknown = set(options) - known
        if unknown:
            raise NeuroplexError(f"eqprop: unknown option(s) {', '.join(sorted(unknown))}")
        self.config = EqPropConfig(**{**asdict(base), **options}).resolved()
        c = self.config
        self.energy = make_energy(c.energy, c.dimensions, c.nonlinearity)
        self.dtype = getattr(torch, c.dtype)
        self.params: list[torch.Tensor] = []
        self.optimizer: torch.optim.Optimizer | None = None
        self.dynamics: EqPropDynamics | None = None

    # --------------------------------------------------------------- set-up
    def init(self, seed: int, device: torch.device | str = "cpu") -> None:
        """Glorot-uniform weights (Scellier & Bengio), zero biases, fresh optimizer.

        Draws from torch's global generator (the trainer seeds it with ``seed``)."""
        c = self.config
        device = torch.device(device)
        self.params = []
        for d_in, d_out in zip(c.dimensions[:-1], c.dimensions[1:]):
            bound = math.sqrt(6.0 / (d_in + d_out))
            w = (torch.rand(d_out, d_in, dtype=self.dtype) * 2 - 1) * bound
            self.params += [w.to(device), torch.zeros(d_out, dtype=self.dtype, device=device)]
        groups = [{"params": self.params[2 * l: 2 * l + 2], "lr": lr} for l, lr in enumerate(c.learning_rate)]
        self.optimizer = OPTIMIZERS[c.optimizer](groups)
        self.dynamics = EqPropDynamics(self.energy, self.params, step_size=c.step_size, cost_name=c.c_energy)

    # --------------------------------------------------------------- phases
    def free_phase(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Relax to the free equilibrium through ``neuroplex.equilibrate``; returns
        (state ``(B, n)``, per-sample stats with ``iterations`` and ``residual``)."""
        dyn = self.dynamics.bind(x)
        if self.config.fast_ff_init:
            y0 = torch.cat(self.energy.forward(x, self.params), dim=-1)
        else:
            y0 = dyn.initial_state(batch=x.shape[0])
        # a truncated relaxation: its state is used whether or not it converged and its status is
        # dropped, so the solver's distance test (a Jacobian per batch, 3.2x an epoch) buys nothing
        sol = neuroplex.equilibrate(dyn, y0, solver="torch", method="iteration", tol=self.config.tol,
                                    max_iter=self.config.free_steps, accept="residual")
        return sol.ys, sol.stats

    def nudged_phase(self, x: torch.Tensor, target: torch.Tensor, free: torch.Tensor, beta: float) -> torch.Tensor:
        """``nudged_steps`` relaxation steps on E + beta C from the free state."""
        dyn = self.dynamics.bind(x, target, beta)
        y = free
        for _ in range(self.config.nudged_steps):
            y = dyn.fixed_point_map(y)
        return y

    def gradient(self, x: torch.Tensor, y: torch.Tensor) -> tuple[list[torch.Tensor], dict[str, float]]:
        """EqProp estimate of d(mean cost)/dtheta on a batch, and free-phase metrics."""
        c = self.config
        x = x.to(self.dtype)
        target = torch.nn.functional.one_hot(y, c.dimensions[-1]).to(self.dtype)
        free, stats = self.free_phase(x)
        split = self.dynamics.split
        if c.beta_sign == "centered":
            plus = self.energy.grad_params(x, split(self.nudged_phase(x, target, free, c.beta)), self.params)
            minus = self.energy.grad_params(x, split(self.nudged_phase(x, target, free, -c.beta)), self.params)
            grads = [(gp - gm) / (2 * c.beta) for gp, gm in zip(plus, minus)]
        else:
            beta = c.beta
            if c.beta_sign == "random" and torch.rand(()) < 0.5:
                beta = -beta
            g_free = self.energy.grad_params(x, split(free), self.params)
            g_nudged = self.energy.grad_params(x, split(self.nudged_phase(x, target, free, beta)), self.params)
            grads = [(gn - gf) / beta for gn, gf in zip(g_nudged, g_free)]
        # energy and cost at the free state are reported per split by evaluate()
        metrics = {"free_residual": float(stats["residual"].float().mean()),
                   "free_iterations": float(stats["iterations"].float().mean())}
        return grads, metrics

    # ------------------------------------------------------ LearningRule API
    def train_batch(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        grads, metrics = self.gradient(x, y)
        for p, g in zip(self.params, grads):
            p.grad = g
        self.optimizer.step()
        return metrics

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Output-layer state at the free equilibrium, ``(B, d_L)``."""
        free, _ = self.free_phase(x.to(self.dtype))
        return self.dynamics.split(free)[-1]

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, chunk: int = 10_000) -> dict[str, float]:
        """Accuracy, mean cost, mean free energy and mean free-phase residual at the free
        equilibrium on a split (relaxed in chunks of ``chunk`` samples to bound memory), and
        the stall diagnostics ``saturated`` (fraction of hidden units on a flat part of rho
        for >= ``SATURATED_SHARE`` of the split) and ``pinned_outputs`` (output units that a
        nudge toward the target cannot move: see :meth:`pin_counts`)."""
        totals = {"accuracy": 0.0, "cost": 0.0, "energy": 0.0, "residual": 0.0}
        n_out = self.config.dimensions[-1]
        n_hidden = sum(self.config.dimensions[1:-1])
        flat = torch.zeros(n_hidden, dtype=torch.long)
        pins = torch.zeros(2, 3, n_out, dtype=torch.long)
        for i in range(0, x.shape[0], chunk):
            xc, yc = x[i:i + chunk].to(self.dtype), y[i:i + chunk]
            free, stats = self.free_phase(xc)
            us = self.dynamics.split(free)
            target = torch.nn.functional.one_hot(yc, n_out).to(self.dtype)
            totals["accuracy"] += float((us[-1].argmax(-1) == yc).sum())
            totals["cost"] += float(cost(self.config.c_energy, us[-1], target).sum())
            totals["energy"] += float(self.energy.energy(xc, us, self.params).sum())
            totals["residual"] += float(stats["residual"].double().sum())
            flat += self.energy.saturated(free[:, :n_hidden]).sum(0).cpu()
            pins += self.pin_counts(xc, target, free).cpu()
        n = max(x.shape[0], 1)
        out = {k: v / n for k, v in totals.items()}
        out["saturated"] = float((flat >= SATURATED_SHARE * n).double().mean()) if n_hidden else 0.0
        group, pinned = pins[:, 0], pins[:, 2]
        out["pinned_outputs"] = float(((group >= PIN_MIN) & (pinned >= PIN_SHARE * group)).any(0).sum())
        return out

    @torch.no_grad()
    def pin_counts(self, x: torch.Tensor, target: torch.Tensor, free: torch.Tensor) -> torch.Tensor:
        """Counts ``(2, 3, d_L)`` per output unit, for the samples of its own class (row 0) and
        of the other classes (row 1): samples, samples where the cost asks to move the unit
        (``|dC/du_L| > PIN_COST_GRAD`` at the free state ``free``), and those of them where a
        nudge of +beta toward the one-hot ``target`` leaves it unmoved, so that the EqProp
        gradient of its weights is zero there. With ``hard_sigmoid`` this happens to a unit
        whose drive is beyond the nudge's reach: below -beta on its own class (pinned at 0)
        or above 1 + beta on the others (pinned at 1)."""
        c = self.config
        out0 = self.dynamics.split(free)[-1]
        outb = self.dynamics.split(self.nudged_phase(x, target, free, c.beta))[-1]
        wants = cost_grad(c.c_energy, out0, target).abs() > PIN_COST_GRAD
        if self.energy.through_rho:
            out0, outb = self.energy.act(out0)[0], self.energy.act(outb)[0]
        stuck = wants & ((outb - out0).abs() <= PIN_TOL)
        own = target > 0
        return torch.stack([torch.stack([g.sum(0), (wants & g).sum(0), (stuck & g).sum(0)]) for g in (own, ~own)])

    def stall_reasons(self, metrics: Mapping[str, float]) -> list[str]:
        """Why an epoch's ``metrics`` look like a stalled run (empty when they do not): output
        units pinned beyond the nudge's reach, or more than ``SATURATED_LIMIT`` of the hidden
        units saturated, on the training split. The trainer adds its own near-chance test."""
        reasons = []
        pinned = int(metrics.get("train_pinned_outputs", 0))
        if pinned:
            reasons.append(f"{pinned} output unit{'s' if pinned > 1 else ''} pinned")
        saturated = float(metrics.get("train_saturated", 0.0))
        if saturated > SATURATED_LIMIT:
            reasons.append(f"{saturated:.0%} hidden units saturated")
        return reasons

    def epoch_metrics(self) -> dict[str, float]:
        out = {}
        for l in range(len(self.params) // 2):
            out[f"w{l}_norm"] = float(self.params[2 * l].norm())
            out[f"b{l}_norm"] = float(self.params[2 * l + 1].norm())
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"params": [p.detach().clone() for p in self.params], "optimizer": self.optimizer.state_dict(),
                "config": asdict(self.config)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        saved = state["config"]
        mine = asdict(self.config)
        diff = [k for k in mine if k != "extra" and _norm(saved.get(k)) != _norm(mine[k])]
        if diff:
            raise NeuroplexError("eqprop: checkpoint was written with other settings: " + ", ".join(
                f"{k}={saved.get(k)!r} (now {mine[k]!r})" for k in diff))
        with torch.no_grad():
            for p, v in zip(self.params, state["params"]):
                p.copy_(v)
        self.optimizer.load_state_dict(state["optimizer"])


def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, (list, tuple)) else v
