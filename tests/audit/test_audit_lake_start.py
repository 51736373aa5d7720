"""FrozenLake's exact success is measured from the map's start cell.

Before: ``frozenlake_success`` and ``frozenlake_optimum`` returned the dynamic programme's value
of state 0, the top-left cell, which is the start only on gymnasium's maps: on a custom
``--lake-map`` with S elsewhere, "always right" from S one step left of the goal scored 0.0
(gymnasium: every episode reaches the goal), and the solved level of a slippery custom map was
scaled by the optimum of the wrong cell."""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from neuroplex.plugins.epl.rl_tasks import frozenlake_optimum, frozenlake_success, lake_map, make_env, task_spec


def _gym_success(rows, policy, episodes, slippery):
    env = gym.make("FrozenLake-v1", desc=list(rows), is_slippery=slippery)
    wins = 0.0
    for k in range(episodes):
        s, _ = env.reset(seed=k)
        done = False
        while not done:
            s, r, term, trunc, _ = env.step(int(policy[s]))
            done = term or trunc
        wins += r
    return wins / episodes


def test_success_starts_at_s_not_at_state_zero():
    rows = lake_map("FFFF,FHFH,FFFH,HFSG")
    env = make_env(task_spec("frozenlake", slippery=False, lake=rows))
    right = np.full(16, 2)
    assert frozenlake_success(right, env) == _gym_success(rows, right, 5, False) == 1.0
    up = np.full(16, 3)  # from S it bumps into the top edge for ever
    assert frozenlake_success(up, env) == _gym_success(rows, up, 5, False) == 0.0


def test_slippery_success_and_optimum_of_a_moved_start_match_gymnasium():
    rows = lake_map("FFFF,FHFH,FFFH,HSFG")
    env = make_env(task_spec("frozenlake", slippery=True, lake=rows))
    policy = np.full(16, 2)
    exact = frozenlake_success(policy, env)
    assert abs(exact - _gym_success(rows, policy, 2000, True)) < 0.04  # about 3.5 standard errors
    moved_to_corner = make_env(task_spec("frozenlake", slippery=True, lake=lake_map("SFFF,FHFH,FFFH,HFFG")))
    assert frozenlake_optimum(env) > frozenlake_optimum(moved_to_corner)  # S two cells from G
