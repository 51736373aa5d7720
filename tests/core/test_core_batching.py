"""One broadcasting rule for batches (issue 21 item 4): :func:`neuroplex.batching.batch_size`,
and every registered solver that takes IR models run through the same cases."""
from __future__ import annotations


import numpy as np
import pytest
import torch

import neuroplex as nx
from neuroplex.batching import batch_size
from neuroplex.errors import ModelError, SolverError

#: solvers that take IR models but no external inputs (they run the input-free cases)
NO_INPUTS = {"roadrunner"}


def decay(with_input: bool) -> nx.ModelIR:
    """x' = I - k x: x(t) = I/k + (x0 - I/k) exp(-k t)."""
    return nx.ModelIR("decay", states=[nx.State("x", 1.0)], parameters=[nx.Parameter("k", 1.0)],
                      inputs={"I": 0.0} if with_input else {}, derivatives={"x": "I - k*x" if with_input else "-k*x"})


def exact(k: torch.Tensor, x0: torch.Tensor, i: torch.Tensor, t: float) -> torch.Tensor:
    return i / k + (x0 - i / k) * torch.exp(-k * t)


def ir_solvers() -> list[str]:
    host = nx.get_host()
    host.load()
    names = []
    for name in host.names("solvers"):
        cls = host.get("solvers", name).obj
        if "ir" in cls.accepts and "simulate" in cls.capabilities:
            names.append(name)
    return names


SOLVERS = ir_solvers()
F64 = torch.float64
K, X0, I6 = (torch.linspace(a, b, 6, dtype=F64)[:, None] for a, b in ((0.5, 2.0), (0.0, 1.0), (0.0, 3.0)))
#: which arguments carry the batch of 6 (the others are one sample, (n,) or (1, n))
CASES = {"params": ("params",), "y0": ("y0",), "inputs": ("inputs",), "params+inputs": ("params", "inputs"),
         "params+y0": ("params", "y0")}


def test_rule() -> None:
    assert batch_size(params=torch.zeros(3), y0=None, inputs=None) == 1
    assert batch_size(params=torch.zeros(1, 3), y0=torch.zeros(5, 2), inputs=np.zeros((1, 4))) == 5
    assert batch_size(params=torch.zeros(5, 3), y0=torch.zeros(2), inputs=torch.zeros(5, 1)) == 5
    with pytest.raises(SolverError, match=r"batch sizes differ: params 5, y0 1, inputs 6"):
        batch_size(params=torch.zeros(5, 3), y0=torch.zeros(1, 2), inputs=torch.zeros(6, 1))


def test_every_ir_solver_is_registered() -> None:
    assert {"torch", "scipy"} <= set(SOLVERS)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("case", CASES)
def test_every_ir_solver_broadcasts_the_same_way(solver: str, case: str) -> None:
    carry = CASES[case]
    with_input = solver not in NO_INPUTS
    if "inputs" in carry and not with_input:  # the solver refuses inputs, naming itself
        with pytest.raises(ModelError, match=f"the {solver} solver does not take external inputs"):
            nx.simulate(decay(True), (0.0, 1.0), solver=solver, inputs=I6)
        return
    k = K if "params" in carry else torch.tensor([0.8], dtype=F64)
    x0 = X0 if "y0" in carry else torch.tensor([[0.3]], dtype=F64)
    i = I6 if "inputs" in carry else torch.tensor([1.5], dtype=F64)
    options = {"dt": 1e-4, "method": "rk4", "target": "numpy"} if solver == "brian2" else {}
    sol = nx.simulate(decay(with_input), (0.0, 1.0), solver=solver, params=k, y0=x0,
                      inputs=i if with_input else None, **options)
    assert sol.ok and sol.ys.shape[0] == 6
    want = exact(k.reshape(-1), x0.reshape(-1), i.reshape(-1) if with_input else torch.zeros(1, dtype=F64), 1.0)
    assert torch.allclose(sol["x"][:, -1], want.expand(6), atol=1e-4)


@pytest.mark.parametrize("solver", SOLVERS)
def test_every_ir_solver_refuses_mismatched_batches(solver: str) -> None:
    with pytest.raises(SolverError, match=r"batch sizes differ: params 6, y0 4"):
        nx.simulate(decay(False), (0.0, 1.0), solver=solver, params=K, y0=torch.ones(4, 1, dtype=F64))
