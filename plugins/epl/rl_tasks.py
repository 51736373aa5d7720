"""The gymnasium tasks of the EPL evolution (paper, Result section): CartPole-v1 and FrozenLake-v1.

FrozenLake-v0 of the paper no longer exists; v1 4x4 with an explicit slippery flag is used. For a
deterministic state -> action policy its success probability within the 100-step limit is exact by
dynamic programming on ``env.unwrapped.P`` (:func:`frozenlake_success`), so selection noise and real
progress can be told apart (optimum 0.744 slippery, 1.0 not slippery).

:class:`CartPoleVec` and :class:`FrozenLakeVec` step many episodes at once on arrays, with
gymnasium's own equations, transition table, seeding and time limits (equal to ``gym.make``
episodes step for step), for the batched EPL agents.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from gymnasium.envs.toy_text.frozen_lake import generate_random_map

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
    lake_map: tuple[str, ...] | None = None  # FrozenLake rows ("SFFF", ...); None: gymnasium's 4x4 map


def lake_map(text: str | None) -> tuple[str, ...] | None:
    """A FrozenLake map from the command line: None / "" / "4x4" (gymnasium's default map),
    "random:SEED" (gymnasium's ``generate_random_map(size=4, seed=SEED)``) or 4 rows of 4 separated by
    commas ("SFFF,FHFH,FFFH,HFFG") with one start S and one goal G at the bottom right (the EPL
    agent's row/column inputs and progress term assume that layout)."""
    if not text or text == "4x4":
        return None
    if text.startswith("random:"):
        return tuple(generate_random_map(size=4, seed=int(text.split(":", 1)[1])))
    rows = tuple(r.strip() for r in text.split(","))
    flat = "".join(rows)
    if ([len(r) for r in rows] != [4] * 4 or set(flat) - set("SFHG") or flat.count("S") != 1
            or flat.count("G") != 1 or flat[-1] != "G"):
        raise ValueError(f"lake map: 4 rows of 4 of S, F, H, G with one S and the goal G last, got {text!r}")
    return rows


def task_spec(task: str, slippery: bool = True, lake: tuple[str, ...] | None = None) -> TaskSpec:
    """The spec of ``cartpole`` or ``frozenlake`` (slippery and ``lake``, a map of rows, only matter
    for FrozenLake). The solved level of a custom map is gymnasium's 0.70 scaled by the map's optimum
    over the default map's (0.744 slippery), 1.0 not slippery."""
    if task == "cartpole":
        return TaskSpec("cartpole", "CartPole-v1", 4, 2, 500, 475.0, False)
    if task == "frozenlake":
        if lake is None:
            return TaskSpec("frozenlake", "FrozenLake-v1", 16, 4, 100, 0.70 if slippery else 1.0, slippery)
        spec = TaskSpec("frozenlake", "FrozenLake-v1", len(lake) * len(lake[0]), 4, 100, 1.0, slippery, tuple(lake))
        return replace(spec, solved=round(0.70 * frozenlake_optimum(make_env(spec)) / 0.744, 3)) if slippery else spec
    raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")


def make_env(spec: TaskSpec) -> gym.Env:
    """A fresh gymnasium environment for the spec."""
    if spec.name == "frozenlake":
        return gym.make(spec.env_id, is_slippery=spec.slippery, desc=list(spec.lake_map) if spec.lake_map else None)
    return gym.make(spec.env_id)


class CartPoleVec:
    """CartPole-v1 for many rows at once: gymnasium's own reset (its seeded RNG) and its equations of
    motion (Euler, float64; float32 observations; reward 1 per step; the 500-step TimeLimit) on numpy
    arrays, so each row equals a ``gym.make("CartPole-v1")`` episode step for step (tested)."""

    def __init__(self, max_steps: int = 500):
        self.phys = CartPoleEnv()
        self.max_steps = max_steps
        self.state = np.zeros((0, 4))
        self.steps = np.zeros(0, dtype=np.int64)
        self.obs = np.zeros((0, 4), dtype=np.float32)

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        """Start one episode per seed (row i from ``seeds[i]``); returns the (rows, 4) observations."""
        states = []
        for seed in seeds:
            self.phys.reset(seed=int(seed))
            states.append(np.array(self.phys.state, dtype=np.float64))
        self.state = np.stack(states)
        self.steps = np.zeros(len(seeds), dtype=np.int64)
        self.obs = self.state.astype(np.float32)
        return self.obs

    def step(self, rows: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step ``rows`` with ``actions`` (0/1): (observations, rewards, terminated, truncated) of those rows."""
        e = self.phys
        x, x_dot, theta, theta_dot = self.state[rows].T
        force = np.where(np.asarray(actions) == 1, e.force_mag, -e.force_mag)
        costheta, sintheta = np.cos(theta), np.sin(theta)
        temp = (force + e.polemass_length * np.square(theta_dot) * sintheta) / e.total_mass
        thetaacc = (e.gravity * sintheta - costheta * temp) / (
            e.length * (4.0 / 3.0 - e.masspole * np.square(costheta) / e.total_mass))
        xacc = temp - e.polemass_length * thetaacc * costheta / e.total_mass
        x, x_dot = x + e.tau * x_dot, x_dot + e.tau * xacc
        theta, theta_dot = theta + e.tau * theta_dot, theta_dot + e.tau * thetaacc
        new = np.stack([x, x_dot, theta, theta_dot], 1)
        self.state[rows] = new
        self.steps[rows] += 1
        terminated = ((x < -e.x_threshold) | (x > e.x_threshold)
                      | (theta < -e.theta_threshold_radians) | (theta > e.theta_threshold_radians))
        truncated = self.steps[rows] >= self.max_steps
        obs = new.astype(np.float32)
        self.obs[rows] = obs
        return obs, np.ones(len(rows)), terminated, truncated


class FrozenLakeVec:
    """FrozenLake-v1 for many rows at once: gymnasium's transition table ``P`` as arrays and one
    gymnasium RNG per row (seeded by gymnasium's reset, one draw per reset and per step as
    gymnasium's ``categorical_sample``), with the TimeLimit; equals ``gym.make("FrozenLake-v1",
    is_slippery=...)`` episode for episode (tested)."""

    def __init__(self, spec: TaskSpec):
        self.phys = make_env(spec).unwrapped
        self.max_steps = spec.max_steps
        P = self.phys.P
        n, k = len(P), max(len(t) for s in P.values() for t in s.values())
        self.cum = np.full((n, 4, k), 2.0)  # cumulative probabilities, padded past 1
        self.nxt = np.zeros((n, 4, k), dtype=np.int64)
        self.rew = np.zeros((n, 4, k))
        self.done = np.zeros((n, 4, k), dtype=bool)
        for s_, acts in P.items():
            for a, trans in acts.items():
                m = len(trans)
                self.cum[s_, a, :m] = np.cumsum(np.asarray([t[0] for t in trans]))
                self.nxt[s_, a, :m] = [t[1] for t in trans]
                self.rew[s_, a, :m] = [t[2] for t in trans]
                self.done[s_, a, :m] = [t[3] for t in trans]
        self.rngs: list[np.random.Generator] = []
        self.obs = np.zeros(0, dtype=np.int64)
        self.steps = np.zeros(0, dtype=np.int64)

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        """Start one episode per seed; returns the (rows,) states."""
        self.rngs, states = [], []
        for seed in seeds:
            s0, _ = self.phys.reset(seed=int(seed))
            self.rngs.append(self.phys.np_random)
            states.append(s0)
        self.obs = np.array(states, dtype=np.int64)
        self.steps = np.zeros(len(seeds), dtype=np.int64)
        return self.obs

    def step(self, rows: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step ``rows`` with ``actions``: (states, rewards, terminated, truncated) of those rows."""
        u = np.array([self.rngs[i].random() for i in rows])
        s_, a = self.obs[rows], np.asarray(actions, dtype=np.int64)
        i = (self.cum[s_, a] <= u[:, None]).sum(1)  # first index with cumsum > u (argmax of csprob > u)
        new = self.nxt[s_, a, i]
        self.obs[rows] = new
        self.steps[rows] += 1
        return new, self.rew[s_, a, i], self.done[s_, a, i], self.steps[rows] >= self.max_steps


def make_vec_env(spec: TaskSpec) -> CartPoleVec | FrozenLakeVec:
    """Many episodes stepped together: :class:`CartPoleVec` or :class:`FrozenLakeVec`."""
    return CartPoleVec(spec.max_steps) if spec.name == "cartpole" else FrozenLakeVec(spec)


def encode(spec: TaskSpec, obs: int | np.ndarray) -> np.ndarray:
    """Observation -> input vector (FrozenLake: one-hot of the state; CartPole: the 4 floats)."""
    if spec.name == "frozenlake":
        v = np.zeros(spec.n_inputs)
        v[int(obs)] = 1.0
        return v
    return np.asarray(obs, dtype=np.float64)


def frozenlake_success(policy: np.ndarray, env: gym.Env, horizon: int = 100) -> float:
    """Exact probability that the deterministic ``policy`` (state -> action) reaches the goal
    from the start state within ``horizon`` steps, by backward induction on the transition table ``env.unwrapped.P``."""
    n = len(env.unwrapped.P)
    policy = np.asarray(policy, dtype=np.int64)
    if policy.shape != (n,):
        raise ValueError(f"frozenlake_success: policy needs one action per state ({n}), got shape {policy.shape}")
    return float(frozenlake_success_many(policy[None], env, horizon)[0])


def frozenlake_success_many(policies: np.ndarray, env: gym.Env, horizon: int = 100) -> np.ndarray:
    """:func:`frozenlake_success` of many policies (rows, states) at once: (rows,) probabilities.

    v_{t+1}(s) = R(s, pi(s)) + sum_s' T(s, pi(s), s') v_t(s'), v_0 = 0, ``horizon`` times, with
    R the probability of stepping onto the goal and T the non-terminal transition probabilities."""
    P = env.unwrapped.P
    n = len(P)
    pol = np.asarray(policies, dtype=np.int64)
    if pol.ndim != 2 or pol.shape[1] != n:
        raise ValueError(f"frozenlake_success_many: policies need shape (rows, {n}), got {pol.shape}")
    T = np.zeros((n, 4, n))
    R = np.zeros((n, 4))
    for s in range(n):
        for a, trans in P[s].items():
            for prob, nxt, rew, done in trans:
                R[s, a] += prob * rew
                if not done:
                    T[s, a, nxt] += prob
    states = np.arange(n)[None]
    Tp, Rp = T[states, pol], R[states, pol]
    v = np.zeros(pol.shape)
    for _ in range(horizon):
        v = Rp + np.einsum("bij,bj->bi", Tp, v)
    return v[:, start_state(env)]


def start_state(env: gym.Env) -> int:
    """The lake's start state (its S cell; not always state 0 on a custom map)."""
    return int(np.argmax(env.unwrapped.initial_state_distrib))


def frozenlake_optimum(env: gym.Env, horizon: int = 100) -> float:
    """The best success probability any (time-dependent) policy reaches within ``horizon`` steps."""
    P = env.unwrapped.P
    n = len(P)
    v = np.zeros(n)
    for _ in range(horizon):
        v = np.array([max(sum(p * (r + (0.0 if d else v[s2])) for p, s2, r, d in P[s][a]) for a in P[s])
                      for s in range(n)])
    return float(v[start_state(env)])


def episode_seeds(seed: int, generation: int, count: int) -> list[int]:
    """Common random numbers: every individual of a generation meets the same episodes."""
    rng = np.random.default_rng([seed, generation])
    return [int(s) for s in rng.integers(0, 2**31 - 1, size=count)]
