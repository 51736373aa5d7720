"""How faithfully an imported DS reproduces its SBML model: DS trajectories against
roadrunner on the original file, against expected results (the SBML Test Suite), and the DS
exported to SBML and read back."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

import neuroplex
from neuroplex.errors import ModelError, NeuroplexError
from neuroplex.sbml import read_sbml_string, write_sbml

from .dynamics import EPLDynamics, MassActionDynamics
from .sbml_export import to_reaction_ir, to_sbml
from .sbml_import import ImportReport, from_sbml
from .system import EnergySystem


#: largest system (nodes + reactions) that ``solver="auto"`` runs on the native solver
NATIVE_MAX_SIZE = 200


def integrate_nodes(system: EnergySystem, t_eval: torch.Tensor, *, solver: str = "auto",
                    **options: object) -> torch.Tensor:
    """x(t) of every node at ``t_eval`` (from t = 0), ``(T, n)``, atol 1e-14 x the
    largest free initial amount (amounts may be tiny: a 4e-12 l compartment; a fuel node held at 1
    must not set the scale). A system with a chemical potential alone (every import) runs

    * ``solver="native"``: as its SBML export (:func:`.sbml_export.to_sbml`, the same mass-action
      kinetics) on the compiled C solver through ``neuroplex.simulate(..., solver="native")``:
      no Python in the step loop, rtol 1e-10 (cheap there: BIOMD0000000040 over 0..100 in 0.07 s,
      3.5e-7 from a tight roadrunner run; at rtol 1e-8 its error was 9.2e-5; 035: 0.5 s against 50 s
      on torch);
    * ``solver="torch"``: as :class:`.dynamics.MassActionDynamics` (free nodes, exact Jacobian),
      rosenbrock at rtol 1e-8, dopri5 as a second try;
    * ``"auto"`` (default): native for systems of up to ``NATIVE_MAX_SIZE`` nodes + reactions
      (where a C compiler is found and the run succeeds), else torch: writing, reading and
      compiling the export costs more than the torch run for large ones (BIOMD0000000183, 419 + 352:
      15 s warm / 79 s cold native against 11 s on torch; 035, 26 + 16: 0.5 s against 50 s).

    Other systems run as the full :class:`.dynamics.EPLDynamics` on torch. ``options`` go to
    ``neuroplex.simulate``."""
    moving = system.free > 0
    scale = float(system.x0[moving].abs().max()) if bool(moving.any()) else float(system.x0.abs().max())
    opts = {"atol": 1e-14 * max(scale, 1e-300), "max_steps": 1_000_000, **options}
    t = torch.as_tensor(t_eval, dtype=torch.float64)
    try:
        dyn: MassActionDynamics | EPLDynamics = MassActionDynamics(system)
    except ModelError:
        dyn = EPLDynamics(system)
    small = system.n + system.e <= NATIVE_MAX_SIZE
    if isinstance(dyn, MassActionDynamics) and (solver == "native" or solver == "auto" and small):
        try:
            return _native_nodes(system, t, {"rtol": 1e-10, **opts})
        except NeuroplexError:
            if solver == "native":
                raise
    status: list[int] = []
    for method in ("rosenbrock", "dopri5"):
        sol = neuroplex.simulate(dyn, (0.0, float(t[-1])), y0=dyn.initial_state(), params=dyn.default_params(),
                                 t_eval=t, **{"method": method, "rtol": 1e-8, **opts})
        status = sol.status.tolist()
        if all(s == 0 for s in status):
            y = sol.ys[0]
            return dyn.full_state(y) if isinstance(dyn, MassActionDynamics) else y[:, :system.n]
    raise neuroplex.SolverError(f"the DS integration failed (status {status})")


def _native_nodes(system: EnergySystem, t: torch.Tensor, opts: dict[str, object]) -> torch.Tensor:
    """x(t) of every node from the system's SBML export on the native (C) solver."""
    ir = to_reaction_ir(system)
    model = read_sbml_string(write_sbml(ir))
    sol = neuroplex.simulate(model, (0.0, float(t[-1])), solver="native", t_eval=t, **opts)
    if not bool((sol.status == 0).all()):
        raise neuroplex.SolverError(f"native solver: status {sol.status.tolist()}")
    names = list(sol.names)
    return sol.ys[0][:, [names.index(sid) for sid in ir.state_names]].to(torch.float64)


def ds_values(system: EnergySystem, report: ImportReport, t1: float, n_points: int, *, solver: str = "auto",
              **options: object) -> torch.Tensor:
    """The DS trajectory as SBML values (concentrations where the SBML species are), ``(T, species)``."""
    x = integrate_nodes(system, torch.linspace(0.0, t1, n_points, dtype=torch.float64), solver=solver, **options)
    size = torch.tensor([report.to_sbml_value[s] for s in report.species], dtype=x.dtype)
    return x / size


def species_values(system: EnergySystem, report: ImportReport, times: torch.Tensor,
                   quantities: dict[str, str | None], *, solver: str = "auto",
                   **options: object) -> dict[str, torch.Tensor]:
    """The DS trajectory at ``times`` (from t = 0) for the SBML species among ``quantities``
    (``{species id: "amount" | "concentration" | None}``, None: the quantity the file declares),
    ``{id: (T,)}``; ids that are not nodes of the DS (constant species, parameters) are left out."""
    x = integrate_nodes(system, torch.as_tensor(times, dtype=torch.float64), solver=solver, **options)
    out = {}
    for sid, q in quantities.items():
        if sid not in report.species or sid in report.fuel:
            continue
        div = {"amount": 1.0, "concentration": report.compartment_size[sid]}.get(q or "", report.to_sbml_value[sid])
        out[sid] = x[:, report.species.index(sid)] / div
    return out


def compare_with_roadrunner(path: str | Path, system: EnergySystem, report: ImportReport, *, t1: float = 100.0,
                            n_points: int = 101, rtol: float = 1e-3, solver: str = "auto",
                            reference_tolerances: tuple[float, float] | None = None) -> dict[str, Any]:
    """Max error of the DS against roadrunner on the original file over ``(0, t1)``: a species
    agrees when |ds - rr| <= rtol (|rr| + 1e-3 max|rr of that species|) at every output time.
    ``ds_s`` / ``roadrunner_s``: seconds of each run (roadrunner's includes loading the file);
    ``solver``: as :func:`integrate_nodes`; ``reference_tolerances``: roadrunner's (rtol, atol)
    instead of its defaults."""
    t0 = time.perf_counter()
    tight = {} if reference_tolerances is None else dict(zip(("rtol", "atol"), reference_tolerances))
    ref = neuroplex.simulate(str(path), (0.0, t1), solver="roadrunner", n_points=n_points, **tight)
    t_rr = time.perf_counter() - t0
    names = list(ref.names)
    t0 = time.perf_counter()
    ds = ds_values(system, report, t1, n_points, solver=solver)
    t_ds = time.perf_counter() - t0
    worst, worst_sp = 0.0, ""
    for i, sid in enumerate(report.species):
        if sid in report.fuel:
            continue  # not in the SBML model
        rr = ref.ys[0, :, names.index(sid)]
        scale = rr.abs() + 1e-3 * float(rr.abs().max())
        err = float(((ds[:, i] - rr).abs() / scale.clamp_min(1e-300)).max())
        if err > worst:
            worst, worst_sp = err, sid
    return {"max_rel_error": worst, "species": worst_sp, "ok": worst <= rtol, "t1": t1, "ds_s": t_ds,
            "roadrunner_s": t_rr}


def _species_error(got: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per species max |got - ref| / (|ref| + 1e-3 max|ref of that species|) over time, ``(species,)``."""
    scale = ref.abs() + 1e-3 * ref.abs().amax(0, keepdim=True)
    return ((got - ref).abs() / scale.clamp_min(1e-300)).amax(0)


def export_roundtrip(system: EnergySystem, report: ImportReport, path: str | Path, *, t1: float = 100.0,
                     n_points: int = 101, solver: str = "auto") -> dict[str, Any]:
    """Write the DS as SBML reactions (:func:`.sbml_export.to_sbml`), import that file again with
    :func:`.sbml_import.from_sbml` and run both DS: ``relative`` is the largest per-species error
    of the re-imported trajectory (amounts; error as in :func:`compare_with_roadrunner`).
    ``solver``: as :func:`integrate_nodes`."""
    to_sbml(system, path, name=f"{report.model}_epl")
    back, back_report = from_sbml(path)
    ds = ds_values(system, report, t1, n_points, solver=solver) * torch.tensor(
        [report.to_sbml_value[s] for s in report.species])
    again = ds_values(back, back_report, t1, n_points, solver=solver)
    sids = to_reaction_ir(system).state_names
    idx = [back_report.species.index(s) for s in sids]
    err = _species_error(again[:, idx], ds)
    worst = int(err.argmax())
    return {"relative": float(err[worst]), "species": report.species[worst], "path": str(path),
            "approximations_again": len(back_report.approximations)}
