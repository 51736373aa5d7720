"""SBML events on the compiled path: the C integrator runs each stretch between events, and the
SBML event semantics of the torch path (:class:`neuroplex.sbml.events.SampleRun`: initial
trigger values, persistence, priorities, delays, ``useValuesFromTriggerTime``, assignments)
decide what happens at each stop.

:class:`Segments` is the :class:`~neuroplex.integration.Integrator` a ``SampleRun`` drives for
one sample: every call runs ``neuroplex_solve_events`` (``integrator.c``) from the current
point to the next scheduled execution (or the end), stopping where a column of the compiled
trigger atoms ``[g, -g] - zero_shift`` crosses from < 0 to >= 0, located on the step's dense
output as the torch loop locates it (the torch solver's ``locate_events`` is its batched twin).
:class:`Bound` gives the run the same compiled atom values at its stops, so the side an atom
crossed to is the side the integrator saw (and the compiled right-hand side, so no torch one
is built). Events are rare next to steps: the
Python work per stop (triggers, queue, assignments in torch) is what the torch path does too.
"""
from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
import torch

from neuroplex.integration import EventFn, IntegrationResult, Rhs
from neuroplex.settings import StepControl

from .library import NativeLibrary, event_integrator

_ATOMS = ctypes.CFUNCTYPE(None, ctypes.c_double, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
_BIND = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)


class Bound:
    """One sample's compiled functions with its parameters ``p`` bound (``model_bind`` once):
    :meth:`atoms`, the trigger atoms ``lhs - rhs``, and :meth:`rhs`, the right-hand side."""

    def __init__(self, lib: NativeLibrary, p: np.ndarray):
        self.p = np.ascontiguousarray(p, dtype=np.float64)
        self.k = np.zeros(max(lib.n_bound, 1))
        _BIND(lib.bind)(self.p.ctypes.data, self.k.ctypes.data)
        self.atoms_fn = _ATOMS(lib.atoms)
        self.rhs_fn = _ATOMS(lib.rhs)  # the same C signature: (t, y, p, k, out)
        self.g = np.zeros(max(lib.n_atoms, 1))
        self.n_atoms, self.n = lib.n_atoms, lib.n_states

    def atoms(self, t: float, y: torch.Tensor) -> list[float]:
        """``lhs - rhs`` of every trigger atom at ``t`` and ``y (1, n)``."""
        y_np = np.ascontiguousarray(y.detach().reshape(-1).numpy(), dtype=np.float64)
        self.atoms_fn(float(t), y_np.ctypes.data, self.p.ctypes.data, self.k.ctypes.data, self.g.ctypes.data)
        return self.g[:self.n_atoms].tolist()

    def rhs(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``dy/dt`` at ``t (B,)``, ``y (B, n)`` (row by row in C)."""
        y_np = np.ascontiguousarray(y.detach().numpy(), dtype=np.float64).reshape(-1, self.n)
        t_np = np.broadcast_to(np.asarray(t.detach().numpy(), dtype=np.float64).reshape(-1), (y_np.shape[0],))
        out = np.empty_like(y_np)
        for b in range(y_np.shape[0]):
            self.rhs_fn(float(t_np[b]), y_np[b].ctypes.data, self.p.ctypes.data, self.k.ctypes.data, out[b].ctypes.data)
        return torch.from_numpy(out)


class Segments:
    """One sample's compiled integration between events (see the module docstring).

    ``p`` the sample's parameters, ``atol`` its per-state absolute tolerances, ``method`` the
    native method code (``auto`` carries the stiffness it found into later segments: once a
    segment switched to RODAS4 the rest run RODAS4). ``run``: the ``SampleRun`` driving it
    (set once made), whose ``zero_shift`` the columns subtract. Totals over the segments:
    ``stats`` (steps, rejected, right-hand sides, Jacobians) and ``stiff_from_step``."""

    def __init__(self, lib: NativeLibrary, p: np.ndarray, atol: np.ndarray, method: int):
        self.lib = lib
        self.p = np.ascontiguousarray(p, dtype=np.float64)
        self.atol = np.ascontiguousarray(atol, dtype=np.float64).reshape(-1)
        self.method = method
        self.run: Any = None
        self.stats = np.zeros(4, dtype=np.int64)
        self.stiff_from_step = -1
        self.solve = event_integrator()

    def __call__(self, f: Rhs, t0: float, t1: float, y0: torch.Tensor, *, method: str, control: StepControl,
                 t_eval: torch.Tensor | None = None, atol: float | torch.Tensor | None = None,
                 event_fn: EventFn | None = None, progress: bool = False, stiff_stop: bool = False,
                 stiff_budget: int | None = None) -> IntegrationResult:
        lib = self.lib
        n = lib.n_states
        y = np.ascontiguousarray(y0.detach().reshape(-1).numpy(), dtype=np.float64)
        te = np.ascontiguousarray(t_eval.numpy(), dtype=np.float64) if t_eval is not None else np.zeros(0)
        n_t = te.shape[0]
        out = np.empty((n_t, n))
        na = lib.n_atoms if event_fn is not None else 0
        shift = np.zeros(max(2 * na, 1))
        if na:
            shift[:] = torch.as_tensor(self.run.zero_shift, dtype=torch.float64).expand(2 * na).numpy()
        stats = np.zeros(5, dtype=np.int64)
        t_end = ctypes.c_double(t0)
        y_end = np.array(y, copy=True)
        index = ctypes.c_int64(-1)
        method_code = 2 if self.stiff_from_step >= 0 and self.method == 0 else self.method
        status = self.solve(lib.bind, lib.rhs, lib.jac or None, lib.atoms if na else None, n, lib.n_bound, na,
                            self.p.ctypes.data, y.ctypes.data, float(t0), float(t1), te.ctypes.data, n_t,
                            control.rtol, self.atol.ctypes.data, control.dt0 or 0.0, control.dt_max or 0.0,
                            control.dt_min, control.max_steps, method_code, shift.ctypes.data, out.ctypes.data,
                            stats.ctypes.data, ctypes.byref(t_end), y_end.ctypes.data, ctypes.byref(index))
        if stats[4] >= 0 and self.stiff_from_step < 0:
            self.stiff_from_step = int(self.stats[0] + stats[4])
        self.stats += stats[:4]
        one = torch.ones(1, dtype=torch.long)
        return IntegrationResult(torch.from_numpy(te), torch.from_numpy(out)[None], torch.tensor([t_end.value], dtype=torch.float64),
                                 torch.from_numpy(y_end)[None], one * int(status), one * int(index.value),
                                 one * int(stats[0]), one * int(stats[2]))
