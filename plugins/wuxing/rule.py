"""Learning rules ``wuxing-k3`` (method 1), ``wuxing-coupling`` (method 2), ``wuxing-mixed``.

One mini-batch: a forward run (``Dbar``, output ``Leb``, eq 5.1), errors ``e = target - Leb``
(target1 on the true class, target2 elsewhere, eq 5.2 / 5.3), a reversed run driven by ``e``
(``D^bar``), then

* method 1 (framework paper eq 5.5-5.7): ``G1 = <Dbar D^bar>`` per element,
  ``K3 <- K3 exp(-eta_k3 atan(kt G1) / kt)``, clamped, rest points recomputed;
* method 2 (connection paper eq 3.3-3.5): ``G1 = <Dbar[src] D^bar[dst]>`` per link,
  ``C <- C + eta_c atan(kt G1) / kt``, clamped;
* mixed: both from the same forward / reversed pair, weighted by ``mix_k3`` and ``mix_c``.

``<.>`` is the batch mean (batch size 1 is the papers' online training). The rules run in
the core :class:`neuroplex.trainer.Trainer` (epochs, checkpoints, exact resume, CSV, plots).
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from neuroplex.errors import NeuroplexError

from .augment import jitter_images
from .config import WuxingConfig, load_config
from .network import WuxingNetwork

METHODS = ("k3", "coupling", "mixed")



DEFAULT_CONFIGS = {"k3": "digits_single", "coupling": "digits", "mixed": "digits"}


def default_config(method: str) -> str:
    """The shipped digits config a method trains by default: method 1 (``k3``) keeps the papers'
    one-neuron-per-class readout (``digits_single``; the population readout of ``digits`` drops it
    to chance on validation), methods 2 and mixed use ``digits``."""
    if method not in DEFAULT_CONFIGS:
        raise NeuroplexError(f"wuxing: method must be one of {', '.join(DEFAULT_CONFIGS)}, not {method!r}")
    return DEFAULT_CONFIGS[method]

class WuxingRule:
    """A Wuxing network trained by method 1, 2 or mixed (see the module docstring).

    ``config``: a :class:`WuxingConfig`, a shipped config name (``digits``, ``model1``, ...)
    or a JSON path; keyword arguments override config fields (``eta_c=0.2``, ``wiring="match"``).
    """

    name = "wuxing"
    method = "coupling"

    def __init__(self, config: WuxingConfig | str | None = None, *, method: str | None = None, **changes: Any):
        self.method = method or type(self).method
        if self.method not in METHODS:
            raise NeuroplexError(f"wuxing: method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if isinstance(config, WuxingConfig):
            self.config = config.replace(**changes)
        else:
            self.config = load_config(config or default_config(self.method), **changes)
        self.name = f"wuxing-{self.method}"
        self.net: WuxingNetwork | None = None
        self.updates = 0

    def init(self, seed: int, device: torch.device | str = "cpu") -> None:
        self.net = WuxingNetwork(self.config, seed=seed, device=device)
        self.updates = 0

    @property
    def network(self) -> WuxingNetwork:
        """The network (after :meth:`init`)."""
        if self.net is None:
            raise NeuroplexError("wuxing: call init(seed, device) before training or evaluating")
        return self.net

    def train_batch(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        net = self.network
        cfg = self.config
        if cfg.augments:
            x = jitter_images(x, shift=cfg.aug_shift, rotate=cfg.aug_rotate, scale=cfg.aug_scale)
        dbar = net.forward(x)
        out = net.output(dbar)
        net.track_output(out)
        err = net.targets(y) - out
        dhat = net.backward(err)
        scale = 1.0 / (1.0 + self.config.lr_decay * self.updates)
        if self.method in ("coupling", "mixed"):
            net.update_coupling(net.coupling_g1(dbar, dhat), scale * (self.config.mix_c if self.method == "mixed" else 1.0))
        if self.method in ("k3", "mixed"):
            net.update_k3(net.k3_g1(dbar, dhat), scale * (self.config.mix_k3 if self.method == "mixed" else 1.0))
        self.updates += 1
        acc = (net.decision(out).argmax(1) == y.to(out.device)).float().mean()
        return {"loss": float(0.5 * (err ** 2).sum(1).mean()), "batch_accuracy": float(acc)}

    @torch.no_grad()
    def predict(self, x: torch.Tensor, chunk: int = 512) -> torch.Tensor:
        """Output ``Leb`` for every row of ``x``."""
        net = self.network
        return torch.cat([net.output(net.forward(x[i:i + chunk])) for i in range(0, x.shape[0], chunk)])

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        net = self.network
        out = self.predict(x)
        err = net.targets(y) - out
        return {"accuracy": float((net.decision(out).argmax(1) == y.to(out.device)).float().mean()),
                "loss": float(0.5 * (err ** 2).sum(1).mean())}

    def epoch_metrics(self) -> dict[str, float]:
        net = self.network
        k3 = net.K3[net.k3_mask.expand_as(net.K3)]
        return {"c_abs_mean": float(net.C.abs().mean()), "c_at_clamp": float((net.C.abs() >= net.C_max).float().mean()),
                "k3_mean": float(k3.mean()) if k3.numel() else float("nan")}

    def state_dict(self) -> dict[str, Any]:
        return {"method": self.method, "config": self.config.to_dict(), "updates": self.updates,
                "net": self.network.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state["method"] != self.method or state["config"] != self.config.to_dict():
            raise NeuroplexError("wuxing: the checkpoint was written with another method or config "
                                 f"({state['method']}, {state['config'].get('name')}); use a fresh log directory")
        self.network.load_state_dict(dict(state["net"]))
        self.updates = int(state["updates"])


class WuxingK3Rule(WuxingRule):
    """Method 1: train K3 from the forward and reversed signals (framework paper eq 5.5-5.7)."""

    method = "k3"


class WuxingCouplingRule(WuxingRule):
    """Method 2: train the connection coefficients C (connection paper eq 3.3-3.5)."""

    method = "coupling"


class WuxingMixedRule(WuxingRule):
    """Mixed method: K3 and C from one forward / reversed pair (weights mix_k3, mix_c)."""

    method = "mixed"
