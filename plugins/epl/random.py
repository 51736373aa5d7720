"""Random EPL systems (property tests, benchmarks): a batch of systems of one shape."""
from __future__ import annotations

import torch

from .system import EnergySystem, Flows


def random_system(n: int, e: int, *, batch: int = 1, seed: int = 0, flows: Flows | None = None,
                  dtype: torch.dtype = torch.float64) -> EnergySystem:
    """``batch`` random systems with n nodes and e reactions (integer stoichiometry in -2..2, sparse,
    every reaction with a reactant and a product), V = 0.2 Q Q^T / n positive semi-definite, and
    random rates, masses, damping, homeostasis and initial state (x0 > 0)."""
    g = torch.Generator().manual_seed(int(seed))
    B = batch

    def rnd(*shape: int) -> torch.Tensor:
        return torch.randn(B, *shape, generator=g, dtype=dtype)

    def uni(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(B, *shape, generator=g, dtype=dtype)

    coef = torch.randint(1, 3, (B, n, e), generator=g).to(dtype)
    keep = torch.rand(B, n, e, generator=g) < 0.25
    sign = torch.where(torch.rand(B, n, e, generator=g) < 0.5, -1.0, 1.0).to(dtype)
    Mperp = torch.where(keep, sign * coef, torch.zeros_like(coef))
    # one guaranteed reactant and one guaranteed product per reaction (distinct nodes)
    perm = torch.argsort(torch.rand(B, e, n, generator=g), -1)
    cols = torch.arange(e)
    bidx = torch.arange(B)[:, None]
    Mperp[bidx, perm[..., 0], cols] = -1.0
    Mperp[bidx, perm[..., 1], cols] = 1.0
    Q = rnd(n, 2)
    V = 0.2 * Q @ Q.transpose(-1, -2) / n
    # a near -1 puts exp(dH/dx) near x: rates of order k x (not stiff for these sizes)
    return EnergySystem(Mperp=Mperp, a=-1.0 + 0.3 * rnd(n), k=0.2 * torch.exp(0.3 * rnd(e)), V=V, m=uni(0.5, 2.0, n),
                        v=0.5 * rnd(e), c=uni(0.2, 1.0, n), h=uni(0.05, 0.5, n), x_h=uni(0.2, 2.0, n),
                        x0=torch.exp(0.5 * rnd(n)), p0=0.5 * rnd(n), flows=flows or Flows())


def conservation_matrix(Mperp: torch.Tensor) -> torch.Tensor:
    """M with M^T Mperp = 0 (orthonormal basis of the left null space), per batch element
    ``(..., n, c_max)`` padded with zero columns where a system has fewer laws."""
    U, S, _ = torch.linalg.svd(Mperp, full_matrices=True)
    n = Mperp.shape[-2]
    tol = 1e-9 * max(Mperp.shape[-2:])
    rank = (S > tol * S.amax(-1, keepdim=True).clamp_min(1e-300)).sum(-1)
    mask = torch.arange(n) >= rank.unsqueeze(-1)
    return U * mask.unsqueeze(-2).to(U.dtype)


def random_description(n_spaces: int, *, seed: int = 0) -> dict:
    """An RDS description with 4 genes (a, b, ab = a + b, aa = a + a) in each of ``n_spaces``
    spaces along a line (4 n_spaces nodes): a + b <-> ab and a + a <-> aa in every space,
    diffusion and Hamiltonian transport of every gene between neighbouring spaces."""
    g = torch.Generator().manual_seed(int(seed))

    def u(lo: float, hi: float) -> float:
        return float(lo + (hi - lo) * torch.rand((), generator=g, dtype=torch.float64))

    genes = {"a": {"A": 1}, "b": {"B": 1}, "ab": {"A": 1, "B": 1}, "aa": {"A": 2}}
    spaces = {f"s{i}": [float(i), 0.0] for i in range(n_spaces)}
    nodes = [{"gene": gn, "space": sp, "x0": u(0.2, 2.0), "a": u(-1.3, -0.7), "c": u(0.2, 1.0), "p0": u(-0.3, 0.3)}
             for sp in spaces for gn in genes]
    reactions = [r for sp in spaces for r in ({"space": sp, "a": "a", "b": "b", "c": "ab", "k": u(0.1, 0.5)},
                                              {"space": sp, "a": "a", "b": "a", "c": "aa", "k": u(0.1, 0.5)})]
    transport = [{"gene": gn, "from": f"s{i}", "to": f"s{i + 1}", "k": u(0.05, 0.3), "v": u(-0.05, 0.05)}
                 for i in range(n_spaces - 1) for gn in genes]
    return {"components": {"A": {"mass": 1.0, "charge": 0.2}, "B": {"mass": 2.0, "charge": -0.2}}, "genes": genes,
            "spaces": spaces, "neighbours": [[f"s{i}", f"s{i + 1}", 1.0] for i in range(n_spaces - 1)],
            "nodes": nodes, "reactions": reactions, "transport": transport}
