"""The evolution runner: neat-python population, species and reproduction, our own generation loop
so that every generation is logged (CSV), checkpointed and resumable exactly.

One generation: the whole population is evaluated by a phenotype (:class:`.baseline.FeedForwardPhenotype`
or :class:`.agents.EPLPhenotype`) on the generation's common episode seeds, split into sub-batches
evaluated in this process (default) or fanned out through a core executor
(``neuroplex.executors``: ``local`` processes, ``ray``), a failed sub-batch evaluated again here;
then neat-python reproduces and speciates. The fittest individual is re-tested on fresh episodes
(CartPole: 100 episodes, gymnasium's solved rule; FrozenLake: 1000 episodes) whenever its
raw figure (or FrozenLake's exact success of its policy, where known) reaches the
task's solved level until a validation confirms it (after that, with ``stop_when_solved`` off, only
on schedule), every ``validate_every`` generations, and at the last generation.

Exact resume: the checkpoint holds the neat population (genomes, species, innovation tracker),
every global RNG state and the log; episode seeds derive from (seed, generation) only.
"""
from __future__ import annotations

import copy
import csv
import io
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
import warnings
from typing import Callable, Protocol, Sequence

import neat
import torch
from tqdm import tqdm

from neuroplex.executors import Executor, TaskFailure
from neuroplex.trainer import atomic_write_bytes, atomic_write_text, rng_state, seed_everything, set_rng_state, start_run_dir

from .baseline import EvalResult
from .evolution_plots import plot_curves
from .neat_config import make_neat_config
from .rl_tasks import TaskSpec, episode_seeds

#: generations whose best genome is kept for drawing (the paper's "best fitness examples of 1, 10, 50")
SNAPSHOT_GENERATIONS = (1, 10, 20, 50)
LOG_FIELDS = ("generation", "best_fitness", "mean_fitness", "best_raw", "mean_raw", "species", "eval_seconds",
              "validation", "wall_seconds")


class Phenotype(Protocol):
    """What the runner needs of a phenotype."""

    spec: TaskSpec
    n_inputs: int
    n_outputs: int
    cppn: bool

    def evaluate(self, genomes: list[neat.DefaultGenome], config: neat.Config,
                 seeds: list[int]) -> list[EvalResult]: ...

    def validate(self, genome: neat.DefaultGenome, config: neat.Config, seeds: list[int]) -> float: ...


def evaluate_chunks(executor: Executor | None, fn: Callable[[list[neat.DefaultGenome]], list[EvalResult]],
                    chunks: Sequence[list[neat.DefaultGenome]]) -> tuple[list[list[EvalResult]], int]:
    """Map ``fn`` over the sub-batches (in this process without an executor); a sub-batch whose
    worker failed is evaluated again here (retried, not fatal). Returns (results, retried)."""
    if executor is None:
        return [fn(c) for c in chunks], 0
    out = executor.try_map(fn, chunks)
    retried = 0
    for i, r in enumerate(out):
        if isinstance(r, TaskFailure):
            warnings.warn(f"evaluation of sub-batch {i} failed on the {executor.name} executor "
                          f"({r.error}); evaluating it again in this process")
            out[i] = fn(chunks[i])
            retried += 1
    return out, retried  # type: ignore[return-value]


#: settings a ``--resume`` may change: more generations, other sub-batches, going on after a solve;
#: any other change (task, population, episodes, ...) is refused
RESUME_MAY_CHANGE = ("generations", "chunks", "stop_when_solved")


@dataclass
class EvolutionSettings:
    """Everything that defines a run (saved as ``config.json``)."""

    task: str
    slippery: bool = True
    pop: int = 100
    generations: int = 50
    seed: int = 0
    episodes: int = 5
    validation_episodes: int = 0  # 0: the task's rule (CartPole 100 episodes, FrozenLake 1000)
    stop_when_solved: bool = True
    phenotype: str = "epl"
    chunks: int = 1
    mutation: str = ""  # "": the phenotype's default NEAT mutation settings; "gentle" / "direct"
    validate_every: int = 0  # also re-test the fittest every this many generations (0: never)
    extra: dict[str, float | str] = field(default_factory=dict)


class _EvalChunk:
    """A picklable ``genomes -> results`` call for one generation (sent to executor workers)."""

    def __init__(self, phenotype: Phenotype, config: neat.Config, seeds: list[int]):
        self.phenotype, self.config, self.seeds = phenotype, config, seeds

    def __call__(self, genomes: list[neat.DefaultGenome]) -> list[EvalResult]:
        torch.set_num_threads(1)
        return self.phenotype.evaluate(genomes, self.config, self.seeds)


class Evolution:
    """Run (or resume) an evolution in ``out``: ``log.csv``, ``checkpoint.pt``, ``best.pkl``, plots."""

    def __init__(self, settings: EvolutionSettings, phenotype: Phenotype, out: str | Path, *,
                 executor: Executor | None = None, resume: bool = False, progress: bool = True):
        self.s, self.phenotype, self.executor, self.progress = settings, phenotype, executor, progress
        self.retried = 0
        self.out = start_run_dir(out, asdict(settings), resume=resume, may_change=RESUME_MAY_CHANGE)
        self.ckpt = self.out / "checkpoint.pt"
        self.config = make_neat_config(self.out / "neat.cfg", phenotype.n_inputs, phenotype.n_outputs, settings.pop,
                                       cppn=phenotype.cppn, mutation=settings.mutation)
        self.rows: list[dict[str, float]] = []
        self.solved_generation: int | None = None
        self.best: neat.DefaultGenome | None = None
        self.best_raw = float("-inf")
        self.snapshots: dict[int, neat.DefaultGenome] = {}
        if resume and self.ckpt.exists():
            self._load()
        else:
            seed_everything(settings.seed)
            self.pop = neat.Population(self.config, seed=settings.seed)

    # ------------------------------------------------------------------ state
    def _save(self) -> None:
        buf = io.BytesIO()
        torch.save({"population": self.pop.population, "species": self.pop.species,
                    "reproduction": self.pop.reproduction, "generation": self.pop.generation,
                    "rng": rng_state(), "rows": self.rows, "solved_generation": self.solved_generation,
                    "best": self.best, "best_raw": self.best_raw,
                    "snapshots": self.snapshots}, buf)
        atomic_write_bytes(self.ckpt, buf.getvalue())

    def _load(self) -> None:
        st = torch.load(self.ckpt, weights_only=False)
        self.pop = neat.Population(self.config, initial_state=(st["population"], st["species"], st["generation"]))
        self.pop.reproduction = st["reproduction"]
        self.config.genome_config.innovation_tracker = self.pop.reproduction.innovation_tracker
        self.rows, self.solved_generation = st["rows"], st["solved_generation"]
        self.best, self.best_raw, self.snapshots = st["best"], st["best_raw"], st["snapshots"]
        set_rng_state(st["rng"])

    # ------------------------------------------------------------------ loop
    def done(self) -> bool:
        return self.pop.generation >= self.s.generations or (self.s.stop_when_solved and self.solved_generation is not None)

    def run(self) -> list[dict[str, float]]:
        """Evolve until ``generations`` (or the validated solution); returns the per-generation log."""
        bar = tqdm(total=self.s.generations, initial=self.pop.generation, disable=not self.progress,
                   desc=f"{self.s.phenotype} {self.s.task}", unit="gen")
        while not self.done():
            self.step()
            bar.update(1)
            bar.set_postfix(best=f"{self.rows[-1]['best_raw']:.3g}", mean=f"{self.rows[-1]['mean_raw']:.3g}")
        bar.close()
        self._write_outputs()
        return self.rows

    def evaluate(self, genomes: list[neat.DefaultGenome], generation: int) -> list[EvalResult]:
        """The generation's results in population order, sub-batches through ``map_fn``."""
        seeds = episode_seeds(self.s.seed, generation, self.s.episodes)
        k = max(1, min(self.s.chunks, len(genomes)))
        size = -(-len(genomes) // k)
        chunks = [genomes[i:i + size] for i in range(0, len(genomes), size)]
        results, retried = evaluate_chunks(self.executor, _EvalChunk(self.phenotype, self.config, seeds), chunks)
        self.retried += retried
        flat = [r for part in results for r in part]
        if len(flat) != len(genomes):
            raise RuntimeError(f"evaluation returned {len(flat)} results for {len(genomes)} genomes")
        return flat

    def step(self) -> dict[str, float]:
        """Evaluate, log, validate the best, reproduce, speciate, checkpoint: one generation."""
        t0 = time.perf_counter()
        gen = self.pop.generation
        genomes = list(self.pop.population.values())
        results = self.evaluate(genomes, gen)
        t_eval = time.perf_counter() - t0
        for g, r in zip(genomes, results):
            g.fitness = r.fitness
        i_best = max(range(len(genomes)), key=lambda i: results[i].fitness)
        best, best_res = genomes[i_best], results[i_best]
        validation = float("nan")
        last = gen + 1 >= self.s.generations
        every = self.s.validate_every
        figure = best_res.exact if best_res.exact == best_res.exact else best_res.raw  # exact where known
        reached = figure >= self.phenotype.spec.solved and self.solved_generation is None
        if reached or last or (every > 0 and (gen + 1) % every == 0):
            n_val = self.s.validation_episodes or (100 if self.phenotype.spec.name == "cartpole" else 1000)
            vseeds = episode_seeds(self.s.seed + 7919, gen, n_val)
            validation = self.phenotype.validate(best, self.config, vseeds)
            if validation >= self.phenotype.spec.solved and self.solved_generation is None:
                self.solved_generation = gen + 1
        if best_res.raw > self.best_raw or (validation == validation and validation >= self.phenotype.spec.solved):
            self.best, self.best_raw = best, best_res.raw
        if gen + 1 in SNAPSHOT_GENERATIONS or last or self.solved_generation == gen + 1:
            self.snapshots[gen + 1] = copy.deepcopy(best)
        row = {"generation": gen + 1, "best_fitness": best_res.fitness,
               "mean_fitness": sum(r.fitness for r in results) / len(results), "best_raw": best_res.raw,
               "mean_raw": sum(r.raw for r in results) / len(results), "species": len(self.pop.species.species),
               "eval_seconds": t_eval, "validation": validation}
        self.pop.population = self.pop.reproduction.reproduce(self.config, self.pop.species, self.s.pop, gen)
        if not self.pop.species.species:
            self.pop.population = self.pop.reproduction.create_new(self.config.genome_type, self.config.genome_config,
                                                                   self.s.pop)
        self.pop.species.speciate(self.config, self.pop.population, gen)
        self.pop.generation = gen + 1
        row["wall_seconds"] = time.perf_counter() - t0
        self.rows.append(row)
        self._save()
        self._write_log()
        return row

    # ------------------------------------------------------------------ outputs
    def _write_log(self) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=LOG_FIELDS)
        w.writeheader()
        for r in self.rows:
            w.writerow({k: (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in LOG_FIELDS})
        atomic_write_text(self.out / "log.csv", buf.getvalue())

    def _write_outputs(self) -> None:
        plot_curves(self.rows, self.out, title=f"{self.s.phenotype} {self.s.task} seed {self.s.seed}")
        buf = io.BytesIO()
        torch.save({"genome": self.best, "settings": asdict(self.s), "snapshots": self.snapshots}, buf)
        atomic_write_bytes(self.out / "best.pkl", buf.getvalue())

    def summary(self) -> dict[str, float | int | None]:
        """Generations reached, validated solution, best raw figure, total evaluation seconds."""
        vals = [r["validation"] for r in self.rows if r["validation"] == r["validation"]]
        return {"generations": len(self.rows), "solved_generation": self.solved_generation,
                "best_raw": max((r["best_raw"] for r in self.rows), default=float("nan")),
                "last_validation": vals[-1] if vals else None,
                "eval_seconds": sum(r["eval_seconds"] for r in self.rows),
                "wall_seconds": sum(r["wall_seconds"] for r in self.rows)}
