"""The ``network`` runner: spiking networks (kind ``"network"``) on the torch solver, run by
the clock-driven engine (:mod:`.engine`) with the solver's settings.

``solver.control.dt0`` (the solver's ``dt``) overrides the network's ``dt``; ``solver.method``,
when one of the clock methods (:data:`.integrators.METHODS`), overrides each population's;
``solver.execution`` gives dtype (default float64) and device (default CPU).
"""
from __future__ import annotations

from typing import Any

import torch

from neuroplex.errors import NeuroplexError
from neuroplex.runners import Runner
from neuroplex.solution import Solution
from neuroplex.solver import Solver

from .integrators import METHODS
from .network import Network


def run_network(model: Network, solver: Solver, t_span: tuple[float, float], *, y0: torch.Tensor | None = None,
                params: torch.Tensor | None = None, t_eval: torch.Tensor | None = None,
                inputs: torch.Tensor | None = None, progress: bool = False) -> Solution:
    """Run ``model`` over ``t_span`` (which must start at 0: networks start from their initial
    state); ``t_eval`` picks the nearest recorded steps. ``params``/``y0``/``inputs`` are not
    used by networks (set population ``params``/``init`` and inputs on the network)."""
    if params is not None or y0 is not None or inputs is not None:
        raise NeuroplexError("a Network takes initial values and parameters per population "
                             "(add_population(init=..., params=...)), not y0/params/inputs")
    t0, t1 = float(t_span[0]), float(t_span[1])
    if t0 != 0.0:
        raise NeuroplexError(f"network {model.name!r}: t_span must start at 0, not {t0}")
    control, execution = solver.control, solver.execution
    dt = control.dt0 or model.dt
    method = solver.method if solver.method in METHODS else None
    dtype = execution.dtype or torch.float64
    device: Any = execution.device or "cpu"
    sol = model.run(t1 - t0, method=method, dtype=dtype, device=device, dt=dt, progress=progress)
    if t_eval is not None and sol.ts is not None and sol.ts.numel():
        t_eval = torch.as_tensor(t_eval, dtype=torch.float64)
        k = torch.clamp(torch.round(t_eval / dt).long(), 0, sol.ts.numel() - 1)
        sol.ys, sol.ts = sol.ys[:, k], sol.ts[k]
    sol.solver = solver.name
    return sol


RUNNERS = (Runner(kind="network", solver="torch", run=run_network, methods=tuple(METHODS),
                  description="clock-driven spiking network engine"),)
