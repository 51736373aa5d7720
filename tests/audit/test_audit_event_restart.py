"""A segment that starts with a step carried below the integrator's floor is run again.

Before: in SBML Test Suite case 00885 the trigger ``S2 > S3`` re-crosses (for real: the event
drives ``S2`` down) two ulps after the event fires. ``SampleRun`` carried that segment's
"step size" (4.4e-16, one ulp of t) into the next segment as its first step, below the step
loop's own floor of ``10 eps |t|``: the run stopped with status DT_MIN and NaN for the rest
of the span on torch at ``atol=1e-11`` and on the native solver at ``atol=1e-14``. Now a
segment that fails at DT_MIN from a carried step runs again from its start-up step; the
chattering case 00374, whose noise stalls the carried step handles, keeps its 49 events."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import neuroplex as nx
from neuroplex.sbml.antimony_loader import read_antimony_string
from neuroplex.sbml.testsuite import read_results
from neuroplex.testing import require_data

CASE_00885 = """
compartment C = 1
species S1 in C = 0.01, S2 in C = 0.012, S3 in C = 0.02, S4 in C = 0.01
R1: S1 + S2 -> S3 + S4; k1 * S1 * S2 * C
R2: S3 + S4 -> S1 + S2; k2 * S3 * S4 * C
k1 = 7.5; k2 = 25; k3 = 0.02; k4 = 0.02
E1: at (S2 > S3): S1 = k3 * time, S4 = k4 * S1 * time
"""


def _expected() -> np.ndarray:
    _, data = read_results(require_data("sbml-test-suite", "00885", "00885-results.csv"))
    return data


@pytest.mark.parametrize("options", [
    {"method": "dopri5", "rtol": 1e-8, "atol": 1e-11},
    {"method": "rosenbrock", "rtol": 1e-8, "atol": 1e-11},
    {"method": "dopri5", "rtol": 1e-8, "atol": 1e-12},
    {"solver": "native", "rtol": 1e-10, "atol": 1e-14},
    {"solver": "native", "rtol": 1e-8, "atol": 1e-11},
])
def test_event_followed_by_a_real_crossing_one_ulp_later(options):
    data = _expected()
    model = read_antimony_string(CASE_00885)
    t = torch.tensor(data[:, 0], dtype=torch.float64)
    sol = nx.simulate(model, (0.0, 6.0), t_eval=t, **options)
    assert sol.ok, sol.status.tolist()
    assert int(sol.stats["n_events"][0]) == 1
    got = np.stack([sol[name][0].numpy() for name in ("S1", "S2", "S3", "S4")], axis=1)
    np.testing.assert_allclose(got, data[:, 1:], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("solver", ["torch", "native"])
def test_chattering_case_keeps_its_events(solver):
    root = require_data("sbml-test-suite", "00374")
    _, data = read_results(root / "00374-results.csv")
    t = torch.tensor(data[:, 0], dtype=torch.float64)
    options = {"method": "auto"} if solver == "torch" else {"solver": "native"}
    sol = nx.simulate(root / "00374-sbml-l3v2.xml", (0.0, 2.0), t_eval=t, rtol=1e-8, atol=1e-10, **options)
    assert sol.ok and int(sol.stats["n_events"][0]) == 49
    got = np.stack([sol[name][0].numpy() for name in ("S1", "S2", "S3", "S4")], axis=1)
    np.testing.assert_allclose(got, data[:, 1:], rtol=1e-4, atol=1e-6)
