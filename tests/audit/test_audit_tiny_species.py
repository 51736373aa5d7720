"""Species far below the absolute tolerance are still integrated to the relative tolerance.

Before: at the default ``atol=1e-9`` a model whose concentrations are ~1e-12 was integrated to
noise of ``atol``'s size, so a ratio of its species (an assignment rule) was wrong by orders of
magnitude with a successful status: BIOMD0000000183's ``parameter_58`` came out as -0.72 instead
of 4.8e-5 on the default (native) path, -0.018 on torch, while roadrunner at its defaults is
right. Now each species' tolerance follows its own size (``SBMLProgram.atol_scale``)."""
from __future__ import annotations

import math

import pytest
import torch

import neuroplex as nx
from neuroplex.sbml.antimony_loader import read_antimony_string
from neuroplex.sbml.program import SMALL_SPECIES

TEXT = """
compartment C = 1
species A in C = 1e-12
species B in C = 0
R: A -> B; k * A
k = 1
ratio := B / (A + B)
"""


@pytest.mark.parametrize("options", [{}, {"method": "auto"}, {"method": "rosenbrock"}])
def test_ratio_of_tiny_species_at_default_tolerances(options):
    model = read_antimony_string(TEXT)
    t = torch.tensor([0.0, 0.5, 1.0, 2.0, 5.0], dtype=torch.float64)
    sol = nx.simulate(model, (0.0, 5.0), t_eval=t, **options)
    exact_a = 1e-12 * torch.exp(-t)
    assert sol.ok
    assert torch.allclose(sol["A"][0], exact_a, rtol=1e-4, atol=0.0)
    assert torch.allclose(sol["ratio"][0, 1:], 1.0 - torch.exp(-t[1:]), rtol=1e-4, atol=0.0)


def test_ratio_of_tiny_species_in_a_native_ensemble():
    model = read_antimony_string(TEXT)
    k = torch.linspace(0.5, 2.0, 260, dtype=torch.float64)
    sol = nx.simulate(model, (0.0, 2.0), t_eval=[0.0, 2.0], params={"k": k})
    assert sol.ok
    got = sol["ratio"][:, 1]
    assert torch.allclose(got, 1.0 - torch.exp(-2.0 * k), rtol=1e-4, atol=0.0), sol.meta.get("path")


def test_tolerance_scale_follows_each_species_and_the_compartment():
    model = read_antimony_string("""
    compartment C = 1e-3
    species A in C = 2e-6
    species B in C = 0
    species D in C = 5
    R: A -> B; k * A
    k = 1
    """)
    from neuroplex.sbml import compiled
    prog = compiled(model)
    p = prog.default_params()[None]
    y = prog.initial_state(0.0, p)
    scale = prog.atol_scale(p, y)[0]
    by_name = dict(zip(prog.state_names, scale.tolist()))
    amount = {s: v["amount_state"] for s, v in model.metadata["sbml"]["species"].items()}
    small = 2e-6 / SMALL_SPECIES
    assert math.isclose(by_name[amount["A"]], 1e-3 * small)
    assert math.isclose(by_name[amount["B"]], 1e-3 * small)  # starts at 0: the smallest start
    assert math.isclose(by_name[amount["D"]], 1e-3)  # not small: the compartment only
    plain = prog.atol_scale(p, y, by_magnitude=False)[0]
    assert math.isclose(dict(zip(prog.state_names, plain.tolist()))[amount["A"]], 1e-3)
