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
    q = torch.diag(M @ q_c) @ S
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
               outputs=[i for i, r in enumerate(roles) if r == "output"])


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
        e = max(max(r.system.e for r in systems), 1, pad_to[1] if pad_to else 0)
        z = lambda *s: torch.zeros(P, *s, dtype=dtype)  # noqa: E731
        arrays = {"a": z(n), "m": z(n) + 1, "c": z(n), "h": z(n), "x_h": z(n) + 1, "free": z(n), "V": z(n, n),
                  "k": z(e), "v": z(e), "x0": z(n) + 1, "p0": z(n),
                  "reac": torch.full((P, e, 2), n, dtype=torch.long),  # index n = the neutral "one" slot
                  "prod": torch.full((P, e), n, dtype=torch.long)}
        for i, r in enumerate(systems):
            s, ni, ei = r.system, r.system.n, r.system.e
            for name in ("a", "m", "c", "h", "x_h", "free", "x0", "p0"):
                arrays[name][i, :ni] = getattr(s, name)
            arrays["V"][i, :ni, :ni] = s.V
            arrays["k"][i, :ei], arrays["v"][i, :ei] = s.k, s.v
            arrays["reac"][i, :ei] = torch.where(r.reactants < 0, n, r.reactants)
            arrays["prod"][i, :ei] = r.products
        self.systems = list(systems)
        self._set(arrays, dt, flows)

    ARRAYS = ("a", "m", "c", "h", "x_h", "free", "V", "k", "v", "x0", "p0", "reac", "prod")

    def _set(self, arrays: Mapping[str, torch.Tensor], dt: float, flows: Flows | None) -> None:
        self.dt = float(dt)
        self.flows = flows or Flows()
        self.dtype, self.device = arrays["a"].dtype, torch.device("cpu")
        self.size = arrays["a"].shape[0]
        self.n_max, self.e_max = arrays["a"].shape[1], arrays["k"].shape[1]
        for name in self.ARRAYS:
            setattr(self, name, arrays[name])
        self.state_names = [f"x{i}" for i in range(self.n_max)] + [f"p{i}" for i in range(self.n_max)]
        self.param_names = ["system"]
        self.name = "epl-rds-population"

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, torch.Tensor], *, dt: float = 0.05,
                    flows: Flows | None = None) -> "RDSPopulation":
        """A population straight from its padded tensors (``ARRAYS``: per-node (P, n), ``V`` (P, n, n),
        per-edge ``k``, ``v`` (P, e), ``reac`` (P, e, 2) and ``prod`` (P, e) node indices, n = none),
        e.g. expressed by a CPPN for a whole population at once; ``systems`` is then None."""
        missing = [nm for nm in cls.ARRAYS if nm not in arrays]
        if missing:
            raise ModelError(f"RDSPopulation.from_arrays: missing {missing}")
        pop = cls.__new__(cls)
        pop.systems = None
        pop._set(arrays, dt, flows)
        return pop

    def select(self, rows: torch.Tensor | Sequence[int]) -> "RDSPopulation":
        """The sub-population of ``rows`` (a compact copy of their tensors: row j is system ``rows[j]``)."""
        idx = torch.as_tensor(rows, dtype=torch.long)
        pop = type(self).__new__(type(self))
        pop.systems = [self.systems[i] for i in idx.tolist()] if self.systems is not None else None
        pop._set({nm: getattr(self, nm)[idx] for nm in self.ARRAYS}, self.dt, self.flows)
        return pop

    def default_params(self, batch: int | None = None, *, dtype: Any = None, device: Any = None) -> torch.Tensor:
        return torch.arange(self.size, dtype=dtype or self.dtype)[:, None]

    def initial_state(self, p: torch.Tensor | None = None, batch: int | None = None, *,
                      dtype: Any = None, device: Any = None) -> torch.Tensor:
        return torch.cat([self.x0, self.p0], -1).to(dtype or self.dtype)

    def _take(self, p: torch.Tensor | None, y: torch.Tensor) -> tuple[Any, ...]:
        names = ("a", "m", "c", "h", "x_h", "free", "V", "k", "v", "reac", "prod")
        if p is None:
            return tuple(getattr(self, nm) for nm in names)
        idx = p[:, 0].long()
        return tuple(getattr(self, nm)[idx] for nm in names)

    def rhs(self, t: torch.Tensor, y: torch.Tensor, p: torch.Tensor | None = None,
            u: torch.Tensor | None = None) -> torch.Tensor:
        a, m, c, h, x_h, free, V, k, v, reac, prod = self._take(p, y)
        n = self.n_max
        x, q = y[:, :n], y[:, n:]
        psi = 1.0 + a + (V * x.unsqueeze(-2)).sum(-1) + q * q / (2 * m)  # row-wise: same bits in any batch
        one = torch.ones_like(x[:, :1])
        f = torch.cat([x * torch.exp(psi), one], -1)
        dx = torch.zeros_like(torch.cat([x, one], -1))
        dq = torch.zeros_like(dx)
        r0, r1 = reac[..., 0].contiguous(), reac[..., 1].contiguous()
        take = lambda src, idx: torch.gather(src, 1, idx)  # noqa: E731 - per row: same bits in any batch
        if self.flows.chemical:
            flux = k * (take(f, r0) * take(f, r1) - take(f, prod))
            dx.scatter_add_(1, prod, flux)
            dx.scatter_add_(1, r0, -flux)
            dx.scatter_add_(1, r1, -flux)
        Hp = torch.cat([q * x / m, 0 * one], -1)
        if self.flows.hamiltonian:
            xx = torch.cat([x, one], -1)
            Hx = torch.cat([torch.log(x) + psi, 0 * one], -1)
            w = v * take(xx, r0) * take(xx, prod)
            jx = w * (take(Hp, prod) - take(Hp, r0))
            jp = w * (take(Hx, prod) - take(Hx, r0))
            dx.scatter_add_(1, prod, jx)
            dx.scatter_add_(1, r0, -jx)
            dq.scatter_add_(1, prod, -jp)
            dq.scatter_add_(1, r0, jp)
        dx, dq = dx[:, :n], dq[:, :n]
        if self.flows.collision:
            dq = dq - c * Hp[:, :n]
        if self.flows.homeostasis:
            dx = dx + h * (x_h - x)
        return torch.cat([dx * free, dq * free], -1)

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
