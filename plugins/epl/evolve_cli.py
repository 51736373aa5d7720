"""``neuroplex epl evolve``: HyperNEAT evolution of EPL systems (or the feed-forward NEAT baseline)
on CartPole-v1 / FrozenLake-v1, with log, checkpoint/resume, plots and the best systems drawn."""
from __future__ import annotations

import json
from pathlib import Path

import click
import torch

from neuroplex.errors import NeuroplexError
from neuroplex.executors import EXECUTORS, get_executor

from .agents import LAKE_INPUTS, LAKE_RELATIONS, READOUTS, AgentSettings, EPLPhenotype
from .baseline import FeedForwardPhenotype
from .draw import draw_system
from .evolution import Evolution, EvolutionSettings, Phenotype
from .evolution_plots import plot_response
from .rl_tasks import TASKS, lake_map, task_spec


def draw_snapshots(ev: Evolution, phenotype: EPLPhenotype) -> list[Path]:
    """For each kept generation: the best system's drawing and its output response in one episode."""
    paths = []
    for gen, genome in sorted(ev.snapshots.items()):
        system = phenotype.express([genome], ev.config)[0]
        paths.append(draw_system(system, ev.out / f"best_gen{gen}_system.png"))
        life = phenotype.play(phenotype.express_population([genome], ev.config), [[ev.s.seed + 12345]], trace=True)
        paths.append(plot_response(life.trace, ev.out / f"best_gen{gen}_response.png",
                                   title=f"best of generation {gen}: return {life.returns[0, 0]:g}",
                                   labels=[f"action {k}" for k in range(phenotype.spec.n_actions)]))
    return paths


def add_evolve_command(group: click.Group) -> None:
    """Attach ``evolve`` to the ``epl`` group."""

    @group.command()
    @click.option("--task", type=click.Choice(TASKS), default="cartpole", show_default=True)
    @click.option("--slippery/--no-slippery", default=True, show_default=True, help="FrozenLake's is_slippery.")
    @click.option("--lake-map", "lake_map_text", default="4x4", show_default=True,
                  help="FrozenLake map: 4x4 (gymnasium's), random:SEED (generate_random_map(size=4, seed=SEED)) "
                       "or 4 rows of 4 separated by commas, goal last (SFFF,FHFH,FFFH,HFFG).")
    @click.option("--pop", type=int, default=100, show_default=True)
    @click.option("--generations", type=int, default=50, show_default=True)
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--episodes", type=int, default=None,
                  help="Episodes per evaluation (EPL: one lifetime). [default: baseline 5, EPL 3]")
    @click.option("--validation-episodes", type=int, default=0, show_default=True,
                  help="Fresh episodes re-testing the best (0: CartPole 100, FrozenLake 1000).")
    @click.option("--baseline", is_flag=True, help="Plain feed-forward NEAT phenotype instead of EPL.")
    @click.option("--executor", type=click.Choice(EXECUTORS), default="inprocess", show_default=True,
                  help="Where the population's sub-batches are evaluated (each in one batched torch call).")
    @click.option("--workers", type=int, default=None,
                  help="Sub-batches = executor workers. [default: inprocess 1, local/ray 2]")
    @click.option("--address", default=None, help="Ray cluster address (--executor ray).")
    @click.option("--hidden", type=int, default=3, show_default=True, help="Hidden spaces of the substrate.")
    @click.option("--explore-steps", type=int, default=AgentSettings.explore_steps, show_default=True,
                  help="Implicit-layer steps per environment step (EPL).")
    @click.option("--dt", type=float, default=AgentSettings.dt, show_default=True, help="Implicit-layer step (EPL).")
    @click.option("--input-gain", type=float, default=AgentSettings.input_gain, show_default=True,
                  help="EPL: inputs clamped to x0 exp(gain * observation).")
    @click.option("--w-learning", type=float, default=0.0, show_default=True,
                  help="Fitness weight of (last - first episode return).")
    @click.option("--w-memory", type=float, default=0.0, show_default=True,
                  help="Fitness weight of -(nodes / substrate nodes).")
    @click.option("--w-progress", type=float, default=0.0, show_default=True,
                  help="Fitness weight of FrozenLake progress (best 1 - distance to goal / 6, mean over episodes).")
    @click.option("--lake-inputs", type=click.Choice(LAKE_INPUTS), default="rowcol", show_default=True,
                  help="FrozenLake input of an EPL agent: row and column one-hot, or state one-hot on the lake's grid.")
    @click.option("--lake-relation", type=click.Choice(LAKE_RELATIONS), default="none", show_default=True,
                  help="EPL with --lake-inputs state: the CPPN also reads, for each (state, action) pair, the "
                       "map's cells ahead, beside and behind the action's direction (hole/goal).")
    @click.option("--acting", type=click.Choice(("carry", "table")), default="carry", show_default=True,
                  help="EPL: z carries from step to step, or (FrozenLake) every step explores from the "
                       "episode's starting state z* (a fixed table per episode; learning between episodes).")
    @click.option("--readout", type=click.Choice(READOUTS), default="relative", show_default=True,
                  help="EPL action: argmax of O_eep - O_rest, of O_eep, or (--acting table) of O_eep minus "
                       "each output's mean over the lake's states.")
    @click.option("--lake-fitness", type=click.Choice(("sampled", "exact")), default="sampled", show_default=True,
                  help="FrozenLake EPL fitness: sampled success rate, or the exact DP success of the tables "
                       "acted by (needs --acting table).")
    @click.option("--mutation", type=click.Choice(("gentle", "direct", "structural")), default=None,
                  help="NEAT mutation settings (neat_config.MUTATION). [default: EPL gentle, baseline direct]")
    @click.option("--validate-every", type=int, default=0, show_default=True,
                  help="Also re-test the fittest on fresh episodes every N generations (0: never).")
    @click.option("--keep-going", is_flag=True, help="Do not stop at the validated solution.")
    @click.option("--out", type=click.Path(file_okay=False), required=True)
    @click.option("--resume", is_flag=True, help="Continue the run in --out exactly.")
    @click.option("--progress/--no-progress", default=True, show_default=True)
    def evolve(task: str, slippery: bool, lake_map_text: str, pop: int, generations: int, seed: int, episodes: int | None,
               validation_episodes: int, baseline: bool, executor: str, workers: int | None, address: str | None, hidden: int, explore_steps: int, dt: float, input_gain: float,
               w_learning: float,
               w_memory: float, w_progress: float, lake_inputs: str, lake_relation: str, acting: str, readout: str,
               lake_fitness: str,
               mutation: str | None, validate_every: int, keep_going: bool, out: str, resume: bool, progress: bool) -> None:
        """Evolve EPL systems by HyperNEAT (or the NEAT baseline) on a gymnasium task."""
        torch.set_num_threads(1)
        for name, value, least in (("--pop", pop, 2), ("--generations", generations, 0), ("--episodes", episodes, 1),
                                   ("--workers", workers, 1), ("--validation-episodes", validation_episodes, 0)):
            if value is not None and value < least:
                raise NeuroplexError(f"{name} must be >= {least}, got {value}")
        workers = workers or (1 if executor == "inprocess" else 2)
        spec = task_spec(task, slippery, lake_map(lake_map_text) if task == "frozenlake" else None)
        episodes = episodes or (5 if baseline else 3)
        phenotype: Phenotype
        if baseline:
            phenotype = FeedForwardPhenotype(spec)
        else:
            phenotype = EPLPhenotype(spec, AgentSettings(hidden=hidden, lifetime=episodes, explore_steps=explore_steps, dt=dt,
                                                         input_gain=input_gain,
                                                         w_learning=w_learning,
                                                         w_memory=w_memory, w_progress=w_progress,
                                                         lake_inputs=lake_inputs, acting=acting, readout=readout,
                                                         lake_fitness=lake_fitness, lake_relation=lake_relation))
        settings = EvolutionSettings(task=task, slippery=slippery, pop=pop, generations=generations, seed=seed,
                                     episodes=episodes, validation_episodes=validation_episodes,
                                     stop_when_solved=not keep_going,
                                     phenotype="baseline" if baseline else "epl",
                                     chunks=workers, validate_every=validate_every, mutation=mutation or "",
                                     extra={"hidden": hidden, "explore_steps": explore_steps, "dt": dt, "input_gain": input_gain,
                                            "w_learning": w_learning, "w_memory": w_memory,
                                            "w_progress": w_progress, "lake_inputs": lake_inputs,
                                            "acting": acting, "readout": readout, "lake_fitness": lake_fitness,
                                            "lake_relation": lake_relation, "lake_map": lake_map_text})
        ex = None if executor == "inprocess" and workers == 1 else get_executor(executor, workers, address)
        try:
            ev = Evolution(settings, phenotype, out, executor=ex, resume=resume, progress=progress)
            ev.run()
        finally:
            if ex is not None:
                ex.close()
        if isinstance(phenotype, EPLPhenotype):
            draw_snapshots(ev, phenotype)
        click.echo(json.dumps({"task": task, "slippery": slippery if task == "frozenlake" else None,
                               **({"lake_map": lake_map_text, "solved_level": spec.solved} if task == "frozenlake" else {}),
                               "phenotype": settings.phenotype, "seed": seed, **ev.summary(),
                               "retried_sub_batches": ev.retried}))
