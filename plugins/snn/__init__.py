"""Spiking networks: :class:`Network` (populations, synapses, Poisson input, monitors,
export/import), the clock-driven :class:`Engine` (generated C, or torch code on other devices)
and the benchmark builders. This module's names are the plugin's public API; other plugins
use these, not the submodules."""
from .builders import BUILDERS, cobahh, cuba, cuba_from_instance, poisson_trains, song_neuron, song_stdp
from .elements import (PoissonGroup, PoissonInput, Population, SpikeGeneratorGroup, StateMonitor, Synapses,
                       TimedArray, timestep)
from .engine import BACKENDS, Engine
from .integrators import METHODS, build_step
from .network import Network
from .plasticity import SynapseModel, parse_statement, stdp_additive, stdp_multiplicative, triplet_stdp
from .results import population_rate, population_spikes
from .stats import spike_stats
from .synapse_equations import synapse_from_equations

__all__ = ["BACKENDS", "BUILDERS", "METHODS", "Engine", "Network", "PoissonGroup", "PoissonInput", "Population",
           "SpikeGeneratorGroup", "StateMonitor", "SynapseModel", "Synapses", "TimedArray", "build_step", "cobahh",
           "cuba", "cuba_from_instance", "parse_statement", "poisson_trains", "population_rate", "population_spikes",
           "song_neuron", "song_stdp", "spike_stats", "stdp_additive", "stdp_multiplicative", "synapse_from_equations",
           "timestep", "triplet_stdp"]
