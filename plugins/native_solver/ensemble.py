"""Native ensembles: a batch of parameter sets / initial states through a model's compiled
library, in one C call per process, the processes forked workers.

Batches of :data:`~.lanes.LANES` or more with method ``auto`` or ``dopri5`` run in lockstep
(``lanes.c``, :mod:`.lanes`): 8 samples per dopri5 step, the model's right-hand side evaluated
for all of them at once with its math functions vectorised, each sample within the
integration's tolerance of its single run (bit for bit for models without math functions).
Others run sample by sample (``ensemble.c``: the integrator's ``neuroplex_solve`` per row, as one
call per trajectory does, :class:`~.solver.NativeSolver` with one sample), each sample equal to
its single run bit for bit. What costs is the integration itself: about 0.15 / 0.3 ms per sample
of BIOMD0000000012 / -020 on one loaded core in lockstep (twice that sample by sample), against a
model library that compiles in about a second, which is what makes it the ensemble path that pays
off from the first call (a ``torch.compile`` fused step costs tens of seconds to build before its
first sample, :mod:`neuroplex.plugins.torch_solver`).

``workers > 1`` runs the batch in that many processes (fewer where one would get under
:data:`MIN_SHARD` samples) forked from this one (:func:`neuroplex.shards.map_shards`: they
inherit the loaded libraries). They claim rows :data:`CHUNK` at a time from a counter they share
(so stiff samples or a busy core do not leave one process running alone at the end) and write
them in place into outputs the processes share (:func:`neuroplex.shards.shared_empty`, mappings
reused between calls), so nothing is pickled back; results do not depend on the number of
workers. The outputs are stored state-major (each state's column contiguous), the layout in
which the SBML program computes its output expressions from them fastest.
"""
from __future__ import annotations

import ctypes
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import torch

from neuroplex.settings import StepControl
from neuroplex.shards import map_shards, shared_empty

from .lanes import LANES, lanes_loop, lanes_rhs
from .library import NativeLibrary, built_library, integrator

#: fewest samples per shard worth a worker process (as the torch path's SBML shards)
MIN_SHARD = 64
#: the integrator's methods the lockstep loop runs (``auto`` and ``dopri5``; ``rodas4`` runs sample
#: by sample)
LOCKSTEP_METHODS = (0, 1)
#: rows a process claims at a time from the shared counter (``ensemble.c``): small enough that
#: the processes end within a chunk's time of each other, large enough that claiming is free
CHUNK = 16
_P = ctypes.c_void_p
_I = ctypes.c_int64
_D = ctypes.c_double
#: ``neuroplex_solve_rows``'s arguments (``ensemble.c``)
_SIGNATURE = [_P, _P, _P, _P, _I, _I, _I, _P, _I, _P, _D, _D, _P, _I, _D, _P, _I, _D, _D, _D, _I, _I, _P, _P, _P,
              _P, _I]


def batch_source() -> str:
    """The batch loop's C source (``ensemble.c`` beside this module)."""
    return resources.files(__package__).joinpath("ensemble.c").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def batch_loop() -> ctypes._CFuncPtr:
    """``neuroplex_solve_rows`` (built once per machine, loaded once per process)."""
    fn = built_library("ensemble", batch_source()).neuroplex_solve_rows
    fn.restype = ctypes.c_int64
    fn.argtypes = _SIGNATURE
    return fn


@dataclass(frozen=True)
class Rows:
    """A batch's inputs and outputs as float64/int64 arrays: ``params (B, P)``, ``y0 (B, n)``,
    ``atol (B, n)`` or ``(1, n)`` (one row for all), ``t_eval (n_t,)`` (C-contiguous); ``out
    (B, n_t, n)`` (state-major in memory: ``out[..., i]`` is contiguous, see ``ensemble.c``),
    ``stats (B, 5)`` (steps, rejected steps, right-hand sides, Jacobians, step of the switch to
    RODAS4), ``status (B,)`` (the integrator's codes); ``next (1,)`` the shared row counter."""

    params: np.ndarray
    y0: np.ndarray
    atol: np.ndarray
    t_eval: np.ndarray
    out: np.ndarray
    stats: np.ndarray
    status: np.ndarray
    next: np.ndarray


def solve_rows(lib: NativeLibrary, rows: Rows, t0: float, t1: float, control: StepControl, method: int,
               lanes: int | None = None) -> int:
    """Integrate the rows of ``rows`` not yet claimed from its counter, in one C call (writes
    their outputs in place): in lockstep (``lanes.c``) where ``lanes`` (the model's
    ``model_rhs_lanes``, :func:`.lanes.lanes_rhs`) is given and the method is ``auto`` or
    ``dopri5``, else sample by sample (``ensemble.c``); how many rows this call ran."""
    batch, n, n_t, c = rows.y0.shape[0], lib.n_states, rows.t_eval.shape[0], control
    atol_stride = n if rows.atol.shape[0] > 1 else 0
    solve = ctypes.cast(integrator(), ctypes.c_void_p).value
    common = (batch, rows.params.ctypes.data, rows.params.shape[1], rows.y0.ctypes.data, t0, t1,
              rows.t_eval.ctypes.data, n_t, c.rtol, rows.atol.ctypes.data, atol_stride, c.dt0 or 0.0, c.dt_max or 0.0,
              c.dt_min, c.max_steps, method, rows.out.ctypes.data, rows.stats.ctypes.data, rows.status.ctypes.data,
              rows.next.ctypes.data, CHUNK)
    if lanes is not None and method in LOCKSTEP_METHODS and n > 0:
        done = lanes_loop()(solve, lib.bind, lib.rhs, lib.jac or None, lanes, n, lib.n_bound, rows.params.shape[1],
                            *common)
    else:
        done = batch_loop()(solve, lib.bind, lib.rhs, lib.jac or None, n, lib.n_bound, *common)
    if done < 0:
        raise MemoryError("native ensemble: no memory for a sample's outputs")
    return int(done)


def shard_count(batch: int, workers: int) -> int:
    """How many shards a batch runs in: ``workers``, fewer where a shard would have under
    :data:`MIN_SHARD` samples (at least one)."""
    return max(1, min(int(workers), batch // MIN_SHARD))


def _libraries(lib: NativeLibrary, lockstep: bool) -> int | None:
    """Build (or load) what a batch runs on, here, so forked workers inherit it: the integrator,
    both loops and the model's lane build (on any batch of the model: a pilot of a few samples
    then pays what a large batch would), the compilers of those not cached running at once
    (on a cold cache the integrator and the lockstep loop take seconds each); the address of
    ``model_rhs_lanes`` or None."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        jobs = [pool.submit(integrator), pool.submit(batch_loop)]
        lanes = pool.submit(lanes_rhs, lib) if lockstep else None
        loop = pool.submit(lanes_loop) if lockstep else None
        for job in jobs:
            job.result()
        address = lanes.result() if lanes is not None else None
        if address is not None and loop is not None:
            loop.result()
    return address


def run_rows(lib: NativeLibrary, params: np.ndarray, y0: np.ndarray, atol: np.ndarray, t_eval: np.ndarray,
             t0: float, t1: float, control: StepControl, method: int, workers: int = 1, *,
             lockstep: bool = True) -> tuple[Rows, int]:
    """Integrate every row (``params (B, P)``, ``y0 (B, n)``, ``atol (B, n)`` or ``(1, n)``) over
    ``(t0, t1)`` with outputs at ``t_eval``, in :func:`shard_count` processes claiming rows as
    they go, in lockstep where the model and method allow it (``lockstep=False``: sample by
    sample, each row then equal to its one-trajectory run bit for bit); the rows with their
    outputs, and the number of processes."""
    batch, n, n_t = y0.shape[0], lib.n_states, t_eval.shape[0]
    shards = shard_count(batch, workers)
    # outputs in shared memory (reused from earlier calls where free: no page faults) that
    # forked workers write in place; the counter starts at row 0
    out = shared_empty((n, batch, n_t), reuse=True).numpy().transpose(1, 2, 0)
    stats = shared_empty((batch, 5), torch.int64, reuse=True).numpy()
    status = shared_empty((batch,), torch.int64, reuse=True).numpy()
    counter = shared_empty((1,), torch.int64).numpy()
    counter[0] = 0
    rows = Rows(np.ascontiguousarray(params, np.float64), np.ascontiguousarray(y0, np.float64),
                np.ascontiguousarray(atol, np.float64), np.ascontiguousarray(t_eval, np.float64), out, stats, status,
                counter)
    lanes = _libraries(lib, lockstep and method in LOCKSTEP_METHODS)
    lanes = lanes if batch >= LANES else None

    def shard(i: int) -> int:
        return solve_rows(lib, rows, t0, t1, control, method, lanes)

    map_shards(shard, shards)
    return rows, shards
