"""The ``xnet`` learning rule: X-Net classification (one tree per class, cross-entropy) for
:class:`neuroplex.trainer.Trainer`. One epoch is one round of Alternating Backpropagation over
the population plus the refit of the best new structures (``search.py``); checkpoints hold the
population, the hall of fame's best and the search's generator state."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from .abp import ABPConfig, ABPSearch, Candidate
from .refit import lbfgs_refit
from .search import score
from .tree import TreeSpec
from .tree import root_output


class XNetRule:
    """Trainer rule; ``train_epoch`` runs one search round on the whole training split."""

    name = "xnet"

    def __init__(self, n_features: int, n_classes: int, library=("+", "-", "*", "/", "sin", "cos", "exp", "square", "x"),
                 max_nodes: int = 9, depth: int = 5, population: int = 16, steps_per_round: int = 40,
                 refit_per_round: int = 8, parsimony: float = 1e-4) -> None:
        self.spec = TreeSpec(n_features, library, depth)
        self.k = n_classes
        self.cfg = ABPConfig(population=population, max_nodes=max_nodes, steps_per_round=steps_per_round)
        self.refit_per_round, self.parsimony = refit_per_round, parsimony
        self.best: Candidate | None = None

    def init(self, seed: int, device: torch.device) -> None:
        self.rng = np.random.default_rng(seed)
        self.round = 0
        self.best = None

    def _loss_fn(self, labels: torch.Tensor):
        k = self.k

        def loss_fn(roots: torch.Tensor) -> torch.Tensor:
            logits = roots.permute(0, 2, 1).reshape(-1, k)
            ce = torch.nn.functional.cross_entropy(logits, labels.repeat(roots.shape[0]), reduction="none")
            return ce.reshape(roots.shape[0], -1).mean(1)
        return loss_fn

    def train_epoch(self, data: Any, epoch: int) -> Mapping[str, float]:
        x, y = data.x_train.double(), data.y_train.long()
        loss_fn = self._loss_fn(y)
        search = ABPSearch(self.spec, x, loss_fn, self.cfg, self.rng, group=self.k)
        search.round = self.round
        ops, w, b = search.init_population()
        if self.best is not None:
            ops[: self.k], w[: self.k], b[: self.k] = self.best.ops, self.best.w, self.best.b
        search.run_round((ops, w, b))
        self.round += 1
        cands = lbfgs_refit(self.spec, x, loss_fn, search.best_candidates(self.refit_per_round), group=self.k)
        if self.best is not None:
            cands.append(self.best)
        self.best = min(cands, key=lambda c: score(c, self.parsimony))
        return {"loss": self.best.loss, "nodes": float(self.best.nodes)}

    def logits(self, x: torch.Tensor) -> torch.Tensor:

        c = self.best
        return root_output(self.spec, torch.as_tensor(c.ops), torch.as_tensor(c.w), torch.as_tensor(c.b), x.double()).T

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> Mapping[str, float]:
        if self.best is None:
            return {"accuracy": float("nan")}
        logits = self.logits(x)
        loss = torch.nn.functional.cross_entropy(logits, y.long()).item()
        return {"loss": loss, "accuracy": (logits.argmax(1) == y.long()).double().mean().item()}

    def state_dict(self) -> dict[str, Any]:
        best = None if self.best is None else {"ops": self.best.ops.tolist(), "w": self.best.w.tolist(),
                                               "b": self.best.b.tolist(), "loss": self.best.loss}
        return {"round": self.round, "best": best, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.round = int(state["round"])
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = state["rng"]
        b = state["best"]
        self.best = None if b is None else Candidate(np.asarray(b["ops"], dtype=np.int64), np.asarray(b["w"]),
                                                     np.asarray(b["b"]), float(b["loss"]))
