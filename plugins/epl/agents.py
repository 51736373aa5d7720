"""EPL agents: CPPN-expressed RDS that act from O_eep and learn within their lifetime through F_z
(paper, Algorithm 1 run inside an environment), evaluated for a whole population in one batched
torch dynamics (:class:`.rds.RDSPopulation`).

One agent step (our reading of Algorithm 1 for reinforcement tasks; the paper gives no RL detail):

1. the input nodes are external (clamped) and set to x0_in exp(input_gain * obs) (I_z); CartPole's
   observations are scaled by (2.4, 3, 0.21, 3), FrozenLake's state is row and column one-hot;
2. ``explore_steps`` implicit-layer steps z <- f(z) collect the output masses; O_eep =
   Active(their mean), Active(s) = s / (1 + s); the action is argmax O_eep;
3. after the environment step the feedback F_z l is applied to the output masses,
   l = O_eep - y: y = onehot(action) after a rewarded step ("again"), y = 1 - onehot(action) after a
   failure (CartPole: the pole fell; FrozenLake: a hole), no feedback otherwise;
   x_out <- max(x_out - f o l, 0.05 x_out) with f the per-output feedback gain the CPPN expressed.

z carries over between steps and between the ``episodes`` of one lifetime (what was learned stays).
Fitness = w_return * mean raw return + w_learning * (last - first episode return)
- w_memory * (nodes / substrate nodes); the raw mean return (CartPole) or success rate (FrozenLake)
is always reported beside it.
"""
from __future__ import annotations

from dataclasses import dataclass

import neat
import numpy as np
import torch

from .baseline import EvalResult
from .rds import RDS, RDSPopulation, build
from .rl_tasks import TaskSpec, encode, make_env
from .rule import activation
from .substrate import CPPN_INPUTS, CPPN_OUTPUTS, Substrate

OBS_SCALE = {"cartpole": (2.4, 3.0, 0.21, 3.0)}


def agent_inputs(spec: TaskSpec) -> int:
    """Input nodes of an EPL agent: CartPole's 4 observations; FrozenLake's row and column one-hot (8)."""
    return 8 if spec.name == "frozenlake" else spec.n_inputs


def agent_encode(spec: TaskSpec, obs: int | np.ndarray) -> np.ndarray:
    """Observation -> input vector of an EPL agent (see :func:`agent_inputs`)."""
    if spec.name == "frozenlake":
        v = np.zeros(8)
        v[int(obs) // 4] = 1.0
        v[4 + int(obs) % 4] = 1.0
        return v
    return encode(spec, obs)


@dataclass
class AgentSettings:
    """Substrate size, agent dynamics and fitness weights of the EPL phenotype."""

    hidden: int = 3
    lifetime: int = 3  # episodes per validation lifetime (set equal to the runner's ``episodes``)
    explore_steps: int = 5
    settle_steps: int = 20
    dt: float = 0.2
    input_gain: float = 1.0
    w_return: float = 1.0
    w_learning: float = 0.0
    w_memory: float = 0.0


@dataclass
class Lifetime:
    """Raw returns (rows, episodes) of batched lifetimes and, when traced, O_eep per step of row 0."""

    returns: np.ndarray
    trace: list[np.ndarray]


class EPLPhenotype:
    """CPPN genome -> EPL system (Algorithm 2) -> agent; populations evaluated in one batch."""

    cppn = True
    n_inputs, n_outputs = CPPN_INPUTS, CPPN_OUTPUTS

    def __init__(self, spec: TaskSpec, settings: AgentSettings | None = None):
        self.spec = spec
        self.settings = settings or AgentSettings()
        self.n_agent_inputs = agent_inputs(spec)
        self.substrate = Substrate(self.n_agent_inputs, spec.n_actions, self.settings.hidden)
        self.scale = torch.tensor(OBS_SCALE.get(spec.name, (1.0,) * self.n_agent_inputs), dtype=torch.float64)

    def express(self, genomes: list[neat.DefaultGenome], config: neat.Config) -> list[RDS]:
        """The EPL system of each genome."""
        return [build(self.substrate.express_genome(g, config)) for g in genomes]

    def play(self, systems: list[RDS], seeds: list[list[int]], *, trace: bool = False) -> Lifetime:
        """Row i lives through the episodes ``seeds[i]`` with system ``systems[i]``, all rows batched."""
        s, spec = self.settings, self.spec
        P, E = len(systems), len(seeds[0])
        n_in, n_out = self.n_agent_inputs, spec.n_actions
        pop = RDSPopulation(systems, dt=s.dt, pad_to=(self.substrate.max_nodes, self.substrate.max_edges))
        pop.free[:, :n_in] = 0.0
        y = pop.initial_state()
        params = pop.default_params()
        x0_in = pop.x0[:, :n_in]
        fb = torch.tensor([[nd["feedback"] for nd in r.desc["nodes"][n_in:n_in + n_out]] for r in systems],
                          dtype=y.dtype)
        outs = slice(n_in, n_in + n_out)
        for _ in range(s.settle_steps):
            y = pop.fixed_point_map(y)
        envs = [make_env(spec) for _ in range(P)]
        returns = np.zeros((P, E))
        traced: list[np.ndarray] = []
        for e in range(E):
            obs = [env.reset(seed=seeds[i][e])[0] for i, env in enumerate(envs)]
            alive = np.ones(P, dtype=bool)
            while alive.any():
                rows = np.flatnonzero(alive)
                idx = torch.from_numpy(rows)
                # only the living rows are stepped (the parameter of a row is its system index)
                z = y[idx]
                inp = torch.from_numpy(np.stack([agent_encode(spec, obs[i]) for i in rows])) / self.scale
                z[:, :n_in] = x0_in[idx] * torch.exp(s.input_gain * inp.clamp(-5, 5))
                acc = torch.zeros(len(rows), n_out, dtype=y.dtype)
                for _ in range(s.explore_steps):
                    z = pop.fixed_point_map(z, params[idx])
                    acc = acc + z[:, outs]
                o_eep = activation(acc / s.explore_steps)
                if trace and alive[0]:
                    traced.append(o_eep[0].numpy().copy())
                actions = o_eep.argmax(1).numpy()
                sign = np.zeros(len(rows))
                for j, i in enumerate(rows):
                    obs[i], r, term, trunc, _ = envs[i].step(int(actions[j]))
                    returns[i, e] += r
                    failed = term and (spec.name == "cartpole" or r <= 0)
                    sign[j] = -1.0 if failed else (1.0 if r > 0 else 0.0)
                    alive[i] = not (term or trunc)
                target = torch.nn.functional.one_hot(torch.from_numpy(actions), n_out).to(y.dtype)
                sg = torch.from_numpy(sign)[:, None]
                target = torch.where(sg < 0, 1.0 - target, target)
                loss = (o_eep - target) * (sg != 0)
                x_out = z[:, outs]
                z[:, outs] = torch.maximum(x_out - fb[idx] * loss, 0.05 * x_out)
                y[idx] = z
        for env in envs:
            env.close()
        return Lifetime(returns, traced)

    def _results(self, systems: list[RDS], returns: np.ndarray) -> list[EvalResult]:
        s = self.settings
        out = []
        for r, ret in zip(systems, returns):
            raw = float(ret.mean())
            fit = (s.w_return * raw + s.w_learning * float(ret[-1] - ret[0])
                   - s.w_memory * r.system.n / self.substrate.max_nodes)
            out.append(EvalResult(fit, raw))
        return out

    def evaluate(self, genomes: list[neat.DefaultGenome], config: neat.Config, seeds: list[int]) -> list[EvalResult]:
        """Every genome lives through the episodes ``seeds`` (one lifetime), all in one batch."""
        systems = self.express(genomes, config)
        return self._results(systems, self.play(systems, [seeds] * len(systems)).returns)

    def evaluate_loop(self, genomes: list[neat.DefaultGenome], config: neat.Config,
                      seeds: list[int]) -> list[EvalResult]:
        """The same, one individual at a time (the peer of the batched evaluation)."""
        out = []
        for g in genomes:
            systems = self.express([g], config)
            out += self._results(systems, self.play(systems, [seeds]).returns)
        return out

    def validate(self, genome: neat.DefaultGenome, config: neat.Config, seeds: list[int]) -> float:
        """Mean raw return / success rate over ``len(seeds)`` fresh episodes: independent copies of
        the agent (fresh z each), each living through the same number of episodes as in selection."""
        per = max(1, self.settings.lifetime)
        copies = max(1, len(seeds) // per)
        rows = [seeds[i * per:(i + 1) * per] for i in range(copies)]
        systems = self.express([genome], config) * copies
        return float(self.play(systems, rows).returns.mean())
