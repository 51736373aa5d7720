"""One trainer loop for every learning-rule plugin.

A learning rule (EqProp, ...) implements :class:`LearningRule`; :class:`Trainer` gives it
what users expect from any trainer: epochs over a data source (or an environment), seed
control (python ``random``, numpy, torch), device choice, a tqdm progress bar, per-epoch
metrics appended to ``metrics.csv`` and ``metrics.json`` in a run directory (atomic
writes), a checkpoint each epoch (rule state incl. optimizer, every RNG state and the
data-order generator) with an exact resume, and a PNG plot of the curves.

Exact resume: a run stopped after epoch ``k`` and resumed with ``resume=True`` ends with
weights and metrics bit-identical to an uninterrupted run (wall-clock columns
``seconds`` and ``cpu_seconds`` aside), provided the rule keeps all of its state in
``state_dict()`` and draws random numbers only from the generators the trainer seeds.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from .config import resolve_device, set_threads
from .errors import NeuroplexError
from .progress import progress_bar

#: metrics that measure time and so differ between otherwise identical runs
TIMING_KEYS = ("seconds", "cpu_seconds")
CHECKPOINT = "checkpoint.pt"
#: during a run the plot is refreshed at most this often (seconds); always at the end
PLOT_EVERY_S = 30.0
#: train accuracy within this fraction of the way from chance (1 / classes) to 1, for two
#: epochs in a row, marks a run as stalled
NEAR_CHANCE = 0.1


@runtime_checkable
class LearningRule(Protocol):
    """What a learning-rule plugin implements to plug into :class:`Trainer`.

    * ``init(seed, device)``: build fresh parameters and optimizer state (called once per
      fresh run, after the trainer has seeded every RNG with ``seed``).
    * ``train_batch(x, y)``: one update on a mini-batch; returns metrics (floats) that the
      trainer averages over the epoch's samples (each batch weighted by its size). A rule
      that learns from an environment instead implements ``train_epoch(data, epoch)``
      returning the epoch's metrics; the trainer calls it when present.
    * ``evaluate(x, y)``: metrics on a whole split (the trainer prefixes ``train_`` /
      ``test_``); for non-array data sources ``evaluate(data)`` returns final names.
    * ``state_dict()`` / ``load_state_dict(state)``: everything needed to continue
      exactly (parameters, optimizer state, counters), as tensors / plain python objects.

    Optional: ``epoch_metrics()`` returns extra per-epoch metrics (e.g. weight norms);
    ``stall_reasons(metrics)`` returns short texts saying why an epoch's metrics look like a
    stalled run (empty when they do not), shown by the trainer (see :meth:`Trainer.stall_reasons`).
    Random numbers must come from torch's, numpy's or python's global generators (the
    trainer seeds and checkpoints them) or from generators kept in ``state_dict()``.
    """

    name: str

    def init(self, seed: int, device: torch.device) -> None: ...

    def evaluate(self, *args: Any) -> Mapping[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


# ---------------------------------------------------------------- atomic files
def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


#: run settings a resume may change (a longer run, another device); any other change is refused
RESUME_MAY_CHANGE = ("epochs", "device")


def changed_settings(saved: Mapping[str, object], now: Mapping[str, object],
                     may_change: Sequence[str] = RESUME_MAY_CHANGE) -> list[str]:
    """The settings (besides ``may_change``) whose value in ``now`` differs from the run's
    ``saved`` ones, as ``key=old (now new)`` texts (compared as JSON values)."""
    old, new = json.loads(json.dumps(saved, default=str)), json.loads(json.dumps(now, default=str))
    return [f"{k}={old.get(k)!r} (now {new.get(k)!r})" for k in sorted(set(old) | set(new))
            if k not in may_change and old.get(k) != new.get(k)]


def start_run_dir(run_dir: str | os.PathLike, settings: Mapping[str, object], *, resume: bool,
                  may_change: Sequence[str] = RESUME_MAY_CHANGE) -> Path:
    """Make ``run_dir`` for a training run and write its ``config.json`` (atomically); a folder
    that already holds a checkpoint is refused unless ``resume`` continues it, and a resume
    with other settings than the run's ``config.json`` (besides ``may_change``) is refused."""
    run_dir = Path(run_dir)
    if (run_dir / CHECKPOINT).exists():
        if not resume:
            raise NeuroplexError(f"{run_dir} already holds a run; pass --resume to continue it or choose --log-dir")
        if (run_dir / "config.json").exists():
            _refuse_changed(run_dir / "config.json", json.loads((run_dir / "config.json").read_text()), settings,
                            may_change)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.json", json.dumps(settings, indent=1))
    return run_dir


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy's global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every global RNG state (python, numpy, torch CPU, torch CUDA when present)."""
    state: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(),
                             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------- trainer
class Trainer:
    """Run a :class:`LearningRule` for ``epochs`` over ``data``.

    ``data``: an object with ``x_train, y_train, x_test, y_test`` tensors (see
    :class:`neuroplex.datasets.Dataset`): the trainer shuffles the training set each epoch
    with its own seeded generator and feeds mini-batches of ``batch_size`` (the last, smaller
    batch is dropped when ``drop_last``). Any other object (an environment) is passed to
    the rule's ``train_epoch(data, epoch)`` and ``evaluate(data)``.

    ``run_dir``: where ``metrics.csv``, ``metrics.json``, ``checkpoint.pt`` and
    ``curves.png`` go (None: nothing is written, no resume). ``threads`` sets torch's
    intra-op thread count (default ``$NEUROPLEX_THREADS`` or 1: small batched models run
    many times slower with more threads). ``resume=True`` continues from
    the checkpoint in ``run_dir`` (a fresh run when there is none). ``callbacks`` are called
    as ``cb(trainer, epoch, metrics)`` after each epoch's checkpoint; an exception raised by a
    callback stops the run (the checkpoint of that epoch is already on disk).
    """

    def __init__(
        self,
        rule: Any,
        data: Any,
        *,
        epochs: int,
        batch_size: int = 20,
        seed: int = 0,
        device: str | torch.device | None = "cpu",
        run_dir: str | os.PathLike | None = None,
        resume: bool = False,
        progress: bool = True,
        drop_last: bool = False,
        shuffle: bool = True,
        plot: bool = True,
        callbacks: Sequence[Callable[["Trainer", int, dict[str, float]], None]] = (),
        config: Mapping[str, Any] | None = None,
        threads: int | None = None,
    ):
        if epochs < 0 or batch_size < 1:
            raise NeuroplexError(f"trainer: epochs must be >= 0 and batch_size >= 1 (got {epochs}, {batch_size})")
        self.rule = rule
        self.data = data
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.device = resolve_device(device)
        #: torch intra-op threads, set on purpose (``None``: ``$NEUROPLEX_THREADS`` or 1)
        self.threads = set_threads(threads)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.resume = resume
        self.progress = progress
        self.drop_last = drop_last
        self.shuffle = shuffle
        self.plot = plot
        self.callbacks = list(callbacks)
        self.config = dict(config or {})
        self.history: list[dict[str, float]] = []
        self.epoch = 0
        #: why the last epoch looks stalled (empty when it does not); see :meth:`stall_reasons`
        self.stalled: list[str] = []
        self.generator = torch.Generator()
        self._last_plot = time.monotonic()
        if resume and self.run_dir is None:
            raise NeuroplexError("trainer: resume=True needs a run directory")

    # ----------------------------------------------------------------- data
    @property
    def is_array_data(self) -> bool:
        return all(hasattr(self.data, k) for k in ("x_train", "y_train", "x_test", "y_test"))

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This epoch's mini-batches (order from the trainer's checkpointed generator)."""
        x, y = self.data.x_train, self.data.y_train
        n = x.shape[0]
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        stop = n - n % self.batch_size if self.drop_last else n
        for i in range(0, stop, self.batch_size):
            idx = order[i:i + self.batch_size].to(x.device)
            yield x[idx], y[idx]

    def n_batches(self) -> int:
        n = self.data.x_train.shape[0]
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    # ------------------------------------------------------------- main loop
    def fit(self) -> list[dict[str, float]]:
        """Train; returns the metrics history (one dict per epoch, epochs numbered from 1)."""
        if self.is_array_data and hasattr(self.data, "to"):
            self.data = self.data.to(self.device)
        if self.is_array_data and not hasattr(self.rule, "train_epoch") and self.n_batches() == 0:
            raise NeuroplexError(f"trainer: {self.data.x_train.shape[0]} training samples make no batch of "
                                 f"{self.batch_size}{' (drop_last)' if self.drop_last else ''}: an epoch would not train")
        if not (self.resume and self._load_checkpoint()):
            seed_everything(self.seed)
            self.generator.manual_seed(self.seed)
            self.rule.init(self.seed, self.device)
            self.history, self.epoch = [], 0
        bar = progress_bar(total=self.epochs, initial=self.epoch, desc=f"{getattr(self.rule, 'name', 'train')}",
                           unit="epoch", enabled=self.progress)
        try:
            while self.epoch < self.epochs:
                metrics = self._run_epoch(self.epoch + 1)
                self.epoch += 1
                self.history.append(metrics)
                self._save()
                bar.update(1)
                postfix: dict[str, Any] = {k: v for k, v in metrics.items() if "acc" in k or k == "loss"}
                if self.stalled:
                    postfix["STALLED"] = "; ".join(self.stalled)
                bar.set_postfix(postfix, refresh=False)
                for cb in self.callbacks:
                    cb(self, self.epoch, metrics)
        finally:
            bar.close()
            if self.plot:
                self.write_plot()
        return self.history

    def _run_epoch(self, epoch: int) -> dict[str, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        if hasattr(self.rule, "train_epoch") or not self.is_array_data:
            train = dict(self.rule.train_epoch(self.data, epoch))
        else:
            sums: dict[str, float] = {}
            count = 0
            for x, y in progress_bar(self.batches(), total=self.n_batches(), desc=f"epoch {epoch}", leave=False,
                                     enabled=self.progress):
                for k, v in self.rule.train_batch(x, y).items():
                    sums[k] = sums.get(k, 0.0) + float(v) * len(x)
                count += len(x)
            train = {k: v / max(count, 1) for k, v in sums.items()}
        metrics: dict[str, float] = {"epoch": epoch}
        metrics.update(train)
        metrics["seconds"] = time.perf_counter() - wall
        metrics["cpu_seconds"] = time.process_time() - cpu
        if self.is_array_data:
            for split in ("train", "test"):
                x, y = getattr(self.data, f"x_{split}"), getattr(self.data, f"y_{split}")
                if x.shape[0]:
                    metrics.update({f"{split}_{k}": float(v) for k, v in self.rule.evaluate(x, y).items()})
        else:
            metrics.update({k: float(v) for k, v in self.rule.evaluate(self.data).items()})
        if hasattr(self.rule, "epoch_metrics"):
            metrics.update({k: float(v) for k, v in self.rule.epoch_metrics().items()})
        self._check_stall(metrics)
        return metrics

    # ------------------------------------------------------------ stall check
    def stall_reasons(self, metrics: Mapping[str, float]) -> list[str] | None:
        """Why an epoch's ``metrics`` look like a stalled run: the rule's own
        ``stall_reasons(metrics)`` when it has one, a NaN or infinite metric, and train
        accuracy near chance (within ``NEAR_CHANCE`` of the way from 1 / classes to 1) in this
        epoch and the one before. ``None`` when no test applies (no such rule method, every
        metric finite, no train accuracy)."""
        reasons: list[str] | None = None
        if hasattr(self.rule, "stall_reasons"):
            reasons = list(self.rule.stall_reasons(metrics))
        bad = [k for k, v in metrics.items() if k not in TIMING_KEYS and not math.isfinite(v)]
        if bad:
            reasons = (reasons or []) + [f"non-finite {', '.join(bad)}"]
        n_classes = getattr(self.data, "n_classes", None)
        if "train_accuracy" in metrics and n_classes:
            reasons = reasons or []
            chance = 1.0 / n_classes
            limit = chance + NEAR_CHANCE * (1.0 - chance)
            previous = self.history[-1].get("train_accuracy", 1.0) if self.history else 1.0
            if metrics["train_accuracy"] <= limit and previous <= limit:
                reasons.append(f"train accuracy near chance ({metrics['train_accuracy']:.2f})")
        return reasons

    def _check_stall(self, metrics: dict[str, float]) -> None:
        """Add the ``stalled`` metric (1.0 or 0.0) and warn once per run when it turns 1."""
        reasons = self.stall_reasons(metrics)
        if reasons is None:
            return
        self.stalled = reasons
        metrics["stalled"] = float(bool(reasons))
        if reasons and not any(row.get("stalled") for row in self.history):
            warnings.warn(f"{getattr(self.rule, 'name', 'training')}: epoch {metrics['epoch']}: the run looks stalled: "
                          f"{'; '.join(reasons)}", RuntimeWarning, stacklevel=3)

    # ------------------------------------------------------- files, checkpoint
    def _save(self) -> None:
        if self.run_dir is None:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "epoch": self.epoch,
            "seed": self.seed,
            "rule": self.rule.state_dict(),
            "rng": rng_state(),
            "data_order": self.generator.get_state(),
            "history": self.history,
            "config": self.config,
        }
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(self.run_dir / CHECKPOINT, buf.getvalue())
        write_metrics(self.run_dir, self.history)
        if self.plot and time.monotonic() - self._last_plot > PLOT_EVERY_S:
            self.write_plot()

    def write_plot(self) -> None:
        """Write ``curves.png`` in the run directory (at most every ``PLOT_EVERY_S`` seconds
        during a run, and always when the run ends or stops)."""
        if self.run_dir is not None and self.history:
            plot_metrics(self.history, self.run_dir / "curves.png", title=getattr(self.rule, "name", ""))
            self._last_plot = time.monotonic()

    def _load_checkpoint(self) -> bool:
        path = self.run_dir / CHECKPOINT  # type: ignore[operator]
        if not path.exists():
            return False
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001 - report the file
            raise NeuroplexError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})") from None
        if state.get("seed") != self.seed:
            raise NeuroplexError(f"{path}: checkpoint was written with seed {state.get('seed')}, not {self.seed}")
        if state.get("config") and self.config:
            _refuse_changed(path, state["config"], self.config)
        self.rule.init(self.seed, self.device)
        self.rule.load_state_dict(state["rule"])
        set_rng_state(state["rng"])
        self.generator.set_state(state["data_order"])
        self.history = list(state["history"])
        self.epoch = int(state["epoch"])
        return True


def _refuse_changed(path: Path, saved: Mapping[str, object], now: Mapping[str, object],
                    may_change: Sequence[str] = RESUME_MAY_CHANGE) -> None:
    diff = changed_settings(saved, now, may_change)
    if diff:
        raise NeuroplexError(f"{path}: the run was started with other settings; resume with the same ones "
                             f"or choose another log directory: {', '.join(diff)}")


def load_checkpoint(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The last checkpoint written in ``run_dir`` (rule state, RNG states, history)."""
    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        raise NeuroplexError(f"{path}: no checkpoint")
    return torch.load(path, map_location="cpu", weights_only=False)


def write_metrics(run_dir: str | os.PathLike, history: Sequence[Mapping[str, float]]) -> None:
    """Write ``metrics.csv`` and ``metrics.json`` (atomically) from the epoch history."""
    run_dir = Path(run_dir)
    keys: list[str] = []
    for row in history:
        keys.extend(k for k in row if k not in keys)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: repr(float(v)) if isinstance(v, float) else v for k, v in row.items()})
    atomic_write_text(run_dir / "metrics.csv", out.getvalue())
    atomic_write_text(run_dir / "metrics.json", json.dumps(list(history), indent=1))


def plot_metrics(history: Sequence[Mapping[str, float]], path: str | os.PathLike, *, title: str = "") -> None:
    """A PNG of the curves, one panel per kind (accuracy, norms, seconds, energy, residual, others)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return
    epochs = [row["epoch"] for row in history]
    panels: dict[str, list[str]] = {}
    for k in history[-1]:
        if k == "epoch":
            continue
        group = next((g for g in ("accuracy", "norm", "seconds", "energy", "residual", "cost", "loss") if g in k), k)
        panels.setdefault(group, []).append(k)
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 2.8 * nrows), squeeze=False)
    for ax, (group, keys) in zip(axes.flat, panels.items()):
        for k in keys:
            ax.plot(epochs, [row.get(k, float("nan")) for row in history], marker=".", label=k)
        ax.set_xlabel("epoch")
        ax.set_title(group, fontsize=9)
        if len(keys) > 1:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.08, top=0.9, wspace=0.3, hspace=0.55)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
