"""Runner for the SBML Test Suite's semantic cases.

A case directory ``NNNNN/`` holds ``NNNNN-sbml-lXvY.xml``, ``NNNNN-settings.txt`` (start,
duration, steps, variables, absolute, relative, amount, concentration) and
``NNNNN-results.csv``. A case passes when for every variable and time point
``|expected - actual| <= absolute + relative * |expected|``, with NaN and +-INF matched
exactly (the suite's own rule). Species listed under ``amount:`` are reported as amounts,
those under ``concentration:`` as concentrations; other ids by their SBML value.

Python API: :func:`run_case`, :func:`run_suite`; command line:
``neuroplex sbml testsuite DIR [--solver torch|scipy|roadrunner|native] [--jobs N] [--only IDS]
[--out failures.json]``.
"""
from __future__ import annotations

import csv
import json
import math
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from neuroplex.api import make_solver
from neuroplex.config import set_threads
from neuroplex.errors import NeuroplexError
from neuroplex.progress import progress_bar
from neuroplex.solution import Status

from .program import SBMLProgram
from .runner import run

SOLVERS = ("torch", "scipy", "roadrunner", "native")


@dataclass
class CaseSettings:
    """The contents of ``NNNNN-settings.txt``."""

    start: float
    duration: float
    steps: int
    variables: list[str]
    absolute: float
    relative: float
    amount: list[str] = field(default_factory=list)
    concentration: list[str] = field(default_factory=list)

    @property
    def times(self) -> np.ndarray:
        return np.linspace(self.start, self.start + self.duration, self.steps + 1)

    def quantity(self, var: str) -> str | None:
        if var in self.amount:
            return "amount"
        if var in self.concentration:
            return "concentration"
        return None


@dataclass
class CaseResult:
    """Outcome of one case: ``passed``, and for a failure a one-line ``reason``."""

    case_id: str
    passed: bool
    reason: str = ""
    seconds: float = 0.0


def read_settings(path: str | os.PathLike) -> CaseSettings:
    values: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        if ":" in line:
            key, _, value = line.partition(":")
            values[key.strip().lower()] = value.strip()

    def ids(key: str) -> list[str]:
        return [x.strip() for x in values.get(key, "").split(",") if x.strip()]

    try:
        return CaseSettings(float(values["start"]), float(values["duration"]), int(float(values["steps"])),
                            ids("variables"), float(values["absolute"]), float(values["relative"]),
                            ids("amount"), ids("concentration"))
    except KeyError as exc:
        raise NeuroplexError(f"{path}: settings file lacks {exc.args[0]!r}") from None


def _number(text: str) -> float:
    t = text.strip().lower()
    if t in ("inf", "+inf", "infinity"):
        return math.inf
    if t in ("-inf", "-infinity"):
        return -math.inf
    if t == "nan":
        return math.nan
    return float(t)


def read_results(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Header (time column first) and the values of ``NNNNN-results.csv``."""
    with open(path, newline="") as fh:
        rows = [r for r in csv.reader(fh) if r]
    header = [h.strip() for h in rows[0]]
    data = np.array([[_number(x) for x in r] for r in rows[1:]], dtype=float)
    return header, data


def compare(expected: np.ndarray, actual: np.ndarray, absolute: float, relative: float) -> np.ndarray:
    """Per-point pass mask of the suite's rule (NaN and infinities must match exactly)."""
    expected = np.asarray(expected, dtype=float)
    actual = np.asarray(actual, dtype=float)
    ok = np.zeros(expected.shape, dtype=bool)
    e_nan, a_nan = np.isnan(expected), np.isnan(actual)
    e_inf = np.isinf(expected)
    ok |= e_nan & a_nan
    ok |= e_inf & (actual == expected)
    finite = np.isfinite(expected) & np.isfinite(actual)
    with np.errstate(invalid="ignore", over="ignore"):
        ok |= finite & (np.abs(expected - actual) <= absolute + relative * np.abs(expected))
    return ok


def case_files(case_dir: Path) -> tuple[str, Path, Path, Path]:
    case_id = case_dir.name
    sbml = sorted(case_dir.glob(f"{case_id}-sbml-l*.xml"))
    if not sbml:
        raise NeuroplexError(f"{case_dir}: no {case_id}-sbml-*.xml file")
    # the newest level/version the case has
    sbml.sort(key=lambda p: tuple(int(x) for x in re.findall(r"l(\d+)v(\d+)", p.name)[0]))
    return case_id, sbml[-1], case_dir / f"{case_id}-settings.txt", case_dir / f"{case_id}-results.csv"


# ------------------------------------------------------------------ simulators
def integrator_tolerances(settings: CaseSettings) -> tuple[float, float]:
    """Integrator rtol/atol well inside the case's own tolerances."""
    rtol = min(1e-8, settings.relative * 1e-4)
    atol = min(1e-10, settings.absolute * 1e-4)
    return rtol, atol


def simulate_neuroplex(sbml: Path, settings: CaseSettings, solver: str = "torch") -> dict[str, np.ndarray]:
    """Simulate a case with the neuroplex SBML runner; ``{var: values}``."""
    import torch

    from .reader import read_sbml  # python-libsbml: optional

    model = read_sbml(sbml)
    outputs = [(v, model.value_expression(v, settings.quantity(v))) for v in settings.variables]
    prog = SBMLProgram(model, outputs)
    rtol, atol = integrator_tolerances(settings)
    instance = make_solver(solver, "simulate", rtol=rtol, atol=atol, max_steps=100_000)
    t_eval = torch.as_tensor(settings.times, dtype=torch.float64)
    method = "LSODA" if solver == "scipy" else "auto"
    if solver == "native":  # compiled C (it refuses what it cannot run, naming why)
        sol = instance.run_program(prog, (settings.start, settings.start + settings.duration), t_eval=t_eval)
    else:
        sol = run(prog, (settings.start, settings.start + settings.duration), t_eval=t_eval,
                  integrator=instance.integrator(), method=method, control=instance.control,
                  solver_name=solver)
    if not sol.ok:
        raise NeuroplexError(f"integration failed: {Status(int(sol.status[0])).name.lower()}")
    return {v: sol.ys[0, :, i].numpy() for i, v in enumerate(sol.names)}


def simulate_roadrunner(sbml: Path, settings: CaseSettings) -> dict[str, np.ndarray]:
    """Simulate a case with libroadrunner (tight tolerances), the reference."""
    import roadrunner

    rr = roadrunner.RoadRunner(str(sbml))
    integ = rr.getIntegrator()  # the tight setting of the shared data's reference runs
    integ.setValue("relative_tolerance", min(1e-9, 1e-4 * settings.relative))
    integ.setValue("absolute_tolerance", min(1e-12, 1e-6 * settings.absolute))
    species = set(rr.model.getFloatingSpeciesIds()) | set(rr.model.getBoundarySpeciesIds())
    selections = ["time"]
    for v in settings.variables:
        q = settings.quantity(v)
        selections.append(f"[{v}]" if v in species and q == "concentration" else v)
    rr.timeCourseSelections = selections
    result = rr.simulate(settings.start, settings.start + settings.duration, settings.steps + 1)
    arr = np.asarray(result)
    return {v: arr[:, i + 1] for i, v in enumerate(settings.variables)}


def run_case(case_dir: str | os.PathLike, solver: str = "torch") -> CaseResult:
    """Run one case and check it against its expected results."""
    case_dir = Path(case_dir)
    start = time.perf_counter()
    case_id = case_dir.name
    try:
        case_id, sbml, settings_path, results_path = case_files(case_dir)
        settings = read_settings(settings_path)
        header, expected = read_results(results_path)
        if solver == "roadrunner":
            actual = simulate_roadrunner(sbml, settings)
        elif solver in ("torch", "scipy", "native"):
            actual = simulate_neuroplex(sbml, settings, solver)
        else:
            raise NeuroplexError(f"unknown solver {solver!r} (choose from {', '.join(SOLVERS)})")
        reason = _check(header, expected, actual, settings)
    except Exception as exc:  # noqa: BLE001 - every failure is a recorded reason
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]
    return CaseResult(case_id, not reason, reason, time.perf_counter() - start)


def _check(header: list[str], expected: np.ndarray, actual: dict[str, np.ndarray], settings: CaseSettings) -> str:
    times = settings.times
    if expected.shape[0] != times.size:
        return f"results have {expected.shape[0]} rows, settings ask for {times.size}"
    t_ok = compare(expected[:, 0], times, 1e-9, 1e-9)
    if not t_ok.all():
        return "time grid differs from the expected results"
    worst = ""
    for j, var in enumerate(header[1:], start=1):
        if var not in actual:
            return f"no value for {var!r}"
        ok = compare(expected[:, j], actual[var], settings.absolute, settings.relative)
        if not ok.all():
            i = int(np.argmin(ok))
            worst = (f"{var} at t={times[i]:g}: expected {expected[i, j]:.10g}, got {actual[var][i]:.10g} "
                     f"({int((~ok).sum())} of {ok.size} points off)")
            return worst
    return worst


# ------------------------------------------------------------------- the suite
@dataclass
class SuiteResult:
    """Outcome of a suite run."""

    solver: str
    results: list[CaseResult]

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def total(self) -> int:
        return len(self.results)

    def failures(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]

    def write(self, path: str | os.PathLike) -> Path:
        """Write failing ids and reasons as JSON, atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"solver": self.solver, "passed": self.passed, "total": self.total,
                "failures": {r.case_id: r.reason for r in self.failures()}}
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
        return path


def list_cases(root: str | os.PathLike, only: Iterable[str] | None = None) -> list[Path]:
    """Case directories under ``root`` (``root`` may be one case), filtered by ``only``."""
    root = Path(root)
    if not root.is_dir():
        raise NeuroplexError(f"{root}: no such test-suite directory")
    if list(root.glob(f"{root.name}-settings.txt")):
        cases = [root]
    else:
        cases = sorted(p for p in root.iterdir() if p.is_dir() and (p / f"{p.name}-settings.txt").exists())
    if only:
        wanted = {str(x).strip().zfill(5) for x in only if str(x).strip()}
        cases = [c for c in cases if c.name in wanted]
        missing = wanted - {c.name for c in cases}
        if missing:
            raise NeuroplexError(f"{root}: no case(s) {', '.join(sorted(missing))}")
    return cases


def _worker_init() -> None:
    set_threads(1)


def _run_one(args: tuple[str, str]) -> CaseResult:
    return run_case(args[0], args[1])


def run_suite(root: str | os.PathLike, solver: str = "torch", *, jobs: int = 1, only: Sequence[str] | None = None,
              progress: bool = False, callback: Callable[[CaseResult], None] | None = None) -> SuiteResult:
    """Run every case under ``root`` (``jobs`` worker processes)."""
    if solver not in SOLVERS:
        raise NeuroplexError(f"unknown solver {solver!r} (choose from {', '.join(SOLVERS)})")
    cases = list_cases(root, only)
    work = [(str(c), solver) for c in cases]
    results: list[CaseResult] = []
    bar = progress_bar(total=len(work), unit="case", desc=f"sbml testsuite ({solver})", enabled=progress)
    try:
        if jobs > 1 and len(work) > 1:
            import multiprocessing as mp

            ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
            with ctx.Pool(jobs, initializer=_worker_init) as pool:
                for r in pool.imap_unordered(_run_one, work, chunksize=4):
                    results.append(r)
                    if callback:
                        callback(r)
                    bar.update(1)
        else:
            _worker_init()
            for w in work:
                r = _run_one(w)
                results.append(r)
                if callback:
                    callback(r)
                bar.update(1)
    finally:
        bar.close()
    results.sort(key=lambda r: r.case_id)
    return SuiteResult(solver, results)

