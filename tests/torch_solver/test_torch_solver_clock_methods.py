"""Models that run themselves (the clock-driven spiking Network) validate their own method
names: the torch solver passes ``exact``/``exponential_euler``/``rk2``/... on."""
from __future__ import annotations

import pytest
import torch

import neuroplex
from neuroplex.errors import NeuroplexError, SolverError
from neuroplex.ir import ModelIR, State
from neuroplex.plugins.snn.builders import cuba
from neuroplex.plugins.torch_solver import TorchSolver
from neuroplex.plugins.torch_solver.methods import method_names


@pytest.mark.parametrize("method", ["exact", "rk2"])
def test_network_runs_with_its_clock_method(method: str) -> None:
    sol = neuroplex.simulate(cuba(n=200), (0.0, 0.05), solver="torch", method=method)
    direct = cuba(n=200).run(0.05, method=method)
    assert sol.method == method and sol.solver == "torch"
    assert len(sol.spikes) == len(direct.spikes) > 0
    assert torch.equal(sol.spikes.time, direct.spikes.time) and torch.equal(sol.spikes.index, direct.spikes.index)


def test_methods_differ_so_the_choice_reaches_the_network() -> None:
    a = neuroplex.simulate(cuba(n=200), (0.0, 0.1), solver="torch", method="exact")
    b = neuroplex.simulate(cuba(n=200), (0.0, 0.1), solver="torch", method="euler")
    assert a.method == "exact" and b.method == "euler"
    assert len(a.spikes) != len(b.spikes) or not torch.equal(a.spikes.time, b.spikes.time)


def test_clock_methods_are_listed_and_refused_for_ode_models() -> None:
    listed = TorchSolver.describe()["methods"]
    for name in ("exact", "exponential_euler", "rk2", "dopri5", "iteration"):
        assert name in listed
    assert {"exact", "exponential_euler", "rk2"} <= set(method_names("clock"))
    decay = ModelIR("decay", states=[State("x", 1.0)], derivatives={"x": "-x"})
    with pytest.raises(SolverError, match="'exact' is a clock-driven method"):
        neuroplex.simulate(decay, 1.0, solver="torch", method="exact")
    with pytest.raises(SolverError, match="clock-driven"):
        neuroplex.equilibrate(decay, solver="torch", method="exponential_euler")
    with pytest.raises(NeuroplexError, match="unknown method 'bogus'"):
        TorchSolver(method="bogus")
