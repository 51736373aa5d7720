"""Every curated BioModel in the shared data: the torch solver agrees with roadrunner.

Pass rule (the issue's target): ``|torch - roadrunner| <= 1e-8 + 1e-4 |roadrunner|`` at each of
1000 output points of every variable both report, both solvers at tight tolerances.

Spans and torch methods, one row per model (time in the model's own unit; a model added to the
shared data without a row runs with :data:`DEFAULT`). The spans are the
0..100 window the shared data's README uses for its roadrunner reference runs, which covers
at least one full cycle/transient of each model (spikes of the neuron models in ms, the
oscillators' periods, the signalling transients); ``rosenbrock`` (linearly implicit, with the
model's generated symbolic Jacobian) is used for the stiff models, ``dopri5`` for the rest.
"""
from __future__ import annotations

import pytest
import torch

import neuroplex
from neuroplex.config import data_dir
from neuroplex.testing import require_data

pytest.importorskip("roadrunner")
pytestmark = [pytest.mark.slow, pytest.mark.roadrunner]

#: model id -> (end time, torch method, torch rtol, note); torch's atol is ``rtol * 1e-4``. Species
#: in tiny compartments (BIOMD0000000001: 1e-16) need no special tolerance: the driver scales
#: ``atol`` by the compartment size per state. rtol 1e-9 by default; 1e-8 / 1e-7 where that
#: still agrees with a margin (measured worst error / limit <= 0.2) and keeps the run short.
SPANS: dict[str, tuple[float, str, float, str]] = {
    "BIOMD0000000001": (100.0, "rosenbrock", 1e-9, "ACh receptor, event at t2=20; stiff (rates up to 3e3)"),
    "BIOMD0000000003": (100.0, "rosenbrock", 1e-8, "mitotic oscillator, ~3 periods"),
    "BIOMD0000000005": (100.0, "rosenbrock", 1e-9, "Tyson cell cycle, stiff"),
    "BIOMD0000000007": (100.0, "rosenbrock", 1e-7, "Novak cell cycle, delayed event"),
    "BIOMD0000000009": (100.0, "rosenbrock", 1e-9, "MAPK cascade, stiff mass action"),
    "BIOMD0000000010": (100.0, "dopri5", 1e-9, "MAPK oscillations (transient part)"),
    "BIOMD0000000012": (100.0, "dopri5", 1e-9, "repressilator, ~2 periods"),
    "BIOMD0000000019": (100.0, "rosenbrock", 1e-7, "EGF-MAPK, 100 species, stiff"),
    "BIOMD0000000020": (100.0, "dopri5", 1e-9, "Hodgkin-Huxley, ms"),
    "BIOMD0000000021": (100.0, "rosenbrock", 1e-9, "circadian clock, h"),
    "BIOMD0000000028": (100.0, "rosenbrock", 1e-9, "Markevich MAPK, stiff"),
    "BIOMD0000000035": (100.0, "rosenbrock", 1e-7, "Vilar oscillator, stiff"),
    "BIOMD0000000039": (100.0, "rosenbrock", 1e-8, "Marhl Ca oscillations"),
    "BIOMD0000000040": (100.0, "rosenbrock", 1e-9, "Oregonator, relaxation oscillations (roadrunner needs tight tolerances)"),
    "BIOMD0000000064": (100.0, "rosenbrock", 1e-7, "Teusink glycolysis, stiff"),
    "BIOMD0000000075": (100.0, "rosenbrock", 1e-9, "Xu phosphoinositide, piecewise stimulus"),
    "BIOMD0000000081": (100.0, "rosenbrock", 1e-9, "KCNQ, delayed events at 3 and 8"),
    "BIOMD0000000098": (100.0, "rosenbrock", 1e-8, "CICR Ca spikes"),
    "BIOMD0000000101": (100.0, "rosenbrock", 1e-9, "TGF-beta, event"),
    "BIOMD0000000118": (100.0, "dopri5", 1e-9, "Golomb bursting neuron, ms"),
    "BIOMD0000000127": (100.0, "dopri5", 1e-9, "Izhikevich 2003, spikes reset by events, ms"),
    "BIOMD0000000142": (100.0, "dopri5", 1e-9, "Izhikevich 2004 class 2, ms"),
    "BIOMD0000000148": (100.0, "rosenbrock", 1e-9, "bone remodelling, 4 events"),
    "BIOMD0000000183": (100.0, "rosenbrock", 1e-9, "calmodulin, 352 reactions"),
    "BIOMD0000000184": (100.0, "rosenbrock", 1e-9, "Lavrentovich Ca oscillations"),
    "BIOMD0000000280": (100.0, "dopri5", 1e-9, "Morris-Lecar, ms"),
    "BIOMD0000000346": (100.0, "dopri5", 1e-9, "FitzHugh-Nagumo"),
    "BIOMD0000000507": (100.0, "rosenbrock", 1e-9, "Gardner toggle switch"),
}
N_POINTS = 1000
RTOL, ATOL = 1e-4, 1e-8
MAX_STEPS = 2_000_000
#: the reference at rtol 1e-10 / atol 1e-14 is not converged to the target on the spiking models
#: (BIOMD0000000118, BIOMD0000000127: it differs from itself at 1e-12 by up to 24x the pass limit
#: on upstrokes, where torch at 1e-9 and scipy at 1e-12 agree with roadrunner at 1e-12 / 1e-13)
ROADRUNNER = {"rtol": 1e-12, "atol": 1e-16}


#: a shared model without a row: the natural 0..100 window, the default method (dopri5, and
#: rosenbrock where dopri5's stiffness test or step budget stops it), the default tight rtol
DEFAULT = (100.0, "auto", 1e-9, "not listed")


def shared_models() -> list[str]:
    """Every BioModel in the shared data (the listed ones where the data is missing: they skip)."""
    folder = data_dir() / "biomodels"
    found = sorted(p.stem for p in folder.glob("BIOMD*.xml")) if folder.is_dir() else []
    return found or sorted(SPANS)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("mid", shared_models())
def test_torch_matches_roadrunner(mid):
    path = require_data("biomodels", f"{mid}.xml")
    t_end, method, rtol, _ = SPANS.get(mid, DEFAULT)
    ts = torch.linspace(0.0, t_end, N_POINTS, dtype=torch.float64)
    ref = neuroplex.simulate(path, (0.0, t_end), solver="roadrunner", t_eval=ts, **ROADRUNNER)
    sol = neuroplex.simulate(path, (0.0, t_end), solver="torch", method=method, t_eval=ts,
                             rtol=rtol, atol=rtol * 1e-4, max_steps=MAX_STEPS)
    assert ref.ok, ref.meta.get("errors")
    assert sol.ok, f"torch status {sol.status.tolist()}"
    assert sol.names == ref.names
    bad = []
    for name in ref.names:
        a, b = sol[name][0], ref[name][0]
        err = (a - b).abs()
        limit = ATOL + RTOL * b.abs()
        if not bool((err <= limit).all()):
            i = int((err / limit).argmax())
            bad.append(f"{name} at t={float(ts[i]):.4g}: torch {float(a[i]):.6g} roadrunner {float(b[i]):.6g}")
    assert not bad, f"{len(bad)} of {len(ref.names)} variables differ: " + "; ".join(bad[:5])
