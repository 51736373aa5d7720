"""Running SBML models: :func:`run` (a compiled program on an integrator, with SBML event
semantics from :mod:`.events`, ``auto`` method choice, sharding over processes), :func:`simulate`
and the ``sbml`` runners registered for the ``torch`` and ``scipy`` solvers
(``register_runners``): each receives the solver instance and hands its step control and
execution settings to :func:`run` unchanged, with ``solver.integrator()`` as the integrator.

**Integrator interface** (:class:`neuroplex.integration.Integrator`; any solver's
``integrator()`` can drive this module, the registered torch solver's is the default)::

    integrator(f, t0, t1, y0, *, method, control, t_eval, atol, event_fn, stiff_stop, stiff_budget) -> result
    # f(t, y): t (B,), y (B, n) -> (B, n)
    # control: the StepControl as given; atol: None or a (B, n) tensor overriding control.atol
    #   (per-state tolerances, see SBMLProgram.atol_scale)
    # event_fn(t, y) -> (B, k): stop a sample at the first column that crosses from < 0 to
    #   >= 0 (columns >= 0 at t0 arm once they go negative)
    # result.ys (B, len(t_eval), n) (NaN after a stop), result.t_end (B,), result.y_end (B, n),
    #   result.status (B,) Status codes, result.event_index (B,) (-1 when t1 was reached)

**Batches.** Models without events run a whole batch of parameter sets / initial states in
one integrator call; models with events run sample by sample.
"""
from __future__ import annotations

import copy
import getpass
import hashlib
import os
import re
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch

from neuroplex.errors import SolverError
from neuroplex.host import get_host
from neuroplex.integration import AutoPolicy, Integrator
from neuroplex.progress import PROGRESS_ENV, progress_bar
from neuroplex.runners import Runner
from neuroplex.settings import FUSED_AUTO, Execution, StepControl
from neuroplex.shards import map_shards, one_thread, shared_empty
from neuroplex.solution import Solution
from neuroplex.solver import Solver

from .events import SampleRun
from .program import SBMLProgram, column_major

if TYPE_CHECKING:
    from .reader import SBMLModel


#: the method SBML models run with on the torch solver when none is given: its ``auto`` policy
AUTO = "auto"
#: step control of SBML runs that no solver configures (:func:`simulate`, :func:`run` called directly)
SBML_CONTROL = StepControl(rtol=1e-8, atol=1e-10, max_steps=200_000)
_ONE_PROCESS = Execution()


def _batch_inputs(prog: SBMLProgram, t_span: tuple[float, float], params: Any, y0: Any) -> tuple[torch.Tensor, torch.Tensor]:
    p = prog.default_params() if params is None else torch.as_tensor(params, dtype=torch.float64)
    p = p[None] if p.dim() == 1 else p
    batch = p.shape[0] if y0 is None else max(p.shape[0], torch.as_tensor(y0).reshape(-1, prog.n).shape[0])
    p = p.expand(batch, -1).contiguous()
    if y0 is None:
        return p, prog.initial_state(float(t_span[0]), p)
    return p, torch.as_tensor(y0, dtype=torch.float64).reshape(-1, prog.n).expand(batch, -1).clone()


#: fewest samples per shard worth a worker process
MIN_SHARD = 64


def _run_sharded(prog: SBMLProgram, t_span: tuple[float, float], execution: Execution, *, params: Any, y0: Any,
                 progress: bool, **options: Any) -> Solution:
    """:func:`run` over contiguous shards of the batch in ``execution.workers`` processes, joined in order."""
    p_all, y_all = _batch_inputs(prog, t_span, params, y0)
    n_shards = min(execution.workers, p_all.shape[0] // MIN_SHARD)
    one = replace(execution, workers=1)
    if n_shards <= 1:
        return run(prog, t_span, params=params, y0=y0, progress=progress, execution=one, **options)

    bounds = [int(rows[0]) for rows in torch.tensor_split(torch.arange(p_all.shape[0]), n_shards)] + [p_all.shape[0]]
    t_eval = options.get("t_eval")
    n_t = 2 if t_eval is None else int(torch.as_tensor(t_eval).numel())
    # the shards write their outputs in place, column by column (the layout of one run's
    # outputs): nothing large is pickled back or joined
    block = shared_empty((len(prog.output_names), p_all.shape[0], n_t))

    if execution.fused_steps:
        _warm_up(prog, t_span, p_all, y_all if y0 is not None else None, {**options, "execution": one})

    def task(i: int) -> Solution:
        lo, hi = bounds[i], bounds[i + 1]
        part = run(prog, t_span, params=p_all[lo:hi], y0=None if y0 is None else y_all[lo:hi],
                   progress=progress and i == 0, block=block[:, lo:hi], execution=one, **options)
        part.ys = part.ys.new_empty((hi - lo, n_t, 0))  # not a view: that would pickle the whole block
        return part

    return _concat(map_shards(task, n_shards), block.movedim(0, -1))


def _warm_up(prog: SBMLProgram, t_span: tuple[float, float], p_all: torch.Tensor, y_all: torch.Tensor | None,
             options: dict[str, Any]) -> None:
    """Run two samples over a sliver of the span, on one thread as the shards run, so that the
    compiled steps of a fused run are built (or loaded from the disk cache) in this process,
    which forked workers inherit, rather than in every worker of every call."""
    t0, t1 = float(t_span[0]), float(t_span[1])
    sliver = (t0, t0 + (t1 - t0) * 1e-9)
    with one_thread():
        run(prog, sliver, **{**options, "t_eval": torch.tensor(sliver, dtype=torch.float64)}, params=p_all[:2],
            y0=None if y_all is None else y_all[:2])


def _concat(parts: list[Solution], ys: torch.Tensor) -> Solution:
    """One solution of outputs ``ys`` from per-shard solutions of the same program and times
    (samples in order)."""
    first = parts[0]
    stats = {key: torch.cat([part.stats[key] for part in parts]) for key in first.stats
             if all(key in part.stats for part in parts)}
    # shards of an "auto" run may differ in whether some sample needed the stiff method
    method = max((part.method for part in parts), key=len)
    return Solution(ys, first.ts, first.names, torch.cat([part.status for part in parts]), stats,
                    solver=first.solver, method=method, meta=first.meta)


def default_integrator(execution: Execution = _ONE_PROCESS) -> Integrator:
    """The registered ``torch`` solver's integrator (looked up by name, not imported)."""
    return get_host().get("solvers", "torch").obj(fused=execution.fused_steps).integrator()


def default_auto_policy() -> AutoPolicy:
    """The registered ``torch`` solver's ``auto`` policy (its integrator is the default one)."""
    policy: AutoPolicy | None = get_host().get("solvers", "torch").obj.auto_policy
    if policy is None:  # pragma: no cover - the built-in torch solver has one
        raise SolverError("the torch solver offers no 'auto' method")
    return policy


def run(prog: SBMLProgram, t_span: tuple[float, float], *, t_eval: torch.Tensor | Sequence[float] | None = None,
        params: torch.Tensor | None = None, y0: torch.Tensor | None = None,
        integrator: Integrator | None = None, method: str = "dopri5", control: StepControl = SBML_CONTROL,
        execution: Execution = _ONE_PROCESS, solver_name: str = "torch", progress: bool = False,
        stiff_stop: bool = False, stiff_budget: int | None = None, auto: AutoPolicy | None = None,
        block: torch.Tensor | None = None) -> Solution:
    """Simulate a compiled program; ``params (P,)|(B, P)``, ``y0 (n,)|(B, n)``.

    ``integrator`` (default: the torch solver's) is called with ``control`` as given, its
    ``atol`` scaled per state where the program asks for it (:meth:`SBMLProgram.atol_scale`).
    ``method="auto"`` applies the solver's :class:`~neuroplex.integration.AutoPolicy` (``auto``,
    default: the torch solver's, dopri5 then rosenbrock) to whole samples, events included: the
    first method with its stiffness test, which stops the samples it finds stiff unless they are
    on pace to finish within the policy's step budget, then the stopped ones (and any out of
    ``max_steps``) rerun with the fallback method (``stats["n_steps"]`` then counts both runs'
    steps). A sample that is not stiff finishes on the first method however many steps its
    tolerance needs. ``execution.workers > 1`` splits the batch into that many contiguous
    shards run on as many CPU cores (:func:`neuroplex.shards.map_shards`); results are the same up
    to rounding. ``block``: a ``(n_outputs, batch, n_times)`` tensor the outputs are written into
    (the solution's ``ys`` is then its transpose)."""
    if integrator is None:
        integrator = default_integrator(execution)
    if execution.workers > 1:
        return _run_sharded(prog, t_span, execution, t_eval=t_eval, params=params, y0=y0, integrator=integrator,
                            method=method, control=control, solver_name=solver_name, progress=progress,
                            stiff_stop=stiff_stop, stiff_budget=stiff_budget, auto=auto)
    if method == AUTO:
        policy = default_auto_policy() if auto is None else auto
        first = run(prog, t_span, params=params, y0=y0, method=policy.first, stiff_stop=True,
                    stiff_budget=policy.step_budget, block=block, t_eval=t_eval, integrator=integrator,
                    control=control, execution=execution, solver_name=solver_name, progress=progress)
        bad = policy.needs_fallback(first.status)
        if not bool(bad.any()):
            first.method = policy.label(False)
            return first
        p_all, y_all = _batch_inputs(prog, t_span, params, y0)
        second = run(prog, t_span, params=p_all[bad], y0=y_all[bad], method=policy.fallback, t_eval=t_eval,
                     integrator=integrator, control=control, execution=execution, solver_name=solver_name,
                     progress=progress)
        first.ys[bad] = second.ys
        first.status[bad] = second.status
        for key, value in second.stats.items():
            if key in first.stats:
                first.stats[key][bad] += value
        first.method = policy.label(True)
        return first
    t0, t1 = float(t_span[0]), float(t_span[1])
    dtype = torch.float64
    if t_eval is None:
        t_eval = torch.tensor([t0, t1], dtype=dtype)
    t_eval = torch.as_tensor(t_eval, dtype=dtype).flatten()
    p = prog.default_params(dtype) if params is None else torch.as_tensor(params, dtype=dtype)
    if p.dim() == 1:
        p = p[None]
    if p.shape[-1] != len(prog.param_names):
        raise SolverError(f"model {prog.model.name!r} has {len(prog.param_names)} parameters "
                          f"({', '.join(prog.param_names[:8])}{'...' if len(prog.param_names) > 8 else ''}), "
                          f"params has {p.shape[-1]}")
    batch = p.shape[0]
    if y0 is not None:
        y0 = torch.as_tensor(y0, dtype=dtype)
        if y0.dim() == 1:
            y0 = y0[None]
        if y0.shape[-1] != prog.n:
            raise SolverError(f"model {prog.model.name!r} has {prog.n} states, y0 has {y0.shape[-1]}")
        batch = max(batch, y0.shape[0])
    p = p.expand(batch, -1).contiguous()
    y_init = prog.initial_state(t0, p) if y0 is None else y0.expand(batch, -1).clone()
    scale = prog.atol_scale(p, y_init)
    atol_all: torch.Tensor | None = None if scale is None else control.atol * scale
    settings: dict[str, Any] = dict(method=method, control=control, atol=atol_all, stiff_stop=stiff_stop,
                                    stiff_budget=stiff_budget)

    def sample_settings(b: int) -> dict[str, Any]:
        return settings if atol_all is None else {**settings, "atol": atol_all[b:b + 1]}

    n_t = t_eval.numel()
    stats: dict[str, Any] = {}
    if prog.n == 0:
        ys = torch.zeros((batch, n_t, 0), dtype=dtype)
        status = torch.zeros(batch, dtype=torch.long)
        if prog.events:
            outs = []
            for b in range(batch):
                run_ = SampleRun(prog, p[b:b + 1], integrator, sample_settings(b))
                out, _ = run_.run(t0, t1, t_eval, y_init[b])
                outs.append(out)
            ys = torch.stack(outs)
    elif prog.constant_state and not prog.events:  # nothing moves (values may be INF/NaN)
        ys = y_init[:, None, :].expand(batch, n_t, prog.n).clone()
        status = torch.zeros(batch, dtype=torch.long)
    elif not prog.events:
        res = integrator(prog.rhs_bound(p), t0, t1, column_major(y_init), t_eval=t_eval, progress=progress, **settings)
        if res.ys is None:
            raise SolverError("the integrator returned no outputs at t_eval")
        ys = res.ys
        status = res.status.clone()
        stats["n_steps"] = res.n_steps
    else:
        outs, codes, steps, events = [], [], [], []
        for b in range(batch):
            run_ = SampleRun(prog, p[b:b + 1], integrator, sample_settings(b))
            out, code = run_.run(t0, t1, t_eval, y_init[b])
            outs.append(out)
            codes.append(code)
            steps.append(run_.n_steps)
            events.append(run_.n_events)
        ys = torch.stack(outs)
        status = torch.tensor(codes, dtype=torch.long)
        stats["n_steps"] = torch.tensor(steps)
        stats["n_events"] = torch.tensor(events)
    tt = t_eval[None, :].expand(batch, -1)
    values = prog.observe(tt, ys, p[:, None, :], block) if prog.output_names else ys[..., :0]
    return Solution(values, t_eval, list(prog.output_names), status, stats, solver=solver_name, method=method,
                    meta={"model": prog.model.name})


def simulate(model: SBMLModel, t_span: tuple[float, float] | float, *, t_eval: torch.Tensor | Sequence[float] | None = None,
             params: torch.Tensor | None = None, y0: torch.Tensor | None = None, progress: bool = False,
             variables: Sequence[str] | None = None, method: str = "auto", control: StepControl = SBML_CONTROL,
             execution: Execution = _ONE_PROCESS, integrator: Integrator | None = None,
             solver_name: str = "torch") -> Solution:
    """Simulate an SBML model with SBML semantics (what the ``sbml`` runners call).

    The method is ``auto`` by default (the torch solver's policy: dopri5, and rosenbrock for the
    samples that its stiffness test stops: stiff ones), or ``dopri5`` / ``rosenbrock`` / any simulate method of the integrator.
    ``variables``: SBML ids to report (default: :meth:`SBMLModel.default_outputs`).
    ``params``: ``(P,)`` or ``(B, P)`` in ``model.parameter_names`` order; a batch without
    events runs in one integrator call. ``execution.workers``: CPU processes the batch is split over.
    """
    if not isinstance(t_span, (tuple, list)):
        t_span = (0.0, float(t_span))
    outputs = None if variables is None else [(v, model.value_expression(v)) for v in variables]
    prog = compiled(model, outputs)
    return run(prog, (float(t_span[0]), float(t_span[1])), t_eval=t_eval, params=params, y0=y0,
               integrator=integrator, method=method, control=control, execution=execution, progress=progress,
               solver_name=solver_name)


def compiled(model: SBMLModel, outputs: Sequence[tuple[str, Any]] | None = None) -> SBMLProgram:
    """The compiled program of ``model`` (cached on the model for its default outputs)."""
    if outputs is not None:
        return SBMLProgram(model, outputs)
    cache = model.__dict__.get("_sbml_program")
    if cache is None:
        cache = SBMLProgram(model)
        model.__dict__["_sbml_program"] = cache
    return cache


def _run(model: SBMLModel, solver: Solver, t_span: tuple[float, float], method: str, *, y0: torch.Tensor | None,
         params: torch.Tensor | None, t_eval: torch.Tensor | None, inputs: torch.Tensor | None,
         progress: bool) -> Solution:
    if inputs is not None:
        raise SolverError(f"SBML model {model.name!r} takes no inputs")
    sol = run(compiled(model), (float(t_span[0]), float(t_span[1])), t_eval=t_eval, params=params, y0=y0,
              integrator=solver.integrator(), method=method, control=solver.control,
              execution=solver.execution, solver_name=solver.name, progress=progress, auto=solver.auto_policy)
    return sol


#: the registered solver that takes single CPU trajectories from the torch solver (compiled C)
COMPILED_SOLVER = "native"


def _one_cpu_sample(solver: Solver, *values: Any) -> bool:
    """Whether a run is one float64 CPU trajectory without gradients and without a method,
    fused steps or a device asked of the torch solver."""
    ex = solver.execution
    if solver.requested_method is not None or ex.fused_steps:
        return False
    if ex.device is not None and torch.device(ex.device).type != "cpu":
        return False
    for v in values:
        if isinstance(v, torch.Tensor) and (v.requires_grad or v.device.type != "cpu"
                                            or (v.dim() > 1 and v.shape[0] != 1)):
            return False
    return True


def compiled_path(model: SBMLModel, solver: Solver, params: torch.Tensor | None = None,
                  y0: torch.Tensor | None = None) -> Solver | None:
    """The compiled solver (:data:`COMPILED_SOLVER`, when registered) that runs this call in
    place of the torch solver, with the torch solver's step control: for one trajectory on the
    CPU (see :func:`_one_cpu_sample`) of a model the compiled solver accepts (its
    ``refusal(model)`` is None; a C compiler is at hand; events included). Otherwise None: torch
    runs it (batches, GPUs, gradients, or ``method=``/``fused=`` given). ``solver="native"``
    forces the compiled path."""
    host = get_host()
    if COMPILED_SOLVER not in host.names("solvers") or not _one_cpu_sample(solver, params, y0):
        return None
    cls = host.get("solvers", COMPILED_SOLVER).obj
    if cls.refusal(model) is not None:
        return None
    c = solver.control
    return cls(rtol=c.rtol, atol=c.atol, dt=c.dt0, dt_min=c.dt_min, dt_max=c.dt_max, max_steps=c.max_steps)


# ---------------------------------------------------------------- fused="auto": a batch's path
#: the native solver's method for the torch solver's method as requested (None: SBML's ``auto``)
NATIVE_METHODS: dict[str | None, str] = {None: "auto", AUTO: "auto", "dopri5": "dopri5"}
#: methods as requested whose runs take fused steps (``auto`` begins with dopri5)
FUSED_METHODS = (None, AUTO, "dopri5", "dop853")
#: seconds a model's fused steps take to compile on a cold cache (25-46 s measured for
#: BIOMD0000000012/-020 on this project's 2-core machine, ~24 s median over the shared BioModels)
FUSED_COMPILE_S = 30.0
#: seconds to trace and load cached fused steps in a new process (importing inductor included)
FUSED_LOAD_S = 4.0
#: run time of the native ensemble over that of fused steps, once built (BIOMD0000000012/-020,
#: 10 000 sets, 2 processes: benchmarks/sbml_bench.py): about even on an idle machine since the
#: native ensemble runs in lockstep, the native ensemble 2x faster while other jobs load the
#: cores; at 1 or less fused steps are never built for a batch the native ensemble can run
FUSED_GAIN = 1.0
#: batches from this size on may leave eager steps (smaller ones run in milliseconds on either path)
AUTO_MIN_BATCH = 256
#: samples of the native pilot run that estimates a batch's native time
PILOT = 32
#: batches from this size on run the pilot (below it fused steps cannot repay even their loading)
PILOT_MIN_BATCH = 512
#: keys of fused steps built or loaded in this process (:func:`fused_key`)
_FUSED_IN_PROCESS: set[str] = set()
#: per key, seconds the native ensemble is estimated to have lost to fused steps in this process
_NATIVE_LOST: dict[str, float] = {}
#: per key, seconds per sample and process of the last native ensemble run by ``fused="auto"`` in
#: this process (its estimate for the next call instead of a pilot)
_NATIVE_RATE: dict[str, float] = {}


@dataclass(frozen=True)
class AutoPath:
    """What ``fused="auto"`` chose for a call: ``path`` ``"native"`` (the native ensemble,
    ``native`` the solver that runs it), ``"fused"`` (``compile``: not in the cache yet) or
    ``"eager"``, and why."""

    path: str
    reason: str
    native: Solver | None = None
    compile: bool = False
    key: str = ""


def _why_not_cpu(solver: Solver, *values: Any) -> str | None:
    """Why a run is not on the CPU without gradients (None: it is; SBML runs are float64 only,
    :func:`check_float64`)."""
    ex = solver.execution
    if ex.device is not None and torch.device(ex.device).type != "cpu":
        return f"device {ex.device}"
    for v in values:
        if isinstance(v, torch.Tensor) and (v.requires_grad or v.device.type != "cpu"):
            return "gradients" if v.requires_grad else f"tensors on {v.device}"
    return None


def _native_for(model: SBMLModel, solver: Solver, params: Any, y0: Any) -> tuple[Solver | None, str]:
    """The native solver for this batch with the torch solver's step control and workers, or
    None and why not."""
    host = get_host()
    if COMPILED_SOLVER not in host.names("solvers"):
        return None, f"no {COMPILED_SOLVER!r} solver registered"
    if solver.requested_method not in NATIVE_METHODS:
        return None, f"method {solver.requested_method!r} runs on torch"
    why = _why_not_cpu(solver, params, y0)
    if why is not None:
        return None, why
    cls = host.get("solvers", COMPILED_SOLVER).obj
    why = cls.refusal(model)
    if why is not None:
        return None, why
    c = solver.control
    return cls(NATIVE_METHODS[solver.requested_method], rtol=c.rtol, atol=c.atol, dt=c.dt0, dt_min=c.dt_min,
               dt_max=c.dt_max, max_steps=c.max_steps, workers=solver.execution.workers), ""


def _inductor_cache() -> Path:
    """Inductor's cache folder (``TORCHINDUCTOR_CACHE_DIR``, else its default), where fused
    steps are cached, found without importing inductor (seconds)."""
    folder = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if folder:
        return Path(folder).expanduser().resolve()
    try:
        user = getpass.getuser()
    except (KeyError, ModuleNotFoundError, OSError):
        user = f"uid_{os.getuid()}" if hasattr(os, "getuid") else "unknown_user"
    return Path(tempfile.gettempdir()) / ("torchinductor_" + re.sub(r'[\\/:*?"<>|]', "_", user))


def fused_key(prog: SBMLProgram, solver: Solver, p: torch.Tensor) -> str:
    """What a model's fused steps are built for: its generated right-hand side, the method, the
    step control, dtype, device, torch threads of the run (one per shard) and torch's version."""
    fn = prog.rhs_bound(p[:1]).traceable[0]  # type: ignore[attr-defined]
    ex = solver.execution
    threads = 1 if ex.workers > 1 else torch.get_num_threads()
    text = "\0".join([torch.__version__, getattr(fn, "__source__", fn.__qualname__), str(solver.requested_method),
                      repr(solver.control), str(ex.dtype or torch.float64), torch.device(ex.device or "cpu").type,
                      str(threads), str(prog.atol_scale(p[:1], prog.initial_state(0.0, p[:1])) is not None)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _marker(key: str) -> Path:
    return _inductor_cache() / "neuroplex-aot" / "ready" / key


def fused_state(key: str) -> str:
    """``"loaded"`` (built or loaded in this process), ``"cached"`` (in inductor's cache on
    disk) or ``"cold"`` (a run compiles them)."""
    if key in _FUSED_IN_PROCESS:
        return "loaded"
    return "cached" if _marker(key).exists() else "cold"


def _mark_fused(key: str) -> None:
    """Record fused steps built (or loaded) for ``key``, in this process and on disk."""
    _FUSED_IN_PROCESS.add(key)
    path = _marker(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def _say_compiling(model: SBMLModel) -> None:
    """The progress line of a compile (unless ``NEUROPLEX_PROGRESS=0``)."""
    if os.environ.get(PROGRESS_ENV, "").strip().lower() in ("0", "false", "no", "off"):
        return
    print(f"neuroplex: {model.name}: compiling fused steps (cached for next time; about "
          f"{FUSED_COMPILE_S:.0f} s)", file=sys.stderr, flush=True)


def auto_path(model: SBMLModel, solver: Solver, t_span: tuple[float, float], params: torch.Tensor | None,
              y0: torch.Tensor | None, t_eval: torch.Tensor | None) -> AutoPath:
    """The path of a batch under ``fused="auto"``: the native ensemble (compiled C, a second to
    build) where the model and run allow it, unless fused torch steps are expected to finish
    sooner, their building or loading included: a pilot of :data:`PILOT` samples times the
    native run (or, on later calls with the same key, the last native run of this process), fused
    steps are expected :data:`FUSED_GAIN` times faster (at 1 or less: never; no pilot) after
    :data:`FUSED_COMPILE_S` (cold cache), :data:`FUSED_LOAD_S` (cached on disk) or nothing
    (built in this process) first; calls of this process on the same steps add up (fused steps
    are built once what the native runs lost reaches that cost: repeated ensembles, e.g. a
    fitting loop, move to fused steps after a while). Eager steps where neither applies (events, GPUs,
    gradients, a method the native solver lacks) unless cached fused steps apply; eager steps
    for batches under :data:`AUTO_MIN_BATCH`."""
    prog = compiled(model)
    p_all, y_all = _batch_inputs(prog, t_span, params, y0)
    batch = p_all.shape[0]
    if batch < AUTO_MIN_BATCH:
        return AutoPath("eager", f"a batch under {AUTO_MIN_BATCH}")
    fusable = not prog.events and prog.n > 0 and solver.requested_method in FUSED_METHODS and \
        not any(isinstance(v, torch.Tensor) and v.requires_grad for v in (params, y0))
    key = fused_key(prog, solver, p_all) if fusable else ""
    state = fused_state(key) if fusable else "cold"
    native, why = _native_for(model, solver, params, y0)
    if native is None:
        if state != "cold" and batch >= PILOT_MIN_BATCH:
            return AutoPath("fused", f"fused steps {state}; native: {why}")
        return AutoPath("eager", f"native: {why}")
    if not fusable or batch < PILOT_MIN_BATCH:
        return AutoPath("native", "fused steps cannot repay their loading" if fusable else "no fused steps",
                        native)
    if FUSED_GAIN <= 1.0:
        return AutoPath("native", f"fused steps are not expected to run faster (FUSED_GAIN {FUSED_GAIN:g})", native)
    def run_pilot(n: int) -> None:  # a pilot of n < 2 shards' samples runs in this process
        native.simulate(model, t_span, params=p_all[:n], y0=None if y0 is None else y_all[:n], t_eval=t_eval)

    per_sample = _NATIVE_RATE.get(key)
    timed = "last run"
    if per_sample is None:
        timed = "pilot"
        run_pilot(2)  # loads what a first run loads (the libraries), outside the timing
        start = time.perf_counter()
        run_pilot(PILOT)
        per_sample = (time.perf_counter() - start) / PILOT
    shards = max(1, min(solver.execution.workers, batch // MIN_SHARD))
    native_s = per_sample * batch / shards
    setup = {"loaded": 0.0, "cached": FUSED_LOAD_S, "cold": FUSED_COMPILE_S}[state]
    fused_s = native_s / FUSED_GAIN + setup
    # what this call would lose by staying native, added to what earlier native calls of the same
    # steps lost: building pays once the losses reach its cost (the ski-rental rule)
    lost = _NATIVE_LOST.get(key, 0.0) + native_s - native_s / FUSED_GAIN
    estimate = (f"native ~{native_s:.2g} s ({timed}), fused ~{fused_s:.2g} s ({state}; native lost ~{lost:.2g} s "
                f"so far)")
    if lost >= setup:
        _NATIVE_LOST.pop(key, None)
        return AutoPath("fused", estimate, compile=state == "cold")
    _NATIVE_LOST[key] = lost
    return AutoPath("native", estimate, native, key=key)


def _record_native_rate(key: str, seconds: float, sol: Solution) -> None:
    """What a native ensemble run chosen by :func:`auto_path` took, per sample and process: the
    next call with the same key estimates from it instead of running a pilot."""
    batch = int(sol.ys.shape[0]) if sol.ys.dim() == 3 else 1
    if key and batch > 0:
        _NATIVE_RATE[key] = seconds * int(sol.meta.get("shards", 1)) / batch


def _with_fused(solver: Solver, fused: bool) -> Solver:
    """A copy of the torch solver whose execution has ``fused`` decided."""
    out = copy.copy(solver)
    out.execution = replace(solver.execution, fused=fused)  # type: ignore[attr-defined]
    return out


def _run_fused(model: SBMLModel, solver: Solver, t_span: tuple[float, float], method: str, *, y0: Any,
               params: Any, t_eval: Any, progress: bool) -> Solution:
    """:func:`_run` with fused steps, saying so when they compile and recording them as built."""
    prog = compiled(model)
    p_all, _ = _batch_inputs(prog, t_span, params, y0)
    key = fused_key(prog, solver, p_all)
    if fused_state(key) == "cold":
        _say_compiling(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sol = _run(model, solver, t_span, method, y0=y0, params=params, t_eval=t_eval, inputs=None,
                   progress=progress)
    gave_up = False
    for w in caught:
        gave_up |= issubclass(w.category, RuntimeWarning) and str(w.message).startswith("fused steps:")
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if not gave_up:
        _mark_fused(key)
    return sol


def check_float64(model: SBMLModel, solver: Solver) -> None:
    """Refuse a ``dtype`` other than float64 for an SBML model: its runs (events, per-species
    tolerances, steady states, the compiled path) compute in float64 only, and a float32 request
    must not come back as float64 numbers unannounced."""
    dtype = solver.execution.dtype
    if dtype not in (None, torch.float64):
        name = str(dtype).removeprefix("torch.")
        raise SolverError(f"SBML model {model.name!r} runs in float64 only: dtype={name!r} is not supported "
                          f"for SBML models (leave dtype out or pass dtype='float64')")


def run_on_torch(model: SBMLModel, solver: Solver, t_span: tuple[float, float], *, y0: torch.Tensor | None = None,
                 params: torch.Tensor | None = None, t_eval: torch.Tensor | None = None,
                 inputs: torch.Tensor | None = None, progress: bool = False) -> Solution:
    """An SBML model on the torch solver: its method as requested, else ``auto``; one CPU
    trajectory runs compiled instead (:func:`compiled_path`); under ``fused="auto"`` a batch runs
    where :func:`auto_path` says (``sol.meta["path"]``). SBML models run in float64 only
    (:func:`check_float64`)."""
    check_float64(model, solver)
    native = compiled_path(model, solver, params, y0) if inputs is None else None
    if native is not None:
        return native.simulate(model, t_span, y0=y0, params=params, t_eval=t_eval)
    method = solver.requested_method or AUTO
    choice = None
    if solver.execution.fused == FUSED_AUTO:
        choice = auto_path(model, solver, t_span, params, y0, t_eval) if inputs is None else \
            AutoPath("eager", "inputs")
        if choice.native is not None:
            start = time.perf_counter()
            sol = choice.native.simulate(model, t_span, y0=y0, params=params, t_eval=t_eval)
            _record_native_rate(choice.key, time.perf_counter() - start, sol)
        else:
            solver = _with_fused(solver, choice.path == "fused")
    if choice is None or choice.native is None:
        if solver.execution.fused_steps and inputs is None:
            sol = _run_fused(model, solver, t_span, method, y0=y0, params=params, t_eval=t_eval, progress=progress)
        else:
            sol = _run(model, solver, t_span, method, y0=y0, params=params, t_eval=t_eval, inputs=inputs,
                       progress=progress)
    if choice is not None:
        sol.meta.update({"path": choice.path, "path_reason": choice.reason})
    return sol


def run_on_scipy(model: SBMLModel, solver: Solver, t_span: tuple[float, float], *, y0: torch.Tensor | None = None,
                 params: torch.Tensor | None = None, t_eval: torch.Tensor | None = None,
                 inputs: torch.Tensor | None = None, progress: bool = False) -> Solution:
    """An SBML model on the scipy solver (its ``solve_ivp`` method), one :func:`run` per sample
    (scipy's solvers take one sample at a time anyway)."""
    prog = compiled(model)
    p = prog.default_params() if params is None else torch.as_tensor(params, dtype=torch.float64)
    p = p[None] if p.dim() == 1 else p
    y = None if y0 is None else torch.as_tensor(y0, dtype=torch.float64)
    y = None if y is None else (y[None] if y.dim() == 1 else y)
    n_y = 1 if y is None else y.shape[0]
    batch = max(p.shape[0], n_y)
    if p.shape[0] not in (1, batch) or n_y not in (1, batch):
        raise SolverError(f"params and y0 have different batch sizes: {p.shape[0]} and {n_y}")
    samples = progress_bar(range(batch), desc=solver.name, unit="sample", enabled=progress and batch > 1)
    parts = [_run(model, solver, t_span, solver.method, y0=None if y is None else y[b if n_y > 1 else 0],
                  params=p[b if p.shape[0] > 1 else 0], t_eval=t_eval, inputs=inputs, progress=False)
             for b in samples]
    first = parts[0]
    stats = {k: torch.cat([torch.as_tensor(s.stats[k]).reshape(-1) for s in parts])
             for k in first.stats if all(k in s.stats for s in parts)}
    return Solution(ys=torch.cat([s.ys for s in parts]), ts=first.ts, names=list(first.names),
                    status=torch.cat([s.status for s in parts]), stats=stats, solver=solver.name,
                    method=solver.method, meta={**first.meta, "rtol": solver.control.rtol, "atol": solver.control.atol})


RUNNERS = (Runner(kind="sbml", solver="torch", run=run_on_torch, methods=(AUTO,),
                  description="SBML event semantics on the torch integrators"),
           Runner(kind="sbml", solver="scipy", run=run_on_scipy,
                  description="SBML event semantics on scipy's step-by-step solvers"))
