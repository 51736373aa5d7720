"""Every ```python block in docs/*.md and README.md runs (each file's blocks in order, in one
namespace, in a temporary working directory); ```python no-run blocks are skipped."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from neuroplex.host import reset_host

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```python([^\n]*)\n(.*?)^```", re.S | re.M)
DOCS = sorted([*(ROOT / "docs").glob("*.md"), ROOT / "README.md"])


def blocks(path: Path) -> list[tuple[int, str]]:
    text = path.read_text()
    return [(text.count("\n", 0, m.start()) + 1, m.group(2)) for m in FENCE.finditer(text)
            if "no-run" not in m.group(1).split()]


@pytest.mark.parametrize("path", [p for p in DOCS if blocks(p)], ids=lambda p: p.name)
def test_doc_examples_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"doc_{path.stem}"}
    try:
        for line, source in blocks(path):
            code = compile(source, f"{path.relative_to(ROOT)}:{line}", "exec")
            exec(code, namespace)  # noqa: S102 - the project's own documentation
    finally:
        plt.close("all")
        reset_host(None)  # a doc may install its own plugin host


def test_fence_parser(tmp_path: Path):
    doc = tmp_path / "x.md"
    doc.write_text("text\n```python\na = 1\n```\n```python no-run\nboom()\n```\n```sh\nls\n```\n```python\nb = a\n```\n")
    assert blocks(doc) == [(2, "a = 1\n"), (11, "b = a\n")]
