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

``--run-generations N`` measures a whole evolution instead: the runner evolves from generation 0
for N generations (not stopping when solved) and every generation's population is evaluated both
ways on that generation's episodes (the batched result drives the run; the loop's must be equal);
it reports each generation and the sums, with the step ceiling of each generation and of the run.

    OMP_NUM_THREADS=1 python benchmarks/epl_evolution_bench.py --pop 100 --episodes 1
    OMP_NUM_THREADS=1 python benchmarks/epl_evolution_bench.py --pop 100 --episodes 3 --run-generations 15
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
from neuroplex.plugins.epl.baseline import EvalResult
from neuroplex.plugins.epl.evolution import Evolution, EvolutionSettings
from neuroplex.plugins.epl.neat_config import make_neat_config
from neuroplex.plugins.epl.rl_tasks import episode_seeds, task_spec
from neuroplex.plugins.epl.substrate import CPPN_OUTPUTS


class TimedPhenotype(EPLPhenotype):
    """An EPL phenotype whose every selection evaluation is timed batched and as the per-individual
    loop on the same genomes and episodes (the run goes on with the batched results)."""

    records: list[dict[str, float | bool]]

    def evaluate(self, genomes: list[neat.DefaultGenome], config: neat.Config, seeds: list[int]) -> list[EvalResult]:
        t, c = time.perf_counter(), time.process_time()
        batched, life = self.evaluate_lifetimes(genomes, config, seeds)
        t_batch, c_batch = time.perf_counter() - t, time.process_time() - c
        t, c = time.perf_counter(), time.process_time()
        loop = self.evaluate_loop(genomes, config, seeds)
        t_loop, c_loop = time.perf_counter() - t, time.process_time() - c
        steps = life.returns  # CartPole: a return is the episode's step count
        self.records.append({"generation": len(self.records), "mean_return": float(steps.mean()),
                             "steps": float(steps.sum()), "batch_steps": float(steps.max(0).sum()),
                             "batched_s": t_batch, "loop_s": t_loop, "cpu_batched_s": c_batch, "cpu_loop_s": c_loop,
                             "identical": [(r.fitness, r.raw) for r in batched] == [(r.fitness, r.raw) for r in loop]})
        return batched


def run_generations(args: argparse.Namespace) -> dict[str, object]:
    """Batched against the per-individual loop over every generation of one evolution run."""
    ph = TimedPhenotype(task_spec("cartpole"), AgentSettings(lifetime=args.episodes))
    ph.records = []
    settings = EvolutionSettings(task="cartpole", pop=args.pop, generations=args.run_generations, seed=args.seed,
                                 episodes=args.episodes, stop_when_solved=False)
    with tempfile.TemporaryDirectory() as tmp:
        Evolution(settings, ph, Path(tmp) / "run", progress=False).run()
    rec = ph.records
    total = {k: sum(float(r[k]) for r in rec) for k in ("steps", "batch_steps", "batched_s", "loop_s",
                                                           "cpu_batched_s", "cpu_loop_s")}
    per_gen = [{"generation": r["generation"], "mean_return": round(float(r["mean_return"]), 1),
                "speedup": round(float(r["loop_s"]) / float(r["batched_s"]), 1),
                "cpu_speedup": round(float(r["cpu_loop_s"]) / float(r["cpu_batched_s"]), 1),
                "step_ceiling": round(float(r["steps"]) / float(r["batch_steps"]), 2)} for r in rec]
    return {"task": "cartpole", "pop": args.pop, "episodes": args.episodes, "seed": args.seed, "generations": len(rec),
            "per_generation": per_gen, "batched_s": round(total["batched_s"], 2), "loop_s": round(total["loop_s"], 2),
            "speedup": round(total["loop_s"] / total["batched_s"], 1),
            "cpu_speedup": round(total["cpu_loop_s"] / total["cpu_batched_s"], 1),
            "step_ceiling": round(total["steps"] / total["batch_steps"], 2),
            "identical": all(bool(r["identical"]) for r in rec)}


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
    ap.add_argument("--readout", default="relative", choices=("relative", "absolute", "contrast"))
    ap.add_argument("--input-gain", type=float, default=1.0)
    ap.add_argument("--explore-steps", type=int, default=5)
    ap.add_argument("--checkpoint", default=None,
                    help="Evaluate the population saved in an `epl evolve` run's checkpoint.pt instead")
    ap.add_argument("--run-generations", type=int, default=0,
                    help="CartPole: time batched against the loop over every generation of a run of this many")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.run_generations:
        if args.task != "cartpole":
            ap.error("--run-generations measures CartPole runs")
        print(json.dumps(run_generations(args)))
        return
    ph = EPLPhenotype(task_spec(args.task, args.slippery),
                      AgentSettings(lifetime=args.episodes, lake_inputs=args.lake_inputs, acting=args.acting,
                                    lake_fitness=args.lake_fitness, lake_relation=args.lake_relation,
                                    readout=args.readout, input_gain=args.input_gain, explore_steps=args.explore_steps))
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
