"""The shared SBML Test Suite on the compiled path (solver ``native``): every case, events
included, runs there and passes (the native solver refuses no case of the suite; a refusal
would name its reason and count as a failure here).

Runs in chunks (each case generates and compiles its model's C once; the library cache makes
reruns faster)."""
from __future__ import annotations

import csv

import pytest

pytest.importorskip("libsbml")

from neuroplex import cbuild  # noqa: E402
from neuroplex.sbml.testsuite import run_suite  # noqa: E402
from neuroplex.testing import require_data  # noqa: E402

pytestmark = [pytest.mark.sbml_suite, pytest.mark.slow,
              pytest.mark.skipif(not cbuild.compiler_available(), reason="no working C compiler (gcc/clang/$CC)")]

CHUNKS = 6


def _case_ids() -> list[str]:
    root = require_data("sbml-test-suite")
    with open(root / "index.csv", newline="") as fh:
        return sorted(row["case_id"] for row in csv.DictReader(fh))


@pytest.mark.timeout(900)
@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_native_suite_chunk(chunk: int) -> None:
    root = require_data("sbml-test-suite")
    ids = _case_ids()[chunk::CHUNKS]
    result = run_suite(root, "native", jobs=2, only=ids)
    assert result.total == len(ids)
    failed = {r.case_id: r.reason for r in result.failures()}
    assert not failed, "native failures:\n" + "\n".join(f"{k}: {v}" for k, v in sorted(failed.items()))
    assert result.passed == len(ids)
