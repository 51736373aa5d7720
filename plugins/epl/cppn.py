"""A neat-python genome as a torch CPPN evaluated on many query points in one call.

The activations are neat-python's own definitions (same input scaling and clamping) in torch, so
``TorchCPPN(genome, config)(X)`` equals ``neat.nn.FeedForwardNetwork`` row by row (tested).
"""
from __future__ import annotations

from typing import Callable

import neat
import torch
from neat.graphs import feed_forward_layers

Activation = Callable[[torch.Tensor], torch.Tensor]

ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": lambda z: torch.sigmoid((5.0 * z).clamp(-60.0, 60.0)),
    "tanh": lambda z: torch.tanh((2.5 * z).clamp(-60.0, 60.0)),
    "sin": lambda z: torch.sin((5.0 * z).clamp(-60.0, 60.0)),
    "gauss": lambda z: torch.exp(-5.0 * z.clamp(-3.4, 3.4) ** 2),
    "relu": torch.relu,
    "identity": lambda z: z,
    "abs": torch.abs,
    "clamped": lambda z: z.clamp(-1.0, 1.0),
}


class TorchCPPN:
    """Feed-forward evaluation of a genome, batched over the rows of its input matrix."""

    def __init__(self, genome: neat.DefaultGenome, config: neat.Config):
        gc = config.genome_config
        self.input_keys, self.output_keys = list(gc.input_keys), list(gc.output_keys)
        conns = [cg.key for cg in genome.connections.values() if cg.enabled]
        self.evals: list[tuple[int, Activation, float, float, list[tuple[int, float]]]] = []
        layers, required = feed_forward_layers(self.input_keys, self.output_keys, conns)
        usable = set(required) | set(self.input_keys)
        for layer in layers:
            for node in sorted(layer):
                ng = genome.nodes[node]
                if ng.activation not in ACTIVATIONS or ng.aggregation != "sum":
                    raise ValueError(f"CPPN node {node}: activation {ng.activation!r} / aggregation "
                                     f"{ng.aggregation!r} not supported (activations: {', '.join(ACTIVATIONS)}; sum)")
                links = [(i, genome.connections[(i, o)].weight) for i, o in conns if o == node and i in usable]
                self.evals.append((node, ACTIVATIONS[ng.activation], ng.bias, ng.response, links))

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        """``X``: (queries, inputs) -> (queries, outputs); outputs not reached by any path are 0."""
        if X.shape[-1] != len(self.input_keys):
            raise ValueError(f"CPPN expects {len(self.input_keys)} inputs, got {X.shape[-1]}")
        vals = {k: X[:, i] for i, k in enumerate(self.input_keys)}
        zero = torch.zeros(X.shape[0], dtype=X.dtype)
        for node, act, bias, response, links in self.evals:
            s = zero
            for i, w in links:
                s = s + w * vals[i]
            vals[node] = act(bias + response * s)
        return torch.stack([vals.get(k, zero) for k in self.output_keys], -1)
