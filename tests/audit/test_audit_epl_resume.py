"""An EPL training run or evolution resumes only with the settings it was started with, and the
rule refuses inputs and targets that do not fit its input and output nodes.

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


def test_an_evolution_resume_with_another_population_is_refused(tmp_path):
    # before: `neuroplex epl evolve --resume --pop 50` on a run of --pop 30 went on with the old
    # population and overwrote config.json with pop 50; more --generations stays a resume
    from neuroplex.plugins.epl.baseline import FeedForwardPhenotype
    from neuroplex.plugins.epl.evolution import Evolution, EvolutionSettings
    from neuroplex.plugins.epl.rl_tasks import task_spec

    spec = task_spec("frozenlake", slippery=True)
    first = EvolutionSettings(task="frozenlake", pop=20, generations=1, seed=0, phenotype="baseline")
    Evolution(first, FeedForwardPhenotype(spec), tmp_path, progress=False).run()
    with pytest.raises(NeuroplexError, match="pop=20 \\(now 30\\)"):
        Evolution(EvolutionSettings(**{**first.__dict__, "pop": 30, "generations": 2}), FeedForwardPhenotype(spec),
                  tmp_path, resume=True, progress=False)
    longer = Evolution(EvolutionSettings(**{**first.__dict__, "generations": 2}), FeedForwardPhenotype(spec),
                       tmp_path, resume=True, progress=False)
    assert longer.pop.generation == 1


def test_inputs_and_targets_of_other_widths_are_refused():
    # before: a 1-input task on the default 2-input rule broadcast x onto both input nodes and
    # trained without a word (regression-1d on EPLConfig() gave a test loss of 0.016)
    from neuroplex.plugins.epl.tasks import regression_task

    data = regression_task(n=3)
    rule = EPLRule(EPLConfig(explore_steps=2, relax_steps=10))
    rule.init(0, "cpu")
    with pytest.raises(NeuroplexError, match="inputs of shape \\(3, 1\\), expected \\(batch, 2\\)"):
        rule.train_batch(data.x_train, data.y_train)
    with pytest.raises(NeuroplexError, match="inputs of shape"):
        rule.predict(data.x_test)
    logic = logic_task("and")
    with pytest.raises(NeuroplexError, match="targets of shape \\(4, 2\\) for 4 inputs, expected \\(4, 1\\)"):
        rule.evaluate(logic.x_test, logic.y_test.repeat(1, 2))
