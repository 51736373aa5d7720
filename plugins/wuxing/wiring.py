"""Wiring between two layers of Wuxing neurons as index tensors (connection-coefficient paper).

Interface ``5 n + i`` is element ``i`` of neuron ``n``. A wiring is two long tensors
``src`` (into the source layer's interfaces) and ``dst`` (into the destination layer's):

* ``match``: the paper's strict one-to-one connection: a random partial matching, each
  source and each destination interface used at most once, ``min(n_src, n_dst)`` links.
* ``fanin:K``: each destination interface receives ``K`` distinct random source interfaces.
* ``adder`` / ``adder:K``: the paper's proposed "adder in front of the synapse": every
  source interface keeps a single outgoing link (one output per interface, as in the
  paper), and the links of all sources are dealt round-robin over a random permutation of
  the destination interfaces, where an adder sums them. ``adder`` deals each source once
  (destinations sum about ``n_src / n_dst``); ``adder:K`` repeats the deal until every
  destination sums ``K`` sources (sources then have about ``K n_dst / n_src`` links each,
  balanced, unlike ``fanin:K`` which draws sources independently).

The link ratio (LR) of the paper is ``links / (neurons_src * neurons_dst)``.
"""
from __future__ import annotations

import math

import torch

from neuroplex.errors import NeuroplexError

KINDS = ("match", "fanin", "adder")


def parse_wiring(spec: str) -> tuple[str, int | None]:
    """``"match"``, ``"fanin:8"``, ``"adder"`` or ``"adder:4"`` to ``(kind, k)``."""
    kind, _, k = str(spec).partition(":")
    if kind not in KINDS or (kind == "fanin" and not k) or (kind == "match" and k):
        raise NeuroplexError(f"wuxing: wiring must be match, fanin:K or adder[:K], not {spec!r}")
    if k:
        try:
            value = int(k)
        except ValueError:
            raise NeuroplexError(f"wuxing: wiring {spec!r}: K must be an integer") from None
        if value < 1:
            raise NeuroplexError(f"wuxing: wiring {spec!r}: K must be >= 1")
        return kind, value
    return kind, None


def wire(spec: str, n_src: int, n_dst: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``(src, dst)`` link index tensors between ``n_src`` and ``n_dst`` interfaces."""
    kind, k = parse_wiring(spec)
    if kind == "match":
        n = min(n_src, n_dst)
        return torch.randperm(n_src, generator=generator)[:n], torch.randperm(n_dst, generator=generator)[:n]
    if kind == "fanin":
        if k > n_src:
            raise NeuroplexError(f"wuxing: wiring {spec!r} needs at least {k} source interfaces, the layer has {n_src}")
        src = torch.argsort(torch.rand(n_dst, n_src, generator=generator), dim=1)[:, :k].reshape(-1)
        dst = torch.arange(n_dst).repeat_interleave(k)
        return src, dst
    total = n_src if k is None else max(n_src, k * n_dst)
    if k is not None and k > n_src:
        raise NeuroplexError(f"wuxing: wiring {spec!r} needs at least {k} source interfaces, the layer has {n_src}")
    # position p links source perm_s[(p + p // lcm) mod n_src] to destination perm_d[p mod n_dst]:
    # each block of lcm(n_src, n_dst) positions uses every source equally often (balanced), and
    # the shift by one per block gives a destination new sources in every block
    p = torch.arange(total)
    lcm = math.lcm(n_src, n_dst)
    src = torch.randperm(n_src, generator=generator)[(p + p // lcm) % n_src]
    dst = torch.randperm(n_dst, generator=generator)[p % n_dst]
    # an adder summing one source twice is one link (only when K > n_src)
    key = torch.unique(src * n_dst + dst)
    return key // n_dst, key % n_dst


def link_ratio(n_links: int, neurons_src: int, neurons_dst: int) -> float:
    """The paper's LR: actual links over the links of a fully connected layer pair."""
    return n_links / float(neurons_src * neurons_dst)
