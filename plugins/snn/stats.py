"""Spike-train statistics used to compare network realisations (Brian2's CUBA seed table):
mean rate, fraction of active neurons and the mean coefficient of variation of the ISIs."""
from __future__ import annotations

from typing import Any

import numpy as np


def spike_stats(solution: Any, n: int, duration: float, sample: int = 0, offset: int = 0) -> dict[str, float]:
    """``rate_hz`` (spikes per neuron per second), ``frac_active`` (neurons with a spike)
    and ``mean_cv_isi`` (mean over neurons with at least 3 spikes of std(ISI)/mean(ISI))
    of neurons ``offset .. offset+n-1`` in one sample of a Solution."""
    idx, t = solution.spikes.for_sample(sample)
    keep = (idx >= offset) & (idx < offset + n)
    idx, t = idx[keep] - offset, t[keep]
    counts = np.bincount(idx, minlength=n)
    order = np.lexsort((t, idx))
    idx, t = idx[order], t[order]
    cvs = []
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for j in np.nonzero(counts >= 3)[0]:
        isi = np.diff(t[starts[j]: starts[j] + counts[j]])
        cvs.append(isi.std() / isi.mean())
    return {"spikes": int(counts.sum()), "rate_hz": float(counts.sum() / n / duration),
            "frac_active": float((counts > 0).mean()), "mean_cv_isi": float(np.mean(cvs)) if cvs else float("nan")}
