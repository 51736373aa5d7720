"""``neuroplex epl evolve`` refuses counts it cannot use.

Before: ``--episodes 0`` and ``--workers 0`` were silently replaced by the defaults (``0 or 3``),
and ``--episodes -2`` failed deep inside numpy ("negative dimensions are not allowed")."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from neuroplex.cli import build_cli


@pytest.mark.parametrize("option, value, least", [("--episodes", "0", 1), ("--episodes", "-2", 1), ("--workers", "0", 1),
                                                  ("--pop", "1", 2), ("--generations", "-1", 0)])
def test_an_unusable_count_is_refused_before_the_run(tmp_path, option, value, least):
    res = CliRunner().invoke(build_cli(), ["epl", "evolve", "--task", "frozenlake", "--baseline", option, value,
                                           "--out", str(tmp_path / "run"), "--no-progress"])
    assert res.exit_code != 0 and f"{option} must be >= {least}, got {value}" in res.output
    assert not (tmp_path / "run").exists()
