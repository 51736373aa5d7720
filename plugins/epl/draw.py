"""Pictures of an EPL system in the paper's style (figure "Example of DS") and of its
energy and state trajectories."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .rds import RDS
from .dynamics import EPLDynamics, trajectory


def draw_system(r: RDS, path: str | Path) -> Path:
    """Spaces as squares, nodes as circles (inputs green, outputs orange), reactions as grey
    squares labelled with their rule, diffusion as solid and Hamiltonian flow as dotted lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, Rectangle

    spaces = r.desc["spaces"]
    fig, ax = plt.subplots(figsize=(3 + 2.5 * len(spaces), 4))
    pos: dict[int, tuple[float, float]] = {}
    per_space: dict[str, list[int]] = {}
    for i, (_, s) in enumerate(r.nodes):
        per_space.setdefault(s, []).append(i)
    for s, (sx, sy) in spaces.items():
        cx, cy = 3.0 * sx, 3.0 * sy
        ax.add_patch(Rectangle((cx - 1.2, cy - 1.2), 2.4, 2.4, fill=False, lw=1.5))
        ax.text(cx - 1.15, cy + 1.25, s, fontsize=9)
        members = per_space.get(s, [])
        for k, i in enumerate(members):
            ang = 2 * torch.pi * k / max(len(members), 1)
            pos[i] = (cx + 0.75 * float(torch.cos(torch.tensor(ang))), cy + 0.75 * float(torch.sin(torch.tensor(ang))))
    for i, (g, _) in enumerate(r.nodes):
        color = "tab:green" if i in r.inputs else "tab:orange" if i in r.outputs else "white"
        ax.add_patch(Circle(pos[i], 0.22, facecolor=color, edgecolor="black", zorder=3))
        ax.text(*pos[i], g, ha="center", va="center", fontsize=7, zorder=4)
    for j, kind in enumerate(r.kinds):
        a, b = (int(v) for v in r.reactants[j])
        c = int(r.products[j])
        if kind == "reaction":
            pts = [pos[a], pos[b], pos[c]]
            mx, my = sum(p[0] for p in pts) / 3, sum(p[1] for p in pts) / 3
            ax.add_patch(Rectangle((mx - 0.12, my - 0.12), 0.24, 0.24, color="grey", zorder=2))
            for p in pts:
                ax.plot([mx, p[0]], [my, p[1]], color="grey", lw=0.8, zorder=1)
            ax.text(mx, my - 0.3, f"{r.nodes[a][0]}+{r.nodes[b][0]}<->{r.nodes[c][0]}", ha="center", fontsize=6)
        else:
            (x1, y1), (x2, y2) = pos[a], pos[c]
            if float(r.system.k[j]) != 0:
                ax.plot([x1, x2], [y1, y2], "k-", lw=1.0, zorder=1)
            if float(r.system.v[j]) != 0:
                ax.plot([x1, x2], [y1 + 0.08, y2 + 0.08], "k:", lw=1.2, zorder=1)
    ax.set_aspect("equal")
    ax.autoscale_view()
    ax.axis("off")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_trajectory(r: RDS, path: str | Path, *, t1: float = 20.0, n_points: int = 201, **options: Any) -> Path:
    """H(t) (eqn:Energy) and x(t) of the system from theta[x0] (core ``neuroplex.simulate``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    sol = trajectory(r.system, t1, n_points=n_points, **options)
    ts, ys = sol.ts[0] if sol.ts.dim() > 1 else sol.ts, sol.ys[0]
    H = EPLDynamics(r.system).energy(ys)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.5))
    a1.plot(ts, H)
    a1.set_xlabel("t")
    a1.set_ylabel("H(x, p)")
    a1.set_title("energy")
    for i, name in enumerate(r.node_names):
        a2.plot(ts, ys[:, i], label=name)
    a2.set_xlabel("t")
    a2.set_ylabel("x")
    a2.set_title("masses")
    a2.legend(fontsize=6)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
