"""Ahead-of-time compiled steps (:mod:`~neuroplex.plugins.torch_solver.aot_step`): built once per
input signature, dynamic in the rows and the sizes marked dynamic, kept on disk, and their input
and output trees walked like pytree walks them."""
from __future__ import annotations

from typing import NamedTuple

import pytest
import torch
import torch.utils._pytree as pytree

from neuroplex.plugins.torch_solver import aot_step


class Pair(NamedTuple):
    a: torch.Tensor
    b: torch.Tensor | None


def scaled(x: Pair, scale: float, table: torch.Tensor) -> tuple[Pair, torch.Tensor]:
    """A step: per-row arithmetic, a reduction, and a read of a table of its own size."""
    return Pair(x.a * scale + table.sum(), None), (x.a > 0).sum()


def _tree(rows: int, table: int) -> tuple:
    a = torch.linspace(-1.0, 1.0, rows, dtype=torch.float64)
    return Pair(a, None), 3.0, torch.arange(table, dtype=torch.float64)


@pytest.fixture
def fresh_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(aot_step, "_BUILT", type(aot_step._BUILT)())
    return tmp_path


def test_a_step_runs_any_number_of_rows_and_dynamic_sizes_and_is_kept_on_disk(fresh_cache, monkeypatch):
    dynamic = [False, False, False, True]  # leaves: a, None, scale, table (its size varies on its own)
    step = aot_step.step_for(scaled, scaled, _tree(6, 4), 6, dynamic)
    for rows, table in ((6, 4), (9, 2), (2, 6)):
        tree = _tree(rows, table)
        out, n_positive = step(*tree)
        ref, ref_n = scaled(*tree)
        torch.testing.assert_close(out.a, ref.a)
        assert out.b is None and int(n_positive) == int(ref_n)
    assert aot_step.step_for(scaled, scaled, _tree(9, 2), 9, dynamic) is step  # same signature: kept
    assert len(list((fresh_cache / "neuroplex-aot").glob("*.pt2"))) == 1

    def no_compiler(*args, **kwargs):
        raise AssertionError("compiled again")
    monkeypatch.setattr(aot_step, "_BUILT", type(aot_step._BUILT)())  # a new process, as it were
    monkeypatch.setattr(aot_step.torch._inductor, "aoti_compile_and_package", no_compiler)
    out, _ = aot_step.step_for(scaled, scaled, _tree(5, 3), 5, dynamic)(*_tree(5, 3))
    torch.testing.assert_close(out.a, scaled(*_tree(5, 3))[0].a)


def test_the_signature_tells_apart_what_a_step_is_built_for():
    tree = _tree(6, 4)
    dynamic = [False, False, False, True]
    base = aot_step.signature(pytree.tree_leaves(tree), 6, dynamic)
    assert aot_step.signature(pytree.tree_leaves(_tree(9, 2)), 9, dynamic) == base  # sizes are dynamic
    other_scale = (tree[0], 4.0, tree[2])
    assert aot_step.signature(pytree.tree_leaves(other_scale), 6, dynamic) != base  # compiled-in value
    as_float32 = (Pair(tree[0].a.float(), None), 3.0, tree[2])
    assert aot_step.signature(pytree.tree_leaves(as_float32), 6, dynamic) != base
    columns = torch.empty_strided((6, 3), (1, 6), dtype=torch.float64)
    rows = torch.empty((6, 3), dtype=torch.float64)
    assert aot_step.signature([columns], 6, [False]) != aot_step.signature([rows], 6, [False])
    with pytest.raises(ValueError, match="neither contiguous nor column-major"):
        aot_step.signature([torch.zeros(6, 3, 2).transpose(0, 2)], 6, [False])


def test_trees_are_walked_in_pytree_order():
    tree = (Pair(torch.zeros(2), None), [torch.ones(1), (torch.zeros(3),)], 2.0)
    leaves = [x for x in pytree.tree_leaves(tree) if isinstance(x, torch.Tensor)]
    walked = aot_step._tensors(tree, [])
    assert len(walked) == len(leaves) and all(a is b for a, b in zip(walked, leaves))
    spec = pytree.tree_structure(tree)
    rebuilt = aot_step._builder(spec)(iter(pytree.tree_leaves(tree)))
    assert type(rebuilt[0]) is Pair and rebuilt[0].b is None and rebuilt[2] == 2.0
    assert rebuilt[1][1][0] is tree[1][1][0]
