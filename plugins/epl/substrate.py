"""The HyperNEAT substrate of EPL systems and its expression by a CPPN (paper, Algorithm 2).

Coordinates: genes g on a line in [-1, 1]; spaces s = (x, y) in three columns, input spaces at
x = -1 (one per input; or at given ``input_pos``, e.g. FrozenLake's grid of states), ``hidden``
spaces at x = 0, output spaces at x = 1 (one per action). The
CPPN takes (g_i, s_i, g_j, s_j) (6 numbers) and returns (exist, p1, p2, p3, p4). As in Algorithm 2,
with the other arguments set to 0 or repeated,

* gene g exists  <- CPPN(g, 0, g, 0)[exist] > 0   (tanh^-1(.) > 0 of the paper is the same test);
* space s exists <- CPPN(0, s, 0, s)[exist] > 0;
* node (g, s) exists <- both exist and CPPN(g, s, g, s)[exist] > 0; its parameters
  x0 = exp(2 p1), a = 2 p2, homeostasis h = (1 + p3) / 4 toward x_h = x0, feedback gain (F_z) = 1 + p4;
* edge (g_i, s_i) -> (g_j, s_j) exists <- both nodes exist and CPPN(g_i, s_i, g_j, s_j)[exist] > 0:
  a reaction a + b <-> c in one space is queried at (g_a, s, g_c, s), rate k = exp(2 p1); a transport
  of gene g between neighbouring spaces at (g, s_i, g, s_j), diffusion k = exp(2 p1) / 2,
  Hamiltonian v = max(p2, 0).

Optional relation inputs (``relation``, our extension in the spirit of HyperNEAT's extra CPPN
inputs such as the distance between the two points): a table from a pair of spaces (i, j) to R
numbers appended to every query between them (zeros for other pairs and for one-space queries), so
the CPPN takes 6 + R inputs (:attr:`Substrate.cppn_inputs`). The EPL agent uses it to give each
(lake state, action) pair what the lake's map holds around that state seen from the action's
direction (:func:`.agents.lake_relation`).

The CPPN outputs pass through tanh first (p in (-1, 1)). Our choices where the paper is silent:
the chemistry (components u, w with charges +-0.5; genes u, w, uw, uu; candidate reactions
u + w <-> uw and u + u <-> uu), the fixed neighbourhood (spaces of different columns all
neighbours, and adjacent spaces of one column; distance = Euclidean), input nodes u@input_k and
output nodes u@output_k always exist (inputs are external, clamped nodes, so a direct
input -> output transport of u is possible and hidden chemistry can shape it), collision c = 1
on every node. All queries of one genome run in one
batched CPPN call (:meth:`Substrate.express_genome`).

:meth:`Substrate.express_arrays` is the same expression for a whole population at once, straight
to padded :class:`.rds.RDSPopulation` tensors in substrate slot order (node slot = space * genes +
gene, every substrate edge a slot; absent nodes are clamped padding, absent edges point at the
neutral slot): no description or ``build`` per individual. It equals ``build(express(out))`` up to
the order of the nodes (tested).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import neat
import torch

from .cppn import TorchCPPN
from .rds import RDSPopulation

COMPONENTS = {"u": {"mass": 1.0, "charge": 0.5}, "w": {"mass": 1.0, "charge": -0.5}}
GENES = {"u": {"u": 1}, "w": {"w": 1}, "uw": {"u": 1, "w": 1}, "uu": {"u": 2}}
REACTIONS = (("u", "w", "uw"), ("u", "u", "uu"))
INPUT_GENE, OUTPUT_GENE = "u", "u"
CPPN_INPUTS, CPPN_OUTPUTS = 6, 5


@dataclass
class ExpressedPopulation:
    """Systems expressed for a population in substrate slot order: ``arrays`` for
    :meth:`.rds.RDSPopulation.from_arrays`, the input and output slots, the per-output F_z gain
    (P, outputs), the number of existing nodes per system, which slots exist (P, slots) and how
    many edge columns (the first) are reactions."""

    arrays: dict[str, torch.Tensor]
    inputs: torch.Tensor
    outputs: torch.Tensor
    feedback: torch.Tensor
    nodes: torch.Tensor
    on: torch.Tensor
    reactions: int

    def select(self, rows: list[int] | torch.Tensor) -> "ExpressedPopulation":
        """Rows ``rows`` (repeats allowed: copies of one system)."""
        idx = torch.as_tensor(rows, dtype=torch.long)
        return ExpressedPopulation({k: v[idx] for k, v in self.arrays.items()}, self.inputs, self.outputs,
                                   self.feedback[idx], self.nodes[idx], self.on[idx], self.reactions)

    def compact(self) -> "ExpressedPopulation":
        """The same systems without the node slots that no row has and the edge slots that no row
        has (slot order kept, the indices renumbered). An absent node or edge of a row is inert
        (clamped, no charge, rate 0, pointing at the neutral slot), so every row steps to the same
        bits as before; only the work per row shrinks, to what the population expresses."""
        n = self.on.shape[1]
        keep = self.on.any(0)
        prod = self.arrays["prod"]
        edges = (prod != n).any(0)
        edges[0] |= not bool(edges.any())  # at least one (inert) edge slot
        renumber = torch.full((n + 1,), int(keep.sum()), dtype=torch.long)  # the neutral slot n -> the new n
        renumber[:n][keep] = torch.arange(int(keep.sum()))
        arrays = {nm: self.arrays[nm][:, keep] for nm in RDSPopulation.NODE_ARRAYS}
        arrays["inv_D"] = self.arrays["inv_D"]
        arrays.update({nm: self.arrays[nm][:, edges] for nm in ("k", "v")})
        arrays["reac"], arrays["prod"] = renumber[self.arrays["reac"][:, edges]], renumber[prod[:, edges]]
        return ExpressedPopulation(arrays, renumber[self.inputs], renumber[self.outputs], self.feedback, self.nodes,
                                   self.on[:, keep], int(edges[:self.reactions].sum()))


def _column(x: float, count: int) -> list[tuple[float, float]]:
    ys = [0.0] if count == 1 else [-1.0 + 2.0 * i / (count - 1) for i in range(count)]
    return [(x, y) for y in ys]


@dataclass
class Substrate:
    """Genes, spaces and candidate edges for ``n_inputs`` inputs and ``n_outputs`` outputs."""

    n_inputs: int
    n_outputs: int
    hidden: int = 3
    genes: list[str] = field(default_factory=lambda: list(GENES))
    input_pos: list[tuple[float, float]] | None = None  # None: the input column x = -1
    relation: dict[tuple[int, int], tuple[float, ...]] | None = None  # (space i, space j) -> extra CPPN inputs

    def __post_init__(self) -> None:
        rel = self.relation or {}
        sizes = {len(v) for v in rel.values()}
        if len(sizes) > 1:
            raise ValueError(f"substrate: relation features of different lengths {sorted(sizes)}")
        self.n_relation = sizes.pop() if sizes else 0
        if self.input_pos is not None and len(self.input_pos) != self.n_inputs:
            raise ValueError(f"substrate: {len(self.input_pos)} input positions for {self.n_inputs} inputs")
        if self.n_inputs < 1 or self.n_outputs < 1 or self.hidden < 1:
            raise ValueError(f"substrate needs >= 1 input, output and hidden space (got {self.n_inputs}, "
                             f"{self.n_outputs}, {self.hidden})")
        self.space_names = ([f"in{i}" for i in range(self.n_inputs)] + [f"hid{i}" for i in range(self.hidden)]
                            + [f"out{i}" for i in range(self.n_outputs)])
        inputs = list(self.input_pos) if self.input_pos is not None else _column(-1.0, self.n_inputs)
        self.space_pos = ([tuple(map(float, p)) for p in inputs] + _column(0.0, self.hidden) + _column(1.0, self.n_outputs))
        self.gene_pos = {g: (-1.0 + 2.0 * i / (len(self.genes) - 1)) for i, g in enumerate(self.genes)}
        col = [0] * self.n_inputs + [1] * self.hidden + [2] * self.n_outputs
        S = len(self.space_names)
        self.neighbours = [(a, b, math.dist(self.space_pos[a], self.space_pos[b]))
                           for a in range(S) for b in range(a + 1, S)
                           if col[a] != col[b] or abs(a - b) == 1]
        S_all = len(self.space_names)
        if any(not (0 <= i < S_all and 0 <= j < S_all) for i, j in rel):
            raise ValueError(f"substrate: relation between spaces outside 0..{S_all - 1}")
        self.forced = {(INPUT_GENE, i) for i in range(self.n_inputs)} | {
            (OUTPUT_GENE, self.n_inputs + self.hidden + k) for k in range(self.n_outputs)}
        self._build_queries()

    def _q(self, gi: str | None, si: int | None, gj: str | None, sj: int | None) -> list[float]:
        g = lambda name: self.gene_pos[name] if name else 0.0  # noqa: E731
        s = lambda idx: self.space_pos[idx] if idx is not None else (0.0, 0.0)  # noqa: E731
        rel = (self.relation or {}).get((si, sj), (0.0,) * self.n_relation)  # type: ignore[arg-type]
        return [g(gi), *s(si), g(gj), *s(sj), *map(float, rel)]

    def _build_queries(self) -> None:
        rows: list[list[float]] = []
        self.gene_rows = [len(rows) + i for i in range(len(self.genes))]
        rows += [self._q(g, None, g, None) for g in self.genes]
        self.space_rows = [len(rows) + i for i in range(len(self.space_names))]
        rows += [self._q(None, s, None, s) for s in range(len(self.space_names))]
        self.node_keys = [(g, s) for s in range(len(self.space_names)) for g in self.genes]
        self.node_rows = [len(rows) + i for i in range(len(self.node_keys))]
        rows += [self._q(g, s, g, s) for g, s in self.node_keys]
        self.reaction_keys = [(r, s) for s in range(len(self.space_names)) for r in REACTIONS]
        self.reaction_rows = [len(rows) + i for i in range(len(self.reaction_keys))]
        rows += [self._q(r[0], s, r[2], s) for r, s in self.reaction_keys]
        self.transport_keys = [(g, a, b) for a, b, _ in self.neighbours for g in self.genes]
        self.transport_rows = [len(rows) + i for i in range(len(self.transport_keys))]
        rows += [self._q(g, a, g, b) for g, a, b in self.transport_keys]
        self.queries = torch.tensor(rows, dtype=torch.float64)
        self._build_slots()

    def _build_slots(self) -> None:
        """Fixed tables of the slot layout used by :meth:`express_arrays`."""
        G = len(self.genes)
        slot = {key: key[1] * G + self.genes.index(key[0]) for key in self.node_keys}
        self.slot_gene = torch.tensor([self.genes.index(g) for g, _ in self.node_keys])
        self.slot_space = torch.tensor([s for _, s in self.node_keys])
        self.slot_forced = torch.tensor([key in self.forced for key in self.node_keys])
        self.input_slots = torch.tensor([slot[(INPUT_GENE, i)] for i in range(self.n_inputs)])
        self.output_slots = torch.tensor([slot[(OUTPUT_GENE, self.n_inputs + self.hidden + k)]
                                          for k in range(self.n_outputs)])
        cnames = list(COMPONENTS)
        comp = torch.tensor([[float(GENES[g].get(c, 0)) for c in cnames] for g, _ in self.node_keys],
                            dtype=torch.float64)
        self.slot_mass = comp @ torch.tensor([COMPONENTS[c]["mass"] for c in cnames], dtype=torch.float64)
        self.slot_charge = comp @ torch.tensor([COMPONENTS[c]["charge"] for c in cnames], dtype=torch.float64)
        S = len(self.space_names)
        inv_D = torch.zeros(S, S, dtype=torch.float64)
        for a, b, d in self.neighbours:
            inv_D[a, b] = inv_D[b, a] = 1.0 / d
        self.inv_D = inv_D + torch.diag(inv_D.sum(1) + 1.0)  # as rds.build (self_inverse_distance 1)
        reac = [[slot[(r[0], s)], slot[(r[1], s)]] for r, s in self.reaction_keys]
        reac += [[slot[(g, a)], -1] for g, a, _ in self.transport_keys]
        prod = [slot[(r[2], s)] for r, s in self.reaction_keys] + [slot[(g, b)] for g, _, b in self.transport_keys]
        self.edge_reac = torch.tensor(reac)
        self.edge_prod = torch.tensor(prod)
        self.edge_rows = torch.tensor(self.reaction_rows + self.transport_rows)
        self.edge_is_transport = torch.tensor([False] * len(self.reaction_rows) + [True] * len(self.transport_rows))

    @property
    def cppn_inputs(self) -> int:
        """Inputs of the CPPN querying this substrate: (g_i, s_i, g_j, s_j) and the relation features."""
        return CPPN_INPUTS + self.n_relation

    @property
    def max_nodes(self) -> int:
        return len(self.node_keys)

    @property
    def max_edges(self) -> int:
        return len(self.reaction_keys) + len(self.transport_keys)

    def express(self, out: torch.Tensor) -> dict[str, object]:
        """The RDS description from the CPPN outputs ``out`` (queries, 5) of this substrate.

        Input nodes come first (in input order), then the output nodes (in action order), so
        every expressed system has its inputs at 0..n_in-1 and outputs at n_in..n_in+n_out-1."""
        o = torch.tanh(out).tolist()
        gene_ok = {g: o[r][0] > 0 for g, r in zip(self.genes, self.gene_rows)}
        space_ok = [o[r][0] > 0 for r in self.space_rows]
        nodes, params = [], {}
        for (g, s), r in zip(self.node_keys, self.node_rows):
            if (g, s) in self.forced or (gene_ok[g] and space_ok[s] and o[r][0] > 0):
                p = o[r]
                params[(g, s)] = {"gene": g, "space": self.space_names[s], "x0": math.exp(2 * p[1]), "a": 2 * p[2],
                                  "h": (1 + p[3]) / 4, "x_h": math.exp(2 * p[1]), "c": 1.0,
                                  "feedback": 1.0 + p[4]}
        first = [(INPUT_GENE, i) for i in range(self.n_inputs)]
        outs = [(OUTPUT_GENE, self.n_inputs + self.hidden + k) for k in range(self.n_outputs)]
        for key in first:
            params[key]["role"] = "input"
        for key in outs:
            params[key]["role"] = "output"
        order = first + outs + [k for k in params if k not in set(first) | set(outs)]
        nodes = [params[k] for k in order]
        reactions = []
        for (r, s), row in zip(self.reaction_keys, self.reaction_rows):
            if all((g, s) in params for g in r) and o[row][0] > 0:
                reactions.append({"space": self.space_names[s], "a": r[0], "b": r[1], "c": r[2],
                                  "k": math.exp(2 * o[row][1])})
        transport = []
        for (g, a, b), row in zip(self.transport_keys, self.transport_rows):
            if (g, a) in params and (g, b) in params and o[row][0] > 0:
                transport.append({"gene": g, "from": self.space_names[a], "to": self.space_names[b],
                                  "k": math.exp(2 * o[row][1]) / 2, "v": max(o[row][2], 0.0)})
        return {"components": COMPONENTS, "genes": GENES,
                "spaces": {n: list(p) for n, p in zip(self.space_names, self.space_pos)},
                "neighbours": [[self.space_names[a], self.space_names[b], d] for a, b, d in self.neighbours],
                "nodes": nodes, "reactions": reactions, "transport": transport}

    def express_arrays(self, out: torch.Tensor) -> ExpressedPopulation:
        """Algorithm 2 for a population at once: CPPN outputs ``out`` (P, queries, 5) -> the padded
        tensors of its systems in slot order (same rules and parameter maps as :meth:`express`)."""
        o = torch.tanh(out)
        ex = o[..., 0] > 0
        n = self.max_nodes
        gene_ok, space_ok = ex[:, self.gene_rows], ex[:, self.space_rows]
        on = self.slot_forced | (gene_ok[:, self.slot_gene] & space_ok[:, self.slot_space] & ex[:, self.node_rows])
        pn = o[:, self.node_rows]
        x0 = torch.where(on, torch.exp(2 * pn[..., 1]), 1.0)
        free = on.clone()
        free[:, self.input_slots] = False
        arrays: dict[str, Any] = {
            "x0": x0, "x_h": x0.clone(), "a": torch.where(on, 2 * pn[..., 2], 0.0),
            "h": torch.where(on, (1 + pn[..., 3]) / 4, 0.0), "c": on.to(o.dtype),
            "m": torch.where(on, self.slot_mass, 1.0), "free": free.to(o.dtype), "p0": torch.zeros_like(x0),
            "charge": torch.where(on, self.slot_charge, 0.0), "space": self.slot_space.expand(len(on), n),
            "inv_D": self.inv_D.expand(len(on), *self.inv_D.shape)}
        pe = o[:, self.edge_rows]
        ends_on = on[:, self.edge_reac.clamp(min=0)].all(-1) & on[:, self.edge_prod]
        e_on = ex[:, self.edge_rows] & ends_on
        k = torch.exp(2 * pe[..., 1])
        k = torch.where(self.edge_is_transport, k / 2, k)
        arrays["k"] = torch.where(e_on, k, 0.0)
        arrays["v"] = torch.where(e_on & self.edge_is_transport, pe[..., 2].clamp(min=0.0), 0.0)
        reac = torch.where(self.edge_reac < 0, n, self.edge_reac)
        arrays["reac"] = torch.where(e_on[..., None], reac, n)
        arrays["prod"] = torch.where(e_on, self.edge_prod, n)
        feedback = 1.0 + pn[:, self.output_slots, 4]
        return ExpressedPopulation(arrays, self.input_slots, self.output_slots, feedback, on.sum(1), on,
                                   len(self.reaction_keys))

    def express_genome(self, genome: neat.DefaultGenome, config: neat.Config) -> dict[str, object]:
        """Algorithm 2 for one genome: one batched CPPN call over every query of the substrate."""
        return self.express(TorchCPPN(genome, config)(self.queries))
