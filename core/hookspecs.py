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

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from .host import Registrar
    from .kinds import Model
    from .solution import Solution
    from .solver import Solver

hookspec = pluggy.HookspecMarker("neuroplex")
hookimpl = pluggy.HookimplMarker("neuroplex")


@hookspec
def register_neurons(register: Registrar) -> None:
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
def register_learning_rules(register: Registrar) -> None:
    """Register learning rules: objects implementing :class:`neuroplex.trainer.LearningRule`
    (or a factory returning one). Example: ``register(EqPropRule, name="eqprop")``.

    :param register: the host's :class:`~neuroplex.host.Registrar` for learning rules.
    """


@hookspec
def register_solvers(register: Registrar) -> None:
    """Register solver classes (subclasses of :class:`neuroplex.solver.Solver`).

    The solver's typed constructor takes its settings; ``name`` defaults to ``cls.name``.
    Example: ``register(TorchSolver)`` makes ``simulate(model, ..., solver="torch")`` work.

    :param register: the host's :class:`~neuroplex.host.Registrar` for solvers.
    """


@hookspec
def register_importers(register: Registrar) -> None:
    """Register model importers: :class:`neuroplex.api.Importer` objects that read a file
    (selected by suffix) into a :class:`neuroplex.ir.ModelIR`. Example:
    ``register(Importer(name="sbml", suffixes=(".xml", ".sbml"), load=read_sbml))``.

    :param register: the host's :class:`~neuroplex.host.Registrar` for importers.
    """


@hookspec
def register_tasks(register: Registrar) -> None:
    """Register tasks: datasets, environments and benchmarks, as zero-argument factories
    or callables taking options. Example: ``register(load_digits_task, name="digits")``.

    :param register: the host's :class:`~neuroplex.host.Registrar` for tasks.
    """


@hookspec
def register_runners(register: Registrar) -> None:
    """Register who runs a model kind on a solver: :class:`neuroplex.runners.Runner` objects.

    A solver runs the kinds in its ``accepts`` itself; a model kind with its own semantics
    (SBML events, clock-driven spiking networks) is run on a solver by the runner registered
    for ``(kind, solver)``, which receives the solver instance (its ``control``/``execution``
    and, for ODE solvers, ``solver.integrator()``). One runner per pair.

    :param register: the host's :class:`~neuroplex.host.Registrar` for runners.

    Example::

        @hookimpl
        def register_runners(register):
            register(Runner(kind="sbml", solver="torch", run=run_sbml))
    """


@hookspec
def register_commands(cli: click.Group) -> None:
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
def neuroplex_simulation_start(model: Model, solver: Solver, options: dict[str, Any]) -> None:
    """Called by :func:`neuroplex.simulate` / :func:`neuroplex.equilibrate` before a solve.

    :param model: the resolved model (a ModelIR or Dynamics).
    :param solver: the solver instance about to run.
    :param options: ``{"t_span": (t0, t1), "kind": "simulate"}`` or ``{"kind": "equilibrate"}``.
    """


@hookspec
def neuroplex_simulation_finish(model: Model, solver: Solver, solution: Solution) -> None:
    """Called after a solve with its :class:`neuroplex.solution.Solution`.

    :param model: the model that was solved.
    :param solver: the solver instance that ran.
    :param solution: the result (before ``throw=True`` raises on failed samples).
    """
