"""Hyperparameter sweeps over a learning plugin's training command: a grid or a random search,
each trial one run of the command (``neuroplex eqprop train``, ``wuxing train``, ``epl train``,
any command that takes ``--log-dir`` and writes the :class:`~neuroplex.trainer.Trainer`'s
``metrics.json``), run through Ray Tune when Ray is installed, else here one after another.

A sweep is described in TOML (:func:`load_config`)::

    command = "eqprop train"       # the training command, as after `neuroplex`
    metric = "test_accuracy"       # read from the last epoch of each trial's metrics.json
    mode = "max"                   # or "min"
    search = "grid"                # or "random" (then `samples` trials drawn with `seed`)
    out = "sweeps/eqprop"          # trials.csv and one run directory per trial
    [fixed]                        # options every trial gets
    epochs = 2
    [space]                        # grid: lists; random: lists (a choice) or {low, high, log, int}
    seed = [0, 1]
    learning-rate = ["0.1 0.05", "0.2 0.1"]

Files: ``OUT/trials/trial-NNN/`` is each trial's run directory (metrics, checkpoint, plot);
``OUT/trials.csv`` has one row per trial (its options, status, final metrics and the command
reproducing it), rewritten atomically as trials finish. Resume: running the sweep again skips
the trials already done and continues an interrupted one from its trainer checkpoint
(``--resume``): the trainer's exact resume makes the result that of an uninterrupted run.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import shlex
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

import click
import numpy as np
from tqdm.auto import tqdm

from .errors import NeuroplexError
from .executors import RAY_EXTRA
from .host import get_host
from .trainer import TIMING_KEYS, atomic_write_text

#: a trial's option values as TOML gives them
Value = str | int | float | bool
#: where the trials run: Ray Tune, this process, or Ray Tune when Ray is installed
SWEEP_EXECUTORS = ("auto", "ray", "local")


@dataclass(frozen=True)
class SweepConfig:
    """A sweep: the training ``command`` (words after ``neuroplex``), the ``metric`` to rank
    trials by and its ``mode``, the ``search`` (``grid`` or ``random`` with ``samples`` trials
    drawn with ``seed``), the ``space`` searched and the ``fixed`` options, the ``out`` folder,
    and where trials run (``executor``, ``workers`` trials at once, ``address`` of a Ray cluster)."""

    command: tuple[str, ...]
    metric: str
    out: Path
    space: Mapping[str, Sequence[Value] | Mapping[str, Value]]
    fixed: Mapping[str, Value] = field(default_factory=dict)
    mode: str = "max"
    search: str = "grid"
    samples: int = 1
    seed: int = 0
    executor: str = "auto"
    workers: int | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise NeuroplexError(f"sweep: mode must be 'max' or 'min', not {self.mode!r}")
        if self.search not in ("grid", "random"):
            raise NeuroplexError(f"sweep: search must be 'grid' or 'random', not {self.search!r}")
        if self.executor not in SWEEP_EXECUTORS:
            raise NeuroplexError(f"sweep: executor must be one of {', '.join(SWEEP_EXECUTORS)}, not {self.executor!r}")
        if not self.command:
            raise NeuroplexError("sweep: command is empty (e.g. command = \"eqprop train\")")
        for name, spec in self.space.items():
            if isinstance(spec, Mapping):
                if self.search == "grid":
                    raise NeuroplexError(f"sweep: space.{name}: a grid needs a list of values, not a range")
                if not {"low", "high"} <= set(spec):
                    raise NeuroplexError(f"sweep: space.{name}: a range needs low and high (and optionally log, int)")
            elif isinstance(spec, (str, bytes)) or not isinstance(spec, Sequence) or not spec:
                raise NeuroplexError(f"sweep: space.{name}: give a non-empty list of values")
        if set(self.space) & set(self.fixed):
            raise NeuroplexError(f"sweep: {', '.join(sorted(set(self.space) & set(self.fixed)))} both fixed and searched")


def load_config(path: str | os.PathLike) -> SweepConfig:
    """A :class:`SweepConfig` from a TOML file; a relative ``out`` is taken from the file's folder."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise NeuroplexError(f"{path}: {exc}") from None
    known = {"command", "metric", "mode", "search", "samples", "seed", "out", "executor", "workers", "address",
             "space", "fixed"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise NeuroplexError(f"{path}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    for key in ("command", "metric", "space"):
        if key not in raw:
            raise NeuroplexError(f"{path}: '{key}' is missing")
    command = raw["command"]
    out = Path(raw.get("out", path.stem))
    try:
        return SweepConfig(command=tuple(shlex.split(command) if isinstance(command, str) else command),
                           metric=raw["metric"], out=out if out.is_absolute() else path.parent / out,
                           space=raw["space"], fixed=raw.get("fixed", {}), mode=raw.get("mode", "max"),
                           search=raw.get("search", "grid"), samples=int(raw.get("samples", 1)),
                           seed=int(raw.get("seed", 0)), executor=raw.get("executor", "auto"),
                           workers=raw.get("workers"), address=raw.get("address"))
    except NeuroplexError as exc:
        raise NeuroplexError(f"{path}: {exc}") from None


def trials(config: SweepConfig) -> list[dict[str, Value]]:
    """The trials' searched options: the grid's product (in the order of ``space``'s keys,
    the last varying fastest) or ``samples`` random draws from ``seed``."""
    names = list(config.space)
    if config.search == "grid":
        return [dict(zip(names, values)) for values in itertools.product(*(config.space[n] for n in names))]
    rng = np.random.default_rng(config.seed)
    out: list[dict[str, Value]] = []
    for _ in range(config.samples):
        trial: dict[str, Value] = {}
        for name in names:
            spec = config.space[name]
            if isinstance(spec, Mapping):
                low, high = float(spec["low"]), float(spec["high"])
                x = math.exp(rng.uniform(math.log(low), math.log(high))) if spec.get("log") else rng.uniform(low, high)
                trial[name] = int(round(x)) if spec.get("int") else float(x)
            else:
                trial[name] = spec[int(rng.integers(len(spec)))]  # type: ignore[index]
        out.append(trial)
    return out


def _commands() -> click.Group:
    """Every plugin's commands in one group (the ``neuroplex`` command line's plugin part)."""
    group = click.Group("neuroplex")
    get_host().add_commands(group)
    return group


def _command(group: click.Group, words: Sequence[str]) -> click.Command:
    """The command ``words`` (``("eqprop", "train")``) names, or an error naming what exists."""
    command: click.Command = group
    for depth, word in enumerate(words):
        if not isinstance(command, click.Group) or word not in command.commands:
            have = sorted(command.commands) if isinstance(command, click.Group) else []
            raise NeuroplexError(f"sweep: no command 'neuroplex {' '.join(words[:depth + 1])}' "
                                 f"(there: {', '.join(have) or 'none'})")
        command = command.commands[word]
    return command


def _flags(command: click.Command) -> dict[str, click.Option]:
    """The command's options by long name without dashes (``learning-rate``)."""
    out: dict[str, click.Option] = {}
    for param in command.params:
        if isinstance(param, click.Option):
            for opt in param.opts:
                if opt.startswith("--"):
                    out[opt[2:]] = param
    return out


def command_line(config: SweepConfig, options: Mapping[str, Value], run_dir: Path, *,
                 flags: Mapping[str, click.Option] | None = None, resume: bool = False) -> list[str]:
    """The words after ``neuroplex`` that run one trial (``--log-dir`` its run directory)."""
    words = list(config.command)
    for name, value in {**config.fixed, **options}.items():
        option = flags.get(name) if flags is not None else None
        if flags is not None and option is None:
            raise NeuroplexError(f"sweep: 'neuroplex {' '.join(config.command)}' has no option --{name} "
                                 f"(it has: {', '.join('--' + f for f in sorted(flags))})")
        if isinstance(value, bool):
            if option is not None and option.is_flag and not option.secondary_opts and not value:
                continue  # a plain flag left off
            words.append(f"--{name}" if value else f"--no-{name}")
        else:
            words += [f"--{name}", str(value)]
    words += ["--log-dir", str(run_dir)]
    if flags is None or "progress" in flags:
        words.append("--no-progress")
    if resume:
        words.append("--resume")
    return words


def run_trial(config: SweepConfig, index: int, options: Mapping[str, Value]) -> dict[str, float]:
    """Run trial ``index`` here (continuing from its checkpoint when one is there) and return
    the last epoch's metrics from its ``metrics.json``."""
    group = _commands()
    flags = _flags(_command(group, config.command))
    for needed in ("log-dir",):
        if needed not in flags:
            raise NeuroplexError(f"sweep: 'neuroplex {' '.join(config.command)}' has no --{needed}: "
                                 f"sweeps run training commands that write the trainer's run directory")
    run_dir = trial_dir(config, index)
    resume = (run_dir / "checkpoint.pt").exists() and "resume" in flags
    group.main(args=command_line(config, options, run_dir, flags=flags, resume=resume),
               prog_name="neuroplex", standalone_mode=False)
    metrics = run_dir / "metrics.json"
    if not metrics.exists():
        raise NeuroplexError(f"sweep: trial {index} wrote no {metrics} (is this a trainer command?)")
    history = json.loads(metrics.read_text())
    if not history:
        raise NeuroplexError(f"sweep: trial {index}: {metrics} holds no epoch")
    return {k: float(v) for k, v in history[-1].items()}


def trial_dir(config: SweepConfig, index: int) -> Path:
    return (config.out / "trials" / f"trial-{index:03d}").resolve()


@dataclass
class Trial:
    """One trial: its ``index``, searched ``options``, ``status`` (``done``, ``failed``,
    ``pending``), final ``metrics`` and the ``command`` that reproduces it."""

    index: int
    options: dict[str, Value]
    status: str = "pending"
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""
    command: str = ""


@dataclass
class SweepResult:
    """The trials in order, the ``best`` done one by the config's metric, the CSV path."""

    config: SweepConfig
    trials: list[Trial]
    csv_path: Path

    @property
    def best(self) -> Trial | None:
        """The done trial with the best finite metric (a NaN or infinite one never wins)."""
        done = [t for t in self.trials if t.status == "done" and math.isfinite(t.metrics.get(self.config.metric, math.nan))]
        if not done:
            return None
        sign = 1.0 if self.config.mode == "max" else -1.0
        return max(done, key=lambda t: (sign * t.metrics[self.config.metric], -t.index))


def write_csv(result: SweepResult) -> None:
    """``trials.csv``: one row per trial (atomic)."""
    option_names = list(result.config.space)
    metric_names: list[str] = []
    for t in result.trials:
        metric_names.extend(k for k in t.metrics if k not in metric_names)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["trial", "status", *option_names, *metric_names, "error", "command"])
    for t in result.trials:
        writer.writerow([t.index, t.status, *(t.options.get(n, "") for n in option_names),
                         *(repr(t.metrics[k]) if k in t.metrics else "" for k in metric_names), t.error, t.command])
    atomic_write_text(result.csv_path, out.getvalue())


def _previous(csv_path: Path) -> dict[int, dict[str, str]]:
    """The rows of an earlier run's ``trials.csv`` by trial index (empty when there is none)."""
    if not csv_path.exists():
        return {}
    with csv_path.open(newline="") as fh:
        return {int(row["trial"]): row for row in csv.DictReader(fh)}


def _ray_tune_trial(space: dict[str, dict[str, object]], config: SweepConfig) -> None:
    """A Ray Tune trial (``space["spec"]``: its index and options): run it and report its final metrics."""
    from ray import tune

    spec = space["spec"]
    tune.report(run_trial(config, spec["index"], spec["options"]))  # type: ignore[arg-type]


def _ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _run_on_ray(config: SweepConfig, todo: list[Trial], finished: Callable[[Trial], None]) -> None:
    """The trials ``todo`` as Ray Tune trials, ``workers`` (default: the cluster's CPUs) at once."""
    try:
        import ray
        from ray import tune
    except ImportError:
        raise NeuroplexError(f"sweep executor 'ray' needs Ray Tune, which is not installed: {RAY_EXTRA}") from None
    if not ray.is_initialized():
        ray.init(address=config.address or os.environ.get("RAY_ADDRESS"), include_dashboard=False,
                 num_cpus=None if config.address else config.workers)
    trainable = tune.with_resources(tune.with_parameters(_ray_tune_trial, config=config), {"cpu": 1})
    tuner = tune.Tuner(
        trainable,
        param_space={"spec": tune.grid_search([{"index": t.index, "options": t.options} for t in todo])},
        tune_config=tune.TuneConfig(max_concurrent_trials=config.workers, reuse_actors=True),
        run_config=tune.RunConfig(name="tune", storage_path=str((config.out / "ray").resolve()), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=1)))
    results = tuner.fit()
    by_index = {t.index: t for t in todo}
    for result in results:
        trial = by_index[int(result.config["spec"]["index"])]
        if result.error is not None:
            trial.status, trial.error = "failed", str(result.error).strip().splitlines()[-1][:300]
        else:
            trial.status = "done"
            trial.metrics = {k: float(v) for k, v in result.metrics.items()
                             if k in _metric_names(config, trial.index)}
        finished(trial)


def _metric_names(config: SweepConfig, index: int) -> list[str]:
    """The metric names in trial ``index``'s ``metrics.json`` (what Tune reported, minus its own)."""
    history = json.loads((trial_dir(config, index) / "metrics.json").read_text())
    return list(history[-1]) if history else []


def sweep(config: SweepConfig | str | os.PathLike, *, executor: str | None = None, workers: int | None = None,
          progress: bool = True) -> SweepResult:
    """Run the sweep ``config`` (a :class:`SweepConfig` or a TOML file): the trials not yet
    done in ``OUT/trials.csv``, through Ray Tune (``executor="ray"``, or ``"auto"`` with Ray
    installed) or here one after another (``"local"``); ``executor``/``workers`` override the
    config's. Returns the trials with their final metrics; ``trials.csv`` is written as they end."""
    if not isinstance(config, SweepConfig):
        config = load_config(config)
    config = replace(config, executor=executor or config.executor, workers=workers or config.workers)
    if config.executor not in SWEEP_EXECUTORS:
        raise NeuroplexError(f"sweep: executor must be one of {', '.join(SWEEP_EXECUTORS)}, not {config.executor!r}")
    flags = _flags(_command(_commands(), config.command))
    result = SweepResult(config, [Trial(i, opts) for i, opts in enumerate(trials(config))],
                         (config.out / "trials.csv").resolve())
    before = _previous(result.csv_path)
    for t in result.trials:
        t.command = shlex.join(["neuroplex", *command_line(config, t.options, trial_dir(config, t.index), flags=flags)])
        row = before.get(t.index)
        if row is not None and row["status"] == "done" and row["command"] == t.command:
            t.status = "done"
            t.metrics = {k: float(v) for k, v in row.items() if k not in ("trial", "status", "error", "command",
                                                                         *config.space) and v not in ("", None)}
    config.out.mkdir(parents=True, exist_ok=True)
    write_csv(result)
    todo = [t for t in result.trials if t.status != "done"]

    def finished(trial: Trial) -> None:
        write_csv(result)

    use_ray = config.executor == "ray" or (config.executor == "auto" and _ray_available())
    if todo and use_ray:
        _run_on_ray(config, todo, finished)
    else:
        for t in tqdm(todo, desc="sweep", unit="trial", disable=not progress):
            try:
                t.metrics, t.status = run_trial(config, t.index, t.options), "done"
            except NeuroplexError as exc:
                t.status, t.error = "failed", str(exc)
            finished(t)
    return result


def summary(result: SweepResult) -> str:
    """The best trial's metrics and the command reproducing it (or why there is none)."""
    done = sum(t.status == "done" for t in result.trials)
    lines = [f"{done} of {len(result.trials)} trials done; table: {result.csv_path}"]
    best = result.best
    if best is None:
        lines.append(f"no trial reported {result.config.metric}")
        return "\n".join(lines)
    shown = {k: v for k, v in best.metrics.items() if k not in TIMING_KEYS}
    lines.append(f"best: trial {best.index} ({', '.join(f'{k}={v}' for k, v in best.options.items())}): "
                 f"{result.config.metric} = {best.metrics[result.config.metric]:.6g}")
    lines.append("metrics: " + ", ".join(f"{k}={v:.6g}" for k, v in shown.items()))
    lines.append(f"reproduce: {best.command}")
    return "\n".join(lines)
