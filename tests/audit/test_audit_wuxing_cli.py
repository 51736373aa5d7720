"""``neuroplex wuxing train --train-samples N`` takes exactly the first N samples or refuses.

Before: the count went into a slice unchecked, so ``--train-samples -5`` trained on all but
the last 5 samples and ``--train-samples 5000`` on digits' 1437, both silently."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from neuroplex.cli import build_cli


@pytest.mark.parametrize("count", ["-5", "0", "1438"])
def test_a_count_outside_the_training_split_is_refused(tmp_path, count):
    res = CliRunner().invoke(build_cli(), ["wuxing", "train", "--train-samples", count, "--epochs", "1",
                                           "--log-dir", str(tmp_path / "run"), "--no-progress"])
    assert res.exit_code != 0
    assert f"--train-samples {count}: digits has 1437 training samples" in res.output
    assert not (tmp_path / "run").exists()
