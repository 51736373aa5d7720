"""Plots of an evolution run (the paper's Fig. "Training results"): best and mean fitness per
generation, raw figure and validation, and evaluation seconds per generation."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from neuroplex.trainer import atomic_write_bytes  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def plot_curves(rows: Sequence[Mapping[str, float]], out: Path, *, title: str = "") -> list[Path]:
    """``fitness.png`` (best/mean fitness and raw figure, validations as dots) and
    ``eval_seconds.png`` (evaluation seconds per generation) in ``out``."""
    if not rows:
        return []
    gen = [r["generation"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(gen, [r["best_fitness"] for r in rows], label="best fitness", marker=".")
    ax.plot(gen, [r["mean_fitness"] for r in rows], label="mean fitness", marker=".")
    ax.plot(gen, [r["best_raw"] for r in rows], label="best raw", ls="--")
    val = [(g, r["validation"]) for g, r in zip(gen, rows) if r["validation"] == r["validation"]]
    if val:
        ax.scatter(*zip(*val), color="k", zorder=3, label="validation (fresh episodes)")
    ax.set_xlabel("generation")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    paths = [_save(fig, out / "fitness.png")]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(gen, [r["eval_seconds"] for r in rows], marker=".")
    ax.set_xlabel("generation")
    ax.set_ylabel("evaluation seconds")
    ax.set_title(f"{title}: evaluation time per generation", fontsize=9)
    ax.grid(alpha=0.3)
    paths.append(_save(fig, out / "eval_seconds.png"))
    return paths


def plot_response(trace: Sequence[Sequence[float]], path: Path, *, title: str = "",
                  labels: Sequence[str] = ()) -> Path:
    """O_eep of each output node per environment step of one episode (the paper's output response)."""
    fig, ax = plt.subplots(figsize=(6, 3))
    cols = list(zip(*trace)) if trace else []
    for k, col in enumerate(cols):
        ax.plot(range(1, len(col) + 1), col, label=labels[k] if k < len(labels) else f"output {k}")
    ax.set_xlabel("environment step")
    ax.set_ylabel("O_eep")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    if cols:
        ax.legend(fontsize=7)
    return _save(fig, path)
