"""Molar units have their SI values (1 M = 1 mol/l = 1000 mol/m**3, as Brian2's ``molar``).

Before: ``molar``/``M`` was taken as 1 mol/m**3, so ``"1 M"`` and ``"1 mM"`` were the same value,
``"1 mmolar"`` was 1000 times smaller than ``"1 mM"``, ``"1 pM"`` 1000 times too small, and a
value given in molar to a parameter declared in ``mM`` came out 1000 times too small, silently;
mol/m**3 also printed as ``molar``."""
from __future__ import annotations

import pytest

from neuroplex.units import parse_quantity, to_si, unit_name

LITRE = 1e-3  # m**3


@pytest.mark.parametrize("text, mol_per_litre", [
    ("1 M", 1.0), ("1 molar", 1.0), ("2 mM", 2e-3), ("2 mmolar", 2e-3), ("3 uM", 3e-6), ("3 umolar", 3e-6),
    ("4 nM", 4e-9), ("4 nmolar", 4e-9), ("5 pM", 5e-12), ("5 pmolar", 5e-12), ("6 mol/l", 6.0), ("7 mmol/litre", 7e-3),
])
def test_molar_values_in_si(text, mol_per_litre):
    assert parse_quantity(text).si == pytest.approx(mol_per_litre / LITRE, rel=1e-12)


def test_a_molar_value_for_a_parameter_declared_in_mM():
    assert to_si("0.002 M", "mM", "K_d") == pytest.approx(2.0)          # 2 mM = 2 mol/m**3
    assert to_si("150 uM", "mM", "K_d") == pytest.approx(0.15)
    assert unit_name(parse_quantity("1 mol/m**3").dim) == "mole/metre**3"


def test_molar_agrees_with_brian2():
    brian2 = pytest.importorskip("brian2", reason="brian2 (optional) is not installed")
    for name in ("molar", "mmolar", "umolar", "nmolar", "pmolar", "mM", "uM", "nM"):
        assert parse_quantity(f"1 {name}").si == pytest.approx(float(getattr(brian2, name)), rel=1e-12), name
