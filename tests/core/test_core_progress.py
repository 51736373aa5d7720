"""Progress bars are drawn only where someone watches: a terminal, or when forced."""
from __future__ import annotations

import io

import pytest

from neuroplex.progress import PROGRESS_ENV, progress_bar, progress_shown


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_redirected_stderr_gets_no_bar(monkeypatch):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    assert not progress_shown()
    assert list(progress_bar(range(5), desc="quiet")) == [0, 1, 2, 3, 4]
    assert stream.getvalue() == ""


def test_terminal_gets_a_bar_unless_disabled(monkeypatch):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    monkeypatch.setattr("sys.stderr", Terminal())
    assert progress_shown() and not progress_shown(requested=False)


@pytest.mark.parametrize("value, shown", [("1", True), ("on", True), ("0", False), ("off", False)])
def test_environment_overrides_the_terminal_test(monkeypatch, value, shown):
    monkeypatch.setenv(PROGRESS_ENV, value)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert progress_shown() is shown
    monkeypatch.setattr("sys.stderr", Terminal())
    assert progress_shown() is shown


def test_forced_bar_writes_its_postfix(monkeypatch):
    monkeypatch.setenv(PROGRESS_ENV, "1")
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    bar = progress_bar(total=2, desc="work", unit="epoch")
    bar.update(2)
    bar.set_postfix({"loss": 0.5})
    bar.close()
    assert "work" in stream.getvalue() and "loss=0.5" in stream.getvalue()
