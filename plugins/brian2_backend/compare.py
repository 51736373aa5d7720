"""Agreement metrics between two spiking simulations of the same network or neuron.

Spikes are compared on the time grid: a spike at time ``t`` is step ``round(t/dt)``. Two
runs agree on a spike when the same neuron (same sample) fires in the same step
("exact-step"), or within ``tol`` steps. Matching is one-to-one per neuron: the greedy
two-pointer pass over both sorted step lists, which is a maximum matching for a symmetric
window on a line. Rates are reported per sample in Hz over the run duration; the ISI CV
(std/mean of inter-spike intervals) is averaged over neurons with at least 3 spikes (the
statistic of Brette et al. 2007 and of the CUBA reference's ``mean_cv_isi``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from neuroplex.errors import NeuroplexError
from neuroplex.solution import Status, save_figure

Spikes = tuple[np.ndarray, np.ndarray]  # (neuron index, time)


def as_spikes(spikes: Any, sample: int = 0) -> Spikes:
    """``(index, time)`` arrays of one sample from a :class:`~neuroplex.solution.SpikeTrain`,
    a :class:`~neuroplex.solution.Solution` or an ``(index, time)`` pair."""
    if hasattr(spikes, "spikes") and not isinstance(spikes, tuple):
        spikes = spikes.spikes
        if spikes is None:
            raise NeuroplexError("the solution holds no spikes")
    if hasattr(spikes, "for_sample"):
        return spikes.for_sample(sample)
    idx, t = spikes
    return np.asarray(idx, dtype=np.int64), np.asarray(t, dtype=float)


@dataclass
class SpikeStats:
    """Population statistics of one run."""

    n_spikes: int
    rate_hz: float
    cv_isi: float
    active_fraction: float


def spike_stats(spikes: Any, n_neurons: int, duration: float, *, sample: int = 0) -> SpikeStats:
    """Spike count, mean rate (Hz, over all ``n_neurons``), mean ISI CV (neurons with >= 3
    spikes; NaN if none) and the fraction of neurons that fired at least once."""
    if n_neurons <= 0 or duration <= 0:
        raise NeuroplexError(f"spike_stats needs n_neurons > 0 and duration > 0 (got {n_neurons}, {duration})")
    idx, t = as_spikes(spikes, sample)
    cvs = []
    order = np.lexsort((t, idx))
    idx, t = idx[order], t[order]
    bounds = np.flatnonzero(np.diff(idx)) + 1
    for ts in np.split(t, bounds) if idx.size else []:
        if ts.size >= 3:
            isi = np.diff(ts)
            mean = isi.mean()
            if mean > 0:
                cvs.append(isi.std() / mean)
    active = np.unique(idx).size
    return SpikeStats(n_spikes=int(idx.size), rate_hz=float(idx.size / n_neurons / duration),
                      cv_isi=float(np.mean(cvs)) if cvs else float("nan"), active_fraction=float(active / n_neurons))


def _steps(spikes: Spikes, dt: float) -> tuple[np.ndarray, np.ndarray]:
    idx, t = spikes
    k = np.rint(np.asarray(t, dtype=float) / dt).astype(np.int64)
    order = np.lexsort((k, idx))
    return np.asarray(idx, dtype=np.int64)[order], k[order]


def match_count(a: Spikes, b: Spikes, dt: float, tol: int = 0) -> int:
    """Number of one-to-one matched spikes (same neuron, steps at most ``tol`` apart)."""
    ia, ka = _steps(a, dt)
    ib, kb = _steps(b, dt)
    if tol == 0:
        if not ia.size or not ib.size:
            return 0
        lo = min(ka.min(), kb.min())
        width = int(max(ka.max(), kb.max()) - lo) + 1
        key_a, key_b = ia * width + (ka - lo), ib * width + (kb - lo)
        return int(np.intersect1d(key_a, key_b).size)
    matched = 0
    i = j = 0
    while i < ia.size and j < ib.size:
        if ia[i] != ib[j]:
            if ia[i] < ib[j]:
                i += 1
            else:
                j += 1
        elif abs(int(ka[i]) - int(kb[j])) <= tol:
            matched += 1
            i += 1
            j += 1
        elif ka[i] < kb[j]:
            i += 1
        else:
            j += 1
    return matched


def first_mismatch(a: Spikes, b: Spikes, dt: float) -> float | None:
    """Time of the earliest spike present in one run but not (same neuron, same step) in
    the other; ``None`` when the rasters are identical."""
    ia, ka = _steps(a, dt)
    ib, kb = _steps(b, dt)
    sa = set(zip(ia.tolist(), ka.tolist()))
    sb = set(zip(ib.tolist(), kb.tolist()))
    diff = sa ^ sb
    if not diff:
        return None
    return float(min(k for _, k in diff) * dt)


def spike_agreement(a: Any, b: Any, dt: float, *, sample: int = 0) -> dict[str, Any]:
    """Exact-step and within-one-step match rates of two runs (matched spikes divided by the
    larger spike count, so extra or missing spikes lower it), plus the first mismatch time."""
    sa, sb = as_spikes(a, sample), as_spikes(b, sample)
    n_a, n_b = int(sa[0].size), int(sb[0].size)
    denom = max(n_a, n_b)
    m0 = match_count(sa, sb, dt, 0)
    m1 = match_count(sa, sb, dt, 1)
    return {"n_a": n_a, "n_b": n_b, "matched_exact": m0, "matched_1step": m1,
            "exact_step_rate": m0 / denom if denom else 1.0, "within_1_step_rate": m1 / denom if denom else 1.0,
            "first_mismatch_s": first_mismatch(sa, sb, dt)}


def trace_rmse(a: Any, b: Any, names: Sequence[str] | None = None, *, sample: int = 0) -> dict[str, float]:
    """RMSE between the traces two solutions share (by name), over their common time points."""
    names = [n for n in (names or a.names) if n in b.names]
    out: dict[str, float] = {}
    for name in names:
        ya = a[name][sample].detach().cpu().numpy()
        yb = b[name][sample].detach().cpu().numpy()
        n = min(ya.size, yb.size)
        if n:
            out[name] = float(np.sqrt(np.mean((ya[:n] - yb[:n]) ** 2)))
    return out


def code_ran(sol: Any) -> str:
    """The code a solution's run used: Brian2's target (``cython``, ``numpy``,
    ``cpp_standalone``) or the torch engine's (``c``, ``torch``); ``"-"`` when unrecorded."""
    return str(sol.meta.get("target") or sol.meta.get("engine") or "-")


def wall_times(sol: Any) -> dict[str, float | None]:
    """Loop and total times a solver recorded in ``sol.meta`` (seconds)."""
    meta = sol.meta
    loop = meta.get("loop_time")
    return {"loop_s": None if loop is None else float(loop),
            "wall_s": None if meta.get("wall_time_s") is None else float(meta["wall_time_s"])}


def compare_runs(runs: Mapping[str, Any], *, n_neurons: int, duration: float, dt: float,
                 sample: int = 0) -> dict[str, Any]:
    """The full report of :command:`neuroplex compare-snn` for solutions keyed by label:
    per-run statistics and times, and pairwise agreement against the first run."""
    labels = list(runs)
    if not labels:
        raise NeuroplexError("compare_runs needs at least one solution")
    report: dict[str, Any] = {"n_neurons": n_neurons, "duration_s": duration, "dt_s": dt, "runs": {}, "pairs": {}}
    for label, sol in runs.items():
        st = spike_stats(sol, n_neurons, duration, sample=sample)
        report["runs"][label] = {**vars(st), **wall_times(sol), "solver": sol.solver, "code": code_ran(sol),
                                 "method": sol.method, "failed": _failed(sol)}
    ref = labels[0]
    for label in labels[1:]:
        pair = spike_agreement(runs[ref], runs[label], dt, sample=sample)
        pair["trace_rmse"] = trace_rmse(runs[ref], runs[label], sample=sample)
        report["pairs"][f"{ref} vs {label}"] = pair
    return report


def _failed(sol: Any) -> list[str]:
    """The status names of ``sol``'s failed samples (empty when every sample succeeded)."""
    return [Status(int(sol.status[i])).name.lower() for i in sol.failed_samples()]


def format_report(report: Mapping[str, Any]) -> str:
    """A plain-text table of :func:`compare_runs`' report; a ``FAILED:`` line first for each run
    with failed samples (a diverged run's spikes and NaN traces can still match another's)."""
    lines = [f"FAILED: {label}: {len(r['failed'])} sample(s) ({', '.join(sorted(set(r['failed'])))})"
             for label, r in report["runs"].items() if r.get("failed")]
    lines += [f"{'run':<22} {'code':<14} {'spikes':>8} {'rate Hz':>8} {'ISI CV':>7} {'active':>7} {'loop s':>8} "
             f"{'wall s':>8}  method"]
    for label, r in report["runs"].items():
        loop = "-" if r["loop_s"] is None else f"{r['loop_s']:.3f}"
        wall = "-" if r["wall_s"] is None else f"{r['wall_s']:.3f}"
        lines.append(f"{label:<22} {r.get('code', '-'):<14} {r['n_spikes']:>8d} {r['rate_hz']:>8.3f} {r['cv_isi']:>7.3f} "
                     f"{r['active_fraction']:>7.3f} {loop:>8} {wall:>8}  {r['method']}")
    for key, p in report["pairs"].items():
        fm = "none" if p["first_mismatch_s"] is None else f"{p['first_mismatch_s'] * 1e3:.1f} ms"
        lines.append(f"{key}: exact-step match {p['exact_step_rate']:.4f}, within 1 step {p['within_1_step_rate']:.4f}, "
                     f"first mismatch {fm}")
        for name, v in list(p["trace_rmse"].items())[:8]:
            lines.append(f"  RMSE {name}: {v:.3g}")
    return "\n".join(lines)


def plot_comparison(runs: Mapping[str, Any], path: str | os.PathLike, *, sample: int = 0,
                    max_traces: int = 3, title: str = "") -> Path:
    """Raster of every run (one colour each) over a trace overlay of the first monitored
    variables; written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    labels = list(runs)
    first = runs[labels[0]]
    trace_names = [n for n in first.names if all(n in r.names for r in runs.values())][:max_traces]
    rows = 1 + (1 if trace_names else 0)
    fig, axes = plt.subplots(rows, 1, figsize=(9, 3.2 * rows), sharex=True, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ax = axes[0, 0]
    for c, label in enumerate(labels):
        idx, t = as_spikes(runs[label], sample)
        ax.plot(t, idx, "|" if c == 0 else ".", markersize=4 if c == 0 else 1.5, color=colors[c % len(colors)],
                label=f"{label} [{code_ran(runs[label])}] ({idx.size} spikes)", alpha=0.8)
    ax.set_ylabel("neuron")
    ax.legend(loc="upper right", fontsize="small")
    ax.set_title(title or "spike raster")
    if trace_names:
        ax2 = axes[1, 0]
        for c, label in enumerate(labels):
            sol = runs[label]
            ts = sol.ts.detach().cpu().numpy()
            for k, name in enumerate(trace_names):
                y = sol[name][sample].detach().cpu().numpy()
                n = min(ts.size, y.size)
                ax2.plot(ts[:n], y[:n], color=colors[c % len(colors)], lw=1.0 if c == 0 else 0.8,
                         ls="-" if c == 0 else "--", label=f"{label} {name}" if k == 0 or len(labels) == 1 else None)
        ax2.set_ylabel("state (SI)")
        ax2.legend(loc="upper right", fontsize="small")
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    return save_figure(fig, path)
