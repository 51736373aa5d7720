"""The baseline phenotype: a plain feed-forward NEAT network (no EPL), so every EPL number has a peer.

CartPole-v1: action = argmax of the outputs, fitness = mean raw return over the generation's
episodes (common seeds). FrozenLake-v1: the net is tabulated to a state -> action policy and its
fitness is the exact success probability (:func:`.rl_tasks.frozenlake_success`).
"""
from __future__ import annotations

from dataclasses import dataclass

import neat
import numpy as np

from .rl_tasks import TaskSpec, encode, frozenlake_success, make_env


@dataclass
class EvalResult:
    """One individual's evaluation: selection fitness and the raw gymnasium figure beside it
    (mean return on CartPole, success probability/rate on FrozenLake), and FrozenLake's exact
    success probability of the policy acted by, where known (NaN otherwise)."""

    fitness: float
    raw: float
    exact: float = float("nan")


def _policy_table(net: neat.nn.FeedForwardNetwork, spec: TaskSpec) -> np.ndarray:
    return np.array([int(np.argmax(net.activate(encode(spec, s).tolist()))) for s in range(spec.n_inputs)])


class FeedForwardPhenotype:
    """Evaluates neat-python genomes as feed-forward nets on a task, one genome at a time."""

    cppn = False

    def __init__(self, spec: TaskSpec):
        self.spec = spec
        self.n_inputs, self.n_outputs = spec.n_inputs, spec.n_actions

    def evaluate(self, genomes: list[neat.DefaultGenome], config: neat.Config, seeds: list[int]) -> list[EvalResult]:
        """Fitness of each genome on the episodes ``seeds`` (ignored by the exact FrozenLake figure)."""
        env = make_env(self.spec)
        out = []
        for g in genomes:
            net = neat.nn.FeedForwardNetwork.create(g, config)
            if self.spec.name == "frozenlake":
                p = frozenlake_success(_policy_table(net, self.spec), env, self.spec.max_steps)
                out.append(EvalResult(p, p, p))
                continue
            ret = float(np.mean([self._episode(net, env, s) for s in seeds]))
            out.append(EvalResult(ret, ret))
        env.close()
        return out

    def _episode(self, net: neat.nn.FeedForwardNetwork, env: object, seed: int) -> float:
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            a = int(np.argmax(net.activate(encode(self.spec, obs).tolist())))
            obs, r, term, trunc, _ = env.step(a)
            total += float(r)
            done = term or trunc
        return total

    def validate(self, genome: neat.DefaultGenome, config: neat.Config, seeds: list[int]) -> float:
        """Raw figure on fresh episodes: CartPole mean return, FrozenLake success rate (one per seed)."""
        env = make_env(self.spec)
        net = neat.nn.FeedForwardNetwork.create(genome, config)
        vals = [self._episode(net, env, s) for s in seeds]
        env.close()
        return float(np.mean(vals))
