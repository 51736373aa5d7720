"""A task plugin: Gaussian blobs, a small seeded classification data set."""
from __future__ import annotations

import torch

from neuroplex.datasets import Dataset


def blobs(n_classes: int = 3, n_per_class: int = 60, n_features: int = 2, spread: float = 0.5,
          seed: int = 0) -> Dataset:
    """``n_classes`` isotropic Gaussian clusters (std ``spread``) around centres drawn uniformly
    in [-3, 3]^d; 2/3 of each class for training, the rest for testing, reproducible by ``seed``."""
    if n_classes < 2 or n_per_class < 3 or n_features < 1 or not spread > 0:
        raise ValueError(f"blobs: need n_classes >= 2, n_per_class >= 3, n_features >= 1, spread > 0 "
                         f"(got {n_classes}, {n_per_class}, {n_features}, {spread})")
    gen = torch.Generator().manual_seed(seed)
    centres = 6.0 * torch.rand(n_classes, n_features, generator=gen) - 3.0
    x = centres.repeat_interleave(n_per_class, 0) + spread * torch.randn(n_classes * n_per_class, n_features,
                                                                          generator=gen)
    y = torch.arange(n_classes).repeat_interleave(n_per_class)
    test = (torch.arange(len(y)) % n_per_class) >= (2 * n_per_class) // 3
    return Dataset("blobs", x[~test], y[~test], x[test], y[test], n_classes,
                   {"seed": seed, "spread": spread})
