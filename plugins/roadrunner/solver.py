"""``roadrunner`` solver: libroadrunner runs the model's SBML file, the reference for comparisons.

The model is the SBML file named by ``ir.metadata["source"]`` (SBML, or Antimony converted
with antimony); an IR built in Python is first written to SBML with
:func:`neuroplex.sbml.writer.write_sbml`. Output names are the IR's (states, then observables),
so a roadrunner :class:`~neuroplex.solution.Solution` lines up with the torch solver's:
each name becomes a roadrunner selection (``[S]`` for a species the IR reports as a
concentration, ``S`` otherwise). A batch of parameter sets runs as a loop: ``resetAll()``, set
the changed values (``init(p)`` where initial values depend on ``p``), simulate. libroadrunner is imported lazily, so the
package works without it.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch

from neuroplex.batching import batch_size
from neuroplex.dynamics import Dynamics
from neuroplex.errors import ModelError, NeuroplexError
from neuroplex.features import check_placement
from neuroplex.ir import ModelIR
from neuroplex.progress import progress_bar
from neuroplex.sbml import changes, write_sbml
from neuroplex.solution import Solution, Status
from neuroplex.solver import Solver

INTEGRATORS = ("cvode", "rk45", "rk4", "euler")


def import_roadrunner() -> Any:
    """The ``roadrunner`` module, or a clear error naming the optional dependency."""
    try:
        import roadrunner
    except ImportError as exc:
        raise NeuroplexError("the roadrunner solver needs libroadrunner: pip install 'neuroplex[sbml]'") from exc
    return roadrunner


def sbml_text(model: ModelIR) -> str:
    """SBML for ``model``: its source file (SBML or Antimony), the SBML text it was read
    from, or the writer's output."""
    if model.metadata.get("sbml_flattened"):  # a comp model, flattened by libsbml
        return str(model.metadata["sbml_flattened"])
    source = model.metadata.get("source")
    if source:
        path = Path(source)
        if not path.exists():
            raise NeuroplexError(f"{path}: the model's source file no longer exists")
        if path.suffix.lower() in (".ant", ".antimony", ".txt"):
            return antimony_to_sbml(path)
        return path.read_text(encoding="utf-8")
    if model.metadata.get("sbml_text"):  # read from a string
        return str(model.metadata["sbml_text"])
    return write_sbml(model)


def antimony_to_sbml(path: Path) -> str:
    """Convert an Antimony file to SBML with the antimony library."""
    try:
        import antimony
    except ImportError as exc:
        raise NeuroplexError("Antimony models need antimony: pip install 'neuroplex[sbml]'") from exc
    antimony.clearPreviousLoads()
    if antimony.loadAntimonyString(path.read_text(encoding="utf-8")) < 0:
        raise ModelError(f"{path}: {antimony.getLastError().strip()}")
    return antimony.getSBMLString(antimony.getMainModuleName())


class RoadRunnerModel:
    """A loaded roadrunner instance plus the mapping from IR names to roadrunner selections."""

    def __init__(self, model: ModelIR, sbml: str | None = None):
        rr_mod = import_roadrunner()
        self.ir = model
        #: the SBML is the model's own file (not the writer's output of the IR as it is now)
        self.sbml_from_file = sbml is None
        self.sbml = sbml if sbml is not None else sbml_text(model)
        try:
            self.rr = rr_mod.RoadRunner(self.sbml)
        except RuntimeError as exc:
            raise ModelError(f"roadrunner cannot load model {model.name!r}: {str(exc).strip().splitlines()[0]}") from exc
        m = self.rr.model
        self.species = set(m.getFloatingSpeciesIds()) | set(m.getBoundarySpeciesIds())
        self.settable = set(m.getGlobalParameterIds()) | set(m.getCompartmentIds()) | self.species
        self.reactions = set(m.getReactionIds())
        self.concentration = concentration_species(model, self.species)
        info = (model.metadata.get("sbml") or {}).get("species") or {}
        # internal amount states of concentration species read as the species' amount
        self.amount_alias = {v["amount_state"]: sid for sid, v in info.items()
                             if v.get("amount_state") and v["amount_state"] != sid and sid in self.species}
        if hasattr(model, "default_outputs"):  # SBML models report SBML ids, as the torch side does
            names = list(model.default_outputs())
        else:
            names = [*model.state_names, *model.assignments]
        self.names = [n for n in names if self.selectable(n)]
        self.selections = [self.selection(n) for n in self.names]
        self.rr.timeCourseSelections = ["time", *self.selections]
        self.init_deps = initial_dependencies(model)
        self._current: dict[str, float] = {}
        self._original: dict[str, float] = {}

    def selectable(self, name: str) -> bool:
        """Whether roadrunner can report ``name`` (a species, parameter, compartment or reaction)."""
        return name in self.settable or name in self.reactions or name in self.amount_alias

    def selection(self, name: str) -> str:
        if name in self.amount_alias:
            return self.amount_alias[name]
        return f"[{name}]" if name in self.concentration else name

    def init_selection(self, name: str) -> str:
        """The ``init(...)`` selection that sets the initial value of an IR state or parameter."""
        if name in self.amount_alias:
            return f"init({self.amount_alias[name]})"
        return f"init([{name}])" if name in self.concentration else f"init({name})"

    def configure(self, integrator: str, rtol: float, atol: float, stiff: bool, max_steps: int | None,
                  max_step: float | None) -> None:
        rr = self.rr
        rr.setIntegrator(integrator)
        integ = rr.getIntegrator()
        settings = set(integ.getSettings())
        if "relative_tolerance" in settings:
            integ.setValue("relative_tolerance", float(rtol))
        if "absolute_tolerance" in settings:
            integ.setValue("absolute_tolerance", float(atol))
        if "stiff" in settings:
            integ.setValue("stiff", bool(stiff))
        if max_steps is not None and "maximum_num_steps" in settings:
            integ.setValue("maximum_num_steps", int(max_steps))
        if max_step is not None and "maximum_time_step" in settings:
            integ.setValue("maximum_time_step", float(max_step))

    def set_initial(self, values: dict[str, float]) -> None:
        """Set ``init(x)`` values (restoring the file's own values for keys a previous call set
        but this one does not), then ``resetAll()``; other keys (initial states) are set as
        current values after the reset."""
        inits = {k: v for k, v in values.items() if k.startswith("init(")}
        for key in [k for k in self._current if k not in inits]:
            self.rr.setValue(key, self._original[key])
            del self._current[key]
        for key, value in inits.items():
            if self._current.get(key) != value:
                if key not in self._original:
                    self._original[key] = float(self.rr.getValue(key))
                self.rr.setValue(key, float(value))
                self._current[key] = value
        self.rr.resetAll()
        for key, value in values.items():
            if key not in inits:
                self.rr.setValue(key, float(value))

    def run(self, times: np.ndarray) -> np.ndarray:
        out = self.rr.simulate(times=[float(t) for t in times], selections=["time", *self.selections])
        return np.asarray(out)[:, 1:]


def initial_dependencies(model: ModelIR) -> set[str]:
    """Parameters that initial values depend on (directly or through assignments).

    Only these need ``init(p)`` (which makes roadrunner recompute initial assignments, and can
    cost seconds per call); any other parameter is set as a current value after the reset."""
    out: set[str] = set()
    stack = [s.name for st in model.states for s in getattr(st.initial, "free_symbols", ())]
    seen: set[str] = set()
    params = set(model.parameter_names)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in params:
            out.add(name)
        elif name in model.assignments:
            stack.extend(s.name for s in getattr(model.assignments[name], "free_symbols", ()))
    return out


def concentration_species(model: ModelIR, species: set[str]) -> set[str]:
    """Species ids that the IR (the torch side) reports as concentrations.

    The SBML reader records each species' SBML value in
    ``metadata["sbml"]["species"][id]["quantity"]`` (``"amount"`` or ``"concentration"``); a
    species read as an amount is selected by id, all other species as ``[id]``.
    """
    info = (model.metadata.get("sbml") or {}).get("species") or {}
    return {s for s in species if (info.get(s) or {}).get("quantity", "concentration") == "concentration"}


class RoadRunnerSolver(Solver):
    """libroadrunner (CVODE by default): runs the model's SBML file, the SBML reference."""

    name: ClassVar[str] = "roadrunner"
    capabilities: ClassVar[frozenset[str]] = frozenset({"simulate"})
    accepts: ClassVar[frozenset[str]] = frozenset({"ir", "sbml", "dynamics"})
    #: events (SBML ``<event>``s, libroadrunner applies them; no spike train is recorded); no
    #: refractory periods (SBML cannot state one)
    supports: ClassVar[frozenset[str]] = frozenset({"events"})
    devices: ClassVar[frozenset[str]] = frozenset({"cpu"})
    dtypes: ClassVar[frozenset[str]] = frozenset({"float64"})
    methods: ClassVar[Sequence[str]] = INTEGRATORS

    def __init__(self, integrator: str = "cvode", rtol: float = 1e-8, atol: float = 1e-12, stiff: bool = True,
                 max_steps: int | None = 100_000, max_step: float | None = None, method: str | None = None,
                 device: Any = None, dtype: str | torch.dtype | None = None):
        choice = (method or integrator).lower()
        if choice not in INTEGRATORS:
            raise NeuroplexError(f"roadrunner solver: unknown integrator {choice!r} (integrators: {', '.join(INTEGRATORS)})")
        check_placement(self, device, dtype)
        self.integrator = choice
        self.rtol, self.atol, self.stiff = float(rtol), float(atol), bool(stiff)
        self.max_steps, self.max_step = max_steps, max_step
        self._cache: dict[int, RoadRunnerModel] = {}

    def load(self, model: ModelIR) -> RoadRunnerModel:
        """A configured :class:`RoadRunnerModel` for ``model`` (cached per IR object)."""
        key = id(model)
        rm = self._cache.get(key)
        # initial values changed since the file was read: run the IR as written now
        rewrite = bool(changes(model)[1])
        if rm is None or rm.ir is not model or (rewrite and rm.sbml_from_file):
            rm = RoadRunnerModel(model, sbml=write_sbml(model) if rewrite else None)
            rm.configure(self.integrator, self.rtol, self.atol, self.stiff, self.max_steps, self.max_step)
            self._cache = {key: rm}
        return rm

    def simulate(self, model: Any, t_span: tuple[float, float], *, y0: torch.Tensor | None = None,
                 params: torch.Tensor | None = None, t_eval: torch.Tensor | None = None,
                 inputs: torch.Tensor | None = None, progress: bool = False) -> Solution:
        if isinstance(model, Dynamics) or not isinstance(model, ModelIR):
            raise ModelError(f"the roadrunner solver needs an SBML/Antimony file or a ModelIR, not {type(model).__name__}")
        if inputs is not None or model.inputs:
            raise ModelError(f"model {model.name!r}: the roadrunner solver does not take external inputs")
        t0, t1 = float(t_span[0]), float(t_span[1])
        ts = (torch.tensor([t0, t1], dtype=torch.float64) if t_eval is None
              else torch.as_tensor(t_eval, dtype=torch.float64).flatten())
        times = ts.numpy()
        if times[0] != t0:
            times = np.concatenate([[t0], times])
        rm = self.load(model)
        rm, samples = self._samples(model, rm, params, y0)
        ys = torch.full((len(samples), ts.numel(), len(rm.names)), math.nan, dtype=torch.float64)
        status = torch.zeros(len(samples), dtype=torch.long)
        errors: dict[int, str] = {}
        for b in progress_bar(range(len(samples)), desc="roadrunner", unit="sample",
                              enabled=progress and len(samples) > 1):
            try:
                rm.set_initial(samples[b])
                out = rm.run(times)
            except RuntimeError as exc:
                status[b] = Status.FAILED
                errors[b] = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                continue
            ys[b] = torch.from_numpy(out[-ts.numel():])
            if not np.isfinite(out).all():
                status[b] = Status.NONFINITE
        meta = {"model": model.name, "rtol": self.rtol, "atol": self.atol, "selections": list(rm.selections)}
        if errors:
            meta["errors"] = errors
        return Solution(ys=ys, ts=ts, names=list(rm.names), status=status, stats={}, solver=self.name,
                        method=self.integrator, meta=meta)

    def _samples(self, model: ModelIR, rm: RoadRunnerModel, params: torch.Tensor | None,
                 y0: torch.Tensor | None) -> tuple[RoadRunnerModel, list[dict[str, float]]]:
        """Per sample, the values to set: ``init(p)`` for parameters that initial values depend
        on, the current value (set after the reset) for other parameters and for ``y0``."""
        p = None if params is None else torch.as_tensor(params, dtype=torch.float64)
        y = None if y0 is None else torch.as_tensor(y0, dtype=torch.float64)
        batch = batch_size(params=p, y0=y)  # the one rule (neuroplex.batching)
        columns: dict[str, np.ndarray] = {}
        # the values the loaded SBML holds: the file's (which the model may have changed since)
        declared = changes(model)[0] if rm.sbml_from_file else {}
        defaults = np.array([declared.get(prm.name, prm.value) for prm in model.parameters], dtype=np.float64)
        if p is None and declared:
            p = torch.tensor([prm.value for prm in model.parameters], dtype=torch.float64)
        if p is not None:
            names = model.parameter_names
            if p.shape[-1] != len(names):
                raise NeuroplexError(f"params has {p.shape[-1]} values per sample; model {model.name!r} has {len(names)} parameters")
            pb = p.expand(batch, -1).numpy()
            changed = np.flatnonzero((pb != defaults[None, :]).any(axis=0))
            bad = [names[i] for i in changed if names[i] not in rm.settable]
            if bad:
                rm = self._rewrite(model, bad)
            for i in changed:
                key = rm.init_selection(names[i]) if names[i] in rm.init_deps else rm.selection(names[i])
                columns[key] = pb[:, i]
        if y is not None:
            names = model.state_names
            if y.shape[-1] != len(names):
                raise NeuroplexError(f"y0 has {y.shape[-1]} values per sample; model {model.name!r} has {len(names)} states")
            yb = y.expand(batch, -1).numpy()
            bad = [n for n in names if n not in rm.settable and n not in rm.amount_alias]
            if bad:
                raise ModelError(f"model {model.name!r}: roadrunner cannot set the initial value of {', '.join(bad[:5])}")
            for i, n in enumerate(names):
                columns[rm.selection(n)] = yb[:, i]
        return rm, [{k: float(v[b]) for k, v in columns.items()} for b in range(batch)]

    def _rewrite(self, model: ModelIR, bad: list[str]) -> RoadRunnerModel:
        """Reload from the writer's SBML, where every IR parameter is a global parameter
        (local parameters of the source file cannot be set in roadrunner)."""
        rm = RoadRunnerModel(model, sbml=write_sbml(model))
        rm.configure(self.integrator, self.rtol, self.atol, self.stiff, self.max_steps, self.max_step)
        still = [n for n in bad if n not in rm.settable]
        if still:
            raise ModelError(f"model {model.name!r}: roadrunner cannot set parameter(s) {', '.join(still[:5])}")
        self._cache = {id(model): rm}
        return rm
