"""The Reduced Dynamical System (RDS) of the EPL paper, built from a compact description.

Nodes are (gene, space) pairs. A description (a JSON or TOML file, or the same dict) holds

* ``components``: name -> {mass, charge}: m_c, q_c;
* ``genes``: name -> {component: count}: f_c, the rows of the elemental matrix M;
* ``spaces``: name -> [x, y] position (drawing only); ``neighbours``: [[s1, s2, distance]]: D;
* ``nodes``: [{gene, space, x0, a, c, h, x_h, p0, role}] (role "input" / "output" or absent);
* ``reactions``: [{space, a, b, c, k}]: a + b <-> c inside one space (genes; b may equal a);
* ``transport``: [{gene, from, to, k, v}]: diffusion (rate k) and Hamiltonian flow (rate v)
  of one gene between two neighbouring spaces.

theta = [x0, M, Mperp, S, D, m_c, q_c, a, k, v, c, x_h, h] (paper, RDS section). Node charge
q_i = f_c(g_i)^T q_c, V = q (1/D) q^T with q = diag(M q_c) S. 1/D is sparse: 1/distance between
neighbours; its diagonal (our choice, the paper leaves it open) is ``self_inverse_distance``
(default 1) plus the row's neighbour sum, so 1/D is diagonally dominant, V is positive
semi-definite and H is convex.

Reduced evaluation (:class:`RDSPopulation`): with f_i = x_i exp(psi_i), psi = dH/dx - ln x,
a chemical flux is k (f_a f_b - f_c) (the paper's "a b - c" product form: no log, one exp per
node), a diffusion flux k (f_from - f_to), a Hamiltonian edge w = v x_from x_to. This equals
the full DS of eqn:Dynamical_System with the same theta (tested). Systems of different sizes
run together padded to the largest (padded nodes have no edges; padded edges have rate 0).
"""
from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

import neuroplex
from neuroplex.dynamics import Dynamics
from neuroplex.errors import ModelError
from neuroplex.solution import Solution

from .dynamics import step_size
from .system import EnergySystem, Flows
from neuroplex.trainer import atomic_write_text

NODE_DEFAULTS = {"x0": 1.0, "a": 0.0, "c": 0.0, "h": 0.0, "x_h": 1.0, "p0": 0.0}


def load_description(source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """A description from a ``.json`` / ``.toml`` file or a dict (copied)."""
    if isinstance(source, Mapping):
        return json.loads(json.dumps(source))
    path = Path(source)
    if not path.is_file():
        raise ModelError(f"{path}: no such EPL system file")
    try:
        if path.suffix == ".toml":
            return tomllib.loads(path.read_text())
        return json.loads(path.read_text())
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ModelError(f"{path}: not a valid {path.suffix[1:] or 'JSON'} EPL system: {exc}") from None


def save_description(desc: Mapping[str, Any], path: str | Path) -> Path:
    """Write a description as JSON (atomically)."""

    path = Path(path)
    atomic_write_text(path, json.dumps(desc, indent=1) + "\n")
    return path


@dataclass
class RDS:
    """A built RDS: names, theta and the reduced edge lists."""

    desc: dict[str, Any]
    nodes: list[tuple[str, str]]
    system: EnergySystem
    reactants: torch.Tensor  # (e, 2) node indices, -1 where none
    products: torch.Tensor   # (e,)
    kinds: list[str]          # "reaction" / "transport" per edge
    S: torch.Tensor
    inv_D: torch.Tensor
    inputs: list[int]
    outputs: list[int]
    charge: torch.Tensor     # (n,) node charges f_c(g_i)^T q_c

    @property
    def node_names(self) -> list[str]:
        return [f"{g}@{s}" for g, s in self.nodes]


def build(source: str | Path | Mapping[str, Any], *, dtype: torch.dtype = torch.float64) -> RDS:
    """Build the RDS (and its full DS theta) from a description; errors name the element."""
    d = load_description(source)
    where = str(source) if not isinstance(source, Mapping) else "EPL system"
    comps = d.get("components") or {}
    genes = d.get("genes") or {}
    spaces = d.get("spaces") or {}
    if not genes or not spaces or not d.get("nodes"):
        raise ModelError(f"{where}: a description needs genes, spaces and nodes")
    cnames = list(comps)
    for g, comp in genes.items():
        for cname in comp:
            if cname not in comps:
                raise ModelError(f"{where}: gene {g!r} uses unknown component {cname!r}")
    snames = list(spaces)
    nodes: list[tuple[str, str]] = []
    index: dict[tuple[str, str], int] = {}
    for i, nd in enumerate(d["nodes"]):
        key = (nd.get("gene"), nd.get("space"))
        if key[0] not in genes or key[1] not in spaces:
            raise ModelError(f"{where}: node {i} has unknown gene or space {key}")
        if key in index:
            raise ModelError(f"{where}: node {key[0]}@{key[1]} given twice")
        index[key] = len(nodes)
        nodes.append(key)
    n = len(nodes)
    vec = lambda g: torch.tensor([float(genes[g].get(c, 0)) for c in cnames], dtype=dtype)  # noqa: E731
    M = torch.stack([vec(g) for g, _ in nodes]) if cnames else torch.zeros(n, 0, dtype=dtype)
    m_c = torch.tensor([float(comps[c].get("mass", 1.0)) for c in cnames], dtype=dtype)
    q_c = torch.tensor([float(comps[c].get("charge", 0.0)) for c in cnames], dtype=dtype)
    S = torch.zeros(n, len(snames), dtype=dtype)
    for i, (_, s) in enumerate(nodes):
        S[i, snames.index(s)] = 1.0
    inv_D = torch.zeros(len(snames), len(snames), dtype=dtype)
    for item in d.get("neighbours", []):
        s1, s2, dist = item
        if s1 not in spaces or s2 not in spaces or float(dist) <= 0:
            raise ModelError(f"{where}: neighbours entry {item} needs two known spaces and a distance > 0")
        inv_D[snames.index(s1), snames.index(s2)] = inv_D[snames.index(s2), snames.index(s1)] = 1.0 / float(dist)
    inv_D += torch.diag(inv_D.sum(1) + float(d.get("self_inverse_distance", 1.0)))
    charge = M @ q_c if cnames else torch.zeros(n, dtype=dtype)
    q = torch.diag(charge) @ S
    V = q @ inv_D @ q.T
    mass = M @ m_c if cnames else torch.ones(n, dtype=dtype)
    if bool((mass <= 0).any()):
        bad = [f"{g}@{s}" for (g, s), mm in zip(nodes, mass.tolist()) if mm <= 0]
        raise ModelError(f"{where}: nodes {bad} have no positive mass (give their genes components with mass)")

    cols, reactants, products, kinds, ks, vs = [], [], [], [], [], []
    for j, r in enumerate(d.get("reactions", [])):
        sp = r.get("space")
        try:
            ia, ib, ic = (index[(r[key], sp)] for key in ("a", "b", "c"))
        except KeyError:
            raise ModelError(f"{where}: reaction {j} ({r.get('a')} + {r.get('b')} <-> {r.get('c')} in {sp}) "
                             "names a node that does not exist") from None
        if cnames and not torch.equal(vec(r["a"]) + vec(r["b"]), vec(r["c"])):
            raise ModelError(f"{where}: reaction {j} {r['a']} + {r['b']} <-> {r['c']} does not conserve components")
        col = torch.zeros(n, dtype=dtype)
        col[ia] -= 1
        col[ib] -= 1
        col[ic] += 1
        cols.append(col)
        reactants.append([ia, ib])
        products.append(ic)
        kinds.append("reaction")
        ks.append(float(r.get("k", 1.0)))
        vs.append(0.0)
    for j, tr in enumerate(d.get("transport", [])):
        g = tr.get("gene")
        if (g, tr.get("from")) not in index or (g, tr.get("to")) not in index:
            raise ModelError(f"{where}: transport {j} of gene {g!r} between {tr.get('from')!r} and {tr.get('to')!r} "
                             "names a node that does not exist")
        s1, s2 = snames.index(tr["from"]), snames.index(tr["to"])
        if inv_D[s1, s2] == 0:
            raise ModelError(f"{where}: transport {j} of gene {g!r}: spaces {tr['from']!r} and {tr['to']!r} "
                             "are not neighbours")
        i1, i2 = index[(g, tr["from"])], index[(g, tr["to"])]
        col = torch.zeros(n, dtype=dtype)
        col[i1], col[i2] = -1.0, 1.0
        cols.append(col)
        reactants.append([i1, -1])
        products.append(i2)
        kinds.append("transport")
        ks.append(float(tr.get("k", 0.0)))
        vs.append(float(tr.get("v", 0.0)))
    Mperp = torch.stack(cols, 1) if cols else torch.zeros(n, 0, dtype=dtype)
    per_node = {key: torch.tensor([float(nd.get(key, dflt)) for nd in d["nodes"]], dtype=dtype)
                for key, dflt in NODE_DEFAULTS.items()}
    flows = Flows(**{f: bool(v) for f, v in (d.get("flows") or {}).items()})
    system = EnergySystem(Mperp=Mperp, a=per_node["a"], k=torch.tensor(ks, dtype=dtype), V=V, m=mass,
                          v=torch.tensor(vs, dtype=dtype), c=per_node["c"], h=per_node["h"], x_h=per_node["x_h"],
                          M=M, x0=per_node["x0"], p0=per_node["p0"], flows=flows,
                          node_names=[f"{g}@{s}" for g, s in nodes])
    roles = [nd.get("role") for nd in d["nodes"]]
    return RDS(desc=d, nodes=nodes, system=system, reactants=torch.tensor(reactants, dtype=torch.long).reshape(-1, 2),
               products=torch.tensor(products, dtype=torch.long), kinds=kinds, S=S, inv_D=inv_D,
               inputs=[i for i, r in enumerate(roles) if r == "input"],
               outputs=[i for i, r in enumerate(roles) if r == "output"], charge=charge)


@dataclass
class _Edges:
    """The edges of a population: reactions (k, a, b, c) and transports (k, v, from, to).

    Shared layout (``off`` given): every edge column joins the same nodes in every row that has it
    (the substrate's slots; any single system), so the indices are one vector per column set, the
    rates (columns, rows) and ``off`` marks the rows without the edge; gathers and sums then run
    node-major over whole rows (``index_select`` / ``index_add_``). Otherwise per-row indices
    (rows, columns), absent edges pointing at the neutral slot. Both add each node's terms in column
    order, so a row gets the same bits in either layout and in any batch."""

    reactions: tuple[torch.Tensor, ...]
    transports: tuple[torch.Tensor, ...]
    off: tuple[torch.Tensor, torch.Tensor] | None

    @classmethod
    def of(cls, k: torch.Tensor, v: torch.Tensor, reac: torch.Tensor, prod: torch.Tensor, R: int, n: int) -> _Edges:
        """From the padded per-row arrays (absent edges at the neutral slot ``n``); the shared layout
        where every column's present edges join the same nodes in all rows."""
        ends = (reac[..., 0], reac[..., 1], prod)
        on = prod != n
        first = on.to(torch.uint8).argmax(0)  # a row that has the edge (row 0 where none: all at n)
        cols = torch.arange(prod.shape[1])
        ref = tuple(t[first, cols] for t in ends)
        if not all(bool(((t == r) | ~on).all()) for t, r in zip(ends, ref)):
            return cls((k[:, :R], *(t[:, :R].contiguous() for t in ends)),
                       (k[:, R:], v[:, R:], ends[0][:, R:].contiguous(), prod[:, R:].contiguous()), None)
        kT, vT, offT = k.T.contiguous(), v.T.contiguous(), (~on).T.contiguous()
        return cls((kT[:R], ref[0][:R], ref[1][:R], ref[2][:R]), (kT[R:], vT[R:], ref[0][R:], ref[2][R:]),
                   (offT[:R], offT[R:]))

    def rows(self, idx: torch.Tensor) -> _Edges:
        """The edges of the rows ``idx``."""
        if self.off is None:
            return _Edges(tuple(t[idx] for t in self.reactions), tuple(t[idx] for t in self.transports), None)
        pick = lambda ts, nidx: tuple(t if i in nidx else t[:, idx] for i, t in enumerate(ts))  # noqa: E731
        return _Edges(pick(self.reactions, (1, 2, 3)), pick(self.transports, (2, 3)),
                      (self.off[0][:, idx], self.off[1][:, idx]))

    def flows(self, f: torch.Tensor, xx: torch.Tensor, Hp: torch.Tensor, Hx: torch.Tensor,
              flows: Flows) -> tuple[torch.Tensor, torch.Tensor]:
        """dx and dq (rows, n + 1) of the chemical and Hamiltonian flows over the edges, from f = x e^psi,
        x, dH/dp and dH/dx with the neutral slot appended (1, 1, 0, 0)."""
        shared = self.off is not None
        if shared:
            f, xx, Hp, Hx = (t.T.contiguous() for t in (f, xx, Hp, Hx))
            take = lambda src, idx: src.index_select(0, idx)  # noqa: E731
            put = lambda dst, idx, val, sign=1.0: dst.index_add_(0, idx, val, alpha=sign)  # noqa: E731
        else:
            take = lambda src, idx: torch.gather(src, 1, idx)  # noqa: E731
            put = lambda dst, idx, val, sign=1.0: dst.scatter_add_(1, idx, val if sign > 0 else -val)  # noqa: E731
        dx, dq = torch.zeros_like(f), torch.zeros_like(f)
        (rk, ra, rb, rc), (tk, tv, tf, tt) = self.reactions, self.transports
        # reactions a + b <-> c first, then the transports; in place where a fresh edge-sized tensor
        # would be allocated at every step, but never on a term already added (index_add_ keeps its
        # source for autograd, which the Jacobian of the solvers' distance test runs through)
        if flows.chemical and len(ra):
            flux = take(f, ra).mul_(take(f, rb)).sub_(take(f, rc)).mul_(rk)  # k (f_a f_b - f_c)
            if shared:
                flux.masked_fill_(self.off[0], 0.0)  # absent edges read real nodes here: no term, not even nan
            put(dx, rc, flux)
            put(dx, ra, flux, -1.0)
            put(dx, rb, flux, -1.0)
        jt = take(f, tf).sub_(take(f, tt)).mul_(tk) if flows.chemical else torch.zeros_like(tk)  # diffusion
        if flows.hamiltonian:
            w = take(xx, tf).mul_(tv).mul_(take(xx, tt))  # v x_from x_to
            jt.add_(take(Hp, tt).sub_(take(Hp, tf)).mul_(w))
            jp = take(Hx, tt).sub_(take(Hx, tf)).mul_(w)
            if shared:
                jp.masked_fill_(self.off[1], 0.0)
            put(dq, tf, jp)
            put(dq, tt, jp, -1.0)
        if shared:
            jt.masked_fill_(self.off[1], 0.0)
        put(dx, tt, jt)
        put(dx, tf, jt, -1.0)
        return (dx.T, dq.T) if shared else (dx, dq)


class RDSPopulation(Dynamics):
    """Many RDS of different sizes as one batched dynamics (padding to the largest).

    The parameter of a sample is its system's index in the population, so the core solvers
    may run any subset of rows; ``y`` is ``(batch, 2 n_max)`` (x then p, padded entries x = 1).
    """

    def __init__(self, systems: Sequence[RDS], *, dt: float = 0.05, flows: Flows | None = None,
                 pad_to: tuple[int, int] | None = None):
        """``pad_to``: (nodes, edges) to pad every system to (at least the largest's), so that a
        system gives bit-identical results in any population it is batched with."""
        if not systems:
            raise ModelError("RDSPopulation: no systems")
        dtype = systems[0].system.Mperp.dtype
        P = len(systems)
        n = max(max(r.system.n for r in systems), pad_to[0] if pad_to else 0)
        n_reac = [r.kinds.count("reaction") for r in systems]
        R = max(n_reac)  # reactions in columns 0..R-1, transports after them
        e = max(R + max(r.system.e - nr for r, nr in zip(systems, n_reac)), 1, pad_to[1] if pad_to else 0)
        z = lambda *s: torch.zeros(P, *s, dtype=dtype)  # noqa: E731
        arrays = {"a": z(n), "m": z(n) + 1, "c": z(n), "h": z(n), "x_h": z(n) + 1, "free": z(n), "charge": z(n),
                  "space": torch.zeros(P, n, dtype=torch.long), "inv_D": z(n, n),
                  "k": z(e), "v": z(e), "x0": z(n) + 1, "p0": z(n),
                  "reac": torch.full((P, e, 2), n, dtype=torch.long),  # index n = the neutral "one" slot
                  "prod": torch.full((P, e), n, dtype=torch.long)}
        for i, r in enumerate(systems):
            s, ni = r.system, r.system.n
            for name in ("a", "m", "c", "h", "x_h", "free", "x0", "p0"):
                arrays[name][i, :ni] = getattr(s, name)
            used, space = torch.unique(r.S.argmax(1), return_inverse=True)  # the occupied spaces only (<= ni)
            arrays["charge"][i, :ni], arrays["space"][i, :ni] = r.charge, space
            arrays["inv_D"][i, :len(used), :len(used)] = r.inv_D[used][:, used]
            is_reac = torch.tensor([kd == "reaction" for kd in r.kinds], dtype=torch.bool)
            cols = torch.where(is_reac, torch.cumsum(is_reac, 0) - 1, R + torch.cumsum(~is_reac, 0) - 1)
            arrays["k"][i, cols], arrays["v"][i, cols] = s.k, s.v
            arrays["reac"][i, cols] = torch.where(r.reactants < 0, n, r.reactants)
            arrays["prod"][i, cols] = r.products
        self.systems = list(systems)
        self._set(arrays, dt, flows, R)

    NODE_ARRAYS = ("a", "m", "c", "h", "x_h", "free", "charge", "space", "x0", "p0")
    EDGE_ARRAYS = ("k", "v", "reac", "prod")
    ARRAYS = NODE_ARRAYS + EDGE_ARRAYS + ("inv_D",)

    def _set(self, arrays: Mapping[str, torch.Tensor], dt: float, flows: Flows | None, reactions: int) -> None:
        self.dt = float(dt)
        self.flows = flows or Flows()
        self.dtype, self.device = arrays["a"].dtype, torch.device("cpu")
        self.size = arrays["a"].shape[0]
        self.n_max, self.e_max = arrays["a"].shape[1], arrays["k"].shape[1]
        for name in self.ARRAYS:
            setattr(self, name, arrays[name])
        self.space = self.space.contiguous()  # per-row scatter/gather: the same bits in any batch
        R, n = int(reactions), self.n_max
        if not 0 <= R <= self.e_max:
            raise ModelError(f"RDSPopulation: {R} reaction columns of {self.e_max} edge columns")
        if bool((self.reac[:, R:, 1] != n).any()):
            raise ModelError(f"RDSPopulation: an edge column >= {R} (the transports) has a second reactant; "
                             "reactions must come first")
        if bool((self.v[:, :R] != 0).any()):
            raise ModelError(f"RDSPopulation: a reaction column (< {R}) has a Hamiltonian rate v != 0")
        self.n_reactions = R
        self.edges = _Edges.of(self.k, self.v, self.reac, self.prod, R, n)
        self.state_names = [f"x{i}" for i in range(self.n_max)] + [f"p{i}" for i in range(self.n_max)]
        self.param_names = ["system"]
        self.name = "epl-rds-population"

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, torch.Tensor], *, dt: float = 0.05,
                    flows: Flows | None = None, reactions: int = 0) -> RDSPopulation:
        """A population straight from its padded tensors (``ARRAYS``: per-node (P, n) (``charge`` q_i,
        ``space`` the index of the node's space), ``inv_D`` (P, spaces, spaces), per-edge ``k``, ``v``
        (P, e), ``reac`` (P, e, 2) and ``prod`` (P, e) node indices, n = none),
        e.g. expressed by a CPPN for a whole population at once; ``systems`` is then None. The first
        ``reactions`` edge columns are reactions (v = 0), the others transports (no second reactant)."""
        missing = [nm for nm in cls.ARRAYS if nm not in arrays]
        if missing:
            raise ModelError(f"RDSPopulation.from_arrays: missing {missing}")
        pop = cls.__new__(cls)
        pop.systems = None
        pop._set(arrays, dt, flows, reactions)
        return pop

    def select(self, rows: torch.Tensor | Sequence[int]) -> RDSPopulation:
        """The sub-population of ``rows`` (a compact copy of their tensors: row j is system ``rows[j]``)."""
        idx = torch.as_tensor(rows, dtype=torch.long)
        pop = type(self).__new__(type(self))
        pop.systems = [self.systems[i] for i in idx.tolist()] if self.systems is not None else None
        pop._set({nm: getattr(self, nm)[idx] for nm in self.ARRAYS}, self.dt, self.flows, self.n_reactions)
        return pop

    def default_params(self, batch: int | None = None, *, dtype: Any = None, device: Any = None) -> torch.Tensor:
        return torch.arange(self.size, dtype=dtype or self.dtype)[:, None]

    def initial_state(self, p: torch.Tensor | None = None, batch: int | None = None, *,
                      dtype: Any = None, device: Any = None) -> torch.Tensor:
        return torch.cat([self.x0, self.p0], -1).to(dtype or self.dtype)

    NODE_TERMS = ("a", "m", "c", "h", "x_h", "free", "charge", "space", "inv_D")

    def _take(self, p: torch.Tensor | None) -> tuple[list[torch.Tensor], _Edges]:
        """Node terms and edges of the rows ``p`` (all rows for None)."""
        nodes = [getattr(self, nm) for nm in self.NODE_TERMS]
        if p is None:
            return nodes, self.edges
        idx = p[:, 0].long()
        return [t[idx] for t in nodes], self.edges.rows(idx)

    def rhs(self, t: torch.Tensor, y: torch.Tensor, p: torch.Tensor | None = None,
            u: torch.Tensor | None = None) -> torch.Tensor:
        (a, m, c, h, x_h, free, charge, space, inv_D), edges = self._take(p)
        n = self.n_max
        x, q = y[:, :n], y[:, n:]
        psi = 1.0 + a + self._potential(x, charge, space, inv_D) + q * q / (2 * m)
        one = torch.ones_like(x[:, :1])
        f = torch.cat([x * torch.exp(psi), one], -1)
        Hp = torch.cat([q * x / m, 0 * one], -1)
        xx = torch.cat([x, one], -1)
        Hx = torch.cat([torch.log(x) + psi, 0 * one], -1)
        dx, dq = edges.flows(f, xx, Hp, Hx, self.flows)
        dx, dq = dx[:, :n], dq[:, :n]
        if self.flows.collision:
            dq = dq - c * Hp[:, :n]
        if self.flows.homeostasis:
            dx = dx + h * (x_h - x)
        return torch.cat([dx * free, dq * free], -1)

    @staticmethod
    def _potential(x: torch.Tensor, charge: torch.Tensor, space: torch.Tensor, inv_D: torch.Tensor) -> torch.Tensor:
        """V x with V = q (1/D) q^T, q = diag(charge) S, in factored form: the charge-weighted mass
        of each space, through 1/D, back to the nodes (spaces^2 + 3 n per row instead of n^2).
        Row-wise sums in node order and over a fixed number of spaces: the same bits in any batch."""
        per_space = torch.zeros(x.shape[0], inv_D.shape[-1], dtype=x.dtype).scatter_add_(1, space, charge * x)
        return charge * torch.gather((inv_D * per_space.unsqueeze(-2)).sum(-1), 1, space)

    def fixed_point_map(self, y: torch.Tensor, p: torch.Tensor | None = None,
                        u: torch.Tensor | None = None) -> torch.Tensor:
        """The implicit-layer step of :class:`~.dynamics.EPLDynamics` on the reduced flows."""
        t = torch.zeros(y.shape[0], dtype=y.dtype)
        f = self.rhs(t, y, p, u)
        n = self.n_max
        hstep = step_size(y[:, :n], f[:, :n], self.dt)
        return y + hstep * f

    def relax(self, *, tol: float = 1e-8, max_iter: int = 20000, **options: Any) -> Solution:
        """Equilibria of all systems in one ``neuroplex.equilibrate`` call (fixed-point iteration)."""
        return neuroplex.equilibrate(self, self.initial_state(), params=self.default_params(),
                                     method="iteration", tol=tol, max_iter=max_iter, **options)

    def unpad(self, y: torch.Tensor) -> list[torch.Tensor]:
        """Per-system states (x then p) without padding (a population built from RDS objects)."""
        if self.systems is None:
            raise ModelError("RDSPopulation.unpad: this population was built from arrays, not RDS systems")
        out = []
        for i, r in enumerate(self.systems):
            ni = r.system.n
            out.append(torch.cat([y[i, :ni], y[i, self.n_max:self.n_max + ni]]))
        return out
