"""What the step loop writes besides the state: dense output at the requested times
(:class:`Outputs`) and the progress bar over simulated time (:class:`ProgressBar`)."""
from __future__ import annotations

import math

import torch

from neuroplex.progress import progress_bar

from .stepper import Dense

class Outputs:
    """Dense output at the requested times: each step fills the points it covers. The rows of
    sample ``i`` are ``i * n_t ...``; one scratch row after all of them absorbs the writes of
    samples with nothing to write (all to the same row, so they stay in one cache line), so a
    write is one ``index_copy_`` without host-side masking."""

    def __init__(self, t_eval: torch.Tensor, t0: torch.Tensor, y0: torch.Tensor):
        b, n = y0.shape
        self.t_eval = t_eval
        self.n_t = int(t_eval.numel())
        self.n_samples = b
        # +inf guard: a sample whose points are all written is never "due"
        self.t_pad = torch.cat([t_eval, t_eval.new_full((1,), math.inf)])
        self.buf = torch.full((b * self.n_t + 1, n), math.nan, dtype=y0.dtype, device=y0.device)
        self.base = torch.arange(b, device=y0.device) * self.n_t
        self.scratch = torch.tensor(b * self.n_t, device=y0.device)
        self.next = torch.searchsorted(t_eval, t0.contiguous(), right=False)
        at0 = self.t_pad[self.next] == t0
        self._write(at0, y0)

    @property
    def ys(self) -> torch.Tensor:
        return self.buf[:self.n_samples * self.n_t].view(self.n_samples, self.n_t, self.buf.shape[-1])

    def select(self, keep: torch.Tensor) -> None:
        """Go on with the working-batch rows ``keep`` only (their blocks stay where they are)."""
        self.base, self.next = self.base[keep], self.next[keep]

    def _write(self, due: torch.Tensor, values: torch.Tensor) -> None:
        self.buf.index_copy_(0, torch.where(due, self.base + self.next, self.scratch), values)
        self.next = self.next + due.long()

    def record(self, mask: torch.Tensor, t: torch.Tensor, h: torch.Tensor, t_hi: torch.Tensor,
               y_hi: torch.Tensor, dense: Dense) -> None:
        """Fill the points in ``(t, t_hi]`` of the samples in ``mask`` (one (B, n) dense
        evaluation per point, no broadcasting over points)."""
        if self.n_t == 0:
            return
        h_safe = None
        while True:
            te = self.t_pad[self.next]
            due = mask & (te <= t_hi)
            if not bool(due.any()):
                return
            if h_safe is None:
                h_safe = torch.where(h == 0, torch.ones_like(h), h)
            at_end = te == t_hi
            if bool((at_end | ~due).all()):
                vals = y_hi  # the step's end itself
            else:
                # samples with nothing due evaluate at theta = 0 (finite, so no NaN gradients)
                vals = dense(torch.where(due, te - t, torch.zeros_like(t)) / h_safe)
                if bool((at_end & due).any()):
                    vals = torch.where(at_end[:, None], y_hi, vals)
            self._write(due, vals)


class ProgressBar:
    """tqdm over simulated time (the slowest unfinished sample sets the position)."""

    def __init__(self, t0: torch.Tensor, t1: torch.Tensor):
        self.t0 = float(t0.min())
        finite_t1 = t1[torch.isfinite(t1)]
        total = float(finite_t1.max()) - self.t0 if finite_t1.numel() else 1.0
        self.bar = progress_bar(total=total, unit="t", leave=False, desc="simulate")
        self.last = 0.0

    def update_to(self, t: torch.Tensor, done: torch.Tensor) -> None:
        pending = t[~done]
        now = (float(pending.min()) if pending.numel() else float(t.max())) - self.t0
        now = min(now, self.bar.total)
        if now > self.last:
            self.bar.update(now - self.last)
            self.last = now

    def close(self) -> None:
        self.bar.close()
