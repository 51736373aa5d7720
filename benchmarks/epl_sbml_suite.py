"""``from_sbml`` over the SBML Test Suite (and the shared BioModels): every model must either
import and reproduce the expected trajectories, or be refused with an ``EPLImportError``
naming the element and the reason. Prints the tally: imported and matching / refused by reason
/ failures (a mismatch, an exception other than ``EPLImportError``, a timeout), each failure
with its case and message.

A case matches when every species among its variables is within the suite's own rule
``|ds - expected| <= absolute + relative |expected|`` at every output time (the DS integrated
with rosenbrock, rtol 1e-8, on torch unless ``--solver``); variables that are not DS nodes (parameters, compartments,
constant species) are not compared and counted.

    OMP_NUM_THREADS=1 python benchmarks/epl_sbml_suite.py [--only 00001,00002] [--limit N]
        [--timeout 120] [--biomodels] [--out tally.json] [--solver torch|native|auto]
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import signal
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuroplex.config import data_dir
from neuroplex.plugins.epl import EPLImportError, from_sbml
from neuroplex.plugins.epl.fidelity import species_values
from neuroplex.sbml.testsuite import case_files, compare, read_results, read_settings

#: refusal messages -> a short reason for the tally (first match wins)
REASONS = [
    (r"events", "events"),
    (r"rate rules?", "rate rules"),
    (r"algebraic", "algebraic rules"),
    (r"depends on time|reads time", "time-dependent law or rule"),
    (r"delay", "delays"),
    (r"Michaelis-Menten", "Michaelis-Menten-type law"),
    (r"Hill-type", "Hill-type law"),
    (r"non-polynomial", "non-polynomial law"),
    (r"non-integer exponent", "non-integer power law"),
    (r"negative stoichiometry", "negative stoichiometry"),
    (r"stoichiometry of .* is not a constant", "stoichiometry varies in time"),
    (r"positive and .* negative terms", "more than one forward/backward term"),
    (r"order .* where the", "order below the stoichiometry"),
    (r"different extra factors", "different catalysts forward/backward"),
    (r"rate depends on", "rate depends on a non-species value"),
    (r"compartment .* varies|size of compartment", "varying or non-constant compartment"),
    (r"conversion factor", "conversion factor != 1"),
    (r"irreversible approximation", "irreversible step too close to reversible"),
    (r"no reactions|no species that vary", "no reactions or no varying species"),
    (r"SBML reader refuses", "SBML reader refuses"),
    (r"does not reproduce the SBML rate", "self-check: rates differ"),
    (r"not a constant number", "non-constant value"),
]


class CaseTimeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise CaseTimeout()


def reason_of(message: str) -> str:
    for pattern, label in REASONS:
        if re.search(pattern, message):
            return label
    return "other: " + message.split(": ", 1)[-1][:60]


def run_case(case_dir: Path, timeout: float, solver: str = "torch") -> dict[str, Any]:
    """One case: ``{"case", "outcome": match|mismatch|refused|error|timeout, "reason", "seconds", ...}``."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {"case": case_dir.name}
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        _, sbml, settings_path, results_path = case_files(case_dir)
        settings = read_settings(settings_path)
        header, expected = read_results(results_path)
        try:
            system, report = from_sbml(sbml)
        except EPLImportError as exc:
            out.update(outcome="refused", reason=reason_of(str(exc)), message=str(exc)[:300])
            return out
        quantities = {v: settings.quantity(v) for v in settings.variables}
        values = species_values(system, report, torch.as_tensor(settings.times), quantities, solver=solver)
        out["compared"], out["not_compared"] = len(values), len(settings.variables) - len(values)
        out["approximations"] = len(report.approximations)
        worst = ""
        for j, var in enumerate(header[1:], start=1):
            if var not in values:
                continue
            got = values[var].numpy()
            ok = compare(expected[:, j], got, settings.absolute, settings.relative)
            if not ok.all():
                i = int(np.argmin(ok))
                worst = (f"{var} at t={settings.times[i]:g}: expected {expected[i, j]:.10g}, DS {got[i]:.10g} "
                         f"({int((~ok).sum())} of {ok.size} points off)")
                break
        out.update(outcome="mismatch" if worst else "match", reason=worst)
    except CaseTimeout:
        out.update(outcome="timeout", reason=f"over {timeout:g} s")
    except Exception as exc:  # noqa: BLE001 - every other exception is a failure of the importer
        out.update(outcome="error", reason=f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def run_biomodel(path: Path, timeout: float) -> dict[str, Any]:
    """A BioModel: import (or refusal); the comparison with roadrunner is benchmarks/epl_biomodels.py."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {"case": path.stem}
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        system, report = from_sbml(path)
        out.update(outcome="imported", reason=f"{system.n} nodes, {system.e} reactions, "
                   f"{len(report.approximations)} approximations")
    except EPLImportError as exc:
        out.update(outcome="refused", reason=reason_of(str(exc)), message=str(exc)[:300])
    except CaseTimeout:
        out.update(outcome="timeout", reason=f"over {timeout:g} s")
    except Exception as exc:  # noqa: BLE001
        out.update(outcome="error", reason=f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def tally(results: list[dict[str, Any]]) -> str:
    outcomes = Counter(r["outcome"] for r in results)
    lines = [f"{len(results)} models: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))]
    refused = Counter(r["reason"] for r in results if r["outcome"] == "refused")
    if refused:
        lines.append("refused by reason:")
        lines += [f"  {v:5d}  {k}" for k, v in refused.most_common()]
    bad = [r for r in results if r["outcome"] in ("mismatch", "error", "timeout")]
    if bad:
        lines.append("FAILURES:")
        lines += [f"  {r['case']} {r['outcome']}: {r['reason']}" for r in bad]
    secs = [r["seconds"] for r in results]
    lines.append(f"time: total {sum(secs):.0f} s, median {float(np.median(secs)):.2f} s, max {max(secs):.1f} s")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="", help="comma-separated case ids")
    ap.add_argument("--limit", type=int, default=0, help="at most N cases (every k-th, spread over the suite)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per case")
    ap.add_argument("--biomodels", action="store_true", help="the shared BioModels instead of the suite")
    ap.add_argument("--out", type=Path, help="write every case's outcome as JSON")
    ap.add_argument("--solver", default="torch", choices=["torch", "native", "auto"],
                    help="how the DS runs (torch: no compile per case)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    if args.biomodels:
        results = [run_biomodel(f, args.timeout) for f in sorted((Path(data_dir()) / "biomodels").glob("*.xml"))]
        for r in results:
            print(f"{r['case']}: {r['outcome']}: {r.get('message', r['reason'])}", flush=True)
    else:
        root = Path(data_dir()) / "sbml-test-suite"
        with open(root / "index.csv", newline="") as fh:
            ids = sorted(row["case_id"] for row in csv.DictReader(fh))
        if args.only:
            ids = [i for i in ids if i in set(args.only.split(","))]
        if args.limit:
            ids = ids[:: max(1, len(ids) // args.limit)][: args.limit]
        results = []
        for cid in ids:
            r = run_case(root / cid, args.timeout, args.solver)
            results.append(r)
            print(f"{cid} {r['outcome']:8s} {r['seconds']:6.2f}s {r['reason'][:150]}", flush=True)
    print(tally(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
