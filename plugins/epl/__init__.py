"""Equilibrium Point Learning (EPL): the physical energy dynamical system, its reduced form,
BioModels imported into it through SBML, and learning between equilibria.

Public names: :class:`EnergySystem`, :class:`Flows`, :class:`EPLDynamics`, :func:`relax`,
:func:`trajectory`, :func:`build` / :class:`RDS` / :class:`RDSPopulation` (the reduced system from a
JSON/TOML description), :func:`random_system`.
"""
from .dynamics import EPLDynamics, relax, trajectory
from .random import conservation_matrix, random_description, random_system
from .rds import RDS, RDSPopulation, build, load_description, save_description
from .sbml_import import EPLImportError, ImportReport, from_sbml
from .system import FLOWS, EnergySystem, Flows

__all__ = ["EnergySystem", "Flows", "FLOWS", "EPLDynamics", "relax", "trajectory", "RDS", "RDSPopulation",
           "build", "load_description", "save_description", "random_system", "random_description", "conservation_matrix",
           "from_sbml", "EPLImportError", "ImportReport"]
