"""SBML on neuroplex (torch) versus libroadrunner, side by side in one process.

Three measurements, each reported as a ratio to roadrunner from the same run:

(a) load/compile: ``neuroplex.load_model(file)`` plus compiling the SBML program (sympy ->
    torch source) versus ``roadrunner.RoadRunner(file)`` (parse + LLVM JIT), per model;
(b) one simulation of each model over 0..100 with 1000 output points (torch ``dopri5`` or
    ``rosenbrock`` as in the BioModels test, roadrunner CVODE, both rtol 1e-6 / atol 1e-9);
(c) an ensemble of N (default 10 000) parameter sets of BIOMD0000000012 (repressilator) and
    BIOMD0000000020 (Hodgkin-Huxley): every parameter scaled by ``exp(0.1 z)``, ``z ~ N(0, 1)``
    (seeded), 0..100 with 101 output points, dopri5, in ``--workers`` (default 2) processes, on
    each path: ``auto`` (the default, ``fused="auto"``), ``native`` (the compiled C ensemble),
    ``fused`` (``fused=True``, torch steps compiled by inductor) and ``eager`` (``fused=False``),
    each in two fresh processes: the first on empty cache folders (``$NEUROPLEX_NATIVE_CACHE``,
    ``$TORCHINDUCTOR_CACHE_DIR``): end to end cold = load + first call (compiles); the second on
    the caches the first left: end to end warm, and run-only = its second call. Against a
    roadrunner loop over the same sets in this process (reset, set ``init(p)``, simulate; CVODE at
    roadrunner's defaults but the same rtol/atol): its end to end is ``RoadRunner(file)`` plus the
    loop, its run-only the loop. Agreement: each path's first 200 samples against roadrunner's and
    the eager path's, relative to each trajectory's range.

Run (the shared data folder is ``$NEUROPLEX_DATA``, default ``../shared/data``)::

    python benchmarks/sbml_bench.py [--models all|ID,ID] [--ensemble 10000] [--rr-samples 10000]
                                    [--workers 2] [--paths auto,native,fused,eager]
                                    [--skip-load] [--skip-sim] [--fused-check] [--out results.json]

``--rr-samples`` below ``--ensemble`` times roadrunner on that many sets and scales its time
(its loop cost is linear in the number of sets).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

import neuroplex
from neuroplex.compare import write_json
from neuroplex.config import data_dir, set_threads

#: torch method per model for (b); every other model uses rosenbrock
DOPRI5 = {"BIOMD0000000010", "BIOMD0000000012", "BIOMD0000000020", "BIOMD0000000118", "BIOMD0000000127",
          "BIOMD0000000142", "BIOMD0000000280", "BIOMD0000000346"}
ENSEMBLE_MODELS = ("BIOMD0000000012", "BIOMD0000000020")
#: the ensemble paths timed in (c), each in fresh processes: (key, simulate options)
ENSEMBLE_PATHS = (("auto", {}), ("native", {"solver": "native"}), ("fused", {"fused": True}),
                  ("eager", {"fused": False}), ("fused_unpatched", {"fused": True}))
#: paths timed unless --paths says otherwise (``fused_unpatched``: fused steps built without
#: ``fused_loop.BUILD_OPTIONS``, inductor's defaults, to measure what they cut)
DEFAULT_PATHS = ("auto", "native", "fused", "eager")
#: samples whose outputs (c) compares across paths and with roadrunner
CHECK_SAMPLES = 200


def _rr() -> Any:
    import roadrunner

    return roadrunner


def _timed(fn: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def bench_load(paths: list[Path]) -> list[dict[str, Any]]:
    """(a) load/compile time per model."""
    from neuroplex.sbml.runner import compiled

    rows = []
    if paths:  # one-time import and first-call costs of both sides stay out of the timings
        compiled(neuroplex.load_model(paths[0]))
        _rr().RoadRunner(str(paths[0]))
    for path in paths:
        def ours() -> Any:
            return compiled(neuroplex.load_model(path))

        try:
            prog, t_np = _timed(ours)
            # the stiff method's symbolic Jacobian is built on first use: shown on its own
            _, t_jac = _timed(prog.jacobian_code) if path.stem not in DOPRI5 else (None, 0.0)
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            rows.append({"model": path.stem, "error": f"{type(exc).__name__}: {exc}"})
            print(f"  load {path.stem}: neuroplex failed: {exc}", flush=True)
            continue
        _, t_rr = _timed(lambda: _rr().RoadRunner(str(path)))
        rows.append({"model": path.stem, "neuroplex_s": t_np, "jacobian_s": t_jac, "roadrunner_s": t_rr,
                     "ratio": t_np / t_rr, "ratio_with_jacobian": (t_np + t_jac) / t_rr})
        print(f"  load {path.stem}: neuroplex {t_np * 1e3:8.1f} ms (+ Jacobian {t_jac * 1e3:7.1f} ms)  "
              f"roadrunner {t_rr * 1e3:8.1f} ms  ratio {t_np / t_rr:6.2f} ({(t_np + t_jac) / t_rr:6.2f} with it)",
              flush=True)
    return rows


def bench_simulate(paths: list[Path], rtol: float, atol: float) -> list[dict[str, Any]]:
    """(b) one simulation per model (model already loaded/compiled on both sides)."""
    rows = []
    ts = torch.linspace(0.0, 100.0, 1000, dtype=torch.float64)
    for path in paths:
        method = "dopri5" if path.stem in DOPRI5 else "rosenbrock"
        try:
            model = neuroplex.load_model(path)
            neuroplex.simulate(model, (0.0, 1.0), solver="torch", method=method, n_points=2)  # compile outside timing
            sol, t_np = _timed(lambda: neuroplex.simulate(model, (0.0, 100.0), solver="torch", method=method,
                                                          t_eval=ts, rtol=rtol, atol=atol, max_steps=2_000_000))
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            rows.append({"model": path.stem, "method": method, "error": f"{type(exc).__name__}: {exc}"})
            print(f"  sim  {path.stem}: torch failed: {exc}", flush=True)
            continue
        rr = _rr().RoadRunner(str(path))
        rr.integrator.setValue("relative_tolerance", rtol)
        rr.integrator.setValue("absolute_tolerance", atol)
        try:
            _, t_rr = _timed(lambda: rr.simulate(times=ts.tolist()))
        except RuntimeError as exc:  # e.g. the Oregonator at roadrunner's default-like tolerances
            rows.append({"model": path.stem, "method": method, "neuroplex_s": t_np, "ok": bool(sol.ok),
                         "error": f"roadrunner: {str(exc).splitlines()[0][:200]}"})
            print(f"  sim  {path.stem}: torch {method:<10} {t_np * 1e3:9.1f} ms  roadrunner failed: "
                  f"{str(exc).splitlines()[0][:100]}", flush=True)
            continue
        rows.append({"model": path.stem, "method": method, "neuroplex_s": t_np, "roadrunner_s": t_rr,
                     "ratio": t_np / t_rr, "ok": bool(sol.ok)})
        print(f"  sim  {path.stem}: torch {method:<10} {t_np * 1e3:9.1f} ms  roadrunner {t_rr * 1e3:8.1f} ms  "
              f"ratio {t_np / t_rr:7.1f}{'' if sol.ok else '  (torch status not ok)'}", flush=True)
    return rows


def ensemble_params(model: Any, n: int, seed: int = 0) -> torch.Tensor:
    """Every parameter scaled by exp(0.1 z), z ~ N(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.tensor([p.value for p in model.parameters], dtype=torch.float64)
    return base * torch.exp(0.1 * torch.randn((n, base.numel()), generator=g, dtype=torch.float64))


def _ensemble_child(argv: list[str]) -> int:
    """``--ensemble-child FILE N KEY WORKERS RTOL ATOL OUT``: in a fresh process, load the model,
    then two identical ensemble calls on path ``KEY``; prints one JSON line of timings and saves
    the first samples' outputs to ``OUT`` (the caches are the environment's)."""
    import json

    file, n, key, workers, rtol, atol, out = argv
    set_threads(1)
    options = dict(ENSEMBLE_PATHS)[key]
    if key == "fused_unpatched":
        from neuroplex.plugins.torch_solver import fused_loop

        fused_loop.BUILD_OPTIONS.clear()
    ts = torch.linspace(0.0, 100.0, 101, dtype=torch.float64)
    # once per process, as `import roadrunner` is for roadrunner: the plugins and libsbml
    _, startup_s = _timed(lambda: (neuroplex.get_host(), __import__("libsbml"), __import__("sympy")))
    model, load_s = _timed(lambda: neuroplex.load_model(file))
    params = ensemble_params(model, int(n))

    def call() -> Any:
        return neuroplex.simulate(model, (0.0, 100.0), params=params, t_eval=ts, rtol=float(rtol), atol=float(atol),
                                  method="dopri5", workers=int(workers), **options)

    first, first_s = _timed(call)
    second, second_s = _timed(call)
    torch.save({"ys": second.ys[:CHECK_SAMPLES].clone(), "names": list(second.names)}, out)
    print(json.dumps({"startup_s": startup_s, "load_s": load_s, "first_s": first_s, "run_s": second_s,
                      "compile_s": first.meta.get("compile_s"), "solver": second.solver,
                      "path": second.meta.get("path", key), "reason": second.meta.get("path_reason", ""),
                      "failed": len(second.failed_samples())}), flush=True)
    return 0


def _child_run(path: Path, n: int, key: str, workers: int, rtol: float, atol: float, caches: Path,
               out: Path) -> dict[str, Any]:
    import json
    import os
    import subprocess

    env = {**os.environ, "NEUROPLEX_NATIVE_CACHE": str(caches / "native"),
           "TORCHINDUCTOR_CACHE_DIR": str(caches / "inductor"), "OMP_NUM_THREADS": "1", "NEUROPLEX_PROGRESS": "0"}
    cmd = [sys.executable, __file__, "--ensemble-child", str(path), str(n), key, str(workers), str(rtol), str(atol),
           str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{key}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _max_diff_of_range(x: torch.Tensor, y: torch.Tensor) -> float:
    """Largest |x - y| relative to each trajectory's range of ``y`` (a pointwise relative
    difference is meaningless where a variable crosses zero, e.g. a membrane potential)."""
    ok = torch.isfinite(x) & torch.isfinite(y)
    span = torch.where(ok, y, torch.zeros_like(y)).abs().amax(-2, keepdim=True).clamp_min(1e-12)
    rel = ((x - y).abs() / span)[ok]
    return float(rel.max()) if rel.numel() else 0.0


def bench_ensemble(path: Path, n: int, rr_samples: int, rtol: float, atol: float, workers: int,
                   paths: list[str]) -> dict[str, Any]:
    """(c) per ensemble path: end to end (load + compile + run) in a fresh process on a cold
    cache (new cache folders) and on the warm cache it left, and run-only (the warm process's
    second call), against a roadrunner loop over the same sets in this process."""
    import tempfile

    from neuroplex.plugins.roadrunner.solver import RoadRunnerSolver

    model = neuroplex.load_model(path)
    params = ensemble_params(model, n)
    ts = torch.linspace(0.0, 100.0, 101, dtype=torch.float64)
    out: dict[str, Any] = {"model": path.stem, "samples": n, "method": "dopri5", "workers": workers}
    set_threads(1)
    m = min(rr_samples, n)
    _, rr_load = _timed(lambda: _rr().RoadRunner(str(path)))
    solver = RoadRunnerSolver(rtol=rtol, atol=atol)
    solver.simulate(model, (0.0, 1.0), params=params[:1], t_eval=torch.tensor([0.0, 1.0], dtype=torch.float64))
    rr_sol, rr_wall = _timed(lambda: solver.simulate(model, (0.0, 100.0), params=params[:m], t_eval=ts))
    rr_run = rr_wall * n / m
    out.update({"roadrunner_samples_timed": m, "roadrunner_load_s": rr_load, "roadrunner_run_s": rr_run,
                "roadrunner_end_to_end_s": rr_load + rr_run, "roadrunner_failed": len(rr_sol.failed_samples())})
    print(f"  ensemble {path.stem}: roadrunner load {rr_load:.2f} s + loop over {m} sets {rr_wall:.2f} s"
          f"{' (scaled to ' + str(n) + ')' if m < n else ''}", flush=True)
    rr_ys = rr_sol.ys[:CHECK_SAMPLES]
    results: dict[str, torch.Tensor] = {}
    with tempfile.TemporaryDirectory(prefix="neuroplex_ens_") as folder:
        for key in paths:
            caches = Path(folder) / key
            caches.mkdir()
            try:
                cold = _child_run(path, n, key, workers, rtol, atol, caches, caches / "cold.pt")
                warm = _child_run(path, n, key, workers, rtol, atol, caches, caches / "warm.pt")
            except Exception as exc:  # noqa: BLE001 - reported, not hidden
                out[f"{key}_error"] = str(exc)
                print(f"  ensemble {path.stem}: {key}: failed: {exc}", flush=True)
                continue
            saved = torch.load(caches / "warm.pt")
            results[key] = saved["ys"]
            cold_e2e, warm_e2e = cold["load_s"] + cold["first_s"], warm["load_s"] + warm["first_s"]
            row = {"cold_end_to_end_s": cold_e2e, "warm_end_to_end_s": warm_e2e, "run_s": warm["run_s"],
                   "cold_first_call_s": cold["first_s"], "load_s": cold["load_s"], "startup_s": cold["startup_s"],
                   "model_library_compile_s": cold["compile_s"], "solver": warm["solver"],
                   "path": warm["path"], "cold_path": cold["path"], "reason": cold["reason"], "failed": warm["failed"],
                   "speedup_cold_end_to_end": out["roadrunner_end_to_end_s"] / cold_e2e,
                   "speedup_warm_end_to_end": out["roadrunner_end_to_end_s"] / warm_e2e,
                   "speedup_run_only": rr_run / warm["run_s"]}
            names = saved["names"]
            common = [i for i, name in enumerate(names) if name in rr_sol.names]
            rr_cols = [rr_sol.names.index(names[i]) for i in common]
            row["max_diff_vs_roadrunner_of_range"] = _max_diff_of_range(results[key][..., common],
                                                                        rr_ys[: results[key].shape[0]][..., rr_cols])
            out[key] = row
            print(f"  ensemble {path.stem}: {key:<6} ({row['cold_path']} cold, {row['path']} warm): end to end cold "
                  f"{cold_e2e:6.2f} s ({row['speedup_cold_end_to_end']:5.2f}x roadrunner), warm {warm_e2e:6.2f} s "
                  f"({row['speedup_warm_end_to_end']:5.2f}x), run-only {warm['run_s']:6.3f} s "
                  f"({row['speedup_run_only']:5.1f}x); {row['failed']} failed; max diff vs roadrunner "
                  f"{row['max_diff_vs_roadrunner_of_range']:.1e} of range", flush=True)
    if "eager" in results:
        for key, ys in results.items():
            if key != "eager":
                out[key]["max_diff_vs_eager_of_range"] = _max_diff_of_range(ys, results["eager"])
    return out


def bench_fused_agreement(paths: list[Path], n: int = 80) -> list[dict[str, Any]]:
    """``--fused-check``: per model, ``n`` perturbed parameter sets over 0..5 with ``auto``, eager
    steps versus fused steps (the first fused call, so its time includes compiling): the largest
    difference relative to each trajectory's range, and whether the NaN patterns match."""
    rows = []
    for path in paths:
        model = neuroplex.load_model(path)
        kw = dict(solver="torch", method="auto", params=ensemble_params(model, n, seed=1), n_points=21,
                  rtol=1e-6, atol=1e-9)
        try:
            eager, t_eager = _timed(lambda: neuroplex.simulate(model, (0.0, 5.0), **kw))
            fused, t_fused = _timed(lambda: neuroplex.simulate(model, (0.0, 5.0), fused=True, **kw))
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            rows.append({"model": path.stem, "error": f"{type(exc).__name__}: {exc}"})
            print(f"  fused {path.stem}: failed: {exc}", flush=True)
            continue
        both = torch.isfinite(eager.ys) & torch.isfinite(fused.ys)
        span = eager.ys.abs().amax(1, keepdim=True).clamp_min(1e-12)
        diff = float(((fused.ys - eager.ys).abs() / span)[both].max()) if bool(both.any()) else 0.0
        row = {"model": path.stem, "eager_s": t_eager, "fused_first_call_s": t_fused, "max_diff_of_range": diff,
               "nan_match": bool((eager.ys.isnan() == fused.ys.isnan()).all()), "fused_ok": fused.ok}
        rows.append(row)
        print(f"  fused {path.stem}: eager {t_eager:.2f} s, fused first call {t_fused:.1f} s, max diff "
              f"{diff:.1e} of range, NaN match {row['nan_match']}, all samples ok {fused.ok}", flush=True)
    return rows


def _table(results: dict[str, Any]) -> str:
    lines = []
    for key in ("load", "simulate", "ensemble"):
        for row in results.get(key, []):
            if "error" in row:
                lines.append(f"{key} {row['model']}: FAILED {row['error'][:120]}")
    if any("ratio" in row for row in results.get("load", [])):
        r = [row["ratio"] for row in results["load"] if "ratio" in row]
        rj = [row["ratio_with_jacobian"] for row in results["load"] if "ratio" in row]
        lines.append(f"(a) load+compile, neuroplex / roadrunner: median ratio {statistics.median(r):.2f} "
                     f"(min {min(r):.2f}, max {max(r):.2f}) over {len(r)} models; with the stiff models' "
                     f"symbolic Jacobian: median {statistics.median(rj):.2f} (max {max(rj):.2f})")
    if any("ratio" in row for row in results.get("simulate", [])):
        r = [row["ratio"] for row in results["simulate"] if "ratio" in row]
        lines.append(f"(b) one simulation, torch / roadrunner time: median ratio {statistics.median(r):.1f} "
                     f"(min {min(r):.1f}, max {max(r):.1f}) over {len(r)} models")
    for row in results.get("ensemble", []):
        if "error" in row:
            continue
        for key, _ in ENSEMBLE_PATHS:
            if isinstance(row.get(key), dict):
                r = row[key]
                lines.append(f"(c) {row['model']} x{row['samples']}, {row['workers']} processes, {key} ({r['cold_path']} "
                             f"cold, {r['path']} warm): end to end cold {r['cold_end_to_end_s']:.2f} s = "
                             f"{r['speedup_cold_end_to_end']:.2f}x roadrunner's {row['roadrunner_end_to_end_s']:.2f} s, "
                             f"warm {r['speedup_warm_end_to_end']:.2f}x, run-only {r['speedup_run_only']:.1f}x")
    checked = [row for row in results.get("fused_check", []) if "error" not in row]
    if checked:
        worst = max(checked, key=lambda row: row["max_diff_of_range"])
        failed = len(results["fused_check"]) - len(checked)
        lines.append(f"fused vs eager steps: {len(checked)} models, largest difference "
                     f"{worst['max_diff_of_range']:.1e} of range ({worst['model']}), NaN patterns match on "
                     f"{sum(row['nan_match'] for row in checked)}, {failed} failed")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="all", help="'all' or comma-separated ids for (a) and (b)")
    ap.add_argument("--ensemble", type=int, default=10_000, help="parameter sets for (c)")
    ap.add_argument("--rr-samples", type=int, default=10_000, help="roadrunner sets actually run in (c)")
    ap.add_argument("--rtol", type=float, default=1e-6)
    ap.add_argument("--atol", type=float, default=1e-9)
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("--skip-sim", action="store_true")
    ap.add_argument("--skip-ensemble", action="store_true")
    ap.add_argument("--fused-check", action="store_true",
                    help="also compare fused with eager steps on every selected model (compiles each)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes of the ensembles in (c)")
    ap.add_argument("--paths", default=",".join(DEFAULT_PATHS),
                    help="ensemble paths timed in (c): " + ", ".join(key for key, _ in ENSEMBLE_PATHS))
    ap.add_argument("--ensemble-models", default=",".join(ENSEMBLE_MODELS), help="models of (c)")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--ensemble-child"]:
        return _ensemble_child(argv[1:])
    args = ap.parse_args(argv)
    set_threads(1)
    folder = data_dir() / "biomodels"
    if not folder.is_dir():
        print(f"shared data missing: {folder} (set NEUROPLEX_DATA)", file=sys.stderr)
        return 2
    paths = sorted(folder.glob("BIOMD*.xml"))
    if args.models != "all":
        wanted = {m.strip() for m in args.models.split(",")}
        paths = [p for p in paths if p.stem in wanted]
    results: dict[str, Any] = {"rtol": args.rtol, "atol": args.atol, "torch": torch.__version__,
                               "roadrunner": _rr().__version__}
    if not args.skip_load:
        print("(a) load/compile", flush=True)
        results["load"] = bench_load(paths)
    if not args.skip_sim:
        print("(b) one simulation, 0..100, 1000 points", flush=True)
        results["simulate"] = bench_simulate(paths, args.rtol, args.atol)
    if not args.skip_ensemble:
        print(f"(c) ensembles of {args.ensemble} parameter sets", flush=True)
        results["ensemble"] = []
        for m in args.ensemble_models.split(","):
            try:
                results["ensemble"].append(bench_ensemble(folder / f"{m}.xml", args.ensemble, args.rr_samples,
                                                          args.rtol, args.atol, args.workers,
                                                          args.paths.split(",")))
            except Exception as exc:  # noqa: BLE001 - reported, not hidden
                print(f"  ensemble {m}: failed: {exc}", flush=True)
                results["ensemble"].append({"model": m, "error": f"{type(exc).__name__}: {exc}"})
    if args.fused_check:
        print("fused steps vs eager steps, 80 parameter sets, auto, 0..5", flush=True)
        results["fused_check"] = bench_fused_agreement(paths)
    print(_table(results))
    if args.out is not None:
        print(f"wrote {write_json(results, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
