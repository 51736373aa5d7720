"""The evolution runner with the feed-forward NEAT baseline: FrozenLake DP, solving, exact resume."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from neuroplex.errors import NeuroplexError
from neuroplex.plugins.epl.baseline import FeedForwardPhenotype
from neuroplex.plugins.epl.evolution import Evolution, EvolutionSettings
from neuroplex.plugins.epl.neat_config import neat_config_text
from neuroplex.plugins.epl.rl_tasks import (episode_seeds, frozenlake_optimum, frozenlake_success,
                                            frozenlake_success_many, make_env, task_spec)


def test_frozenlake_dp_matches_known_values_and_sampling():
    env = make_env(task_spec("frozenlake", slippery=True))
    assert frozenlake_optimum(env) == pytest.approx(0.744, abs=1e-3)
    # a fixed policy: DP success equals the success rate of 4000 sampled episodes within 3 sigma
    policy = np.array([0, 3, 3, 3, 0, 0, 0, 0, 3, 1, 0, 0, 0, 2, 1, 0])
    p = frozenlake_success(policy, env)
    wins = 0
    for s in range(4000):
        obs, _ = env.reset(seed=s)
        done = False
        while not done:
            obs, r, term, trunc, _ = env.step(int(policy[obs]))
            done = term or trunc
        wins += r
    assert abs(wins / 4000 - p) < 3 * np.sqrt(p * (1 - p) / 4000)
    flat = make_env(task_spec("frozenlake", slippery=False))
    assert frozenlake_optimum(flat) == 1.0
    assert frozenlake_success(np.array([1, 2, 1, 0, 1, 0, 1, 0, 2, 1, 1, 0, 0, 2, 2, 0]), flat) == 1.0
    with pytest.raises(ValueError, match="one action per state"):
        frozenlake_success(np.zeros(3), flat)


def test_frozenlake_success_many_equals_one_at_a_time():
    env = make_env(task_spec("frozenlake", slippery=True))
    policies = np.random.default_rng(0).integers(0, 4, (20, 16))
    many = frozenlake_success_many(policies, env)
    assert many.tolist() == pytest.approx([frozenlake_success(p, env) for p in policies], abs=1e-15)
    assert many.max() > 0.0
    with pytest.raises(ValueError, match="rows, 16"):
        frozenlake_success_many(policies[:, :3], env)


def test_named_mutation_settings():
    assert "weight_mutate_rate    = 0.8" in neat_config_text(6, 5, 10, cppn=True, mutation="direct")
    assert "weight_mutate_rate    = 0.2" in neat_config_text(6, 5, 10, cppn=True)
    structural = neat_config_text(6, 5, 10, cppn=True, mutation="structural")
    assert "weight_mutate_rate    = 0.2" in structural and "node_add_prob         = 0.2" in structural
    with pytest.raises(ValueError, match="mutation"):
        neat_config_text(6, 5, 10, cppn=True, mutation="wild")


def test_unknown_task_and_bad_config_are_refused():
    with pytest.raises(ValueError, match="unknown task"):
        task_spec("pong")
    with pytest.raises(ValueError, match="pop >= 2"):
        neat_config_text(4, 2, 1, cppn=False)
    assert episode_seeds(0, 3, 4) == episode_seeds(0, 3, 4) != episode_seeds(0, 4, 4)


def test_baseline_solves_cartpole_validated(tmp_path):
    s = EvolutionSettings(task="cartpole", pop=50, generations=10, seed=0, phenotype="baseline")
    ev = Evolution(s, FeedForwardPhenotype(task_spec("cartpole")), tmp_path / "run", progress=False)
    rows = ev.run()
    summ = ev.summary()
    assert summ["solved_generation"] is not None and summ["solved_generation"] <= 10
    assert rows[-1]["validation"] >= 475.0  # 100 fresh episodes
    assert (tmp_path / "run" / "fitness.png").stat().st_size > 1000
    assert (tmp_path / "run" / "eval_seconds.png").exists()
    with open(tmp_path / "run" / "log.csv") as fh:
        logged = list(csv.DictReader(fh))
    assert [int(r["generation"]) for r in logged] == list(range(1, len(rows) + 1))
    with pytest.raises(NeuroplexError, match="--resume"):
        Evolution(s, FeedForwardPhenotype(task_spec("cartpole")), tmp_path / "run", progress=False)


def test_baseline_frozenlake_not_slippery_solved(tmp_path):
    s = EvolutionSettings(task="frozenlake", slippery=False, pop=100, generations=30, seed=0, phenotype="baseline")
    ev = Evolution(s, FeedForwardPhenotype(task_spec("frozenlake", slippery=False)), tmp_path, progress=False)
    ev.run()
    assert ev.summary()["solved_generation"] is not None
    assert ev.rows[-1]["best_raw"] == 1.0 and ev.rows[-1]["validation"] == 1.0


def test_resume_continues_exactly(tmp_path):
    spec = task_spec("frozenlake", slippery=True)
    full = EvolutionSettings(task="frozenlake", pop=30, generations=6, seed=3, phenotype="baseline",
                             stop_when_solved=False)
    a = Evolution(full, FeedForwardPhenotype(spec), tmp_path / "a", progress=False)
    rows_a = a.run()
    part = EvolutionSettings(**{**full.__dict__, "generations": 3})
    Evolution(part, FeedForwardPhenotype(spec), tmp_path / "b", progress=False).run()
    b = Evolution(full, FeedForwardPhenotype(spec), tmp_path / "b", resume=True, progress=False)
    assert b.pop.generation == 3
    rows_b = b.run()
    keys = ("best_fitness", "mean_fitness", "best_raw", "species")
    assert [[r[k] for k in keys] for r in rows_a] == [[r[k] for k in keys] for r in rows_b]


def test_after_a_confirmed_solution_keep_going_validates_only_on_schedule(tmp_path):
    s = EvolutionSettings(task="frozenlake", slippery=False, pop=100, generations=8, seed=0, phenotype="baseline",
                          stop_when_solved=False, validate_every=4)
    ev = Evolution(s, FeedForwardPhenotype(task_spec("frozenlake", slippery=False)), tmp_path, progress=False)
    rows = ev.run()
    solved = ev.summary()["solved_generation"]
    assert solved is not None and solved < 8 and len(rows) == 8
    assert all(r["best_raw"] == 1.0 for r in rows[solved - 1:])  # every later fittest still reaches the level
    validated = [r["generation"] for r in rows if r["validation"] == r["validation"]]
    assert validated == sorted({g for g in range(1, solved) if rows[g - 1]["best_raw"] >= 1.0} | {solved, 4, 8})
