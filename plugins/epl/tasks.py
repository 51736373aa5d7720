"""Small supervised tasks for the ``epl`` rule: a 2-input logic function and a 1-D regression
(targets in (0, 1), the range of the rule's activation)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from neuroplex.errors import NeuroplexError

GATES = {"and": (0, 0, 0, 1), "or": (0, 1, 1, 1), "xor": (0, 1, 1, 0), "nand": (1, 1, 1, 0)}


@dataclass
class Task:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    name: str = ""


def logic_task(gate: str = "and", low: float = 0.2, high: float = 0.7) -> Task:
    """The four input pairs of a logic gate; outputs ``low`` / ``high`` for 0 / 1. The test
    split *is* the training split (a gate has only four patterns): its "test" loss is a
    training loss."""
    if gate not in GATES:
        raise NeuroplexError(f"unknown gate {gate!r}; gates: {', '.join(GATES)}")
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([[low + (high - low) * v] for v in GATES[gate]], dtype=torch.float64)
    return Task(x, y, x, y, name=f"logic-{gate}")


def regression_task(n: int = 8) -> Task:
    """y = 0.2 + 0.5 x on x in [0, 1]: ``n`` training points, ``n`` test points between them."""
    x = torch.linspace(0, 1, n, dtype=torch.float64)[:, None]
    xt = (x[:-1] + x[1:]) / 2
    f = lambda v: 0.2 + 0.5 * v  # noqa: E731
    return Task(x, f(x), xt, f(xt), name="regression-1d")


def get_task(name: str) -> Task:
    if name.startswith("logic-"):
        return logic_task(name.split("-", 1)[1])
    if name == "regression-1d":
        return regression_task()
    raise NeuroplexError(f"unknown epl task {name!r}; tasks: logic-and, logic-or, logic-xor, logic-nand, regression-1d")
