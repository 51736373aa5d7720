"""Steady states of the shared BioModels: neuroplex versus libroadrunner's ``steadyState()``.

For each model, in one process: ``neuroplex.load_model(file)`` + ``neuroplex.steady_state``
(moiety-reduced Newton, continuation, stiff integration; see ``docs/sbml.md``) versus
``roadrunner.RoadRunner(file)`` + ``steadyState()`` (NLEQ2, its defaults). Times include
loading (and, for neuroplex, compiling). Where both succeed, the relative difference is
``max_i |ours_i - rr_i| / (|rr_i| + 1e-9 max_j |rr_j|)`` over the species, in the quantity
the file declares. Where roadrunner fails (or returns negative concentrations), ours is checked against a long tight simulation
(``--check-sim``: torch rosenbrock to ``t = 1e5``, rtol 1e-10). The median time ratio is over
the models where both succeed.

Run::

    python benchmarks/sbml_steady_state_bench.py [--models all|ID,ID] [--check-sim] [--out results.json]
"""
from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path
from typing import Any

import neuroplex
from neuroplex.compare import write_json
from neuroplex.config import data_dir, set_threads


def rr_steady(path: Path, model: Any) -> tuple[dict[str, float] | None, float, str]:
    import roadrunner

    t = time.perf_counter()
    try:
        rr = roadrunner.RoadRunner(str(path))
        rr.steadyState()
    except Exception as exc:  # noqa: BLE001 - roadrunner raises RuntimeError and others
        return None, time.perf_counter() - t, " ".join(str(exc).split())[:120]
    dt = time.perf_counter() - t
    out = {}
    for sid, info in model.sbml["species"].items():
        sel = f"[{sid}]" if info["quantity"] == "concentration" and not info["dimensionless_compartment"] else sid
        out[sid] = float(rr.getValue(sel))
    top = max((abs(v) for v in out.values()), default=0.0)
    negative = [k for k, v in out.items() if v < -1e-9 * top]
    if negative:  # not a state the model can reach: count it as a failure, check against a simulation
        return None, dt, f"negative concentrations in its result ({', '.join(negative[:3])}...)"
    return out, dt, ""


def rel_diff(ours: dict[str, float], ref: dict[str, float]) -> float:
    top = max((abs(v) for v in ref.values()), default=0.0)
    return max((abs(ours[k] - v) / (abs(v) + 1e-9 * top + 1e-300) for k, v in ref.items()), default=0.0)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="all")
    ap.add_argument("--check-sim", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    set_threads(1)
    folder = data_dir() / "biomodels"
    files = sorted(folder.glob("BIOMD*.xml"))
    if args.models != "all":
        wanted = {f"BIOMD{int(m):010d}" for m in args.models.split(",")}
        files = [f for f in files if f.stem in wanted]
    rows = []
    print(f"{'model':<17}{'n':>4} {'ours':<14}{'ours s':>8} {'rr':<6}{'rr s':>7} {'rel diff':>9}  note")
    for path in files:
        t = time.perf_counter()
        model = neuroplex.load_model(path)
        try:
            sol = neuroplex.steady_state(model)
        except neuroplex.NeuroplexError as exc:
            sol, refused = None, str(exc)
        ours_t = time.perf_counter() - t
        ok = sol is not None and bool(sol.ok)
        ours = {sid: float(sol[sid][0]) for sid in model.sbml["species"]} if sol is not None else {}
        ref, rr_t, rr_err = rr_steady(path, model)
        diff = rel_diff(ours, ref) if (ok and ref is not None) else math.nan
        note = "" if ok else (sol.meta["reasons"].get(0, "") if sol is not None else refused.split("; ")[0].split(", so ")[0])
        if ok and ref is None and args.check_sim:
            sim = neuroplex.simulate(model, (0, 1e5), method="rosenbrock", rtol=1e-10, atol=1e-14)
            end = {sid: float(sim[sid][0, -1]) for sid in model.sbml["species"]}
            note = f"vs simulation to 1e5: {rel_diff(ours, end):.1e}"
        if ref is None:
            note = (note + "; " if note else "") + f"rr: {rr_err}"
        status = neuroplex.Status(int(sol.status[0])).name.lower() if sol is not None else "refused"
        rows.append({"model": path.stem, "states": len(model.states), "ours": status, "ours_s": ours_t,
                     "residual": float(sol.stats["residual"][0]) if sol is not None else math.nan, "rr_ok": ref is not None, "rr_s": rr_t,
                     "rel_diff": diff, "note": note})
        print(f"{path.stem:<17}{len(model.states):>4} {status:<14}{ours_t:>8.2f} {'ok' if ref is not None else 'fail':<6}"
              f"{rr_t:>7.2f} {diff:>9.1e}  {note}", flush=True)
    both = [r for r in rows if r["ours"] == "success" and r["rr_ok"]]
    ratio = statistics.median(r["ours_s"] / r["rr_s"] for r in both) if both else math.nan
    print(f"both succeed: {len(both)}; worst rel diff {max((r['rel_diff'] for r in both), default=math.nan):.1e}; "
          f"median time ratio ours/rr {ratio:.2f}")
    result = {"rows": rows, "median_time_ratio": ratio}
    if args.out:
        write_json(result, Path(args.out))
    return result


if __name__ == "__main__":
    main()
