"""Spiking networks on torch: :class:`Network` (populations, synapses, Poisson input,
monitors, export/import), the clock-driven :class:`Engine` and the benchmark builders."""
from .builders import cobahh, cuba, cuba_from_instance
from .engine import Engine
from .integrators import METHODS, build_step
from .network import Network, PoissonGroup, Population, StateMonitor, Synapses, TimedArray

__all__ = ["METHODS", "Engine", "Network", "PoissonGroup", "Population", "StateMonitor", "Synapses", "TimedArray",
           "build_step", "cobahh", "cuba", "cuba_from_instance"]
