"""The scripting front doors: :func:`load_model`, :func:`simulate`, :func:`equilibrate`."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from .cli_solver import check_declared
from .dynamics import Dynamics
from .ensembles import run_sharded
from .errors import ModelError, NeuroplexError, SolverError, UnknownNameError
from .executors import Executor, get_executor
from .features import check_placement
from .host import get_host
from .inputs import InputValue, resolve_inputs
from .ir import ModelIR
from .kinds import Model, has_kind
from .runners import check_accepts, route
from .solution import Solution
from .solver import Solver


@dataclass(frozen=True)
class Importer:
    """Reads model files of some suffixes into a :class:`ModelIR`."""

    name: str
    suffixes: tuple[str, ...]
    load: Callable[[Path], ModelIR]
    description: str = ""


def shipped_models() -> dict[str, Path]:
    """Model files shipped in ``neuroplex.models`` by stem (e.g. ``"repressilator"``)."""
    root = resources.files("neuroplex.models")
    out: dict[str, Path] = {}
    for entry in root.iterdir():
        name = entry.name
        if name.startswith(("_", ".")) or name.endswith((".py", ".md", ".pyc")) or not entry.is_file():
            continue
        out.setdefault(name.split(".")[0], Path(str(entry)))
    return out


def find_importer(path: Path) -> Importer:
    """The registered importer for a file's suffix."""
    host = get_host()
    suffix = "".join(path.suffixes[-1:]).lower()
    for name in host.names("importers"):
        importer = host.get("importers", name).obj
        if suffix in importer.suffixes:
            return importer
    known = sorted({s for n in host.names("importers") for s in host.get("importers", n).obj.suffixes})
    raise NeuroplexError(f"{path}: no importer reads {suffix or 'files without a suffix'!r} files "
                         f"(importers know: {', '.join(known) or 'none'})")


def load_model(source: Any, **params: float) -> ModelIR | Dynamics:
    """A model from a file (importer by suffix), a shipped model name, a registered neuron
    name, a :class:`ModelIR` or a :class:`Dynamics`. Keyword arguments set parameters."""
    if isinstance(source, (ModelIR, Dynamics)):
        model = source
    elif has_kind(source):  # another model kind (a spiking Network, ...): solvers take it as is
        if params:
            raise ModelError(f"parameters can only be set on IR models, not on a {type(source).__name__}")
        return source
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.exists():
            model = find_importer(path).load(path)
        else:
            shipped = shipped_models()
            if str(source) in shipped:
                return load_model(shipped[str(source)], **params)
            try:
                factory = get_host().get("neurons", str(source)).obj
            except UnknownNameError:
                raise NeuroplexError(
                    f"{source}: no such file, shipped model or neuron (shipped: {', '.join(sorted(shipped)) or 'none'}; "
                    f"neurons: {', '.join(get_host().names('neurons')) or 'none'})") from None
            return factory(**params)
    else:
        raise ModelError(f"cannot make a model from {type(source).__name__}")
    if params:
        if not isinstance(model, ModelIR):
            raise ModelError("parameters can only be set on IR models")
        model = model.with_parameters(**params)
    return model


def make_solver(solver: str | Solver, capability: str, model: Model | None = None, **options: Any) -> Solver:
    """A solver instance from a registered name (constructor options apply) or an instance;
    with ``model``, an error naming both unless the solver (or a runner registered for it,
    :mod:`neuroplex.runners`) takes the model's kind."""
    if isinstance(solver, Solver):
        if options:
            raise NeuroplexError("solver options go to the solver's constructor when passing an instance")
        instance = solver
    else:
        entry = get_host().get("solvers", solver)
        cls = entry.obj
        check_declared(entry, options)  # a setting the solver does not declare, named with what it takes
        check_placement(cls, options.get("device"), options.get("dtype"))
        try:
            instance = cls(**options)
        except TypeError as exc:
            raise NeuroplexError(f"solver {solver!r}: {exc}") from None
    if capability not in instance.capabilities:
        raise NeuroplexError(f"solver {instance.name!r} cannot {capability} (it can: {', '.join(sorted(instance.capabilities))})")
    if model is not None:
        if capability == "simulate":
            route(model, instance)
        else:
            check_accepts(model, instance)
    return instance


def by_name(model: Any, params: Any, initial: Mapping[str, Any] | None) -> tuple[Any, torch.Tensor | None]:
    """``(model, params)`` with values given by name resolved: ``params`` as a dict
    ``{id: number or 1-D array}``, ``initial`` as a dict of initial values; the model's own
    ``resolve_values`` does it (SBML models: ids as the file declares them, see
    :mod:`neuroplex.sbml.values`). Tensor forms pass through unchanged."""
    if not isinstance(params, Mapping) and not initial:
        return model, params
    resolve = getattr(model, "resolve_values", None)
    if resolve is None:
        raise NeuroplexError(f"model {getattr(model, 'name', model)!r}: values by name (a params dict, initial=) "
                             f"need a model that resolves its ids (SBML models do); use the tensor forms")
    return resolve(params, initial)


def check_times(t0: float, t1: float, t_eval: torch.Tensor | None) -> None:
    """Refuse a span or output times no solver can honour: a span that is not finite or runs
    backward, output times that are not finite, not in ascending order or outside the span
    (solvers would otherwise report NaN there with a successful status)."""
    if not (math.isfinite(t0) and math.isfinite(t1)):
        raise NeuroplexError(f"t_span ({t0}, {t1}) must be finite")
    if t1 < t0:
        raise NeuroplexError(f"t_span ({t0}, {t1}) runs backward: give (t0, t1) with t1 >= t0")
    if t_eval is None:
        return
    te = t_eval.detach().flatten().double().cpu()
    if not bool(torch.isfinite(te).all()):
        raise NeuroplexError(f"t_eval has {int((~torch.isfinite(te)).sum())} value(s) that are not finite numbers")
    if bool((te[1:] < te[:-1]).any()):
        i = int(torch.nonzero(te[1:] < te[:-1])[0])
        raise SolverError(f"t_eval must be increasing (ascending order): t_eval[{i}] = {float(te[i])} comes before "
                             f"t_eval[{i + 1}] = {float(te[i + 1])}")
    outside = (te < t0) | (te > t1)
    if bool(outside.any()):
        i = int(torch.nonzero(outside)[0])
        raise NeuroplexError(f"t_eval[{i}] = {float(te[i])} lies outside t_span ({t0}, {t1}) "
                             f"({int(outside.sum())} output time(s) outside): widen t_span or drop those times")


def simulate(
    model: Any,
    t_span: tuple[float, float] | float,
    *,
    solver: str | Solver = "torch",
    y0: torch.Tensor | None = None,
    params: torch.Tensor | Mapping[str, Any] | None = None,
    initial: Mapping[str, Any] | None = None,
    t_eval: torch.Tensor | Sequence[float] | None = None,
    n_points: int | None = None,
    inputs: torch.Tensor | Mapping[str, InputValue] | None = None,
    throw: bool = False,
    progress: bool = False,
    executor: str | Executor = "local",
    address: str | None = None,
    **solver_options: Any,
) -> Solution:
    """Integrate ``model`` over ``t_span`` with a registered solver.

    ``model``: anything :func:`load_model` takes. ``params``/``y0``: ``(n,)`` or ``(batch, n)``
    (a batch of parameter sets or initial states runs in one call), in ``model.parameter_names``
    / ``model.state_names`` order; ``params`` may also be a dict by id and ``initial`` a dict of
    initial values (SBML: in the quantity the file declares), with 1-D arrays for scans
    (single numbers broadcast; see :func:`by_name`). ``t_eval`` or ``n_points``
    choose output times (at least one). ``inputs``: ``(n_inputs,)`` or ``(batch, n_inputs)``, or
    a dict by name of constants (SI numbers, quantities, ``"0.5 nA"``) and time series (a
    ``TimedArray``; :mod:`neuroplex.inputs`). Remaining keyword arguments configure the solver
    (e.g. ``method="dopri5", rtol=1e-8``). ``throw=True`` raises naming failed samples.
    ``executor``: ``"local"`` (the solver's own ``workers`` processes), or ``"ray"`` /
    ``"inprocess"`` / an :class:`~neuroplex.executors.Executor`, over whose ``workers`` the batch
    is split in contiguous shards (:mod:`neuroplex.ensembles`); ``address``: a Ray cluster to
    join (default: ``RAY_ADDRESS``, else a Ray started on this machine).
    """
    model, params = by_name(load_model(model), params, initial)
    if isinstance(inputs, Mapping):  # by name: constants with units, time series (TimedArray)
        model, inputs = resolve_inputs(model, inputs)
    if not isinstance(t_span, (tuple, list)):
        t_span = (0.0, float(t_span))
    t0, t1 = float(t_span[0]), float(t_span[1])
    if n_points is not None and int(n_points) < 1:
        raise NeuroplexError(f"n_points={n_points}: ask for at least one output point")
    if t_eval is None and n_points is not None:
        t_eval = torch.linspace(t0, t1, int(n_points), dtype=torch.float64)
    elif t_eval is not None and not isinstance(t_eval, torch.Tensor):
        t_eval = torch.as_tensor(list(t_eval), dtype=torch.float64)
    if t_eval is not None and t_eval.numel() == 0:
        raise NeuroplexError("t_eval is empty: ask for at least one output time")
    check_times(t0, t1, t_eval)
    distributed = executor != "local" or address is not None
    workers = solver_options.pop("workers", None) if distributed else None
    instance = make_solver(solver, "simulate", model, **solver_options)
    if distributed:
        return _sharded(simulate, model, executor, address, workers, {"params": params, "y0": y0, "inputs": inputs},
                        {"t_span": (t0, t1), "solver": solver, "t_eval": t_eval, **solver_options}, throw)
    runner = route(model, instance)
    host = get_host()
    host.call_lifecycle("neuroplex_simulation_start", model=model, solver=instance,
                        options={"t_span": (t0, t1), "kind": "simulate"})
    if runner is not None:
        sol = runner.run(model, instance, (t0, t1), y0=y0, params=params, t_eval=t_eval, inputs=inputs,
                         progress=progress)
    else:
        sol = instance.simulate(model, (t0, t1), y0=y0, params=params, t_eval=t_eval, inputs=inputs,
                                progress=progress)
    sol.meta.setdefault("model", getattr(model, "name", ""))
    ir = model if isinstance(model, ModelIR) else getattr(model, "model", None)
    if isinstance(ir, ModelIR):  # what each variable is measured in (plots label their axes with it)
        sol.meta.setdefault("units_of", {k: v for k, v in ir.units().items() if k in set(sol.names)})
        sol.meta.setdefault("time_unit", ir.time_unit)
    if hasattr(model, "plot_names"):  # what a default plot shows (SBML models: the species)
        sol.meta.setdefault("plot_names", list(model.plot_names()))
    host.call_lifecycle("neuroplex_simulation_finish", model=model, solver=instance, solution=sol)
    return sol.raise_on_failure() if throw else sol


def equilibrate(
    model: Any,
    y0: torch.Tensor | None = None,
    *,
    solver: str | Solver = "torch",
    params: torch.Tensor | Mapping[str, Any] | None = None,
    initial: Mapping[str, Any] | None = None,
    inputs: torch.Tensor | None = None,
    throw: bool = False,
    executor: str | Executor = "local",
    address: str | None = None,
    **solver_options: Any,
) -> Solution:
    """Drive ``model`` to a fixed point from ``y0``; ``solution.ys`` is ``(batch, n)`` and
    ``solution.stats`` holds ``iterations`` and ``residual`` per sample. A model with its own
    steady-state solver (SBML models) uses it (:func:`steady_state`) unless a solver other
    than ``"torch"`` or a ``method`` is named. ``executor``/``address``/``workers`` as for
    :func:`simulate`."""
    model, params = by_name(load_model(model), params, initial)
    if executor != "local" or address is not None:
        workers = solver_options.pop("workers", None)
        return _sharded(equilibrate, model, executor, address, workers, {"params": params, "y0": y0, "inputs": inputs},
                        {"solver": solver, **solver_options}, throw)
    if hasattr(model, "steady_state") and solver == "torch" and solver_options.get("method") in (None, "auto"):
        solver_options.pop("method", None)  # SBML models: their own steady-state solver
        return steady_state(model, y0=y0, params=params, throw=throw, **solver_options)
    instance = make_solver(solver, "equilibrate", model, **solver_options)
    host = get_host()
    host.call_lifecycle("neuroplex_simulation_start", model=model, solver=instance, options={"kind": "equilibrate"})
    sol = instance.equilibrate(model, y0, params=params, inputs=inputs)
    sol.meta.setdefault("model", getattr(model, "name", ""))
    host.call_lifecycle("neuroplex_simulation_finish", model=model, solver=instance, solution=sol)
    return sol.raise_on_failure() if throw else sol


def _sharded(call: Callable[..., Solution], model: Any, executor: str | Executor, address: str | None,
             workers: int | None, arrays: dict[str, Any], options: dict[str, Any], throw: bool) -> Solution:
    """``call`` with its batch split over ``executor``'s ``workers`` (None: all it has)."""
    if isinstance(executor, Executor):
        sol = run_sharded(call, model, executor, arrays, options, n_shards=workers)
    else:
        # a run on a GPU device: each task holds one GPU (Ray sets CUDA_VISIBLE_DEVICES for it)
        gpus = 1.0 if executor == "ray" and str(options.get("device") or "").startswith("cuda") else 0.0
        with get_executor(executor, workers, address, gpus_per_task=gpus) as ex:
            sol = run_sharded(call, model, ex, arrays, options)
    return sol.raise_on_failure() if throw else sol


def steady_state(model: Any, *, params: Any = None, initial: Mapping[str, Any] | None = None,
                 y0: torch.Tensor | None = None, throw: bool = False, **options: Any) -> Solution:
    """The steady state of ``model`` per parameter set, through the model's own
    ``steady_state`` method (SBML models: conservation laws, Newton, continuation, stiff
    integration; see ``docs/sbml.md``). ``params``/``initial`` as for :func:`simulate` (a
    scan gives one steady state per value). ``solution.ys`` is ``(batch, n_names)``, ``stats``
    holds ``residual`` per sample, ``meta["reasons"]`` why a sample has none."""
    model, params = by_name(load_model(model), params, initial)
    own = getattr(model, "steady_state", None)
    if own is None:
        raise NeuroplexError(f"model {getattr(model, 'name', model)!r} has no steady-state solver; "
                             f"use neuroplex.equilibrate (fixed-point methods)")
    try:
        sol = own(params=params, y0=y0, **options)
    except TypeError as exc:
        raise NeuroplexError(f"steady_state: {exc}") from None
    return sol.raise_on_failure() if throw else sol
