"""The gymnasium tasks of the EPL evolution (paper, Result section): CartPole-v1 and FrozenLake-v1.

FrozenLake-v0 of the paper no longer exists; v1 4x4 with an explicit slippery flag is used. For a
deterministic state -> action policy its success probability within the 100-step limit is exact by
dynamic programming on ``env.unwrapped.P`` (:func:`frozenlake_success`), so selection noise and real
progress can be told apart (optimum 0.744 slippery, 1.0 not slippery).
"""
from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

TASKS = ("cartpole", "frozenlake")


@dataclass(frozen=True)
class TaskSpec:
    """What a phenotype sees of a task: observation size fed in, actions, step limit, solved level."""

    name: str
    env_id: str
    n_inputs: int
    n_actions: int
    max_steps: int
    solved: float
    slippery: bool = True


def task_spec(task: str, slippery: bool = True) -> TaskSpec:
    """The spec of ``cartpole`` or ``frozenlake`` (slippery only matters for FrozenLake)."""
    if task == "cartpole":
        return TaskSpec("cartpole", "CartPole-v1", 4, 2, 500, 475.0, False)
    if task == "frozenlake":
        return TaskSpec("frozenlake", "FrozenLake-v1", 16, 4, 100, 0.70 if slippery else 1.0, slippery)
    raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")


def make_env(spec: TaskSpec) -> gym.Env:
    """A fresh gymnasium environment for the spec."""
    if spec.name == "frozenlake":
        return gym.make(spec.env_id, is_slippery=spec.slippery)
    return gym.make(spec.env_id)


def encode(spec: TaskSpec, obs: int | np.ndarray) -> np.ndarray:
    """Observation -> input vector (FrozenLake: one-hot of the state; CartPole: the 4 floats)."""
    if spec.name == "frozenlake":
        v = np.zeros(spec.n_inputs)
        v[int(obs)] = 1.0
        return v
    return np.asarray(obs, dtype=np.float64)


def frozenlake_success(policy: np.ndarray, env: gym.Env, horizon: int = 100) -> float:
    """Exact probability that the deterministic ``policy`` (state -> action) reaches the goal
    within ``horizon`` steps, by backward induction on the transition table ``env.unwrapped.P``."""
    P = env.unwrapped.P
    n = len(P)
    policy = np.asarray(policy, dtype=np.int64)
    if policy.shape != (n,):
        raise ValueError(f"frozenlake_success: policy needs one action per state ({n}), got shape {policy.shape}")
    T = np.zeros((n, n))
    R = np.zeros(n)
    for s in range(n):
        for prob, nxt, rew, done in P[s][int(policy[s])]:
            R[s] += prob * rew
            if not done:
                T[s, nxt] += prob
    v = np.zeros(n)
    for _ in range(horizon):
        v = R + T @ v
    return float(v[0])


def frozenlake_optimum(env: gym.Env, horizon: int = 100) -> float:
    """The best success probability any (time-dependent) policy reaches within ``horizon`` steps."""
    P = env.unwrapped.P
    n = len(P)
    v = np.zeros(n)
    for _ in range(horizon):
        v = np.array([max(sum(p * (r + (0.0 if d else v[s2])) for p, s2, r, d in P[s][a]) for a in P[s])
                      for s in range(n)])
    return float(v[0])


def episode_seeds(seed: int, generation: int, count: int) -> list[int]:
    """Common random numbers: every individual of a generation meets the same episodes."""
    rng = np.random.default_rng([seed, generation])
    return [int(s) for s in rng.integers(0, 2**31 - 1, size=count)]
