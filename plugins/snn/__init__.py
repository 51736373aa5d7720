"""Spiking networks: :class:`Network` (populations, synapses, Poisson input, monitors,
export/import), the clock-driven :class:`Engine` (generated C, or torch code on other devices)
and the benchmark builders. This module's names are the plugin's public API; other plugins
use these, not the submodules."""
from .builders import BUILDERS, cobahh, cuba, cuba_from_instance
from .elements import PoissonGroup, Population, StateMonitor, Synapses, TimedArray
from .engine import BACKENDS, Engine
from .integrators import METHODS, build_step
from .network import Network
from .stats import spike_stats

__all__ = ["BACKENDS", "BUILDERS", "METHODS", "Engine", "Network", "PoissonGroup", "Population", "StateMonitor",
           "Synapses", "TimedArray", "build_step", "cobahh", "cuba", "cuba_from_instance", "spike_stats"]
