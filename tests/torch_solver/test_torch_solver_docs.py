"""The examples of docs/torch-solver.md run (in order, sharing one namespace)."""
from __future__ import annotations

import re
from pathlib import Path

from neuroplex.plugins.torch_solver import methods

DOC = Path(__file__).resolve().parents[2] / "docs" / "torch-solver.md"


def test_torch_solver_doc_examples_run() -> None:
    text = DOC.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 5
    ns: dict = {}
    try:
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), ns)  # noqa: S102 - the doc's own examples
        assert ns["sol"].method == "midpoint"
    finally:
        methods._TABLE.pop(("simulate", "midpoint"), None)
