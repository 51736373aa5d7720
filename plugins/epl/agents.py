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

FrozenLake options (our readings where the paper is silent; Algorithm 2's expression is unchanged):

* ``lake_inputs "state"``: one input space per lake state (16), placed on the lake's grid
  (x = -1.5 + column / 3, y = -1 + 2 row / 3), the state given one-hot; ``"rowcol"`` (default):
  8 inputs, row and column one-hot. As far as the agent's action score is additive in its inputs,
  row + column cannot express the optimal slippery policy (states 0 and 8 want left / up, state
  10 left, state 2 up); a state input can.
* ``acting "table"``: every step of an episode is one exploration of Algorithm 1 from the state
  z*_k the agent had when episode k began (z* + I_z x, ``explore_steps`` steps, O_eep, argmax);
  the state it reaches is dropped, except at the episode's last step, where F_z is applied to it
  as above and the result becomes z*_{k+1}. So within an episode the agent acts by a fixed
  state -> action table (read out once per episode for every state where it can act: one batched
  exploration per state), and it learns between episodes. ``"carry"`` (default): z carries over
  from step to step as described above. With ``readout "contrast"`` (table acting only) the table
  is argmax over actions of O_eep(state) minus that output's mean O_eep over the acting states:
  what the state changes in each output, without the output's own offset.
* ``lake_fitness "exact"`` (needs ``acting "table"``): the return term of the fitness is the mean
  over the lifetime's episodes of the exact success probability of the table in force in that
  episode (:func:`.rl_tasks.frozenlake_success_many`: dynamic programming on the transition
  table), instead of the sampled success. The episodes are still played (their ends drive F_z,
  so what the agent learns is what it would learn acting); the expected success of episode k
  given the history is exactly its table's DP success, so the fitness has the mean of the sampled
  success rate and far less noise. ``"sampled"`` (default): the success rate of the episodes.
  The raw figure logged and validated is always the success rate of played episodes.
* ``lake_relation "neighbours"`` (needs ``lake_inputs "state"``): the substrate's relation inputs
  (:func:`lake_relation`): the CPPN also reads, for each (state, action) pair, the map ahead, beside
  and behind the action's direction, so the substrate's geometry carries the lake's structure
  (every table >= 0.70 on the default map is irregular over grid coordinates); ``"distance"``
  adds the goal distances of the cell ahead and of the state. ``"none"`` (default).
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
from .rl_tasks import FrozenLakeVec, TaskSpec, encode, frozenlake_success_many, make_env, make_vec_env
from .rule import activation
from .substrate import CPPN_INPUTS, CPPN_OUTPUTS, ExpressedPopulation, Substrate

OBS_SCALE = {"cartpole": (2.4, 3.0, 0.21, 3.0)}


LAKE_INPUTS = ("rowcol", "state")
LAKE_RELATIONS = ("none", "neighbours", "distance")
#: gymnasium's FrozenLake actions as (row, column) steps: left, down, right, up
LAKE_MOVES = ((0, -1), (1, 0), (0, 1), (-1, 0))
READOUTS = ("relative", "absolute", "contrast")


def agent_inputs(spec: TaskSpec, lake_inputs: str = "rowcol") -> int:
    """Input nodes of an EPL agent: CartPole's 4 observations; FrozenLake's row and column one-hot
    (8, ``lake_inputs "rowcol"``) or state one-hot (16, ``"state"``)."""
    if spec.name != "frozenlake":
        return spec.n_inputs
    if lake_inputs not in LAKE_INPUTS:
        raise ValueError(f"lake_inputs must be one of {LAKE_INPUTS}, got {lake_inputs!r}")
    return 8 if lake_inputs == "rowcol" else spec.n_inputs


def agent_input_pos(spec: TaskSpec, lake_inputs: str = "rowcol") -> list[tuple[float, float]] | None:
    """Substrate positions of the input spaces: FrozenLake state inputs on the lake's grid
    (x = -1.5 + column / 3, y = -1 + 2 row / 3); otherwise None (the input column x = -1)."""
    if spec.name != "frozenlake" or lake_inputs == "rowcol":
        return None
    side = int(round(spec.n_inputs ** 0.5))
    return [(-1.5 + (s % side) / (side - 1), -1.0 + 2.0 * (s // side) / (side - 1)) for s in range(spec.n_inputs)]


def lake_goal_distance(desc: np.ndarray) -> np.ndarray:
    """Steps from each cell to the goal over cells that are not holes (breadth first, moves of
    :data:`LAKE_MOVES`), divided by rows + columns - 2; holes and cells cut off from the goal get
    one step more than the farthest cell that reaches it."""
    rows, cols = desc.shape
    dist = np.full(rows * cols, np.inf)
    goal = int(np.flatnonzero(desc.reshape(-1) == "G")[0])
    dist[goal], frontier = 0.0, [goal]
    while frontier:
        nxt = []
        for u in frontier:
            r, c = divmod(u, cols)
            for dr, dc in LAKE_MOVES:
                r2, c2 = r + dr, c + dc
                if 0 <= r2 < rows and 0 <= c2 < cols and desc[r2, c2] != "H" and np.isinf(dist[r2 * cols + c2]):
                    dist[r2 * cols + c2] = dist[u] + 1.0
                    nxt.append(r2 * cols + c2)
        frontier = nxt
    far = dist[np.isfinite(dist)].max()
    return np.where(np.isfinite(dist), dist, far + 1.0) / (rows + cols - 2)


def lake_relation(spec: TaskSpec, hidden: int, kind: str = "neighbours") -> dict[tuple[int, int], tuple[float, ...]]:
    """Relation features of the substrate (``lake_relation``): for the input space of lake state s
    (``lake_inputs "state"``) and the output space of action a, what the map holds in the cell the
    action points at, in the two cells beside that direction and in the cell behind: +1 hole,
    -1 goal, 0 otherwise (frozen, start, off the map); ``kind "distance"`` adds the goal distance
    (:func:`lake_goal_distance`) of the cell ahead (off the map: of s itself) and of s. Computed from
    the task's map, any map; the CPPN sees them beside the two spaces' coordinates
    (:class:`.substrate.Substrate`)."""
    desc = np.asarray(make_env(spec).unwrapped.desc).astype(str)
    rows, cols = desc.shape
    dist = lake_goal_distance(desc)

    def kind_at(r: int, c: int) -> float:
        if not (0 <= r < rows and 0 <= c < cols):
            return 0.0
        return {"H": 1.0, "G": -1.0}.get(desc[r, c], 0.0)

    out: dict[tuple[int, int], tuple[float, ...]] = {}
    for s in range(rows * cols):
        r, c = divmod(s, cols)
        around = [kind_at(r + dr, c + dc) for dr, dc in LAKE_MOVES]
        for a, (dr, dc) in enumerate(LAKE_MOVES):
            feats: tuple[float, ...] = (around[a], around[(a + 1) % 4], around[(a - 1) % 4], around[(a + 2) % 4])
            if kind == "distance":
                inside = 0 <= r + dr < rows and 0 <= c + dc < cols
                feats += (float(dist[(r + dr) * cols + c + dc] if inside else dist[s]), float(dist[s]))
            out[(s, rows * cols + hidden + a)] = feats
    return out


def agent_encode(spec: TaskSpec, obs: int | np.ndarray, lake_inputs: str = "rowcol") -> np.ndarray:
    """Observation -> input vector of an EPL agent (see :func:`agent_inputs`); an array of
    observations (FrozenLake states (rows,), CartPole (rows, 4)) -> one input vector per row."""
    if spec.name == "frozenlake":
        state = np.asarray(obs, dtype=np.int64)[..., None]
        if lake_inputs == "state":
            return (np.arange(spec.n_inputs) == state).astype(np.float64)
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
    readout: str = "relative"  # "relative": argmax(O_eep - O_rest); "absolute": argmax(O_eep); "contrast" (table)
    feedback: str = "terminal"  # "terminal": F_z only when an episode ends; "every-step": also after each reward
    lake_inputs: str = "rowcol"  # FrozenLake: "rowcol" (8 inputs) or "state" (16, on the lake's grid)
    acting: str = "carry"  # "carry": z carries from step to step; "table" (FrozenLake): a table per episode
    lake_fitness: str = "sampled"  # FrozenLake: "sampled" success rate or "exact" DP success of the tables
    lake_relation: str = "none"  # FrozenLake state inputs: "neighbours" (the map around (state, action)), "distance"
    w_return: float = 1.0
    w_learning: float = 0.0
    w_memory: float = 0.0
    w_progress: float = 0.0


@dataclass
class Lifetime:
    """Raw returns (rows, episodes) of batched lifetimes, the progress toward FrozenLake's goal
    (rows, episodes; 0 for CartPole), when traced O_eep per step of row 0, and with ``acting
    "table"`` the exact success probability of each episode's table (rows, episodes) and the
    tables themselves (rows, episodes, states)."""

    returns: np.ndarray
    trace: list[np.ndarray]
    progress: np.ndarray
    expected: np.ndarray | None = None
    tables: np.ndarray | None = None


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
        self.settings = s = settings or AgentSettings()
        if s.acting not in ("carry", "table") or s.lake_fitness not in ("sampled", "exact"):
            raise ValueError(f"acting must be carry|table and lake_fitness sampled|exact (got {s.acting!r}, "
                             f"{s.lake_fitness!r})")
        if s.readout not in READOUTS or (s.readout == "contrast" and s.acting != "table"):
            raise ValueError(f"readout must be one of {READOUTS} ('contrast' with acting 'table'), got {s.readout!r}")
        if s.acting == "table" and spec.name != "frozenlake":
            raise ValueError("acting 'table' needs a task with discrete states (frozenlake)")
        if s.lake_fitness == "exact" and s.acting != "table":
            raise ValueError("lake_fitness 'exact' needs acting 'table' (a fixed state -> action table per episode)")
        if s.lake_relation not in LAKE_RELATIONS or (s.lake_relation != "none" and (
                spec.name != "frozenlake" or s.lake_inputs != "state")):
            raise ValueError(f"lake_relation must be one of {LAKE_RELATIONS} (other than 'none' with FrozenLake "
                             f"state inputs), got {s.lake_relation!r}")
        self.n_agent_inputs = agent_inputs(spec, s.lake_inputs)
        relation = lake_relation(spec, s.hidden, s.lake_relation) if s.lake_relation != "none" else None
        self.substrate = Substrate(self.n_agent_inputs, spec.n_actions, s.hidden,
                                   input_pos=agent_input_pos(spec, s.lake_inputs), relation=relation)
        self.n_inputs = self.substrate.cppn_inputs
        self.scale = torch.tensor(OBS_SCALE.get(spec.name, (1.0,) * self.n_agent_inputs), dtype=torch.float64)

    def express(self, genomes: list[neat.DefaultGenome], config: neat.Config) -> list[RDS]:
        """The EPL system of each genome as an :class:`.rds.RDS` (for drawing and inspection)."""
        return [build(self.substrate.express_genome(g, config)) for g in genomes]

    def express_population(self, genomes: list[neat.DefaultGenome], config: neat.Config) -> ExpressedPopulation:
        """The systems of all genomes as padded tensors (one CPPN call per genome over the substrate)."""
        out = torch.stack([TorchCPPN(g, config)(self.substrate.queries) for g in genomes])
        return self.substrate.express_arrays(out)

    def _encode(self, obs: object, rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(agent_encode(self.spec, np.asarray(obs)[rows], self.settings.lake_inputs)) / self.scale

    def play(self, systems: ExpressedPopulation, seeds: list[list[int]], *, trace: bool = False) -> Lifetime:
        """Row i lives through the episodes ``seeds[i]`` with system i of ``systems``, all rows batched."""
        s = self.settings
        E = len(seeds[0])
        systems = systems.compact()  # only the node and edge slots some row expresses
        full = RDSPopulation.from_arrays(systems.arrays, dt=s.dt, reactions=systems.reactions)
        P = full.size
        ins, outs = systems.inputs, systems.outputs
        y = full.initial_state()
        for _ in range(s.settle_steps):
            y = full.fixed_point_map(y)
        rest = torch.zeros(P, len(outs), dtype=y.dtype)
        if s.readout == "relative" and s.acting == "carry":  # O_eep of the settled system at a zero observation
            z = y.clone()
            z[:, ins] = full.x0[:, ins]
            acc = torch.zeros(P, len(outs), dtype=y.dtype)
            for _ in range(s.explore_steps):
                z = full.fixed_point_map(z)
                acc = acc + z[:, outs]
            rest = activation(acc / s.explore_steps)
        if s.acting == "table":
            return self._play_tables(systems, full, y, rest, seeds, trace)
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
                y[idx] = self._feedback(z, outs, o_eep, actions, sign, fb)
                going = ~(term | trunc)
                if not going.all():  # compact: drop the rows whose episode ended
                    keep = torch.from_numpy(np.flatnonzero(going))
                    rows, idx = rows[going], idx[keep]
                    if len(rows):
                        live, x0_in, fb, ref = live.select(keep), x0_in[keep], fb[keep], ref[keep]
        return Lifetime(returns, traced, progress)

    @staticmethod
    def _feedback(z: torch.Tensor, outs: torch.Tensor, o_eep: torch.Tensor, actions: np.ndarray, sign: np.ndarray,
                  fb: torch.Tensor) -> torch.Tensor:
        """F_z l on the output masses: l = O_eep - y, y = onehot(action) where ``sign`` > 0,
        1 - onehot(action) where < 0, no feedback where 0; x_out <- max(x_out - f o l, 0.05 x_out)."""
        target = torch.nn.functional.one_hot(torch.from_numpy(actions), len(outs)).to(z.dtype)
        sg = torch.from_numpy(sign)[:, None]
        target = torch.where(sg < 0, 1.0 - target, target)
        x_out = z[:, outs]
        z[:, outs] = torch.maximum(x_out - fb * ((o_eep - target) * (sg != 0)), 0.05 * x_out)
        return z

    def _play_tables(self, systems: ExpressedPopulation, full: RDSPopulation, y: torch.Tensor, rest: torch.Tensor,
                     seeds: list[list[int]], trace: bool) -> Lifetime:
        """``acting "table"``: per episode, one exploration from z*_k per state where the agent can
        act (all rows batched) gives the table, O_rest being re-read from z*_k at a zero observation
        (``readout "relative"``); the episode is played by it; F_z at its end from the last state's
        exploration gives z*_{k+1} (see the module docstring)."""
        s = self.settings
        P, E = full.size, len(seeds[0])
        ins, outs = systems.inputs, systems.outputs
        env = make_vec_env(self.spec)
        assert isinstance(env, FrozenLakeVec)
        n_states = self.spec.n_inputs
        desc = np.asarray(env.phys.desc).reshape(-1)
        acting = [st for st in range(n_states) if desc[st] in (b"S", b"F")]
        x0_in = full.x0[:, ins]
        returns, progress, expected = np.zeros((P, E)), np.zeros((P, E)), np.zeros((P, E))
        tables = np.zeros((P, E, n_states), dtype=np.int64)
        traced: list[np.ndarray] = []
        every = np.arange(P)
        for e in range(E):
            Z = y.new_zeros(P, n_states, y.shape[1])
            O = y.new_zeros(P, n_states, len(outs))
            if s.readout == "relative":  # O_rest of z*_k: the exploration at a zero observation
                z, acc = y.clone(), torch.zeros(P, len(outs), dtype=y.dtype)
                z[:, ins] = x0_in
                for _ in range(s.explore_steps):
                    z = full.fixed_point_map(z)
                    acc = acc + z[:, outs]
                rest = activation(acc / s.explore_steps)
            for st in acting:
                z = y.clone()
                z[:, ins] = x0_in * torch.exp(s.input_gain * self._encode(np.full(P, st), every).clamp(-5, 5))
                acc = torch.zeros(P, len(outs), dtype=y.dtype)
                for _ in range(s.explore_steps):
                    z = full.fixed_point_map(z)
                    acc = acc + z[:, outs]
                Z[:, st], O[:, st] = z, activation(acc / s.explore_steps)
            if s.readout == "contrast":  # each output against its mean over the acting states
                rest = O[:, acting].mean(1)
            tables[:, e, acting] = (O[:, acting] - rest[:, None]).argmax(2).numpy()
            table = tables[:, e]
            expected[:, e] = frozenlake_success_many(table, env.phys, self.spec.max_steps)
            env.reset([seeds[i][e] for i in range(P)])
            rows, last, sign = every, env.obs.copy(), np.zeros(P)
            while len(rows):
                state = env.obs[rows]
                if trace and rows[0] == 0:
                    traced.append(O[0, state[0]].numpy().copy())
                last[rows] = state
                obs, r, term, trunc = env.step(rows, table[rows, state])
                returns[rows, e] += r
                progress[rows, e] = np.maximum(progress[rows, e], 1.0 - (6 - obs // 4 - obs % 4) / 6.0)
                sign[rows] = np.where(term & (r <= 0), -1.0, np.where(term & (r > 0), 1.0, 0.0))
                rows = rows[~(term | trunc)]
            y = self._feedback(Z[every, last], outs, O[every, last], table[every, last], sign, systems.feedback)
        return Lifetime(returns, traced, progress, expected, tables)

    def _results(self, systems: ExpressedPopulation, life: Lifetime) -> list[EvalResult]:
        s = self.settings
        out = []
        exact = life.expected if life.expected is not None else np.full_like(life.returns, np.nan)
        for nodes, ret, prog, ex in zip(systems.nodes.tolist(), life.returns, life.progress, exact):
            raw = float(ret.mean())
            ret = ex if s.lake_fitness == "exact" else ret
            fit = (s.w_return * float(ret.mean()) + s.w_learning * float(ret[-1] - ret[0])
                   - s.w_memory * nodes / self.substrate.max_nodes + s.w_progress * float(prog.mean()))
            out.append(EvalResult(fit, raw, float(ex.mean())))
        return out

    def evaluate(self, genomes: list[neat.DefaultGenome], config: neat.Config, seeds: list[int]) -> list[EvalResult]:
        """Every genome lives through the episodes ``seeds`` (one lifetime), all in one batch."""
        return self.evaluate_lifetimes(genomes, config, seeds)[0]

    def evaluate_lifetimes(self, genomes: list[neat.DefaultGenome], config: neat.Config,
                           seeds: list[int]) -> tuple[list[EvalResult], Lifetime]:
        """:meth:`evaluate` with the lifetimes it played (per-episode returns: CartPole's step counts)."""
        systems = self.express_population(genomes, config)
        life = self.play(systems, [seeds] * len(genomes))
        return self._results(systems, life), life

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
