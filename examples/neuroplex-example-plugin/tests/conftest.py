"""Run from a checkout without installing: the plugin's folder is on ``sys.path`` during each
test only (so nothing else in a shared session sees it)."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _plugin_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
