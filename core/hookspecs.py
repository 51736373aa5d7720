"""Hook specifications of the neuroplex plugin host.

Extension hooks follow the register-callback style (llm, datasette, tox): the host
calls each plugin's implementation on its own with a :class:`~neuroplex.host.Registrar`,
so every registered item records which plugin gave it and a failing plugin is isolated.
Lifecycle hooks are coarse (configure, simulation start/finish): never called inside
a time-stepping loop.

Implementations may accept a subset of a spec's arguments (pluggy), so arguments can be
added later without breaking plugins. Each hook has a section in ``docs/plugins.md``.
"""
from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("neuroplex")
hookimpl = pluggy.HookimplMarker("neuroplex")


@hookspec
def register_neurons(register: Any) -> None:
    """Register neuron models.

    ``register(factory, name=None, aliases=())`` where ``factory(**params)`` returns a
    :class:`neuroplex.ir.ModelIR` describing one neuron (equations with units, threshold,
    reset, refractory period).

    :param register: the host's :class:`~neuroplex.host.Registrar` for neurons.

    Example::

        @hookimpl
        def register_neurons(register):
            register(my_lif, name="my-lif")
    """


@hookspec
def register_learning_rules(register: Any) -> None:
    """Register learning rules: objects implementing :class:`neuroplex.trainer.LearningRule`
    (or a factory returning one). Example: ``register(EqPropRule, name="eqprop")``.

    :param register: the host's :class:`~neuroplex.host.Registrar` for learning rules.
    """


@hookspec
def register_solvers(register: Any) -> None:
    """Register solver classes (subclasses of :class:`neuroplex.solver.Solver`).

    The solver's typed constructor takes its settings; ``name`` defaults to ``cls.name``.
    Example: ``register(TorchSolver)`` makes ``simulate(model, ..., solver="torch")`` work.

    :param register: the host's :class:`~neuroplex.host.Registrar` for solvers.
    """


@hookspec
def register_importers(register: Any) -> None:
    """Register model importers: :class:`neuroplex.api.Importer` objects that read a file
    (selected by suffix) into a :class:`neuroplex.ir.ModelIR`. Example:
    ``register(Importer(name="sbml", suffixes=(".xml", ".sbml"), load=read_sbml))``.

    :param register: the host's :class:`~neuroplex.host.Registrar` for importers.
    """


@hookspec
def register_tasks(register: Any) -> None:
    """Register tasks: datasets, environments and benchmarks, as zero-argument factories
    or callables taking options. Example: ``register(load_digits_task, name="digits")``.

    :param register: the host's :class:`~neuroplex.host.Registrar` for tasks.
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add sub-commands to the ``neuroplex`` click group.

    :param cli: the ``neuroplex`` :class:`click.Group`.

    Example::

        @hookimpl
        def register_commands(cli):
            @cli.command()
            def hello():
                click.echo("hi")
    """


@hookspec(historic=True)
def neuroplex_configure(config: dict[str, Any]) -> None:
    """Called once after all plugins are loaded, with the host configuration
    (loggers and profilers read settings here).

    :param config: ``{"strict": bool}``, the host's settings.
    """


@hookspec
def neuroplex_simulation_start(model: Any, solver: Any, options: dict[str, Any]) -> None:
    """Called by :func:`neuroplex.simulate` / :func:`neuroplex.equilibrate` before a solve.

    :param model: the resolved model (a ModelIR or Dynamics).
    :param solver: the solver instance about to run.
    :param options: ``{"t_span": (t0, t1), "kind": "simulate"}`` or ``{"kind": "equilibrate"}``.
    """


@hookspec
def neuroplex_simulation_finish(model: Any, solver: Any, solution: Any) -> None:
    """Called after a solve with its :class:`neuroplex.solution.Solution`.

    :param model: the model that was solved.
    :param solver: the solver instance that ran.
    :param solution: the result (before ``throw=True`` raises on failed samples).
    """
