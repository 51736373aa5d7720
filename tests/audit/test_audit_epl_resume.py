"""An EPL run resumes only with the settings it was started with.

Before: ``EPLRule.load_state_dict`` took the learned state z* without looking at the saved
settings, so ``neuroplex epl train --resume --reactions 5`` (a run started with 6) continued
silently on another random system with the old z*."""
from __future__ import annotations

import pytest

from neuroplex.errors import NeuroplexError
from neuroplex.plugins.epl.rule import EPLConfig, EPLRule
from neuroplex.plugins.epl.tasks import logic_task
from neuroplex.trainer import Trainer


def _fit(tmp_path, config, **kw):
    return Trainer(EPLRule(config), logic_task("and"), epochs=kw.pop("epochs", 1), batch_size=4, seed=0,
                   run_dir=tmp_path, progress=False, plot=False, **kw).fit()


def test_a_resume_with_another_system_is_refused(tmp_path):
    config = EPLConfig(n_reactions=6, explore_steps=2, relax_steps=10)
    _fit(tmp_path, config)
    with pytest.raises(NeuroplexError, match="n_reactions=6 \\(now 5\\)"):
        _fit(tmp_path, EPLConfig(n_reactions=5, explore_steps=2, relax_steps=10), epochs=2, resume=True)
    assert [row["epoch"] for row in _fit(tmp_path, config, epochs=2, resume=True)] == [1, 2]
