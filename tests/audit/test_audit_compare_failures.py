"""``neuroplex compare`` says when a solver failed.

Before: the table held only the largest differences, with no word of a failed run: a failure
showed as ``nan`` at best, and where two solvers failed at the same point (points NaN on both
sides count as equal) as small differences."""
from __future__ import annotations

from neuroplex.compare import compare
from neuroplex.sbml.antimony_loader import read_antimony_string

FAILING = """
compartment C = 1
species A in C = 1
R: A -> ; k * sqrt(A)
k = 2
"""
FINE = FAILING.replace("k * sqrt(A)", "k * A")


def test_the_table_names_failed_solvers():
    result = compare(read_antimony_string(FAILING), ["torch", "scipy"], t_span=3.0, n_points=7)
    text = result.table()
    assert "FAILED: torch: 1 of 1 sample(s)" in text and "FAILED: scipy: 1 of 1 sample(s)" in text
    assert not result.within(1e-3, 1e-6)


def test_no_line_when_every_run_succeeds():
    result = compare(read_antimony_string(FINE), ["torch", "scipy"], t_span=3.0, n_points=7)
    assert result.failures() == [] and "FAILED" not in result.table()


def test_compare_snn_report_names_diverged_runs():
    import numpy as np
    import torch

    import neuroplex as nx
    from neuroplex.plugins.brian2_backend.compare import compare_runs, format_report
    from neuroplex.plugins.snn import Network, TimedArray
    from neuroplex.units import mV

    values = torch.zeros(3000)
    values[1000:] = 0.5e-9
    runs = {}
    for backend in ("c", "torch"):  # RK4 at 0.1 ms diverges for this HH (the reference README)
        net = Network(dt=1e-4)
        hh = nx.get_neuron("traub_miles")(synapses=False, E_l=-65 * mV, v0=-65 * mV, refractory="threshold")
        net.add_population("N", hh, 1, method="rk4", inputs={"I": TimedArray(values, 1e-4)})
        net.monitor("N", ["v"])
        runs[backend] = net.run(0.3, dtype=torch.float64, backend=backend)
    assert np.isnan(runs["c"].ys.numpy()).any()
    report = compare_runs(runs, n_neurons=1, duration=0.3, dt=1e-4)
    assert report["pairs"]["c vs torch"]["exact_step_rate"] == 1.0  # the two diverged runs "agree"
    text = format_report(report)
    assert "FAILED: c: 1 sample(s) (nonfinite)" in text and "FAILED: torch: 1 sample(s) (nonfinite)" in text
