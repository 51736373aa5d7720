"""Run one model on several solvers and report how far they agree.

:func:`compare` simulates the same model (file, shipped model name or IR) on each named
solver over one output grid and returns a :class:`Comparison`: per variable and per solver,
the maximum absolute difference ``max_t |x - x_ref|`` and the maximum relative difference
``max_t |x - x_ref| / max(|x_ref|, floor)`` against a reference solver (roadrunner when it is
in the list, else the first solver), plus an overlay plot. ``neuroplex compare`` is the
command-line form.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .errors import NeuroplexError
from .solution import Solution, Status, save_figure


@dataclass
class Comparison:
    """Result of :func:`compare`. ``max_abs[solver][name]`` and ``max_rel[solver][name]``
    hold each non-reference solver's differences from :attr:`reference`."""

    model: str
    reference: str
    names: list[str]
    solutions: dict[str, Solution]
    max_abs: dict[str, dict[str, float]] = field(default_factory=dict)
    max_rel: dict[str, dict[str, float]] = field(default_factory=dict)
    floor: float = 1e-12

    @property
    def others(self) -> list[str]:
        return [s for s in self.solutions if s != self.reference]

    def worst(self, solver: str | None = None) -> tuple[str, float, float]:
        """(variable, max_abs, max_rel) of the variable with the largest relative difference."""
        solver = solver or self.others[0]
        name = max(self.names, key=lambda n: _nan_last(self.max_rel[solver][n]))
        return name, self.max_abs[solver][name], self.max_rel[solver][name]

    def within(self, rtol: float, atol: float, solver: str | None = None) -> bool:
        """Whether ``|x - x_ref| <= atol + rtol |x_ref|`` at every point of every variable."""
        solvers = [solver] if solver else self.others
        ref = self.solutions[self.reference]
        for s in solvers:
            sol = self.solutions[s]
            for n in self.names:
                a, b = sol[n].double(), ref[n].double()
                if not bool(((a - b).abs() <= atol + rtol * b.abs()).all()):
                    return False
        return True

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "reference": self.reference, "solvers": list(self.solutions),
                "names": list(self.names), "floor": self.floor,
                "max_abs": self.max_abs, "max_rel": self.max_rel,
                "status": {s: [int(x) for x in sol.status] for s, sol in self.solutions.items()}}

    def table(self, limit: int | None = None) -> str:
        """A text table: one row per variable, max abs / max rel per non-reference solver."""
        width = max([8, *(len(n) for n in self.names)])
        head = f"{'variable':<{width}}" + "".join(f"  {s + ' abs':>14}  {s + ' rel':>14}" for s in self.others)
        rows = [f"{self.model}: reference {self.reference}, {len(self.names)} variables", *self.failures(), head]
        names = self.names
        if limit is not None and len(names) > limit:
            names = sorted(names, key=lambda n: -_nan_last(max(self.max_rel[s][n] for s in self.others)))[:limit]
        for n in names:
            rows.append(f"{n:<{width}}" + "".join(f"  {self.max_abs[s][n]:>14.3e}  {self.max_rel[s][n]:>14.3e}"
                                                  for s in self.others))
        if limit is not None and len(self.names) > limit:
            rows.append(f"... {len(self.names) - limit} more variables (the {limit} with the largest relative difference shown)")
        return "\n".join(rows)

    def failures(self) -> list[str]:
        """One line per solver with failed samples (status other than SUCCESS): their outputs
        after the failure are NaN, and points NaN on both sides count as equal in the table."""
        out = []
        for s, sol in self.solutions.items():
            bad = sol.failed_samples()
            if bad:
                codes = ", ".join(sorted({Status(int(sol.status[i])).name.lower() for i in bad}))
                out.append(f"FAILED: {s}: {len(bad)} of {sol.status.numel()} sample(s) ({codes}); points where "
                           f"both solvers give NaN count as equal")
        return out

    def plot(self, path: str | os.PathLike | None = None, names: Sequence[str] | None = None,
             sample: int = 0, max_panels: int = 6) -> Any:
        """Overlay of every solver's trajectories, one panel per variable (at most
        ``max_panels``: those with the largest relative difference unless ``names`` is given)."""
        import matplotlib

        if path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        if names is None:
            key = (lambda n: -_nan_last(max(self.max_rel[s][n] for s in self.others))) if self.others else None
            names = sorted(self.names, key=key)[:max_panels] if key else self.names[:max_panels]
        names = list(names)
        cols = 2 if len(names) > 1 else 1
        rows = math.ceil(len(names) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 2.6 * rows), squeeze=False, sharex=True)
        styles = ["-", "--", ":", "-."]
        for ax, name in zip(axes.flat, names):
            for i, (solver, sol) in enumerate(self.solutions.items()):
                ts = sol.ts[sample] if sol.ts.dim() == 2 else sol.ts
                ax.plot(ts.cpu().numpy(), sol[name][sample].detach().cpu().numpy(), styles[i % len(styles)],
                        label=solver, linewidth=1.6 if i == 0 else 1.2)
            title = name
            if self.others:
                title += f"  (max rel diff {max(self.max_rel[s][name] for s in self.others):.1e})"
            ax.set_title(title, fontsize="small")
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        axes.flat[0].legend(fontsize="small")
        for ax in axes[-1]:
            ax.set_xlabel("time")
        fig.suptitle(f"{self.model}: {' vs '.join(self.solutions)}")
        fig.tight_layout()
        if path is not None:
            save_figure(fig, path)
        return fig


def _nan_last(x: float) -> float:
    return math.inf if math.isnan(x) else x


def compare(model: Any, solvers: Sequence[str] = ("torch", "roadrunner"), *,
            t_span: tuple[float, float] | float = 100.0, n_points: int = 1001,
            rtol: float | None = None, atol: float | None = None,
            solver_options: Mapping[str, Mapping[str, Any]] | None = None,
            reference: str | None = None, names: Sequence[str] | None = None,
            params: torch.Tensor | None = None, floor: float = 1e-12,
            plot: str | os.PathLike | None = None) -> Comparison:
    """Simulate ``model`` on each of ``solvers`` and compare the trajectories.

    ``rtol``/``atol`` go to every solver (``solver_options[name]`` adds or overrides
    options of one solver, e.g. ``{"torch": {"method": "rosenbrock"}}``). Variables are the
    names every solver reports (or ``names``). ``plot`` writes the overlay PNG.
    """
    from .api import load_model, simulate

    solvers = list(solvers)
    if len(solvers) < 2:
        raise NeuroplexError("compare needs at least two solvers")
    if len(set(solvers)) != len(solvers):
        raise NeuroplexError(f"compare: solver listed twice in {', '.join(solvers)}")
    if reference is None:
        reference = "roadrunner" if "roadrunner" in solvers else solvers[0]
    if reference not in solvers:
        raise NeuroplexError(f"compare: reference {reference!r} is not one of the solvers {', '.join(solvers)}")
    if not isinstance(t_span, (tuple, list)):
        t_span = (0.0, float(t_span))
    t0, t1 = float(t_span[0]), float(t_span[1])
    t_eval = torch.linspace(t0, t1, int(n_points), dtype=torch.float64)
    loaded = load_model(model)
    solutions: dict[str, Solution] = {}
    for s in solvers:
        opts: dict[str, Any] = {}
        if rtol is not None:
            opts["rtol"] = rtol
        if atol is not None:
            opts["atol"] = atol
        opts.update((solver_options or {}).get(s, {}))
        solutions[s] = simulate(loaded, (t0, t1), solver=s, t_eval=t_eval, params=params, **opts)
    common = [n for n in solutions[solvers[0]].names if all(n in sol.names for sol in solutions.values())]
    if names is not None:
        missing = [n for n in names if n not in common]
        if missing:
            raise NeuroplexError(f"compare: variable(s) {', '.join(missing)} not reported by every solver")
        common = list(names)
    if not common:
        raise NeuroplexError(f"compare: the solvers {', '.join(solvers)} report no variable in common")
    name = getattr(loaded, "name", str(model))
    out = Comparison(name, reference, common, solutions, floor=floor)
    ref = solutions[reference]
    for s in out.others:
        out.max_abs[s], out.max_rel[s] = {}, {}
        for n in common:
            a = solutions[s][n].detach().double().cpu().numpy()
            b = ref[n].detach().double().cpu().numpy()
            diff = np.abs(a - b)
            both_nan = np.isnan(a) & np.isnan(b)
            same_inf = np.isinf(a) & (a == b)
            diff = np.where(both_nan | same_inf, 0.0, diff)
            out.max_abs[s][n] = float(np.max(diff)) if diff.size else 0.0
            rel = diff / np.maximum(np.abs(b), floor)
            out.max_rel[s][n] = float(np.max(rel)) if rel.size else 0.0
    if plot is not None:
        out.plot(plot)
    return out


def parse_solver_options(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["torch.method=rosenbrock", "roadrunner.rtol=1e-10"]`` to ``{solver: {key: value}}``
    (values are read as int, float or bool where they look like one)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        solver, dot, option = key.partition(".")
        if not sep or not dot or not solver or not option:
            raise NeuroplexError(f"solver option {item!r}: expected SOLVER.OPTION=VALUE (e.g. torch.method=rosenbrock)")
        out.setdefault(solver, {})[option] = _value(value)
    return out


def _value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def write_json(data: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write JSON atomically (temp file + rename); numpy scalars are written as floats."""
    import json

    from .trainer import atomic_write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=2, allow_nan=True, default=float))
    return path
