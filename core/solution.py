"""One result shape for trajectories and equilibria, whatever solver produced it."""
from __future__ import annotations

import enum
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .errors import SolverError


class Status(enum.IntEnum):
    """Per-sample outcome codes (torchode's shape)."""

    SUCCESS = 0
    MAX_STEPS = 1
    DT_MIN = 2
    NONFINITE = 3
    NOT_CONVERGED = 4
    EVENT_STOP = 5
    FAILED = 6
    STIFF = 7  # stopped by a non-stiff method's stiffness test (``stiff_stop``): rerun it stiff


@dataclass
class SpikeTrain:
    """Spikes (or any events) as flat arrays: ``sample[k]``, ``index[k]`` (neuron or event
    index) and ``time[k]``; ``names`` maps indices to labels where useful."""

    sample: torch.Tensor
    index: torch.Tensor
    time: torch.Tensor
    names: Sequence[str] | None = None

    def __len__(self) -> int:
        return int(self.time.numel())

    def for_sample(self, b: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(index, time) arrays of one sample, sorted by time."""
        mask = (self.sample == b).cpu().numpy()
        idx, t = self.index.cpu().numpy()[mask], self.time.cpu().numpy()[mask]
        order = np.lexsort((idx, t))
        return idx[order], t[order]

    @staticmethod
    def empty(device: Any = None) -> "SpikeTrain":
        z = torch.zeros(0, dtype=torch.long, device=device)
        return SpikeTrain(z, z.clone(), torch.zeros(0, dtype=torch.float64, device=device))


@dataclass
class Solution:
    """Result of :func:`neuroplex.simulate` or :func:`neuroplex.equilibrate`.

    ``ys`` is ``(batch, n_times, n_vars)`` for trajectories and ``(batch, n_vars)`` for
    equilibria; ``ts`` is ``(n_times,)`` (or ``(batch, n_times)`` when samples have their
    own grids; None for equilibria); ``status`` is one :class:`Status` code per sample;
    ``stats`` holds per-sample tensors (``n_steps``, ``n_rhs``, ``residual``, ``iterations``);
    ``spikes`` is the event log.
    """

    ys: torch.Tensor
    ts: torch.Tensor | None
    names: list[str]
    status: torch.Tensor
    stats: dict[str, Any] = field(default_factory=dict)
    spikes: SpikeTrain | None = None
    solver: str = ""
    method: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    # --------------------------------------------------------------- status
    @property
    def batch_size(self) -> int:
        return int(self.ys.shape[0])

    @property
    def ok(self) -> bool:
        return bool((self.status == Status.SUCCESS).all())

    def failed_samples(self) -> list[int]:
        return [int(i) for i in torch.nonzero(self.status != Status.SUCCESS).flatten()]

    def raise_on_failure(self) -> "Solution":
        """Raise :class:`SolverError` naming the failed samples and their status."""
        bad = self.failed_samples()
        if bad:
            # the solver's own reason where it gave one (roadrunner's message, a steady state's)
            why = {**self.meta.get("reasons", {}), **self.meta.get("errors", {})}
            shown = ", ".join(f"{i} ({Status(int(self.status[i])).name.lower().replace('_', ' ')}"
                              f"{': ' + str(why[i]) if i in why else ''})" for i in bad[:10])
            more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
            raise SolverError(f"{self.solver or 'solver'}: {len(bad)} of {self.batch_size} sample(s) failed: {shown}{more}")
        return self

    # ---------------------------------------------------------------- access
    def __getitem__(self, name: str) -> torch.Tensor:
        """Trajectory (or equilibrium value) of one variable, ``(batch, n_times)``."""
        try:
            i = self.names.index(name)
        except ValueError:
            raise KeyError(f"no variable {name!r}; have {', '.join(self.names)}") from None
        return self.ys[..., i]

    def select(self, names: Sequence[str]) -> "Solution":
        """The same solution with only the variables ``names`` (in that order)."""
        if not names:
            raise SolverError("select: name at least one variable")
        missing = [n for n in names if n not in self.names]
        if missing:
            import difflib

            hints = {n: difflib.get_close_matches(n, self.names, n=3) for n in missing}
            text = "; ".join(f"{n!r}" + (f" (did you mean {', '.join(map(repr, h))}?)" if h else "")
                             for n, h in hints.items())
            raise SolverError(f"no variable {text}; have {', '.join(self.names[:30])}")
        index = [self.names.index(n) for n in names]
        return Solution(self.ys[..., index], self.ts, list(names), self.status, self.stats, self.spikes,
                        self.solver, self.method, {**self.meta, "plot_names": list(names)})

    def to_numpy(self) -> dict[str, np.ndarray]:
        """``{"t": ts, name: array, ...}`` with arrays ``(batch, n_times)``."""
        out: dict[str, np.ndarray] = {}
        if self.ts is not None:
            out["t"] = self.ts.detach().cpu().numpy()
        for i, n in enumerate(self.names):
            out[n] = self.ys[..., i].detach().cpu().numpy()
        return out

    def to_pandas(self, sample: int | None = None) -> Any:
        """A long-form DataFrame (``sample, t, <vars>``); needs pandas (optional)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - pandas is in the test set-up
            raise ImportError("Solution.to_pandas needs pandas: pip install 'neuroplex[pandas]'") from exc
        return pd.DataFrame(self._table(sample))

    def _table(self, sample: int | None) -> dict[str, np.ndarray]:
        ys = self.ys.detach().cpu().numpy()
        samples = range(ys.shape[0]) if sample is None else [sample]
        if self.ts is None:
            cols = {"sample": np.array(list(samples))}
            for i, n in enumerate(self.names):
                cols[n] = ys[list(samples), i]
            return cols
        ts = self.ts.detach().cpu().numpy()
        n_t = ys.shape[1]
        cols = {"sample": np.repeat(np.array(list(samples)), n_t),
                "t": np.concatenate([ts[b] if ts.ndim == 2 else ts for b in samples])}
        for i, n in enumerate(self.names):
            cols[n] = np.concatenate([ys[b, :, i] for b in samples])
        return cols

    def save(self, path: str | os.PathLike, sample: int | None = None) -> Path:
        """Write CSV (long form) or ``.npz``, atomically (temp file + rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                if path.suffix == ".npz":
                    arrays = {k: v for k, v in self.to_numpy().items()}
                    arrays["status"] = self.status.cpu().numpy()
                    if self.spikes is not None:
                        arrays.update(spike_sample=self.spikes.sample.cpu().numpy(),
                                      spike_index=self.spikes.index.cpu().numpy(),
                                      spike_time=self.spikes.time.cpu().numpy())
                    np.savez(fh, **arrays)
                else:
                    cols = self._table(sample)
                    header = ",".join(cols)
                    data = np.column_stack([np.asarray(c, dtype=float) for c in cols.values()])
                    fmt = ["%d"] + ["%.17g"] * (data.shape[1] - 1)
                    np.savetxt(fh, data, delimiter=",", header=header, comments="", fmt=fmt)
            _publish(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path

    def plot(self, names: Sequence[str] | None = None, sample: int = 0, ax: Any = None,
             path: str | os.PathLike | None = None, title: str | None = None) -> Any:
        """Plot trajectories of one sample (and a spike raster if present); returns the figure."""
        import matplotlib

        if path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        if self.ts is None:
            raise SolverError("an equilibrium has no trajectory to plot")
        # default: what the model asks to show (SBML: its species), else every variable
        names = list(names or [n for n in self.meta.get("plot_names", ()) if n in self.names] or self.names)
        raster = self.spikes is not None and len(self.spikes) > 0
        if ax is None:
            fig, axes = plt.subplots(2 if raster else 1, 1, figsize=(8, 6 if raster else 4), sharex=True, squeeze=False)
            ax = axes[0, 0]
        else:
            fig, axes = ax.figure, None
        ts = self.ts[sample] if self.ts.dim() == 2 else self.ts
        t = ts.detach().cpu().numpy()
        units = dict(self.meta.get("units_of", {}))
        for n in names:
            ax.plot(t, self[n][sample].detach().cpu().numpy(), label=f"{n} [{units[n]}]" if n in units else n)
        shown = {units.get(n) for n in names}
        ax.set_ylabel(f"value [{shown.pop()}]" if len(shown) == 1 and None not in shown else "value")
        if len(names) <= 12:
            ax.legend(loc="best", fontsize="small")
        elif len(names) <= 60:  # beside the axes, in columns
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="x-small", ncol=1 + len(names) // 20)
        ax.set_title(title or f"{self.meta.get('model', '')} ({self.solver} {self.method})".strip())
        if raster and axes is not None:
            idx, st = self.spikes.for_sample(sample)
            axes[1, 0].plot(st, idx, "|", markersize=3)
            axes[1, 0].set_ylabel("neuron")
        time_unit = self.meta.get("time_unit")
        (axes[-1, 0] if axes is not None else ax).set_xlabel(f"time [{time_unit}]" if time_unit else "time")
        fig.tight_layout()
        if path is not None:
            save_figure(fig, path)
        return fig


def _publish(tmp: str, path: Path) -> None:
    """Give a finished temp file ordinary permissions (mkstemp makes it 0600) and move it
    into place atomically."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    os.replace(tmp, path)


def save_figure(fig: Any, path: str | os.PathLike) -> Path:
    """Save a matplotlib figure atomically and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120)
        _publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        plt.close(fig)
    return path
