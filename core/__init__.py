"""neuroplex: a plugin host where SBML biomodels, spiking networks and energy-based learning
systems run on one batched PyTorch solver.

Scripting API::

    import neuroplex as nx
    sol = nx.simulate("repressilator", (0, 1000), n_points=1001)
    sol.plot(path="out/repressilator.png")
"""
from __future__ import annotations

__version__ = "0.1.0"

from .api import Importer, equilibrate, load_model, shipped_models, simulate, steady_state
from .dynamics import CompiledDynamics, Dynamics, EventFunction
from .errors import (ModelError, NeuroplexError, PluginConflictError, PluginError, SolverError,
                     UnknownNameError)
from .host import (PluginHost, get_host, get_importer, get_learning_rule, get_neuron, get_solver,
                   get_task, reset_host)
from .hookspecs import hookimpl
from .ir import Event, ModelIR, Parameter, State
from .solution import Solution, SpikeTrain, Status
from .solver import Solver
from .sweeps import sweep

__all__ = [
    "__version__", "CompiledDynamics", "Dynamics", "Event", "EventFunction", "Importer", "ModelError",
    "ModelIR", "NeuroplexError", "Parameter", "PluginConflictError", "PluginError", "PluginHost",
    "Solution", "Solver", "SolverError", "SpikeTrain", "State", "Status", "UnknownNameError",
    "equilibrate", "get_host", "get_importer", "get_learning_rule", "get_neuron", "get_solver",
    "get_task", "hookimpl", "load_model", "reset_host", "shipped_models", "simulate", "steady_state", "sweep",
]
