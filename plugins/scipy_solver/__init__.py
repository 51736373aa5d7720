"""The ``scipy`` solver plugin: :class:`~.solver.ScipySolver` and the functional
:func:`~.integrator.integrate` (the integrator interface the SBML event driver takes)."""
from .integrator import ScipyIntegrator, integrate

__all__ = ["ScipyIntegrator", "integrate"]
