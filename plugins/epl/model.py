"""The EPL energy DS as a :class:`~neuroplex.ir.ModelIR` (sympy): the ``epl`` neuron model of
the plugin host and the form exported to SBML.

States x_<node> (> 0) and p_<node>; parameters a, m, c, h, x_h per node and k, v per reaction;
derivatives are eqn:Dynamical_System written out with eqn:gradient, and ``energy`` is eqn:Energy.
External nodes (free = 0) become constant states (derivative 0).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import sympy

from neuroplex.ir import ModelIR, Parameter, State

from .system import EnergySystem
from .rds import build


def _clean(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def to_ir(system: EnergySystem, *, name: str = "epl") -> ModelIR:
    """One (unbatched) system as a ModelIR with the switched-on flows."""
    if system.batch_shape:
        raise ValueError("to_ir takes one system, not a batch")
    n, e = system.n, system.e
    names = [_clean(s) for s in (system.node_names or [f"n{i}" for i in range(n)])]
    X = [sympy.Symbol(f"x_{s}") for s in names]
    P = [sympy.Symbol(f"p_{s}") for s in names]
    params: list[Parameter] = []

    def par(label: str, value: float) -> sympy.Symbol:
        params.append(Parameter(label, float(value)))
        return sympy.Symbol(label)

    a = [par(f"a_{s}", system.a[i]) for i, s in enumerate(names)]
    m = [par(f"m_{s}", system.m[i]) for i, s in enumerate(names)]
    c = [par(f"c_{s}", system.c[i]) for i, s in enumerate(names)]
    h = [par(f"h_{s}", system.h[i]) for i, s in enumerate(names)]
    xh = [par(f"xh_{s}", system.x_h[i]) for i, s in enumerate(names)]
    k = [par(f"k_r{j}", system.k[j]) for j in range(e)]
    v = [par(f"v_r{j}", system.v[j]) for j in range(e)]
    Vm = system.V.tolist()
    Mp = [[sympy.nsimplify(val) for val in row] for row in system.Mperp.tolist()]
    Vx = [sum((sympy.Float(Vm[i][j]) * X[j] for j in range(n) if Vm[i][j] != 0), sympy.Integer(0)) for i in range(n)]
    psi = [1 + a[i] + Vx[i] + P[i] ** 2 / (2 * m[i]) for i in range(n)]  # dH/dx - ln x
    Hx = [sympy.log(X[i]) + psi[i] for i in range(n)]
    Hp = [P[i] * X[i] / m[i] for i in range(n)]
    fl = system.flows
    dx = [sympy.Integer(0)] * n
    dp = [sympy.Integer(0)] * n
    for j in range(e):
        col = [Mp[i][j] for i in range(n)]
        if fl.chemical and float(system.k[j]) > 0:
            # exp(dH/dx r(-Mperp)) as prod(x^R) exp(psi R): mass action, finite at x = 0
            fwd = sympy.exp(sum((-col[i] * psi[i] for i in range(n) if col[i] < 0), sympy.Integer(0))) \
                * sympy.Mul(*[X[i] ** -col[i] for i in range(n) if col[i] < 0])
            bwd = sympy.exp(sum((col[i] * psi[i] for i in range(n) if col[i] > 0), sympy.Integer(0))) \
                * sympy.Mul(*[X[i] ** col[i] for i in range(n) if col[i] > 0])
            flux = k[j] * (fwd - bwd)
            for i in range(n):
                if col[i] != 0:
                    dx[i] += col[i] * flux
        if fl.hamiltonian and float(system.v[j]) != 0:
            w = v[j] * sympy.Mul(*[X[i] ** abs(col[i]) for i in range(n) if col[i] != 0])
            sp = sum((col[i] * Hp[i] for i in range(n)), sympy.Integer(0))
            sx = sum((col[i] * Hx[i] for i in range(n)), sympy.Integer(0))
            for i in range(n):
                if col[i] != 0:
                    dx[i] += col[i] * w * sp
                    dp[i] -= col[i] * w * sx
    for i in range(n):
        if fl.collision:
            dp[i] -= c[i] * Hp[i]
        if fl.homeostasis:
            dx[i] += h[i] * (xh[i] - X[i])
    free = system.free.tolist()
    states = [State(str(X[i]), float(system.x0[i])) for i in range(n)] + \
             [State(str(P[i]), float(system.p0[i])) for i in range(n)]
    derivs = {str(X[i]): dx[i] if free[i] else 0 for i in range(n)}
    derivs.update({str(P[i]): dp[i] if free[i] else 0 for i in range(n)})
    energy = sum((X[i] * (sympy.log(X[i]) + a[i]) + X[i] * Vx[i] / 2 + P[i] ** 2 * X[i] / (2 * m[i])
                  for i in range(n)), sympy.Integer(0))
    return ModelIR(name=name, states=states, parameters=params, derivatives=derivs, energy=energy,
                   metadata={"epl": {"nodes": names, "flows": fl.names()}})


def epl_model(system: str | Path | None = None, **params: Any) -> ModelIR:
    """The ``epl`` model: the energy DS of a description file (JSON/TOML, :mod:`.rds`), or a
    three-node example (A + B <-> C with collision damping) when none is given; keyword
    arguments set parameter values."""

    desc: Any = system if system is not None else EXAMPLE
    model = to_ir(build(desc).system, name=Path(str(system)).stem if system is not None else "epl")
    return model.with_parameters(**params) if params else model


#: the example system of ``epl_model()`` and the docs
EXAMPLE: dict[str, Any] = {
    "components": {"A": {"mass": 1.0, "charge": 0.0}, "B": {"mass": 1.0, "charge": 0.0}},
    "genes": {"a": {"A": 1}, "b": {"B": 1}, "ab": {"A": 1, "B": 1}},
    "spaces": {"cell": [0.0, 0.0]},
    "nodes": [{"gene": "a", "space": "cell", "x0": 1.0, "c": 0.5, "role": "input"},
              {"gene": "b", "space": "cell", "x0": 0.8, "c": 0.5},
              {"gene": "ab", "space": "cell", "x0": 0.2, "c": 0.5, "role": "output"}],
    "reactions": [{"space": "cell", "a": "a", "b": "b", "c": "ab", "k": 1.0}],
}
