"""Diagnostic without EPL: NEAT evolves a CPPN that draws slippery FrozenLake's state -> action table
directly (argmax over actions of CPPN(features of (state, action))), selected on the table's exact DP
success. It tells which substrate geometry a CPPN can turn into the task's irregular table at
population 100 within 40 generations, before any EPL dynamics sit in between.

Features of a (state, action) pair:

* ``grid``: the state's lake-grid coordinates and the action's output-column coordinate (what the
  EPL substrate gives without relation inputs);
* ``neighbours``: the grid coordinates, the kinds of the state's four neighbours (+1 hole, -1 goal,
  0 otherwise) and the action's direction;
* ``relation``: the grid coordinates, the action's coordinate and the substrate's relation inputs of
  ``--lake-relation neighbours`` (:func:`neuroplex.plugins.epl.agents.lake_relation`: the map ahead,
  beside and behind the action's direction);
* ``distance``: the same with the relation inputs of ``--lake-relation distance`` (also the goal
  distances of the cell ahead and of the state).

    OMP_NUM_THREADS=1 python benchmarks/epl_cppn_table_diag.py --features relation --seed 10 --lake-map random:5
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import neat
import numpy as np

from neuroplex.plugins.epl.agents import LAKE_MOVES, lake_relation
from neuroplex.plugins.epl.neat_config import make_neat_config
from neuroplex.plugins.epl.rl_tasks import frozenlake_optimum, frozenlake_success_many, lake_map, make_env, task_spec


def pair_features(kind: str, desc: np.ndarray, relation: dict, s: int, a: int) -> list[float]:
    """The CPPN input of the pair (state s, action a) for the feature set ``kind``."""
    rows, cols = desc.shape
    r, c = divmod(s, cols)
    x, y, ya = -1 + 2 * c / (cols - 1), -1 + 2 * r / (rows - 1), -1 + 2 * a / 3
    if kind == "grid":
        return [x, y, ya]
    if kind in ("relation", "distance"):
        return [x, y, ya, *relation[(s, rows * cols + a)]]
    around = []
    for dr, dc in LAKE_MOVES:
        r2, c2 = r + dr, c + dc
        inside = 0 <= r2 < rows and 0 <= c2 < cols
        around.append({"H": 1.0, "G": -1.0}.get(desc[r2, c2], 0.0) if inside else 0.0)
    dr, dc = LAKE_MOVES[a]
    return [x, y, *around, float(dc), float(-dr)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--features", choices=("grid", "neighbours", "relation", "distance"), default="grid")
    ap.add_argument("--seed", type=int, default=10)
    ap.add_argument("--lake-map", default="4x4")
    ap.add_argument("--generations", type=int, default=40)
    ap.add_argument("--mutation", default="structural")
    args = ap.parse_args()
    spec = task_spec("frozenlake", True, lake_map(args.lake_map))
    env = make_env(spec)
    desc = np.asarray(env.unwrapped.desc).astype(str)
    relation = lake_relation(spec, hidden=0, kind="distance" if args.features == "distance" else "neighbours")
    acting = [s for s in range(desc.size) if desc.flat[s] in "SF"]
    X = {(s, a): pair_features(args.features, desc, relation, s, a) for s in acting for a in range(4)}
    with tempfile.TemporaryDirectory() as tmp:
        config = make_neat_config(Path(tmp) / "neat.cfg", len(X[(acting[0], 0)]), 1, 100, cppn=True,
                                  mutation=args.mutation)
    pop = neat.Population(config, seed=args.seed)
    best: list[float] = []

    def evaluate(genomes: list, config: neat.Config) -> None:
        tables = np.zeros((len(genomes), desc.size), dtype=np.int64)
        for i, (_, g) in enumerate(genomes):
            net = neat.nn.FeedForwardNetwork.create(g, config)
            for s in acting:
                tables[i, s] = int(np.argmax([net.activate(X[(s, a)])[0] for a in range(4)]))
        success = frozenlake_success_many(tables, env, spec.max_steps)
        for (_, g), v in zip(genomes, success):
            g.fitness = float(v)
        best.append(float(success.max()))

    pop.run(evaluate, args.generations)
    so_far = np.maximum.accumulate(best)
    print(json.dumps({"features": args.features, "seed": args.seed, "lake_map": args.lake_map,
                      "optimum": round(frozenlake_optimum(env), 3), "solved_level": spec.solved,
                      "best_by_generation_10_20_30_40": [round(float(so_far[g - 1]), 3) for g in (10, 20, 30, 40)
                                                         if g <= len(so_far)],
                      "first_solved_generation": next((i + 1 for i, v in enumerate(best) if v >= spec.solved), None)}))


if __name__ == "__main__":
    main()
