"""A layered Wuxing network: forward and reversed simulation, batched, with Heun.

Layout: all layers' neurons are stacked, ``n_total = sum(layers)``; a state is
``(n_total, 5, B)`` (batch last, so a link gather / scatter moves contiguous rows) and
interface ``5 m + i`` of the flattened ``(5 n_total, B)`` view is element ``i`` of stacked
neuron ``m``. Links of every layer pair are one set of index tensors ``src``, ``dst``
(global interface indices) with coefficients ``C`` (connection-coefficient paper, eq 3.1 /
3.2: the same C forward and backward), so one gather and one ``index_add_`` serve the whole
network per stage.

Forward (framework paper eq 2.2 per neuron, inputs eq 3.1)::

    dE/dt = K1 E_{i-1} - K2 E - K3 E E_{i-2} + I,   I[dst] += C D[src],   I[input] = in_scale x

Reversed (eq 4.3, connection paper eq 3.2)::

    dE/dt = K1_{i+1} E_{i+1} - K2 E - K3_{i+2} E E_{i+2} + I,   I[src] += C D^[dst],   I[output] = err_scale e

Both start at their rest points (``D(0) = 0``) and run ``T / dt`` Heun steps of the core
fixed-step loop with E clamped to ``[0, e_max B0]`` after each stage; the trapezoidal time
average ``Dbar = (1/T) int D dt`` is kept, never the trajectory. ``Leb = Dbar`` at the
output element of the last layer (eq 5.1); the predicted class is the argmax of ``Leb`` or,
with ``readout_norm="zscore"``, of ``Leb`` standardised per class by running statistics of
the training batches (:meth:`WuxingNetwork.decision`). A non-finite state or parameter raises naming
the layer.
"""
from __future__ import annotations

import warnings
from typing import Any

import torch

from neuroplex.errors import NeuroplexError
from neuroplex.fixed_step import heun

from .config import WuxingConfig
from .neuron import check_stability, rest_point
from .wiring import link_ratio, wire


class NumericalError(NeuroplexError):
    """A state or parameter of a Wuxing network became NaN or infinite."""


class WuxingNetwork:
    """Parameters, wiring and simulation of one Wuxing network (see the module docstring)."""

    def __init__(self, config: WuxingConfig, *, seed: int = 0, device: str | torch.device = "cpu"):
        self.config = config
        self.device = torch.device(device)
        self.dtype = getattr(torch, config.dtype)
        sizes = config.layers
        self.sizes = list(sizes)
        self.offsets = [0]
        for n in sizes:
            self.offsets.append(self.offsets[-1] + n)
        self.n_total = self.offsets[-1]
        gen = torch.Generator().manual_seed(int(seed))
        opts = {"dtype": self.dtype, "device": self.device}
        shape = (self.n_total, 5, 1)
        self.K1 = torch.full(shape, config.K1, **opts)
        self.K2 = torch.full(shape, config.K2, **opts)
        k3 = torch.full(shape, config.K3, dtype=torch.float64)
        if config.k3_jitter:
            k3 = k3 * (1 + config.k3_jitter * (2 * torch.rand(shape, generator=gen, dtype=torch.float64) - 1))
        self.K3 = k3.to(**opts)
        self.K3_init = self.K3.clone()
        check_stability(self.K1[..., 0], self.K2[..., 0], self.K3[..., 0], where=f"wuxing network {config.name!r}")
        src, dst, c, layer, cmax = [], [], [], [], []
        self.c_max_per_layer: list[float] = []
        self.link_ratios: list[float] = []
        for l, spec in enumerate(config.wirings()):
            s, d = wire(spec, 5 * sizes[l], 5 * sizes[l + 1], gen)
            fanin = s.numel() / max(int(torch.unique(d).numel()), 1)
            c0 = config.c0 if config.c0 is not None else config.c0_scale / fanin
            cm = config.c_max if config.c_max is not None else config.c_max_scale / fanin
            src.append(s + 5 * self.offsets[l])
            dst.append(d + 5 * self.offsets[l + 1])
            c.append(c0 * (0.5 + torch.rand(s.numel(), generator=gen, dtype=torch.float64)))
            layer.append(torch.full((s.numel(),), l, dtype=torch.long))
            cmax.append(torch.full((s.numel(),), cm, dtype=torch.float64))
            self.c_max_per_layer.append(float(cm))
            self.link_ratios.append(link_ratio(s.numel(), sizes[l], sizes[l + 1]))
        self.src = torch.cat(src).to(self.device)
        self.dst = torch.cat(dst).to(self.device)
        self.C = torch.cat(c).to(**opts)
        self.C_init = self.C.clone()
        self.link_layer = torch.cat(layer).to(self.device)
        self.C_max = torch.cat(cmax).to(**opts)
        layer_eta = torch.tensor(config.eta_c_layers or [1.0] * len(sizes[:-1]), dtype=torch.float64)
        self.eta_link = (config.eta_c * layer_eta[self.link_layer]).to(**opts)
        k3_eta = torch.tensor(config.eta_k3_layers or [1.0] * len(sizes), dtype=torch.float64)
        self.eta_k3_neuron = k3_eta.repeat_interleave(torch.tensor(sizes)).reshape(-1, 1, 1).to(**opts)
        self.in_idx = (5 * torch.arange(sizes[0]) + config.in_elem).to(self.device)
        out = 5 * (self.offsets[-2] + torch.arange(sizes[-1]))
        elems = torch.arange(5) if config.readout == "mean" else torch.tensor([config.out_elem])
        #: readout interfaces, ``readout_width`` consecutive ones per class (``out_group`` neurons)
        self.out_idx = (out[:, None] + elems[None, :]).reshape(-1).to(self.device)
        self.readout_width = int(elems.numel()) * config.out_group
        self.n_classes = config.n_classes
        self.k3_mask = torch.ones(shape, dtype=torch.bool, device=self.device)
        if not config.k3_input_layer:
            self.k3_mask[:sizes[0]] = False
        n_out = self.n_classes
        self.out_mean = torch.zeros(n_out, **opts)
        self.out_var = torch.ones(n_out, **opts)
        self.out_seen = False
        self.refresh_rest()

    # ------------------------------------------------------------- parameters
    @property
    def n_steps(self) -> int:
        return max(1, round(self.config.T / self.config.dt))

    def refresh_rest(self) -> None:
        """Rest points of the forward and reversed equations (closed form or relaxation)."""
        prev_f, prev_b = getattr(self, "rest_f", None), getattr(self, "rest_b", None)
        args = (self.K1[..., 0], self.K2[..., 0], self.K3[..., 0])
        self.rest_f = rest_point(*args, direction="forward", start=None if prev_f is None else prev_f[..., 0])[..., None]
        self.rest_b = rest_point(*args, direction="reversed", start=None if prev_b is None else prev_b[..., 0])[..., None]
        self.K1b = torch.roll(self.K1, -1, 1)
        self.K3b = torch.roll(self.K3, -2, 1)
        self.e_max = self.config.e_max * float(torch.maximum(self.rest_f.max(), self.rest_b.max()))
        self.check_finite(self.rest_f, "forward rest point")
        self.check_finite(self.rest_b, "reversed rest point")

    def layer_of(self, neuron: int) -> int:
        """Layer index of stacked neuron ``neuron``."""
        for l in range(len(self.sizes)):
            if neuron < self.offsets[l + 1]:
                return l
        raise IndexError(neuron)

    def check_finite(self, value: torch.Tensor, what: str) -> None:
        """Raise :class:`NumericalError` naming the first layer where ``value`` (per neuron,
        leading axis ``n_total``; or per link, leading axis ``n_links``) is NaN or infinite."""
        bad = ~torch.isfinite(value)
        if not bool(bad.any()):
            return
        first = int(bad.reshape(bad.shape[0], -1).any(1).nonzero()[0])
        if value.shape[0] == self.src.numel() and value.shape[0] != self.n_total:
            layer = f"links of layer {int(self.link_layer[first])} -> {int(self.link_layer[first]) + 1}"
        else:
            layer = f"layer {self.layer_of(first)} (neuron {first - self.offsets[self.layer_of(first)]})"
        raise NumericalError(f"wuxing network {self.config.name!r}: non-finite {what} in {layer}; "
                             f"lower the learning rates or the clamps (c_max, e_max, k3_max)")

    # ------------------------------------------------------------- simulation
    def _structure(self, reversed_: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """CSR pattern ``(crow, col, order)`` of the linear part of the equations: the
        ``K1`` neighbour term, the ``-K2`` diagonal and the links (no entry repeats)."""
        key = "_csr_b" if reversed_ else "_csr_f"
        if getattr(self, key, None) is None:
            m = 5 * self.n_total
            p = torch.arange(m, device=self.device)
            s = -1 if reversed_ else 1
            neighbour = 5 * (p // 5) + (p % 5 - s) % 5
            gather, scatter = (self.dst, self.src) if reversed_ else (self.src, self.dst)
            rows = torch.cat([p, p, scatter])
            cols = torch.cat([neighbour, p, gather])
            order = torch.argsort(rows * m + cols)
            crow = torch.zeros(m + 1, dtype=torch.long, device=self.device)
            crow[1:] = torch.cumsum(torch.bincount(rows, minlength=m), 0)
            setattr(self, key, (crow, cols[order], order))
        return getattr(self, key)

    def _run(self, drive: torch.Tensor, reversed_: bool) -> torch.Tensor:
        cfg = self.config
        m = 5 * self.n_total
        rest = (self.rest_b if reversed_ else self.rest_f).reshape(m, 1)
        k1, k3 = (self.K1b, self.K3b) if reversed_ else (self.K1, self.K3)
        s = -1 if reversed_ else 1
        gather, scatter = (self.dst, self.src) if reversed_ else (self.src, self.dst)
        crow, col, order = self._structure(reversed_)
        values = torch.cat([k1.reshape(-1), -self.K2.reshape(-1), self.C])[order]
        with warnings.catch_warnings():  # "sparse CSR support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            a = torch.sparse_csr_tensor(crow, col, values, (m, m))
        # links carry D = E - rest: their constant part -C rest[src] joins the drive
        drive = drive - torch.zeros(m, 1, dtype=self.dtype, device=self.device).index_add_(
            0, scatter, self.C[:, None] * rest[gather])
        p = torch.arange(m, device=self.device)
        far = 5 * (p // 5) + (p % 5 - 2 * s) % 5
        k3 = k3.reshape(m, 1)
        e_max = self.e_max

        def f(t: float, e: torch.Tensor) -> torch.Tensor:
            return torch.addcmul(a @ e + drive, k3 * e, e.index_select(0, far), value=-1.0)

        e0 = rest.expand(m, drive.shape[1]).contiguous()
        res = heun(f, e0, cfg.dt, self.n_steps, stage_hook=lambda e: e.clamp_(0.0, e_max), integrand=lambda e: e)
        dbar = (res.integral / (self.n_steps * cfg.dt) - rest).view(self.n_total, 5, -1)
        self.check_finite(dbar, "reversed signal" if reversed_ else "forward signal")
        return dbar

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Time-averaged forward signal ``Dbar`` ``(n_total, 5, B)`` for inputs ``x`` ``(B, layers[0])``."""
        if x.dim() != 2 or x.shape[1] != self.sizes[0]:
            raise NeuroplexError(f"wuxing network {self.config.name!r}: input has shape {tuple(x.shape)}, "
                                 f"expected (batch, {self.sizes[0]}) (the input layer's size)")
        drive = torch.zeros(5 * self.n_total, x.shape[0], dtype=self.dtype, device=self.device)
        drive[self.in_idx] = self.config.in_scale * x.T.to(self.dtype)
        return self._run(drive, reversed_=False)

    def backward(self, err: torch.Tensor) -> torch.Tensor:
        """Time-averaged reversed signal ``D^bar`` for output errors ``err`` ``(B, classes)``
        (injected at the readout interfaces, shared equally by a class's interfaces with
        ``readout="mean"`` or ``out_group > 1``: the adjoint of the mean)."""
        drive = torch.zeros(5 * self.n_total, err.shape[0], dtype=self.dtype, device=self.device)
        drive[self.out_idx] = self.config.err_scale / self.readout_width * err.T.to(self.dtype).repeat_interleave(
            self.readout_width, 0)
        return self._run(drive, reversed_=True)

    def output(self, dbar: torch.Tensor) -> torch.Tensor:
        """``Leb`` (eq 5.1), ``(B, classes)``."""
        return self.readout(dbar.reshape(5 * self.n_total, -1).T)

    def readout(self, flat: torch.Tensor) -> torch.Tensor:
        """Output per class from per-interface values ``(B, 5 n_total)``: the mean over the class's
        readout interfaces (its ``out_group`` neurons' readout element, or all five elements with
        ``readout="mean"``)."""
        return flat[:, self.out_idx].reshape(flat.shape[0], self.n_classes, self.readout_width).mean(-1)

    def targets(self, y: torch.Tensor) -> torch.Tensor:
        """target1 on the true class, target2 elsewhere (eq 5.2 / 5.3)."""
        t = torch.full((y.shape[0], self.n_classes), self.config.target2, dtype=self.dtype, device=self.device)
        t[torch.arange(y.shape[0], device=self.device), y.to(self.device)] = self.config.target1
        return t

    def track_output(self, out: torch.Tensor) -> None:
        """Running mean and variance of ``Leb`` per class over training batches (``readout_norm``)."""
        mean, var = out.mean(0), out.var(0, unbiased=False) if out.shape[0] > 1 else torch.zeros_like(out[0])
        if not self.out_seen:
            self.out_mean, self.out_var, self.out_seen = mean, var, True
            return
        m = self.config.norm_momentum
        self.out_mean = (1 - m) * self.out_mean + m * mean
        self.out_var = (1 - m) * self.out_var + m * var

    def decision(self, out: torch.Tensor) -> torch.Tensor:
        """Scores whose argmax is the predicted class: ``Leb`` or, with ``readout_norm="zscore"``,
        ``(Leb - running mean) / running std`` per class."""
        if self.config.readout_norm == "zscore":
            return (out - self.out_mean) / (self.out_var + 1e-12).sqrt()
        return out

    # ---------------------------------------------------------------- updates
    def coupling_g1(self, dbar: torch.Tensor, dhat: torch.Tensor) -> torch.Tensor:
        """Method 2's ``G1`` per link: batch mean of ``Dbar[src] D^bar[dst]`` (connection paper eq 3.3)."""
        m = 5 * self.n_total
        return (dbar.reshape(m, -1)[self.src] * dhat.reshape(m, -1)[self.dst]).mean(1)

    def k3_g1(self, dbar: torch.Tensor, dhat: torch.Tensor) -> torch.Tensor:
        """Method 1's ``G1`` per element: batch mean of ``Dbar D^bar`` (framework paper eq 5.5)."""
        return (dbar * dhat).mean(-1, keepdim=True)

    def bounded(self, g1: torch.Tensor) -> torch.Tensor:
        """``G2 = atan(kt G1) / kt`` (eq 5.6 / connection paper eq 3.4)."""
        kt = self.config.kt
        return torch.atan(kt * g1) / kt

    def update_coupling(self, g1: torch.Tensor, weight: float = 1.0) -> None:
        """``C <- clamp(C + eta_c f_l (G2 - c_decay (C - C_0)))`` (connection paper eq 3.5; ``f_l`` the
        link's layer-pair factor from ``eta_c_layers``, 1 by default; ``c_decay`` 0 is the paper's rule,
        > 0 pulls C toward its initial value ``C_0``, a weight decay)."""
        step = self.bounded(g1)
        if self.config.c_decay:
            step = step - self.config.c_decay * (self.C - self.C_init)
        self.C = torch.minimum(torch.maximum(self.C + weight * self.eta_link * step, -self.C_max), self.C_max)
        self.check_finite(self.C, "coupling coefficient C")

    def update_k3(self, g1: torch.Tensor, weight: float = 1.0) -> None:
        """``K3 <- clamp(K3 exp(-eta_k3 f_l G2))`` (framework paper eq 5.7; ``f_l`` the neuron's
        layer factor from ``eta_k3_layers``, 1 by default), then new rest points."""
        cfg = self.config
        step = torch.where(self.k3_mask, self.bounded(g1), torch.zeros_like(g1))
        k3 = self.K3 * torch.exp(-cfg.eta_k3 * weight * self.eta_k3_neuron * step)
        self.K3 = torch.minimum(torch.maximum(k3, cfg.k3_min * self.K3_init), cfg.k3_max * self.K3_init)
        self.check_finite(self.K3, "K3")
        self.refresh_rest()

    # ------------------------------------------------------------------ state
    STATE = ("K1", "K2", "K3", "C", "src", "dst", "rest_f", "rest_b", "out_mean", "out_var")

    def state_dict(self) -> dict[str, Any]:
        return {**{k: getattr(self, k).clone() for k in self.STATE}, "out_seen": self.out_seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.out_seen = bool(state["out_seen"])
        for k in self.STATE:
            if getattr(self, k).shape != state[k].shape:
                raise NeuroplexError(f"wuxing network {self.config.name!r}: checkpoint {k} has shape "
                                     f"{tuple(state[k].shape)}, the network {tuple(getattr(self, k).shape)}")
            setattr(self, k, state[k].to(device=self.device, dtype=getattr(self, k).dtype))
        self.K1b = torch.roll(self.K1, -1, 1)
        self.K3b = torch.roll(self.K3, -2, 1)
        self.e_max = self.config.e_max * float(torch.maximum(self.rest_f.max(), self.rest_b.max()))

    def summary(self) -> dict[str, Any]:
        """Sizes, links and link ratio (LR) per layer pair, C clamp, steps."""
        counts = torch.bincount(self.link_layer, minlength=len(self.sizes) - 1).tolist()
        return {"layers": self.sizes, "links": counts, "link_ratio": self.link_ratios,
                "c_max": self.c_max_per_layer, "steps_per_pass": self.n_steps,
                "mean_link_ratio": sum(self.link_ratios) / len(self.link_ratios),
                "overall_link_ratio": sum(counts) / sum(a * b for a, b in zip(self.sizes[:-1], self.sizes[1:]))}

