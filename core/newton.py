"""The least-squares Newton correction of a batch, for Jacobians that may be singular.

A Jacobian is singular where the dynamics conserve something (a moiety of a reaction network,
a state that never moves): ``c^T J = 0`` and ``c^T f = 0`` for a left null vector ``c``. The
correction ``dy = -J^+ f`` (the minimum-norm least-squares solution, singular values below
``rcond * s_max`` dropped) is then still the distance along the moving directions; the part
of ``f`` outside the range of ``J`` is rounding noise at a conservation law and the whole of
``f`` where the linearisation has no fixed point (a constant drift).
"""
from __future__ import annotations

import torch


def least_squares_correction(jac: torch.Tensor, f: torch.Tensor, noise: torch.Tensor | None = None,
                             rcond: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dy, consistent)`` per sample: ``dy = -J^+ f`` ``(B, n)`` by a truncated SVD of ``jac``
    ``(B, n, n)``, and whether ``f`` lies in the range of ``J`` up to ``noise`` ``(B, n)`` (a
    bound on the rounding error of each entry of ``f``; default 0): along every dropped
    direction ``u_k``, ``|u_k^T f| <= |u_k|^T noise``.

    ``rcond``: singular values at or below ``rcond * s_max`` count as zero (default
    ``n * eps``, LAPACK's and ``torch.linalg.lstsq``'s). Works on CPU and CUDA alike (CUDA's
    ``lstsq`` has no rank-revealing driver)."""
    n = jac.shape[-1]
    if rcond is None:
        rcond = n * torch.finfo(jac.dtype).eps
    u, s, vh = torch.linalg.svd(jac)
    keep = s > rcond * s[..., :1]
    w = (u.mT @ f[..., None])[..., 0]
    coef = torch.where(keep, w, torch.zeros_like(w)) / torch.where(keep, s, torch.ones_like(s))
    dy = -(vh.mT @ coef[..., None])[..., 0]
    bound = torch.zeros_like(w) if noise is None else (u.abs().mT @ noise[..., None])[..., 0]
    consistent = (keep | (w.abs() <= bound)).all(-1)
    return dy, consistent
