"""Classification helpers (ours; the paper's section 2.2 gives only one tree per class and
cross-entropy): linear proposals for the class trees, an input projection (PCA, the paper's
MNIST option), the choice among the search's best candidates on an inner validation split, and
the inner cross-validation that lets a searched tree replace the linear start only when it
classifies held-out training data better.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np
import sympy
import torch
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from . import tree as T
from .abp import Candidate
from .convert import from_sympy
from .refit import lbfgs_refit, losses
from .tree import EMPTY, TreeSpec


def pca(X: np.ndarray, n_components: int) -> np.ndarray:
    """The ``n_components`` leading principal axes [n_components, d] of the (centred) rows of ``X``,
    each with its largest entry positive (a deterministic sign)."""
    _, _, vt = np.linalg.svd(X - X.mean(0), full_matrices=False)
    comp = vt[:n_components]
    return comp * np.sign(comp[np.arange(comp.shape[0]), np.abs(comp).argmax(1)])[:, None]


def discriminant_axes(X: np.ndarray, y: np.ndarray, n_components: int) -> np.ndarray:
    """The ``n_components`` leading discriminant axes [n_components, d] of a linear discriminant
    analysis of ``(X, y)`` (ours: the supervised counterpart of :func:`pca`): ``X @ axes.T`` are
    the canonical variates, in units of the pooled within-class spread, each axis with its
    largest entry positive. At most ``n_classes - 1`` and ``d`` axes exist."""
    n_max = min(len(np.unique(y)) - 1, X.shape[1])
    if not 1 <= n_components <= n_max:
        raise ValueError(f"discriminant axes: n_components must be in 1..{n_max} for {len(np.unique(y))} classes "
                         f"and {X.shape[1]} inputs, got {n_components}")
    scal = LinearDiscriminantAnalysis(solver="svd").fit(X, y).scalings_[:, :n_components].T
    if scal.shape[0] < n_components:
        raise ValueError(f"discriminant axes: the data span only {scal.shape[0]} of the {n_components} axes asked for")
    return scal * np.sign(scal[np.arange(scal.shape[0]), np.abs(scal).argmax(1)])[:, None]


def linear_proposals(X: np.ndarray, y: np.ndarray, n_classes: int, spec: TreeSpec, max_nodes: int,
                     C: float = 100.0, method: str = "logistic") -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Initial class trees ``([G, S] ops, w, b)`` from a multinomial logistic regression on ``X``
    (``method="lda"``: the discriminant functions of a linear discriminant analysis instead):
    per class the logit ``sum_j a_j x_j + c`` over its ``m`` largest coefficients, for every ``m``
    from the most the node budget holds (``2m - 1 <= max_nodes``) down to one input; the search
    refits the constants on the cross-entropy and Alternating Backpropagation grows the trees."""
    model = (LinearDiscriminantAnalysis() if method == "lda" else LogisticRegression(C=C, max_iter=2000)).fit(X, y)
    coef, icpt = model.coef_, model.intercept_
    if n_classes == 2:  # sklearn's one logit: class 0 gets its negative half, class 1 the positive
        coef, icpt = np.stack([-coef[0] / 2, coef[0] / 2]), np.array([-icpt[0] / 2, icpt[0] / 2])
    syms = sympy.symbols(f"x1:{X.shape[1] + 1}")
    top = min(X.shape[1], (max_nodes + 1) // 2)
    out = []
    for m in range(top, 0, -1):
        trees = []
        for c in range(n_classes):
            keep = np.argsort(-np.abs(coef[c]))[:m]
            expr = sum((float(coef[c, j]) * syms[j] for j in keep), sympy.Float(float(icpt[c])))
            t = from_sympy(spec, expr, syms, max_nodes)
            if t is None:
                break
            trees.append(t)
        if len(trees) == n_classes:
            out.append(tuple(np.stack([t[i] for t in trees]) for i in range(3)))
    return out


def stratified_bootstrap(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of a bootstrap resample of ``y`` drawn within each class (every class keeps its
    count), sorted."""
    return np.sort(np.concatenate([rng.choice(np.nonzero(y == c)[0], int((y == c).sum()))
                                   for c in np.unique(y)]))


def average_trees(spec: TreeSpec, parts: Sequence[Candidate]) -> tuple[TreeSpec, Candidate]:
    """One X-Net tree per class whose output is the mean of the ``parts``' class trees (ours,
    for bagging): the trees hang under a balanced binary tree of ``+`` neurons (``w = 1,
    b = 0``; the root's scale ``1 / len(parts)``), so the result is an X-Net of depth
    ``spec.depth + ceil(log2(len(parts)))``; returns its spec and the joined trees."""
    names = [a.name for a in spec.binary]
    if "+" not in names:
        raise ValueError("averaging X-Net trees needs '+' in the library")
    depth = spec.depth + int(np.ceil(np.log2(len(parts))))
    out = TreeSpec(spec.n_vars, spec.library, depth)
    plus = out.first_binary + names.index("+")
    g = parts[0].ops.shape[0]
    ops = np.full((g, out.slots), EMPTY, dtype=np.int64)
    w, b = np.ones((g, out.slots)), np.zeros((g, out.slots))

    def place(i: int, chunk: Sequence[Candidate]) -> None:
        if len(chunk) == 1:  # level k of the part's heap -> level k below node i
            for k in range(spec.depth):
                src, dst = T.level_slice(k), slice((i + 1) * 2**k - 1, (i + 2) * 2**k - 1)
                ops[:, dst], w[:, dst], b[:, dst] = chunk[0].ops[:, src], chunk[0].w[:, src], chunk[0].b[:, src]
            return
        ops[:, i] = plus
        half = (len(chunk) + 1) // 2
        place(2 * i + 1, chunk[:half])
        place(2 * i + 2, chunk[half:])

    place(0, parts)
    w[:, 0] /= len(parts)  # with one part its root's scale, unchanged
    return out, Candidate(ops, w, b, float("nan"))


def pick_on_validation(spec: TreeSpec, cands: Sequence[Candidate], x_val: torch.Tensor, y_val: np.ndarray,
                       loss_fn: Callable[[torch.Tensor], torch.Tensor], group: int) -> Candidate:
    """Of the search's best candidates, the one with the highest accuracy on a held-out part of
    the training data (ties: lower cross-entropy ``loss_fn`` there, then fewer neurons)."""
    ops = np.concatenate([c.ops for c in cands])
    w, b = np.concatenate([c.w for c in cands]), np.concatenate([c.b for c in cands])
    roots = T.root_output(spec, torch.as_tensor(ops), torch.as_tensor(w), torch.as_tensor(b), x_val)
    roots = roots.reshape(len(cands), group, -1)
    acc = (roots.argmax(1).numpy() == y_val[None, :]).mean(1)
    ce = torch.nan_to_num(loss_fn(roots), nan=float("inf")).numpy()
    best = min(range(len(cands)), key=lambda i: (-acc[i], ce[i], cands[i].nodes))
    return cands[best]


def inner_cv_accuracy(spec: TreeSpec, cands: Sequence[Candidate], Z: np.ndarray, y: np.ndarray, group: int,
                      loss_for: Callable[[np.ndarray], Callable[[torch.Tensor], torch.Tensor]], folds: int,
                      seed: int, deadline: float | None = None,
                      recompute: dict[int, Callable[[np.ndarray, np.ndarray], Candidate]] | None = None
                      ) -> np.ndarray | None:
    """Stratified ``folds``-fold cross-validation inside the training data ``(Z, y)``: on each
    split every candidate's constants are refitted (L-BFGS from its own, on ``loss_for(labels)``;
    candidate ``i`` in ``recompute`` instead by ``recompute[i](Z_part, y_part)``) on the other
    folds and it classifies the held-out fold. Returns each candidate's held-out accuracy over
    all samples, or ``None`` when ``time.process_time()`` passed ``deadline`` before the last
    split was scored."""
    recompute = recompute or {}
    ops = np.concatenate([c.ops for c in cands])
    correct = np.zeros(len(cands))
    for tr, va in StratifiedKFold(folds, shuffle=True, random_state=seed).split(Z, y):
        x_tr, lf = torch.as_tensor(Z[tr]), loss_for(y[tr])
        lo = losses(spec, x_tr, lf, group, ops, np.concatenate([c.w for c in cands]),
                    np.concatenate([c.b for c in cands])).numpy()
        start = [Candidate(c.ops, c.w, c.b, float(v)) for c, v in zip(cands, lo)]
        idx = [i for i in range(len(cands)) if i not in recompute]
        fitted = dict(zip(idx, lbfgs_refit(spec, x_tr, lf, [start[i] for i in idx], group=group, deadline=deadline)))
        fitted.update({i: f(Z[tr], y[tr]) for i, f in recompute.items()})
        fitted = [fitted[i] for i in range(len(cands))]
        if deadline is not None and time.process_time() >= deadline:
            return None
        roots = T.root_output(spec, torch.as_tensor(np.concatenate([c.ops for c in fitted])),
                              torch.as_tensor(np.concatenate([c.w for c in fitted])),
                              torch.as_tensor(np.concatenate([c.b for c in fitted])), torch.as_tensor(Z[va]))
        correct += (roots.reshape(len(cands), group, -1).argmax(1).numpy() == y[va][None, :]).sum(1)
    return correct / len(y)
