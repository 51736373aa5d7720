"""The ``epl`` learning rule: Equilibrium Point Learning (paper, Algorithm 1).

The learned parameter is the equilibrium z* of a fixed energy DS (theta is not trained):

1. z* <- equilibrium from theta[x0] (core ``neuroplex.equilibrate``, :func:`.dynamics.relax`);
2. per sample: z <- z* + I_z x; run the implicit layer z <- f(z) (at most ``explore_steps``
   steps, stopping at a fixed point) collecting O_z z; O_eep = Active(mean of those);
   z*_self is where it ends;
3. the loss vector l = O_eep - y (its mean square is the reported loss);
   z <- z*_self + F_z l; relax to the new equilibrium z*_supervised (core equilibrate,
   ``relax_steps`` at most): the learned state. Nothing is back-propagated into the DS.

eqn:train_meaning holds when the loss at z*_post is below the loss at z*_pre;
eqn:EPL_equall_BPA asks -Delta z* = alpha dl/dz*. Per step the rule reports the BP-likeness of
eqn:EPL_LOSS_BPA, cos(A, B) with A = -Delta z* = z*_pre - z*_post and B = dl(O_eep(z*_pre + I_z x), y)/dz*
(autograd through the exploration, for the report only).

Our choices where the paper is vague: I_z adds ``input_gain`` x to the masses of the input
nodes, F_z adds ``-feedback_gain`` l to the masses of the output nodes (clipped to keep x > 0),
O_z reads the output masses and Active(s) = s / (1 + s) maps a mass to (0, 1).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import torch

from neuroplex.errors import NeuroplexError
from neuroplex.trainer import changed_settings

from .dynamics import EPLDynamics, relax
from .random import random_system
from .system import EnergySystem, Flows


@dataclass
class EPLConfig:
    """Settings of the ``epl`` rule (a random system of ``n_nodes`` with ``n_reactions``)."""

    n_inputs: int = 2
    n_outputs: int = 1
    n_nodes: int = 8
    n_reactions: int = 6
    system_seed: int = 0
    input_gain: float = 0.5
    feedback_gain: float = 0.5
    dt: float = 0.1
    explore_steps: int = 40
    relax_steps: int = 400
    tol: float = 1e-7
    flows: tuple[str, ...] = ("chemical", "hamiltonian", "collision")
    #: our variant (the paper keeps the input): take I_z x back out of z*_self before the feedback,
    #: so the learned state holds only the feedback and not the accumulated input masses
    remove_input: bool = False


def activation(s: torch.Tensor) -> torch.Tensor:
    return s / (1.0 + s)


class EPLRule:
    """Equilibrium Point Learning as a :class:`neuroplex.trainer.LearningRule`."""

    name = "epl"

    def __init__(self, config: EPLConfig | None = None, **options: Any):
        self.config = config or EPLConfig(**options)
        c = self.config
        if c.n_inputs + c.n_outputs > c.n_nodes:
            raise ValueError(f"epl rule: {c.n_inputs} inputs + {c.n_outputs} outputs exceed {c.n_nodes} nodes")
        self.system: EnergySystem | None = None
        self.z: torch.Tensor | None = None
        self.steps = 0

    # ---------------------------------------------------------------- setup
    def init(self, seed: int, device: torch.device) -> None:
        c = self.config
        s = random_system(c.n_nodes, c.n_reactions, seed=c.system_seed * 1000 + seed, flows=Flows.only(*c.flows))
        self.system = _squeeze(s)
        self.dyn = EPLDynamics(self.system, dt=c.dt)
        self.params = self.dyn.pack()[None]
        self.z = relax(self.system, tol=c.tol, max_iter=c.relax_steps * 10, dt=c.dt).ys[0]
        self.steps = 0

    @property
    def _in(self) -> slice:
        return slice(0, self.config.n_inputs)

    @property
    def _out(self) -> slice:
        n = self.config.n_nodes
        return slice(n - self.config.n_outputs, n)

    def inject(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """z + I_z x: input masses added to the input nodes."""
        z = z.clone()
        z[self._in] = z[self._in] + self.config.input_gain * x
        return z

    def explore(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The exploration loop of Algorithm 1: (O_eep, z at its end), differentiable."""
        outs = []
        y = z[None]
        for _ in range(self.config.explore_steps):
            outs.append(y[0, self._out])
            nxt = self.dyn.fixed_point_map(y, self.params)
            if float((nxt - y).detach().abs().max()) < self.config.tol:
                y = nxt
                break
            y = nxt
        return activation(torch.stack(outs).mean(0)), y[0]

    def check_shapes(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        """Refuse inputs ``(B, n_inputs)`` and targets ``(B, n_outputs)`` (or ``(B,)`` for one
        output) of other widths: they would broadcast over the input / output nodes."""
        c = self.config
        if x.dim() != 2 or x.shape[1] != c.n_inputs:
            raise NeuroplexError(f"epl rule: inputs of shape {tuple(x.shape)}, expected (batch, {c.n_inputs}) "
                                 f"(n_inputs={c.n_inputs})")
        if y is not None and (len(y) != len(x) or y.numel() != len(x) * c.n_outputs):
            raise NeuroplexError(f"epl rule: targets of shape {tuple(y.shape)} for {len(x)} inputs, expected "
                                 f"({len(x)}, {c.n_outputs}) (n_outputs={c.n_outputs})")

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        self.check_shapes(x)
        with torch.no_grad():
            return torch.stack([self.explore(self.inject(self.z, xi.to(self.z.dtype)))[0] for xi in x])

    # ---------------------------------------------------------------- learning
    def train_batch(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        c = self.config
        self.check_shapes(x, y)
        losses, likeness = [], []
        for xi, yi in zip(x.to(self.z.dtype), y.to(self.z.dtype).reshape(len(x), -1)):
            z_pre = self.z.detach().requires_grad_(True)
            o, _ = self.explore(self.inject(z_pre, xi))
            loss = ((o - yi) ** 2).mean()
            (grad,) = torch.autograd.grad(loss, z_pre)  # B of eqn:EPL_LOSS_BPA, report only
            with torch.no_grad():
                o, z_self = self.explore(self.inject(self.z, xi))
                err = o - yi
                z_fb = z_self.clone()
                if c.remove_input:
                    x_in = z_fb[self._in] - c.input_gain * xi
                    z_fb[self._in] = torch.maximum(x_in, 0.05 * z_fb[self._in])
                x_out = z_fb[self._out] - c.feedback_gain * err
                z_fb[self._out] = torch.maximum(x_out, 0.05 * z_fb[self._out])
                z_new = relax(self.system, z_fb[None], tol=c.tol, max_iter=c.relax_steps, dt=c.dt).ys[0]
                A = self.z - z_new  # -Delta z*
                likeness.append(float(torch.nn.functional.cosine_similarity(A, grad, dim=0)))
                losses.append(float(loss))
                self.z = z_new
            self.steps += 1
        return {"loss": sum(losses) / len(losses), "bp_likeness": sum(likeness) / len(likeness)}

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        self.check_shapes(x, y)
        o = self.predict(x)
        return {"loss": float(((o - y.to(o.dtype).reshape(o.shape)) ** 2).mean())}

    def state_dict(self) -> dict[str, Any]:
        return {"z": self.z, "steps": self.steps, "config": asdict(self.config)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        diff = changed_settings(state["config"], asdict(self.config))
        if diff:
            raise NeuroplexError(f"epl: the checkpoint was written with other settings: {', '.join(diff)}")
        self.z = state["z"]
        self.steps = int(state["steps"])


def _squeeze(s: EnergySystem) -> EnergySystem:
    """The one system of a batch of one."""
    vals = {k: (v[0] if isinstance(v, torch.Tensor) and v.dim() > (2 if k in ("Mperp", "V", "M", "catalysis") else 1) else v)
            for k, v in vars(s).items()}
    return EnergySystem(**vals)
