"""The ``snn`` plugin: spiking networks on the clock-driven torch engine.

Registers the standard benchmark networks as tasks of kind ``network`` (``cuba``, ``cobahh``;
factories returning a :class:`~neuroplex.plugins.snn.network.Network`). A Network runs through
``network.run(duration)`` or the torch solver (``neuroplex.simulate(network, (0, T),
solver="torch", dt=1e-4)``, through the ``network`` runner of :mod:`.runner`).

Registers the spiking learning rules ``stdp``, ``stdp_multiplicative`` and ``triplet_stdp``:
factories of plastic :class:`~neuroplex.plugins.snn.plasticity.SynapseModel` objects given to
``Network.connect(model=...)``. They learn while the network runs (unsupervised), so they are
synapse descriptions, not :class:`~neuroplex.trainer.Trainer` rules.
"""
from __future__ import annotations

from typing import Any

from neuroplex.hookspecs import hookimpl

from . import builders
from .plasticity import RULES
from .runner import RUNNERS


@hookimpl
def register_runners(register: Any) -> None:
    for runner in RUNNERS:
        register(runner)


@hookimpl
def register_tasks(register: Any) -> None:
    for name, builder in builders.BUILDERS.items():
        register(builder, name=name, kind="network")


@hookimpl
def register_learning_rules(register: Any) -> None:
    for name, factory in RULES.items():
        register(factory, name=name)
