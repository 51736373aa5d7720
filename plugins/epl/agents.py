"""EPL agents: CPPN-expressed RDS that act from O_eep and learn within their lifetime through F_z
(paper, Algorithm 1 run inside an environment), evaluated for a whole population in one batched
torch dynamics (:class:`.rds.RDSPopulation`).

One agent step (our reading of Algorithm 1 for reinforcement tasks; the paper gives no RL detail):

1. the input nodes are external (clamped) and set to x0_in exp(input_gain * obs) (I_z); CartPole's
   observations are scaled by (2.4, 3, 0.21, 3), FrozenLake's state is row and column one-hot;
2. ``explore_steps`` implicit-layer steps z <- f(z) collect the output masses; O_eep =
   Active(their mean), Active(s) = s / (1 + s); the action is argmax (O_eep - O_rest) (``readout
   "relative"``, default), O_rest being O_eep of the settled system at a zero observation, computed
   once per lifetime: the two output nodes are expressed at different substrate points, and their
   rest levels differed by more than the inputs moved them, so an absolute argmax mostly gave one
   constant action (``readout "absolute"``: argmax O_eep);
3. after the environment step the feedback F_z l is applied to the output masses,
   l = O_eep - y: y = onehot(action) after a rewarded end of an episode (FrozenLake's goal),
   y = 1 - onehot(action) after a failure (CartPole: the pole fell; FrozenLake: a hole), no feedback
   otherwise (``feedback "terminal"``, default); x_out <- max(x_out - f o l, 0.05 x_out) with f the
   per-output feedback gain the CPPN expressed. ``feedback "every-step"`` also reinforces the taken
   action after every rewarded step: CartPole rewards every step, so that locked nearly every agent
   into one action within ~10 steps (the pole falls).

z carries over between steps and between the ``episodes`` of one lifetime (what was learned stays).
Fitness = w_return * mean raw return + w_learning * (last - first episode return)
- w_memory * (nodes / substrate nodes) + w_progress * progress; progress (FrozenLake only, a
shaping term of ours: the paper's FrozenLake fitness is not a raw success rate either) is the mean
over episodes of the best 1 - (Manhattan distance to the goal) / 6 reached. The raw mean return
(CartPole) or success rate (FrozenLake) is always reported beside it.
"""
from __future__ import annotations

from dataclasses import dataclass

import neat
import numpy as np
import torch

from .baseline import EvalResult
from .cppn import TorchCPPN
from .rds import RDS, RDSPopulation, build
from .rl_tasks import TaskSpec, encode, make_vec_env
from .rule import activation
from .substrate import CPPN_INPUTS, CPPN_OUTPUTS, ExpressedPopulation, Substrate

OBS_SCALE = {"cartpole": (2.4, 3.0, 0.21, 3.0)}


def agent_inputs(spec: TaskSpec) -> int:
    """Input nodes of an EPL agent: CartPole's 4 observations; FrozenLake's row and column one-hot (8)."""
    return 8 if spec.name == "frozenlake" else spec.n_inputs


def agent_encode(spec: TaskSpec, obs: int | np.ndarray) -> np.ndarray:
    """Observation -> input vector of an EPL agent (see :func:`agent_inputs`); an array of
    observations (FrozenLake states (rows,), CartPole (rows, 4)) -> one input vector per row."""
    if spec.name == "frozenlake":
        state = np.asarray(obs, dtype=np.int64)[..., None]
        return np.concatenate([np.arange(4) == state // 4, np.arange(4) == state % 4], -1).astype(np.float64)
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
    readout: str = "relative"  # "relative": argmax(O_eep - O_rest); "absolute": argmax(O_eep)
    feedback: str = "terminal"  # "terminal": F_z only when an episode ends; "every-step": also after each reward
    w_return: float = 1.0
    w_learning: float = 0.0
    w_memory: float = 0.0
    w_progress: float = 0.0


@dataclass
class Lifetime:
    """Raw returns (rows, episodes) of batched lifetimes, the progress toward FrozenLake's goal
    (rows, episodes; 0 for CartPole) and, when traced, O_eep per step of row 0."""

    returns: np.ndarray
    trace: list[np.ndarray]
    progress: np.ndarray


class EPLPhenotype:
    """CPPN genome -> EPL system (Algorithm 2) -> agent; populations evaluated in one batch.

    The whole population is expressed at once (:meth:`.substrate.Substrate.express_arrays`) into
    one :class:`.rds.RDSPopulation` in substrate slot order, and its episodes run together on a
    vectorised environment (:func:`.rl_tasks.make_vec_env`). The batch is compacted as episodes end:
    only the rows still playing are stepped (their tensors are re-selected once per ending, not per
    step), so the rows of a short episode stop costing anything."""

    cppn = True
    n_inputs, n_outputs = CPPN_INPUTS, CPPN_OUTPUTS

    def __init__(self, spec: TaskSpec, settings: AgentSettings | None = None):
        self.spec = spec
        self.settings = settings or AgentSettings()
        self.n_agent_inputs = agent_inputs(spec)
        self.substrate = Substrate(self.n_agent_inputs, spec.n_actions, self.settings.hidden)
        self.scale = torch.tensor(OBS_SCALE.get(spec.name, (1.0,) * self.n_agent_inputs), dtype=torch.float64)

    def express(self, genomes: list[neat.DefaultGenome], config: neat.Config) -> list[RDS]:
        """The EPL system of each genome as an :class:`.rds.RDS` (for drawing and inspection)."""
        return [build(self.substrate.express_genome(g, config)) for g in genomes]

    def express_population(self, genomes: list[neat.DefaultGenome], config: neat.Config) -> ExpressedPopulation:
        """The systems of all genomes as padded tensors (one CPPN call per genome over the substrate)."""
        out = torch.stack([TorchCPPN(g, config)(self.substrate.queries) for g in genomes])
        return self.substrate.express_arrays(out)

    def _encode(self, obs: object, rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(agent_encode(self.spec, np.asarray(obs)[rows])) / self.scale

    def play(self, systems: ExpressedPopulation, seeds: list[list[int]], *, trace: bool = False) -> Lifetime:
        """Row i lives through the episodes ``seeds[i]`` with system i of ``systems``, all rows batched."""
        s = self.settings
        E = len(seeds[0])
        full = RDSPopulation.from_arrays(systems.arrays, dt=s.dt)
        P = full.size
        ins, outs = systems.inputs, systems.outputs
        y = full.initial_state()
        for _ in range(s.settle_steps):
            y = full.fixed_point_map(y)
        rest = torch.zeros(P, len(outs), dtype=y.dtype)
        if s.readout == "relative":  # O_eep of the settled system at a zero observation
            z = y.clone()
            z[:, ins] = full.x0[:, ins]
            acc = torch.zeros(P, len(outs), dtype=y.dtype)
            for _ in range(s.explore_steps):
                z = full.fixed_point_map(z)
                acc = acc + z[:, outs]
            rest = activation(acc / s.explore_steps)
        env = make_vec_env(self.spec)
        returns = np.zeros((P, E))
        progress = np.zeros((P, E))
        lake = self.spec.name == "frozenlake"
        traced: list[np.ndarray] = []
        for e in range(E):
            env.reset([seeds[i][e] for i in range(P)])
            rows = np.arange(P)
            idx = torch.from_numpy(rows)
            live, x0_in, fb, ref = full, full.x0[:, ins], systems.feedback, rest
            while len(rows):
                z = y[idx]
                z[:, ins] = x0_in * torch.exp(s.input_gain * self._encode(env.obs, rows).clamp(-5, 5))
                acc = torch.zeros(len(rows), len(outs), dtype=y.dtype)
                for _ in range(s.explore_steps):
                    z = live.fixed_point_map(z)
                    acc = acc + z[:, outs]
                o_eep = activation(acc / s.explore_steps)
                if trace and rows[0] == 0:
                    traced.append(o_eep[0].numpy().copy())
                actions = (o_eep - ref).argmax(1).numpy()
                obs, r, term, trunc = env.step(rows, actions)
                returns[rows, e] += r
                if lake:
                    near = 1.0 - (6 - obs // 4 - obs % 4) / 6.0
                    progress[rows, e] = np.maximum(progress[rows, e], near)
                failed = term & ((r <= 0) | (self.spec.name == "cartpole"))
                rewarded = (r > 0) & (term if s.feedback == "terminal" else True)
                sign = np.where(failed, -1.0, np.where(rewarded, 1.0, 0.0))
                target = torch.nn.functional.one_hot(torch.from_numpy(actions), len(outs)).to(y.dtype)
                sg = torch.from_numpy(sign)[:, None]
                target = torch.where(sg < 0, 1.0 - target, target)
                x_out = z[:, outs]
                z[:, outs] = torch.maximum(x_out - fb * ((o_eep - target) * (sg != 0)), 0.05 * x_out)
                y[idx] = z
                going = ~(term | trunc)
                if not going.all():  # compact: drop the rows whose episode ended
                    keep = torch.from_numpy(np.flatnonzero(going))
                    rows, idx = rows[going], idx[keep]
                    if len(rows):
                        live, x0_in, fb, ref = live.select(keep), x0_in[keep], fb[keep], ref[keep]
        return Lifetime(returns, traced, progress)

    def _results(self, systems: ExpressedPopulation, life: Lifetime) -> list[EvalResult]:
        s = self.settings
        out = []
        for nodes, ret, prog in zip(systems.nodes.tolist(), life.returns, life.progress):
            raw = float(ret.mean())
            fit = (s.w_return * raw + s.w_learning * float(ret[-1] - ret[0])
                   - s.w_memory * nodes / self.substrate.max_nodes + s.w_progress * float(prog.mean()))
            out.append(EvalResult(fit, raw))
        return out

    def evaluate(self, genomes: list[neat.DefaultGenome], config: neat.Config, seeds: list[int]) -> list[EvalResult]:
        """Every genome lives through the episodes ``seeds`` (one lifetime), all in one batch."""
        systems = self.express_population(genomes, config)
        return self._results(systems, self.play(systems, [seeds] * len(genomes)))

    def evaluate_loop(self, genomes: list[neat.DefaultGenome], config: neat.Config,
                      seeds: list[int]) -> list[EvalResult]:
        """The same, one individual at a time (the peer of the batched evaluation)."""
        out = []
        for g in genomes:
            systems = self.express_population([g], config)
            out += self._results(systems, self.play(systems, [seeds]))
        return out

    def validate(self, genome: neat.DefaultGenome, config: neat.Config, seeds: list[int]) -> float:
        """Mean raw return / success rate over ``len(seeds)`` fresh episodes: independent copies of
        the agent (fresh z each), each living through the same number of episodes as in selection."""
        per = max(1, self.settings.lifetime)
        copies = max(1, len(seeds) // per)
        rows = [seeds[i * per:(i + 1) * per] for i in range(copies)]
        systems = self.express_population([genome], config).select([0] * copies)
        return float(self.play(systems, rows).returns.mean())
