"""Try every BioModel in the shared data through ``neuroplex.plugins.epl.from_sbml``: importable
ones are compared with roadrunner over 0..100 (rtol 1e-3) and (``--export``) exported to SBML
reactions, imported again and run (and the exported file run by roadrunner);
the others are listed with the reason. Prints a markdown table.

    OMP_NUM_THREADS=1 python benchmarks/epl_biomodels.py [--export] [--solver auto|native|torch] [--t1 100] [--tight] [IDS...]
"""
from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

from neuroplex.config import data_dir
from neuroplex.plugins.epl import EPLImportError, from_sbml
from neuroplex.plugins.epl.fidelity import compare_with_roadrunner, export_roundtrip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("ids", nargs="*")
    ap.add_argument("--export", action="store_true", help="also export to SBML and read back")
    ap.add_argument("--solver", default="auto", choices=["auto", "native", "torch"],
                    help="how the DS runs (fidelity.integrate_nodes)")
    ap.add_argument("--t1", type=float, default=100.0, help="span 0..t1")
    ap.add_argument("--tight", action="store_true", help="roadrunner at rtol 1e-10, atol 1e-18 (not its defaults)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    files = sorted((Path(data_dir()) / "biomodels").glob("*.xml"))
    if args.ids:
        files = [f for f in files if any(i in f.stem for i in args.ids)]
    print("| model | imported | nodes / reactions | approximations | consistent | max rel. error vs roadrunner | within 1e-3 | export re-imported (rel.); roadrunner on the export | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            t = time.time()
            try:
                system, rep = from_sbml(f)
            except EPLImportError as exc:
                print(f"| {f.stem} | no: {str(exc).split(': ', 1)[-1][:160]} | | | | | | | {time.time() - t:.1f} |", flush=True)
                continue
            kinds = {}
            for r in rep.approximations:
                key = r["approximation"].split(":")[0]
                kinds[key] = kinds.get(key, 0) + 1
            approx = ", ".join(f"{v} {k}" for k, v in kinds.items()) or "none"
            try:
                cmp = compare_with_roadrunner(f, system, rep, t1=args.t1, solver=args.solver,
                                              reference_tolerances=(1e-10, 1e-18) if args.tight else None)
                err, ok = f"{cmp['max_rel_error']:.2g} ({cmp['species']})", "yes" if cmp["ok"] else "no"
                err += f"; DS run {cmp['ds_s']:.1f} s, roadrunner {cmp['roadrunner_s']:.1f} s"
            except Exception as exc:  # noqa: BLE001 - reported in the table
                err, ok = f"run failed: {type(exc).__name__}: {str(exc)[:80]}", "no"
            rt = ""
            if args.export:
                try:
                    out = Path(tmp) / f"{f.stem}.xml"
                    rt = f"{export_roundtrip(system, rep, out, t1=args.t1, solver=args.solver)['relative']:.2g}"
                    back, back_rep = from_sbml(out)  # the exported file in roadrunner against its DS
                    rt += f"; roadrunner on it {compare_with_roadrunner(out, back, back_rep, t1=args.t1, solver=args.solver)['max_rel_error']:.2g}"
                except Exception as exc:  # noqa: BLE001
                    rt = f"failed: {type(exc).__name__}"
            print(f"| {f.stem} | yes | {system.n} / {system.e} | {approx} | {rep.consistent} | {err} | {ok} | {rt} | "
                  f"{time.time() - t:.1f} |", flush=True)


if __name__ == "__main__":
    main()
