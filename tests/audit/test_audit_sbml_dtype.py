"""``dtype="float32"`` for an SBML model is refused, naming the option.

Before: the SBML runner computed in float64 whatever ``dtype`` said (single runs, batches,
``method=``), so a float32 request came back as float64 numbers with nothing said. SBML runs are
float64 only (event times, per-species tolerances, steady states): the option is refused."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

import neuroplex as nx
from neuroplex.cli import cli
from neuroplex.errors import SolverError
from neuroplex.sbml.antimony_loader import read_antimony_string

TEXT = """
compartment C = 1
species A in C = 2
R: A -> ; k * A
k = 0.5
"""


@pytest.mark.parametrize("options", [{}, {"method": "dopri5"}, {"fused": False},
                                     {"params": torch.tensor([[0.5], [1.0]], dtype=torch.float64)}])
def test_float32_is_refused_for_sbml_models(options):
    model = read_antimony_string(TEXT)
    with pytest.raises(SolverError, match=r"float64 only: dtype='float32'"):
        nx.simulate(model, (0.0, 1.0), dtype="float32", **options)


def test_float64_asked_explicitly_still_runs():
    model = read_antimony_string(TEXT)
    sol = nx.simulate(model, (0.0, 1.0), dtype="float64", n_points=3)
    assert sol.ok and sol.ys.dtype == torch.float64
    assert torch.allclose(sol["A"][0], 2.0 * torch.exp(-0.5 * sol.ts), rtol=1e-6)


def test_cli_names_the_option(tmp_path):
    path = tmp_path / "decay.ant"
    path.write_text(TEXT)
    result = CliRunner().invoke(cli, ["simulate", str(path), "--t-end", "1", "--dtype", "float32"])
    assert result.exit_code != 0
    assert "dtype='float32'" in result.output and "Traceback" not in result.output
