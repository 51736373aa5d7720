"""SBML event options on models run by the torch and scipy solvers' own event loops.

Before: an IR event with ``initial_value=False`` whose trigger holds at ``t0`` fired there on
scipy (x: 1 -> 11) but not on torch (x stayed 1), silently; the scipy solver ran events with
a delay at their trigger time, and both solvers ran events with a priority in list order,
silently. Now torch fires such events at ``t0`` too (logged as spikes at ``t0``), and both
refuse a delay or a priority, naming the event (the SBML driver implements them)."""
from __future__ import annotations

import pytest
import sympy
import torch

import neuroplex as nx
from neuroplex.errors import SolverError
from neuroplex.ir import Event, ModelIR, State, is_delayed


def _model(**options) -> ModelIR:
    return ModelIR(name="m", states=[State("x", 1.0), State("y", 0.0)], parameters=[],
                   derivatives={"x": 0, "y": 1}, events=[Event("E", "x > 0.5", {"x": "x + 10"}, **options)])


@pytest.mark.parametrize("method", ["dopri5", "rk4", "auto"])
def test_initial_value_false_fires_at_t0_on_torch_as_on_scipy(method):
    y0 = torch.tensor([[1.0, 0.0], [0.2, 0.0]], dtype=torch.float64)  # the trigger holds for sample 0 only
    sol = nx.simulate(_model(initial_value=False), (0.0, 1.0), y0=y0, n_points=3, method=method)
    ref = nx.simulate(_model(initial_value=False), (0.0, 1.0), y0=y0, n_points=3, solver="scipy")
    assert sol.ok and ref.ok
    assert sol["x"].tolist() == [[11.0] * 3, [0.2] * 3]
    torch.testing.assert_close(sol["x"], ref["x"])
    assert sol.spikes.sample.tolist() == [0] and sol.spikes.time.tolist() == [0.0]
    plain = nx.simulate(_model(), (0.0, 1.0), y0=y0, n_points=3, method=method)
    assert plain["x"].tolist() == [[1.0] * 3, [0.2] * 3] and len(plain.spikes) == 0


@pytest.mark.parametrize("solver", ["torch", "scipy"])
@pytest.mark.parametrize("option, word", [({"delay": 0.2}, "delay"), ({"priority": 1}, "priority")])
def test_delays_and_priorities_are_refused(solver, option, word):
    with pytest.raises(SolverError, match=f"event 'E' of model 'm' has a {word}"):
        nx.simulate(_model(**option), (0.0, 1.0), solver=solver, n_points=3)


def test_is_delayed_reads_none_zero_numbers_and_expressions():
    assert not is_delayed(None) and not is_delayed(0) and not is_delayed(0.0) and not is_delayed(sympy.Integer(0))
    assert is_delayed(0.2) and is_delayed(sympy.Symbol("d")) and is_delayed(sympy.Float(1e-3))
