"""Network configuration of a Wuxing network, and the shipped configs (``models/wuxing/*.json``)."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from neuroplex.errors import NeuroplexError

from .augment import image_side
from .wiring import parse_wiring


@dataclass
class WuxingConfig:
    """Everything that defines a Wuxing network and its training (defaults: ``docs/wuxing.md``).

    ``layers``: neurons per layer, input first (the input layer has one neuron per feature).
    ``wiring``: one spec for every layer pair or one per pair (``match``, ``fanin:K``,
    ``adder[:K]``). ``c0`` / ``c_max``: initial scale and clamp of C (None: ``c0_scale /
    fan-in`` and ``c_max_scale / fan-in`` per layer, fan-in = mean links per destination).
    ``readout``: ``element`` (Leb from element ``out_elem``) or ``mean`` (of the five elements).
    ``out_group``: output neurons per class (population readout): the last layer has
    ``classes x out_group`` neurons, class ``k`` owns neurons ``k out_group .. (k+1) out_group - 1``
    and its ``Leb`` is their mean (1: the papers' one neuron per class).
    ``e_max``: E is clamped to ``[0, e_max B0]``; K3 to ``[k3_min, k3_max] x`` its initial value.
    ``eta_c`` / ``eta_k3``: learning rates of method 2 / method 1 (``G2 = atan(kt G1) / kt``);
    ``mix_c`` / ``mix_k3``: weights of the two updates in the mixed method. ``lr_decay``: both
    rates are divided by ``1 + lr_decay n`` at update ``n`` (0: constant rates).
    ``eta_c_layers``: one factor per layer pair multiplying ``eta_c`` (None: all 1);
    ``eta_k3_layers``: one factor per layer multiplying ``eta_k3`` (None: all 1).
    ``c_decay``: method 2's decay of C toward its initial value, ``C <- C + eta (G2 - c_decay (C - C_0))``
    (0: the papers' rule). ``aug_shift`` / ``aug_rotate`` / ``aug_scale``: random affine jitter of
    the training images (pixels, degrees, relative zoom; inputs must be square images; 0: none).
    ``readout_norm``: ``none`` (argmax of Leb) or ``zscore`` (argmax of Leb standardised per
    class by running training statistics, momentum ``norm_momentum``).
    """

    name: str = "custom"
    layers: list[int] = field(default_factory=lambda: [64, 64, 10])
    wiring: Any = "fanin:8"
    K1: float = 1.0
    K2: float = 0.5
    K3: float = 0.5
    k3_jitter: float = 0.0
    T: float = 20.0
    dt: float = 0.2
    in_scale: float = 1.0
    in_elem: int = 0
    out_elem: int = 0
    readout: str = "element"
    out_group: int = 1
    err_scale: float = 1.0
    target1: float = 1.0
    target2: float = 0.0
    c0: float | None = None
    c0_scale: float = 1.2
    c_max: float | None = None
    c_max_scale: float = 8.0
    e_max: float = 20.0
    k3_min: float = 0.1
    k3_max: float = 10.0
    kt: float = 1.0
    eta_c: float = 0.3
    eta_k3: float = 0.05
    mix_c: float = 1.0
    lr_decay: float = 0.0
    mix_k3: float = 1.0
    k3_input_layer: bool = False
    eta_c_layers: list[float] | None = None
    eta_k3_layers: list[float] | None = None
    c_decay: float = 0.0
    aug_shift: float = 0.0
    aug_rotate: float = 0.0
    aug_scale: float = 0.0
    readout_norm: str = "none"
    norm_momentum: float = 0.02
    dtype: str = "float32"
    description: str = ""

    def __post_init__(self) -> None:
        where = f"wuxing config {self.name!r}"
        if len(self.layers) < 2 or any(int(n) < 1 for n in self.layers):
            raise NeuroplexError(f"{where}: layers needs at least 2 positive sizes, got {self.layers}")
        self.layers = [int(n) for n in self.layers]
        for spec in self.wirings():
            parse_wiring(spec)
        if self.dt <= 0 or self.T <= 0 or self.T < self.dt:
            raise NeuroplexError(f"{where}: need 0 < dt <= T (got dt={self.dt}, T={self.T})")
        if not (0 <= self.in_elem < 5 and 0 <= self.out_elem < 5):
            raise NeuroplexError(f"{where}: in_elem and out_elem are element indices 0..4")
        if self.readout not in ("element", "mean"):
            raise NeuroplexError(f"{where}: readout must be 'element' (out_elem) or 'mean' (of the five), "
                                 f"not {self.readout!r}")
        if self.out_group < 1 or self.layers[-1] % self.out_group:
            raise NeuroplexError(f"{where}: out_group must be >= 1 and divide the output layer "
                                 f"({self.layers[-1]} neurons), got {self.out_group}")
        if self.dtype not in ("float32", "float64"):
            raise NeuroplexError(f"{where}: dtype must be float32 or float64, not {self.dtype!r}")
        if self.eta_c_layers is not None and len(self.eta_c_layers) != len(self.layers) - 1:
            raise NeuroplexError(f"{where}: eta_c_layers needs one factor per layer pair "
                                 f"({len(self.layers) - 1}), got {self.eta_c_layers}")
        if self.eta_k3_layers is not None and len(self.eta_k3_layers) != len(self.layers):
            raise NeuroplexError(f"{where}: eta_k3_layers needs one factor per layer "
                                 f"({len(self.layers)}), got {self.eta_k3_layers}")
        if self.readout_norm not in ("none", "zscore"):
            raise NeuroplexError(f"{where}: readout_norm must be 'none' or 'zscore', not {self.readout_norm!r}")
        if not 0.0 < self.norm_momentum <= 1.0:
            raise NeuroplexError(f"{where}: need 0 < norm_momentum <= 1")
        if self.c_decay < 0 or min(self.aug_shift, self.aug_rotate, self.aug_scale) < 0:
            raise NeuroplexError(f"{where}: c_decay, aug_shift, aug_rotate and aug_scale must be >= 0")
        if self.augments:
            image_side(self.layers[0])
        if self.kt <= 0:
            raise NeuroplexError(f"{where}: kt must be > 0")

    @property
    def augments(self) -> bool:
        """Whether training images are jittered (any ``aug_*`` field non-zero)."""
        return bool(self.aug_shift or self.aug_rotate or self.aug_scale)

    @property
    def n_classes(self) -> int:
        """Number of classes: output neurons over ``out_group``."""
        return self.layers[-1] // self.out_group

    def wirings(self) -> list[str]:
        """One wiring spec per layer pair."""
        n = len(self.layers) - 1
        if isinstance(self.wiring, str):
            return [self.wiring] * n
        specs = [str(w) for w in self.wiring]
        if len(specs) != n:
            raise NeuroplexError(f"wuxing config {self.name!r}: wiring lists {len(specs)} specs for {n} layer pairs")
        return specs

    def replace(self, **changes: Any) -> "WuxingConfig":
        """A copy with some fields changed (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def shipped_configs() -> dict[str, Path]:
    """Shipped network configs by name (``models/wuxing/<name>.json``)."""
    root = resources.files("neuroplex.models").joinpath("wuxing")
    return {p.name[:-5]: Path(str(p)) for p in root.iterdir() if p.name.endswith(".json")}


def load_config(source: str | Path | dict[str, Any], **changes: Any) -> WuxingConfig:
    """A config from a shipped name, a JSON file or a dict; ``changes`` override fields."""
    if isinstance(source, dict):
        data, where = dict(source), "config dict"
    else:
        path = Path(source)
        if not path.exists():
            shipped = shipped_configs()
            if str(source) not in shipped:
                raise NeuroplexError(f"{source}: no such file or shipped wuxing config "
                                     f"(shipped: {', '.join(sorted(shipped))})")
            path = shipped[str(source)]
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise NeuroplexError(f"{path}: cannot read wuxing config ({exc})") from None
        where = str(path)
    known = {f.name for f in dataclasses.fields(WuxingConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise NeuroplexError(f"{where}: unknown wuxing config key(s) {', '.join(unknown)}")
    return WuxingConfig(**data).replace(**changes)
