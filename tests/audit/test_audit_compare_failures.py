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
