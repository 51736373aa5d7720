"""``native`` solver: one SBML trajectory at a time in compiled C (:mod:`.csource`,
``integrator.c``), for the CPU work where a torch call's dispatch dominates.

Each model's right-hand side is printed as C, compiled with the system compiler together
with the integrator and cached on disk (:mod:`.library`); a run calls the library once per
sample, so no Python runs inside the step loop. SBML values are the SBML program's
(:class:`neuroplex.sbml.program.SBMLProgram`): initial state, per-state tolerance scaling and
output expressions, evaluated in torch around the compiled run. Methods: ``auto`` (dopri5,
trying RODAS4 where Hairer's stiffness test fires and every so many steps, on whichever costs
less per unit of time), ``dopri5``, ``rodas4``. For results within rtol 1e-4 / atol 1e-8 of a
converged reference on every output, run at ``rtol=1e-9, atol=1e-13`` (docs/native_solver.md).

SBML events run with the torch path's semantics (:class:`neuroplex.sbml.events.SampleRun`) on
compiled segments between them (:mod:`.segments`): the C integrator stops at each crossing of a
compiled trigger atom and Python applies the event. :func:`refusal` says why a model cannot run
here (an expression C cannot take, no compiler); the torch path's policy
(:func:`neuroplex.sbml.runner.run_on_torch`) uses it to fall back.
"""
from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np
import sympy
import torch

from neuroplex import cbuild
from neuroplex.errors import NeuroplexError, NotPrintableError, SolverError
from neuroplex.sbml import SampleRun, SBMLProgram, compiled
from neuroplex.settings import StepControl
from neuroplex.solution import Solution
from neuroplex.solver import Solver

from .ensemble import run_rows
from .library import NativeLibrary, integrator, native_library
from .segments import Bound, Segments

#: method name -> the integrator's code
METHODS = {"auto": 0, "dopri5": 1, "rodas4": 2}


def trigger_atoms(prog: SBMLProgram) -> list[sympy.Basic]:
    """``lhs - rhs`` of each relational atom of the program's event triggers, in its order
    (:attr:`SBMLProgram.atoms`: the values ``prog.atom_g`` computes in torch)."""
    return [sympy.sympify(a.lhs) - sympy.sympify(a.rhs) for a in prog.atoms]


def model_library(model: Any, prog: SBMLProgram | None = None) -> NativeLibrary:
    """``model``'s library, with its trigger atoms when it has events."""
    if not getattr(model, "events", None):
        return native_library(model)
    return native_library(model, trigger_atoms(prog if prog is not None else compiled(model)))


def refusal(model: Any) -> str | None:
    """Why the native solver cannot run ``model`` (None: it can; its library is then built or
    loaded, so a later run pays nothing more)."""
    if not cbuild.compiler_available():
        return "no working C compiler (set $CC or install gcc/clang)"
    try:
        model_library(model)
    except NotPrintableError as exc:
        return f"model {getattr(model, 'name', '?')!r}: {exc}"
    return None


class NativeSolver(Solver):
    """Compiled C integration of SBML models (events included), one trajectory at a time: dopri5
    and RODAS4, whichever costs less (``auto``), or either alone; built once per model and
    compiler and cached on disk. ``rtol``/``atol``/``dt`` (first step)/``dt_min``/``dt_max``/
    ``max_steps`` as the torch solver's; ``workers``: processes a batch is split over
    (:mod:`.ensemble`)."""

    name = "native"
    accepts = frozenset({"sbml"})
    #: SBML events (:mod:`.segments`); no spikes or refractory periods (:mod:`neuroplex.features`)
    supports: ClassVar[frozenset[str]] = frozenset({"events"})
    methods: ClassVar[Sequence[str]] = tuple(METHODS)

    def __init__(self, method: str | None = None, *, rtol: float = 1e-6, atol: float = 1e-9,
                 dt: float | None = None, dt_min: float = 0.0, dt_max: float | None = None,
                 max_steps: int = 100_000, workers: int = 1):
        if method is not None and method not in METHODS:
            raise NeuroplexError(f"native solver: unknown method {method!r}; known: {', '.join(METHODS)}")
        self.requested_method = method
        self.method = method or "auto"
        if int(workers) < 1:
            raise NeuroplexError(f"native solver: workers must be >= 1, got {workers}")
        #: processes a batch is split over (:mod:`.ensemble`)
        self.workers = int(workers)
        try:
            self.control = StepControl(rtol=float(rtol), atol=float(atol), dt0=None if dt is None else float(dt),
                                       dt_min=float(dt_min), dt_max=None if dt_max is None else float(dt_max),
                                       max_steps=int(max_steps))
        except NeuroplexError as exc:
            raise NeuroplexError(f"native solver: {exc}") from None

    @staticmethod
    def refusal(model: Any) -> str | None:
        """Why this solver cannot run ``model`` (None: it can); see :func:`refusal`."""
        return refusal(model)

    def simulate(self, model: Any, t_span: tuple[float, float], *, y0: torch.Tensor | None = None,
                 params: torch.Tensor | None = None, t_eval: torch.Tensor | None = None,
                 inputs: torch.Tensor | None = None, progress: bool = False) -> Solution:
        """Integrate an SBML model (see the class docstring); a batch runs sample by sample in C
        (:mod:`.ensemble`)."""
        if inputs is not None:
            raise SolverError(f"SBML model {getattr(model, 'name', '?')!r} takes no inputs")
        return self.run_program(compiled(model), t_span, t_eval=t_eval, params=params, y0=y0)

    def run_program(self, prog: SBMLProgram, t_span: tuple[float, float], *,
                    t_eval: torch.Tensor | Sequence[float] | None = None, params: torch.Tensor | None = None,
                    y0: torch.Tensor | None = None) -> Solution:
        """Run a compiled SBML program (its outputs, initial state and tolerance scaling) on the
        model's library; ``params (P,)|(B, P)``, ``y0 (n,)|(B, n)``."""
        reason = refusal(prog.model)
        if reason is not None:
            raise SolverError(f"native solver: {reason}; use solver='torch'")
        lib = model_library(prog.model, prog)
        t0, t1 = float(t_span[0]), float(t_span[1])
        if not t1 >= t0:
            raise SolverError(f"native solver: t_span must run forward, got ({t0}, {t1})")
        dtype = torch.float64
        te = torch.tensor([t0, t1], dtype=dtype) if t_eval is None else torch.as_tensor(t_eval, dtype=dtype).flatten()
        if bool((te[1:] < te[:-1]).any()) or bool((te < t0).any()) or bool((te > t1).any()):
            raise SolverError(f"native solver: t_eval must be ascending within t_span ({t0}, {t1})")
        p = prog.default_params(dtype) if params is None else torch.as_tensor(params, dtype=dtype)
        p = p[None] if p.dim() == 1 else p
        if p.shape[-1] != len(prog.param_names):
            raise SolverError(f"model {prog.model.name!r} has {len(prog.param_names)} parameters, "
                              f"params has {p.shape[-1]}")
        batch = p.shape[0]
        if y0 is not None:
            y0 = torch.as_tensor(y0, dtype=dtype)
            y0 = y0[None] if y0.dim() == 1 else y0
            if y0.shape[-1] != prog.n:
                raise SolverError(f"model {prog.model.name!r} has {prog.n} states, y0 has {y0.shape[-1]}")
            if batch not in (1, y0.shape[0]) and y0.shape[0] != 1:
                raise SolverError(f"params and y0 have different batch sizes: {batch} and {y0.shape[0]}")
            batch = max(batch, y0.shape[0])
        p = p.expand(batch, -1).contiguous()
        with torch.no_grad():
            y_init = prog.initial_state(t0, p) if y0 is None else y0.expand(batch, -1).clone()
            scale = prog.atol_scale(p, y_init)
        c = self.control
        atol = np.full((batch, prog.n), c.atol) if scale is None else (c.atol * scale).numpy()
        atol = np.ascontiguousarray(atol, dtype=np.float64)
        p_np = np.ascontiguousarray(p.numpy())
        y_np = np.ascontiguousarray(y_init.detach().numpy(), dtype=np.float64)
        t_np = np.ascontiguousarray(te.numpy())
        n_t = t_np.shape[0]
        out = np.empty((batch, n_t, prog.n))
        stats = np.zeros((batch, 5), dtype=np.int64)
        status = np.zeros(batch, dtype=np.int64)
        extra: dict[str, Any] = {}
        shards = 1
        if prog.events:
            n_events = np.zeros(batch, dtype=np.int64)
            for b in range(batch):
                seg = Segments(lib, p_np[b], atol[b], METHODS[self.method])
                bound = Bound(lib, p_np[b])
                # constant states: the run scans time itself and reads atoms in torch, as on the torch path
                run_ = seg.run = SampleRun(prog, p[b:b + 1], seg, {"method": self.method, "control": c, "atol": None,
                                                                   "stiff_stop": False, "stiff_budget": None},
                                           None if prog.constant_state else bound.atoms, bound.rhs)
                with torch.no_grad():
                    ys_b, status[b] = run_.run(t0, t1, te, y_init[b])
                out[b] = ys_b.numpy()
                stats[b, :4] = seg.stats
                stats[b, 4] = seg.stiff_from_step
                n_events[b] = run_.n_events
            extra["n_events"] = torch.from_numpy(n_events)
        else:
            if batch > 1 and not prog.constant_state:  # a batch: one C loop per shard (.ensemble)
                rows, shards = run_rows(lib, p_np, y_np, atol, t_np, t0, t1, c, METHODS[self.method], self.workers)
                out, stats, status = rows.out, rows.stats, rows.status
            solve = integrator()
            for b in range(batch if batch == 1 and not prog.constant_state else 0):
                status[b] = solve(lib.bind, lib.rhs, lib.jac or None, lib.n_states, lib.n_bound, p_np[b].ctypes.data,
                                  y_np[b].ctypes.data, t0, t1, t_np.ctypes.data, n_t, c.rtol,
                                  atol[b].ctypes.data, c.dt0 or 0.0, c.dt_max or 0.0, c.dt_min, c.max_steps,
                                  METHODS[self.method], out[b].ctypes.data, stats[b].ctypes.data)
            if prog.constant_state:  # nothing moves (values may be INF/NaN), as the torch path has it
                out[:] = y_np[:, None, :]
        ys = torch.from_numpy(out)
        tt = te[None, :].expand(batch, -1)
        with torch.no_grad():
            values = prog.observe(tt, ys, p[:, None, :]) if prog.output_names else ys[..., :0]
        st = torch.from_numpy(stats)
        return Solution(values, te, list(prog.output_names), torch.from_numpy(status), {
            "n_steps": st[:, 0], "n_rejected": st[:, 1], "n_rhs": st[:, 2], "n_jacobians": st[:, 3],
            "stiff_from_step": st[:, 4], **extra}, solver=self.name, method=self.method,
            meta={"model": prog.model.name, "library": str(lib.path), "compile_s": lib.build_s,
                  "library_cached": lib.cached, "shards": shards})
