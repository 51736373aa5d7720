"""``Brian2Solver``: run neuroplex models on Brian2 (``solver="brian2"``)."""
from __future__ import annotations

from typing import Any, ClassVar, Sequence

import torch

from neuroplex.dynamics import Dynamics
from neuroplex.errors import ModelError, NeuroplexError
from neuroplex.features import check_placement
from neuroplex.ir import ModelIR
from neuroplex.settings import as_dtype
from neuroplex.solution import Solution
from neuroplex.solver import Solver

from .session import TARGETS
from .translate import brian_method


class Brian2Solver(Solver):
    """Brian2 reference simulator for spiking neurons and networks (translates the IR).

    Settings: ``method`` (Brian2 names: exact, euler, exponential_euler, rk2, rk4, heun;
    default: the model's ``metadata["method"]`` or Brian2's choice), ``dt`` (model time
    units; default 0.1 ms), ``target`` (``auto``, Brian2's own default: Cython where it compiles,
    else numpy, as Brian2 decides | ``cython`` | ``numpy`` | ``cpp_standalone``; the solution's
    ``meta["target"]`` names the target that ran),
    ``dtype`` (``float64`` | ``float32``), ``units`` (``auto`` | ``si`` | ``none``, see
    :mod:`~neuroplex.plugins.brian2_backend.translate`), ``seed`` (Brian2's RNG, for Poisson
    input), ``directory`` (the ``cpp_standalone`` project folder: reused, Brian2 rebuilds only
    what changed; default a fresh temporary folder per run). brian2 is imported only when a
    model is run.
    """

    name: ClassVar[str] = "brian2"
    capabilities: ClassVar[frozenset[str]] = frozenset({"simulate"})
    accepts: ClassVar[frozenset[str]] = frozenset({"ir", "dynamics", "network"})
    #: threshold/reset events (``NeuronGroup(threshold=, reset=)``, spikes recorded) and refractory
    #: periods (``refractory=``, states clamped ``(unless refractory)``)
    supports: ClassVar[frozenset[str]] = frozenset({"events", "spikes", "refractory"})
    devices: ClassVar[frozenset[str]] = frozenset({"cpu"})
    dtypes: ClassVar[frozenset[str]] = frozenset({"float32", "float64"})
    methods: ClassVar[Sequence[str]] = ("exact", "euler", "exponential_euler", "rk2", "rk4", "heun")

    def __init__(self, method: str | None = None, dt: float | None = None, target: str = "auto",
                 dtype: str | torch.dtype = "float64", units: str = "auto", seed: int | None = None,
                 device: Any = None, directory: str | None = None):
        if method is not None:
            brian_method(method)
        if target not in TARGETS:
            raise NeuroplexError(f"brian2 target must be one of {', '.join(TARGETS)}, not {target!r}")
        check_placement(self, device, dtype)
        dtype = str(as_dtype(dtype)).replace("torch.", "")
        if units not in ("auto", "si", "none"):
            raise NeuroplexError(f"brian2 units must be auto, si or none, not {units!r}")
        if dt is not None and dt <= 0:
            raise NeuroplexError(f"brian2 dt must be positive, got {dt}")
        self.method = method
        self.dt = dt
        self.target = target
        self.dtype = dtype
        self.units = units
        self.seed = seed
        self.directory = None if directory is None else str(directory)

    def simulate(self, model: Any, t_span: tuple[float, float], *, y0: torch.Tensor | None = None,
                 params: torch.Tensor | None = None, t_eval: torch.Tensor | None = None,
                 inputs: torch.Tensor | None = None, progress: bool = False) -> Solution:
        if isinstance(model, ModelIR):
            from .neuron_run import run_neuron

            return run_neuron(model, t_span, dt=self.dt, method=self.method, target=self.target, dtype=self.dtype,
                              units=self.units, y0=y0, params=params, inputs=inputs, t_eval=t_eval,
                              progress=progress, directory=self.directory)
        from .network_run import is_network, run_network

        if is_network(model):
            if y0 is not None or params is not None or inputs is not None:
                raise NeuroplexError("brian2: a network carries its own initial state and parameters "
                                     "(y0/params/inputs apply to single-neuron models)")
            return run_network(model, t_span, dt=self.dt, method=self.method, target=self.target,
                               dtype=self.dtype, units=self.units, seed=self.seed, t_eval=t_eval,
                               progress=progress, directory=self.directory)
        if isinstance(model, Dynamics):
            raise ModelError(f"brian2 needs the model IR (equations), not compiled dynamics {model.name!r}")
        raise ModelError(f"brian2 cannot simulate a {type(model).__name__}")


__all__ = ["Brian2Solver"]
