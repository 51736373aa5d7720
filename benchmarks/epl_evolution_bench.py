"""EPL + HyperNEAT population evaluation: one batched torch dynamics for the whole population
against a per-individual loop (the same agents, episodes and results), on one CPU thread.

The population is CPPN genomes of the runner's first generation, mutated ``--mutations`` times
(so systems differ in size), or an evolved population from a run's checkpoint; every individual lives ``--episodes`` CartPole-v1 episodes
(common seeds). Reports seconds per individual evaluation, the speed-up (wall and, as the machine
is shared, process CPU time), and that the raw returns are identical. On CartPole it also reports
the step ceiling of any batching that keeps a lifetime's steps sequential: the sum of all
lifetimes' steps over the steps the batch must take (per episode, the longest row's), since one
batched step of a single live row costs what a loop step costs. FrozenLake agents with
``--acting table`` (and ``--lake-inputs state``) can be measured too.

    OMP_NUM_THREADS=1 python benchmarks/epl_evolution_bench.py --pop 100 --episodes 1
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import neat
import torch

from neuroplex.plugins.epl.agents import AgentSettings, EPLPhenotype
from neuroplex.plugins.epl.neat_config import make_neat_config
from neuroplex.plugins.epl.rl_tasks import episode_seeds, task_spec
from neuroplex.plugins.epl.substrate import CPPN_OUTPUTS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pop", type=int, default=100)
    ap.add_argument("--episodes", type=int, default=1)
    ap.add_argument("--mutations", type=int, default=3)
    ap.add_argument("--task", default="cartpole", choices=("cartpole", "frozenlake"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--slippery", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--lake-inputs", default="rowcol", choices=("rowcol", "state"))
    ap.add_argument("--acting", default="carry", choices=("carry", "table"))
    ap.add_argument("--lake-fitness", default="sampled", choices=("sampled", "exact"))
    ap.add_argument("--lake-relation", default="none", choices=("none", "neighbours"))
    ap.add_argument("--checkpoint", default=None,
                    help="Evaluate the population saved in an `epl evolve` run's checkpoint.pt instead")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ph = EPLPhenotype(task_spec(args.task, args.slippery),
                      AgentSettings(lifetime=args.episodes, lake_inputs=args.lake_inputs, acting=args.acting,
                                    lake_fitness=args.lake_fitness, lake_relation=args.lake_relation))
    with tempfile.TemporaryDirectory() as tmp:
        config = make_neat_config(Path(tmp) / "neat.cfg", ph.n_inputs, CPPN_OUTPUTS, args.pop, cppn=True)
    if args.checkpoint:
        genomes = list(torch.load(args.checkpoint, weights_only=False)["population"].values())[:args.pop]
    else:
        genomes = list(neat.Population(config, seed=args.seed).population.values())
        for g in genomes:
            for _ in range(args.mutations):
                g.mutate(config.genome_config)
    seeds = episode_seeds(args.seed, 0, args.episodes)
    t, c = time.perf_counter(), time.process_time()
    batched = ph.evaluate(genomes, config, seeds)
    t_batch, c_batch = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    loop = ph.evaluate_loop(genomes, config, seeds)
    t_loop, c_loop = time.perf_counter() - t, time.process_time() - c
    t = time.perf_counter()
    systems = ph.express_population(genomes, config)  # Algorithm 2 for the whole population
    t_express = time.perf_counter() - t
    t = time.perf_counter()
    life = ph.play(systems, [seeds] * len(genomes))
    t_play_batch = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(len(genomes)):
        ph.play(systems.select([i]), [seeds])
    t_play_loop = time.perf_counter() - t
    raws = [r.raw for r in batched]
    steps = life.returns  # CartPole: a return is the episode's step count
    ceiling = float(steps.sum() / steps.max(0).sum()) if args.task == "cartpole" else None
    print(json.dumps({"task": args.task, "pop": len(genomes), "checkpoint": args.checkpoint, "episodes": args.episodes,
                      "nodes": [min(len(g.nodes) for g in genomes), max(len(g.nodes) for g in genomes)],
                      "mean_return": sum(raws) / len(raws), "max_return": max(raws),
                      "batched_s": round(t_batch, 3), "loop_s": round(t_loop, 3),
                      "batched_s_per_individual": round(t_batch / len(genomes), 4),
                      "loop_s_per_individual": round(t_loop / len(genomes), 4),
                      "speedup": round(t_loop / t_batch, 1), "cpu_batched_s": round(c_batch, 3),
                      "cpu_loop_s": round(c_loop, 3), "cpu_speedup": round(c_loop / c_batch, 1), "express_s": round(t_express, 3),
                      "play_batched_s": round(t_play_batch, 3), "play_loop_s": round(t_play_loop, 3),
                      "play_speedup": round(t_play_loop / t_play_batch, 1),
                      "step_ceiling": None if ceiling is None else round(ceiling, 2),
                      "identical_returns": raws == [r.raw for r in loop],
                      "identical_fitness": [r.fitness for r in batched] == [r.fitness for r in loop]}))


if __name__ == "__main__":
    main()
