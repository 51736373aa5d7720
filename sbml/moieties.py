"""Conservation laws (moieties) of an SBML model from its stoichiometry.

The reader writes each species' amount derivative as a combination of reaction rates,
``dy/dt = N v(y)``. Every row vector ``l`` with ``l N = 0`` is a conserved total
``l . y`` (Reder 1988; Sauro & Ingalls 2004, "Conservation analysis in biochemical
networks"). The reduced system keeps the *independent* states; the *dependent* ones follow
from the totals: ``y_dep = L_dep^-1 (T - L_ind y_ind)``.

Rows that are not a constant combination of reaction rates (rate rules, non-linear forms)
take no part in any law; states whose derivative is identically zero are *fixed*.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
import sympy
import torch


@dataclass
class Moieties:
    """Conservation laws over the model's states (indices into ``state_names``)."""

    #: ``(k, n)`` conservation matrix: ``laws @ y`` is constant in time
    laws: np.ndarray
    #: states whose derivative is identically zero (held at their initial value)
    fixed: list[int]
    #: states solved for (the reduced system's unknowns)
    independent: list[int]
    #: states that follow from the totals (one per law)
    dependent: list[int]

    @property
    def n_laws(self) -> int:
        return int(self.laws.shape[0])

    def _dep_map(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inv(L_dep), -inv(L_dep) L_ind)`` as tensors."""
        l_dep = self.laws[:, self.dependent]
        l_ind = self.laws[:, self.independent]
        inv = np.linalg.inv(l_dep)
        return torch.tensor(inv, dtype=dtype), torch.tensor(-inv @ l_ind, dtype=dtype)

    def totals(self, y: torch.Tensor) -> torch.Tensor:
        """``(B, k)`` conserved totals of states ``y (B, n)``."""
        return y @ torch.tensor(self.laws.T, dtype=y.dtype)

    def complete(self, x: torch.Tensor, y_base: torch.Tensor, totals: torch.Tensor) -> torch.Tensor:
        """Full states from independent values ``x (B, m)``: fixed states from ``y_base``,
        dependent ones from ``totals``."""
        y = y_base.clone()
        y[:, self.independent] = x
        if self.dependent:
            inv, _ = self._dep_map(x.dtype)
            rest = totals - x @ torch.tensor(self.laws[:, self.independent].T, dtype=x.dtype)
            y[:, self.dependent] = rest @ inv.T
        return y

    def reduce_jacobian(self, jac: torch.Tensor) -> torch.Tensor:
        """``d f_ind / d y_ind`` of the reduced system from the full ``(B, n, n)`` Jacobian."""
        ind = self.independent
        out = jac[:, ind][:, :, ind]
        if self.dependent:
            _, d = self._dep_map(jac.dtype)
            out = out + jac[:, ind][:, :, self.dependent] @ d
        return out


def symbolic_stoichiometry(model: Any) -> tuple[list[dict[int, Any]], list[int], list[int], set[str]]:
    """``(rows, linear, fixed, parameters)``: per state ``{reaction index: coefficient}`` (a
    number or an expression of parameters) for the states whose derivative is a combination
    of reaction rates (``linear``), the states whose derivative is zero (``fixed``), and the
    parameters the coefficients use. Cached on the model."""
    cached = model.__dict__.get("_sbml_stoichiometry")
    if cached is not None:
        return cached
    reactions = [r for r in ((model.metadata.get("sbml") or {}).get("reactions") or {}) if r in model.assignments]
    position = {sympy.Symbol(r): j for j, r in enumerate(reactions)}
    params = set(model.parameter_names)
    rows: list[dict[int, Any]] = []
    linear, fixed = [], []
    used: set[str] = set()
    for i, name in enumerate(model.state_names):
        expr = sympy.sympify(model.derivatives[name])
        row: dict[int, Any] = {}
        rows.append(row)
        if expr == 0:
            fixed.append(i)
            continue
        ok = True
        for term in sympy.Add.make_args(sympy.expand(expr)):
            rs = [sym for sym in term.free_symbols if sym in position]
            if len(rs) != 1:
                ok = False
                break
            coeff, rest = term.as_independent(rs[0], as_Add=False)
            if rest != rs[0] or {sym.name for sym in coeff.free_symbols} - params:
                ok = False
                break
            j = position[rs[0]]
            row[j] = row.get(j, 0) + coeff
            used |= {sym.name for sym in coeff.free_symbols}
        if ok and row:
            linear.append(i)
        else:
            row.clear()
    out = (rows, linear, fixed, used)
    model.__dict__["_sbml_stoichiometry"] = out
    return out


def stoichiometry(model: Any, params: dict[str, float] | None = None) -> tuple[np.ndarray, list[int], list[int]]:
    """``(N, linear rows, fixed rows)``: ``N`` is ``(n, r)`` over the reaction rates, evaluated
    at ``params`` (default: the model's values); rows not listed as linear are zero."""
    rows, linear, fixed, _ = symbolic_stoichiometry(model)
    given = params or {}
    values = {sympy.Symbol(p.name): given.get(p.name, p.value) for p in model.parameters}
    n_r = 1 + max((j for row in rows for j in row), default=-1)
    mat = np.zeros((len(rows), n_r))
    keep = []
    for i in linear:
        for j, c in rows[i].items():
            mat[i, j] = float(c.xreplace(values)) if getattr(c, "free_symbols", None) else float(c)
        if np.isfinite(mat[i]).all():
            keep.append(i)
        else:
            mat[i] = 0.0
    return mat, keep, fixed


def find_moieties(model: Any, params: dict[str, float] | None = None, rcond: float = 1e-10) -> Moieties:
    """The model's conservation laws (left null space of ``N`` over its linear rows) at
    parameter values ``params``, with dependent states chosen by QR with column pivoting."""
    mat, linear, fixed = stoichiometry(model, params)
    n = len(model.states)
    free = [i for i in range(n) if i not in fixed]
    if not linear:
        return Moieties(np.zeros((0, n)), fixed, free, [])
    basis = scipy.linalg.null_space(mat[linear].T, rcond=rcond).T  # (k, len(linear))
    if basis.shape[0] == 0:
        return Moieties(np.zeros((0, n)), fixed, free, [])
    # rows in reduced echelon-like form keep the laws readable and sparse
    _, _, piv = scipy.linalg.qr(basis, pivoting=True)
    k = basis.shape[0]
    dep_local = sorted(piv[:k].tolist())
    basis = np.linalg.solve(basis[:, dep_local], basis)  # identity on the dependent columns
    basis[np.abs(basis) < 1e-12] = 0.0
    laws = np.zeros((k, n))
    laws[:, linear] = basis
    dependent = [linear[j] for j in dep_local]
    independent = [i for i in free if i not in dependent]
    return Moieties(laws, fixed, independent, dependent)
