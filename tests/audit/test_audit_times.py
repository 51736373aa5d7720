"""Output times no solver can honour are refused before any run, on every path.

Before: ``t_eval`` past the end of ``t_span`` (or before its start, or NaN) gave NaN rows with a
successful status on the torch path (SBML models with a method or a batch, IR models, neurons)
and on scipy, while the native path refused the same call; a backward span ran on scipy and
returned NaN with a successful status."""
from __future__ import annotations

import pytest

import neuroplex as nx
from neuroplex.errors import NeuroplexError, SolverError

#: an SBML model (default: native path; ``method=``: torch path), an IR neuron, scipy
CALLS = [("fitzhugh_nagumo", {}), ("fitzhugh_nagumo", {"method": "rk4", "dt": 0.1}),
         ("fitzhugh_nagumo", {"solver": "scipy"}), ("lif", {})]


@pytest.mark.parametrize("model, options", CALLS)
def test_output_times_outside_the_span_are_refused(model, options):
    with pytest.raises(NeuroplexError, match=r"t_eval\[2\] = 20.0 lies outside t_span \(0.0, 10.0\)"):
        nx.simulate(model, (0.0, 10.0), t_eval=[0.0, 5.0, 20.0], **options)
    with pytest.raises(NeuroplexError, match=r"t_eval\[0\] = -1.0 lies outside"):
        nx.simulate(model, (0.0, 10.0), t_eval=[-1.0, 5.0], **options)
    with pytest.raises(NeuroplexError, match="not finite"):
        nx.simulate(model, (0.0, 10.0), t_eval=[float("nan"), 5.0], **options)
    with pytest.raises(SolverError, match="t_eval must be increasing"):
        nx.simulate(model, (0.0, 10.0), t_eval=[5.0, 1.0], **options)
    with pytest.raises(NeuroplexError, match="runs backward"):
        nx.simulate(model, (10.0, 0.0), t_eval=[10.0, 5.0, 0.0], **options)


def test_times_inside_the_span_run_including_repeated_and_end_points():
    sol = nx.simulate("fitzhugh_nagumo", (2.0, 10.0), t_eval=[2.0, 2.0, 7.5, 10.0])
    assert sol.ok and sol.ys.shape[1] == 4 and bool(sol.ys.isfinite().all())
    assert float((sol.ys[0, 0] - sol.ys[0, 1]).abs().max()) == 0.0
