"""Example neuroplex plugin: a QIF neuron and a forward-Euler solver."""
__version__ = "0.2.0"
