"""Example neuroplex plugin: a QIF neuron, a forward-Euler solver, a delta rule, a task, commands."""
__version__ = "0.2.0"
