"""A learning-rule plugin: the Widrow-Hoff delta rule on a linear readout.

Widrow & Hoff, "Adaptive switching circuits" (1960): ``W <- W - lr * (W x - t) x^T`` with
one-hot targets ``t`` (the LMS rule). It implements neuroplex's ``LearningRule`` protocol,
so ``neuroplex.trainer.Trainer`` gives it epochs, seeding, metrics, checkpoints and resume.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch


class DeltaRule:
    """Widrow-Hoff (LMS) delta rule on a linear readout with bias, trained with SGD."""

    name = "example-delta"

    def __init__(self, n_inputs: int, n_classes: int, lr: float = 0.1):
        if n_inputs < 1 or n_classes < 2 or not lr > 0:
            raise ValueError(f"example-delta: need n_inputs >= 1, n_classes >= 2, lr > 0 "
                             f"(got {n_inputs}, {n_classes}, {lr})")
        self.n_inputs, self.n_classes, self.lr = int(n_inputs), int(n_classes), float(lr)

    def init(self, seed: int, device: torch.device) -> None:
        """Fresh weights (the trainer has seeded torch with ``seed``) and SGD state."""
        self.w = (0.01 * torch.randn(self.n_classes, self.n_inputs + 1, dtype=torch.float32)).to(device)
        self.opt = torch.optim.SGD([self.w], lr=self.lr)

    def _scores(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype, device=x.device)], dim=1) @ self.w.T

    def train_batch(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """One delta-rule step: the gradient of 0.5 * mean ||W x - t||^2."""
        xb = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype, device=x.device)], dim=1)
        err = xb @ self.w.T - torch.nn.functional.one_hot(y, self.n_classes).to(x.dtype)
        self.w.grad = err.T @ xb / len(x)
        self.opt.step()
        return {"loss": float(0.5 * (err ** 2).sum(1).mean())}

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        return {"accuracy": float((self._scores(x).argmax(1) == y).float().mean())}

    def state_dict(self) -> dict[str, Any]:
        return {"w": self.w.detach().clone(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.w = state["w"].clone()
        self.opt = torch.optim.SGD([self.w], lr=self.lr)
        self.opt.load_state_dict(state["opt"])
