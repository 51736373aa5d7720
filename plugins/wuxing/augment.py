"""Training-data augmentation for square images: a random affine jitter per sample.

Each flattened ``side x side`` image gets its own small shift (up to ``shift`` pixels in x
and y), rotation (up to ``rotate`` degrees) and scale (``1 +- scale``), resampled bilinearly
with zero padding (``torch.nn.functional.grid_sample``). Pixel values stay in the input's
range. Used by the Wuxing rules on training batches only (config fields ``aug_shift``,
``aug_rotate``, ``aug_scale``); it is general and has no Wuxing dependency. The papers train
without augmentation: this is our addition for unseen writers (``docs/wuxing.md``, round 4).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from neuroplex.errors import NeuroplexError


def image_side(n_features: int) -> int:
    """Side of a square image with ``n_features`` pixels (an error if it is not square)."""
    side = math.isqrt(n_features)
    if side * side != n_features:
        raise NeuroplexError(f"augmentation needs square images: {n_features} features is not a square")
    return side


def jitter_images(x: torch.Tensor, *, shift: float = 0.0, rotate: float = 0.0, scale: float = 0.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """``x`` ``(B, side*side)`` with a random affine jitter per row (see the module docstring).

    Draws ``4 B`` uniform numbers from ``generator`` (torch's global one by default, which the
    core trainer seeds and checkpoints, so a resumed run draws the same jitter).
    """
    if x.dim() != 2:
        raise NeuroplexError(f"jitter_images: expected (batch, pixels), got shape {tuple(x.shape)}")
    if shift == 0 and rotate == 0 and scale == 0:
        return x
    side = image_side(x.shape[1])
    b = x.shape[0]
    u = 2 * torch.rand(4, b, generator=generator, dtype=torch.float64) - 1
    angle = math.radians(rotate) * u[0]
    zoom = 1 + scale * u[1]
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    # normalised coordinates span 2 over `side` pixels: a shift of s pixels is 2 s / side
    tx, ty = 2 * shift / side * u[2], 2 * shift / side * u[3]
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    img = x.reshape(b, 1, side, side)
    grid = F.affine_grid(theta.to(dtype=img.dtype, device=img.device), [b, 1, side, side], align_corners=False)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False).reshape(b, -1)
