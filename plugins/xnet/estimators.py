"""scikit-learn estimators: :class:`XNetRegressor` and :class:`XNetClassifier` (paper section 2.2)."""
from __future__ import annotations

import re
import time
from typing import Any, Callable, Sequence

import numpy as np
import sympy
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import tree as T
from .abp import ABPConfig, Candidate
from .classify import (average_trees, discriminant_axes, inner_cv_accuracy, linear_proposals, pca,
                       pick_on_validation, stratified_bootstrap)
from .library import DEFAULT_LIBRARY
from .propose import propose
from .refit import lbfgs_refit, losses
from .search import SearchResult, run_search
from .tree import TreeSpec

DTYPE = torch.float64


def _symbols(names: Sequence[str]) -> list[sympy.Symbol]:
    """One distinct sympy symbol per input name: non-word characters become ``_``, a leading
    digit gets ``x_``, and a name that is then taken already gets ``_2``, ``_3``, ... (columns
    ``"a b"`` and ``"a-b"`` are ``a_b`` and ``a_b_2``, never one variable)."""
    out: list[sympy.Symbol] = []
    used: set[str] = set()
    for n in names:
        base = re.sub(r"\W", "_", str(n))
        base = base if base and not base[0].isdigit() else f"x_{base}"
        s, k = base, 2
        while s in used:
            s, k = f"{base}_{k}", k + 1
        used.add(s)
        out.append(sympy.Symbol(s))
    return out


def _holdout(y: np.ndarray, share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (fit, validation): ``share`` of each class held out at random (at least one
    sample, and at least one kept); no hold-out when a class has fewer than 4 samples."""
    counts = np.bincount(y)
    if share <= 0 or counts.min() < 4:
        return np.arange(len(y)), np.zeros(0, dtype=np.int64)
    val = []
    for c in range(len(counts)):
        idx = rng.permutation(np.nonzero(y == c)[0])
        val.append(idx[:min(max(1, int(round(share * len(idx)))), len(idx) - 1)])
    v = np.sort(np.concatenate(val))
    return np.setdiff1d(np.arange(len(y)), v), v


class _XNetBase(BaseEstimator):
    """Shared settings and export of the X-Net estimators."""

    def __init__(self, library: Sequence[str] = DEFAULT_LIBRARY, max_nodes: int = 15, depth: int = 6,
                 population: int = 32, steps_per_round: int = 60, max_rounds: int = 200,
                 time_budget: float | None = 60.0, refit_per_round: int = 48, parsimony: float = 0.01,
                 snap: bool = True, accept: float = 0.01, stall_limit: int = 20, k_alternate: int = 2,
                 random_state: int | None = None) -> None:
        self.library = library
        self.max_nodes = max_nodes
        self.depth = depth
        self.population = population
        self.steps_per_round = steps_per_round
        self.max_rounds = max_rounds
        self.time_budget = time_budget
        self.refit_per_round = refit_per_round
        self.parsimony = parsimony
        self.snap = snap
        self.accept = accept
        self.stall_limit = stall_limit
        self.k_alternate = k_alternate
        self.random_state = random_state

    def _config(self) -> ABPConfig:
        return ABPConfig(population=self.population, max_nodes=self.max_nodes,
                         steps_per_round=self.steps_per_round, accept=self.accept,
                         stall_limit=self.stall_limit, k_alternate=self.k_alternate)

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(check_random_state(self.random_state).randint(2**31 - 1))

    def _names(self, n: int) -> list[str]:
        names = getattr(self, "feature_names_in_", None)
        return [str(s) for s in names] if names is not None else [f"x{i + 1}" for i in range(n)]

    def _probe(self, X: np.ndarray, n: int = 256) -> torch.Tensor:
        """Random points of the training box (for :func:`search.sane`), from the estimator's seed."""
        rng = np.random.default_rng(check_random_state(self.random_state).randint(2**31 - 1) + 1)
        return torch.as_tensor(rng.uniform(X.min(0), X.max(0), (n, X.shape[1])))

    def _forward(self, x: np.ndarray) -> torch.Tensor:
        spec, c = self.spec_, self.candidate_
        return T.root_output(spec, torch.as_tensor(c.ops), torch.as_tensor(c.w), torch.as_tensor(c.b),
                             torch.as_tensor(np.asarray(x, dtype=np.float64)))

    def _tree_exprs(self) -> list[sympy.Expr]:
        check_is_fitted(self, "candidate_")
        syms = _symbols(self._names(self.n_features_in_))
        c = self.candidate_
        return [T.to_sympy(self.spec_, c.ops[g], c.w[g], c.b[g], syms) for g in range(c.ops.shape[0])]

    @property
    def n_nodes_(self) -> int:
        """Active neurons over all trees."""
        check_is_fitted(self, "candidate_")
        return self.candidate_.nodes

    @property
    def n_params_(self) -> int:
        """Learnable constants: a scale and a bias per neuron (none with ``constants=False``)."""
        return 2 * self.n_nodes_ if getattr(self, "constants", True) else 0

    def __getstate__(self) -> dict[str, Any]:
        # the tree spec holds the library's functions: rebuilt from the settings on unpickling
        state = dict(self.__dict__)
        state.pop("spec_", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "n_features_in_" in state:
            self.spec_ = TreeSpec(self.n_features_in_, self.library, self.depth)

    def _save_state(self) -> dict[str, Any]:
        c = self.candidate_
        return {"ops": c.ops.tolist(), "w": c.w.tolist(), "b": c.b.tolist(), "loss": c.loss,
                "n_features_in": int(self.n_features_in_),
                "feature_names_in": None if getattr(self, "feature_names_in_", None) is None
                else [str(s) for s in self.feature_names_in_]}

    def _load_state(self, st: dict[str, Any]) -> None:
        self.n_features_in_ = int(st["n_features_in"])
        if st.get("feature_names_in") is not None:
            self.feature_names_in_ = np.asarray(st["feature_names_in"], dtype=object)
        self.spec_ = TreeSpec(self.n_features_in_, self.library, self.depth)
        self.candidate_ = Candidate(np.asarray(st["ops"], dtype=np.int64), np.asarray(st["w"], dtype=np.float64),
                                    np.asarray(st["b"], dtype=np.float64), float(st["loss"]))


class XNetRegressor(RegressorMixin, _XNetBase):
    """Symbolic regression with one X-Net tree trained by Alternating Backpropagation.

    ``time_budget`` is in CPU seconds (``None``: only ``max_rounds`` bounds the run; a run is
    reproducible for a ``random_state`` when it stops on rounds or on an exact fit, not on time);
    it is checked inside rounds too (each ABP step and level, refit iteration, proposal tier), so
    a fit ends within about one such step of it, keeping the best candidate found so far.
    ``propose`` (ours, default on): before the first round a sparse regression over a term
    library proposes structures that enter the ABP populations (``propose.py``, docs/xnet.md).
    ``constants=False``: every neuron keeps ``w = 1, b = 0`` (the paper's fits "without
    introducing any parameters"); only the activations and the structure are learnt.
    """

    def __init__(self, library: Sequence[str] = DEFAULT_LIBRARY, max_nodes: int = 15, depth: int = 6,
                 population: int = 32, steps_per_round: int = 60, max_rounds: int = 200,
                 time_budget: float | None = 60.0, refit_per_round: int = 48, parsimony: float = 0.01,
                 snap: bool = True, accept: float = 0.01, stall_limit: int = 20, k_alternate: int = 2,
                 propose: bool = True, constants: bool = True, random_state: int | None = None) -> None:
        super().__init__(library=library, max_nodes=max_nodes, depth=depth, population=population,
                         steps_per_round=steps_per_round, max_rounds=max_rounds, time_budget=time_budget,
                         refit_per_round=refit_per_round, parsimony=parsimony, snap=snap, accept=accept,
                         stall_limit=stall_limit, k_alternate=k_alternate, random_state=random_state)
        self.propose = propose
        self.constants = constants

    def _config(self) -> ABPConfig:
        cfg = super()._config()
        cfg.constants = self.constants
        return cfg

    def fit(self, X: Any, y: Any) -> "XNetRegressor":
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        x = torch.as_tensor(X)
        yt = torch.as_tensor(y, dtype=DTYPE)
        var = float(yt.var(unbiased=False)) if yt.numel() > 1 else 0.0
        scale = var if var > 1e-12 else 1.0

        def loss_fn(roots: torch.Tensor) -> torch.Tensor:  # eq. 10, normalised by var(y)
            return ((roots[:, 0] - yt) ** 2).mean(-1) / scale

        def residual_fn(roots: torch.Tensor) -> torch.Tensor:  # loss = mean of its squares
            return (roots - yt) / scale**0.5

        self.spec_ = TreeSpec(X.shape[1], self.library, self.depth)
        t0 = time.process_time()
        seeds = (propose(X, y, self.spec_, sympy.symbols(f"x1:{X.shape[1] + 1}"), self.max_nodes,
                         plain=not self.constants,
                         deadline=None if self.time_budget is None else t0 + self.time_budget)
                 if self.propose and X.shape[0] >= 3 else [])
        budget = None if self.time_budget is None else max(self.time_budget - (time.process_time() - t0), 0.0)
        res: SearchResult = run_search(self.spec_, x, loss_fn, self._config(), self._rng(),
                                       max_rounds=self.max_rounds, time_budget=budget,
                                       refit_per_round=self.refit_per_round, parsimony=self.parsimony,
                                       snap_constants=self.snap, residual_fn=residual_fn,
                                       probe=self._probe(X), y_span=float(np.ptp(y)) or 1.0, proposals=seeds)
        self.candidate_ = res.best
        self.n_rounds_, self.fit_seconds_ = res.rounds, res.seconds
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "candidate_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self._forward(X)[0].numpy().copy()

    def sympy(self) -> sympy.Expr:
        """The formula in the input names (``x1..xk`` or the DataFrame's columns)."""
        return self._tree_exprs()[0]

    def text(self) -> str:
        return str(self.sympy())

    def latex(self) -> str:
        return sympy.latex(self.sympy())


class XNetClassifier(ClassifierMixin, _XNetBase):
    """Classification with one X-Net tree per class and cross-entropy (paper section 2.2).

    Inputs are standardised before the trees see them (``standardize``) and optionally projected
    on their ``n_components`` leading principal axes (``projection="pca"``, the paper's PCA
    option for MNIST) or, with ``projection="lda"`` (ours), on the leading discriminant axes of
    a linear discriminant analysis (``classify.discriminant_axes``; ``n_components`` defaults to
    ``n_classes - 1`` there);
    :meth:`sympy` maps the formulas back to the raw inputs. Ours (docs/xnet.md,
    "Classification"): ``propose`` starts the populations from linear class trees of a logistic
    regression (``classify.linear_proposals``), and with ``validation > 0`` that share of the
    training data (stratified) is held out to choose among the search's best candidates
    (accuracy, then cross-entropy), whose constants are then refitted on all the training data.
    With ``select_cv`` folds (default 5) an inner cross-validation chooses among the searched
    trees, the logistic start and the LDA class trees (``choice_`` names the one kept);
    ``label_smoothing`` applies to every cross-entropy of the fit.
    """

    def __init__(self, library: Sequence[str] = ("+", "-", "*", "/", "sin", "cos", "exp", "square", "x"),
                 max_nodes: int = 9, depth: int = 5, population: int = 16, steps_per_round: int = 40,
                 max_rounds: int = 30, time_budget: float | None = 60.0, refit_per_round: int = 8,
                 parsimony: float = 0.001, snap: bool = False, accept: float = 0.01, stall_limit: int = 20,
                 k_alternate: int = 2, standardize: bool = True, n_components: int | None = None,
                 propose: bool = True, validation: float = 0.0, label_smoothing: float = 0.02,
                 select_cv: int = 5, projection: str = "pca", bagging: int = 1,
                 random_state: int | None = None) -> None:
        super().__init__(library=library, max_nodes=max_nodes, depth=depth, population=population,
                         steps_per_round=steps_per_round, max_rounds=max_rounds, time_budget=time_budget,
                         refit_per_round=refit_per_round, parsimony=parsimony, snap=snap, accept=accept,
                         stall_limit=stall_limit, k_alternate=k_alternate, random_state=random_state)
        self.label_smoothing = label_smoothing
        self.select_cv = select_cv
        self.standardize = standardize
        self.n_components = n_components
        self.projection = projection
        self.bagging = bagging
        self.propose = propose
        self.validation = validation

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        Z = (X - self.mean_) / self.std_
        return Z @ self.components_.T if self.components_ is not None else Z

    def _tree_inputs(self) -> int:
        return self.components_.shape[0] if getattr(self, "components_", None) is not None else self.n_features_in_

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "n_features_in_" in state:
            self.spec_ = TreeSpec(self._tree_inputs(), self.library, getattr(self, "tree_depth_", self.depth))

    def fit(self, X: Any, y: Any) -> "XNetClassifier":
        t0 = time.process_time()
        if self.projection not in ("pca", "lda"):
            raise ValueError(f"XNetClassifier: projection must be 'pca' or 'lda', got {self.projection!r}")
        if self.bagging < 1 or (self.bagging > 1 and self.validation > 0):
            raise ValueError(f"XNetClassifier: bagging must be >= 1 and excludes validation > 0, got bagging "
                             f"{self.bagging}, validation {self.validation}")
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, yi = np.unique(y, return_inverse=True)
        if self.standardize:
            self.mean_, std = X.mean(0), X.std(0)
            self.std_ = np.where(std > 1e-12, std, 1.0)
        else:
            self.mean_, self.std_ = np.zeros(X.shape[1]), np.ones(X.shape[1])
        self.components_ = None
        if self.projection == "lda":
            if len(self.classes_) < 2:
                raise ValueError("XNetClassifier: projection='lda' needs at least two classes")
            n = self.n_components if self.n_components is not None else min(len(self.classes_) - 1, X.shape[1])
            self.components_ = discriminant_axes((X - self.mean_) / self.std_, yi, n)
        elif self.n_components is not None and self.n_components < X.shape[1]:
            self.components_ = pca((X - self.mean_) / self.std_, self.n_components)
        Z = self._scaled(X)
        k = len(self.classes_)
        rng = self._rng()
        fit_idx, val_idx = _holdout(yi, self.validation, rng)

        def ce(labels: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
            def loss_fn(roots: torch.Tensor) -> torch.Tensor:  # cross-entropy of the trees' softmax
                logits = roots.permute(0, 2, 1)  # [M, N, C]
                return torch.nn.functional.cross_entropy(
                    logits.reshape(-1, k), labels.repeat(roots.shape[0]),
                    reduction="none", label_smoothing=self.label_smoothing).reshape(roots.shape[0], -1).mean(1)
            return loss_fn

        self.spec_ = TreeSpec(Z.shape[1], self.library, self.depth)
        if self.bagging > 1:
            return self._fit_bagged(Z, yi, ce, rng, t0)
        y_fit = yi[fit_idx]
        budget = None if self.time_budget is None else 0.8 * max(self.time_budget - (time.process_time() - t0), 0.0)
        res, seeds = self._search(Z[fit_idx], y_fit, ce, rng, budget)
        best, self.choice_ = res.best, "searched"
        deadline = None if self.time_budget is None else t0 + self.time_budget
        if seeds and not len(val_idx) and self.select_cv > 1 and np.bincount(y_fit).min() >= self.select_cv:
            best, self.choice_ = self._linear_or_searched(seeds[0], best, Z[fit_idx], y_fit, ce, rng, deadline)
        if len(val_idx):
            best = pick_on_validation(self.spec_, res.front, torch.as_tensor(Z[val_idx]), yi[val_idx],
                                      ce(torch.as_tensor(yi[val_idx], dtype=torch.long)), k)
            x_all, loss_all = torch.as_tensor(Z), ce(torch.as_tensor(yi, dtype=torch.long))
            best = Candidate(best.ops, best.w, best.b,
                             float(losses(self.spec_, x_all, loss_all, k, best.ops, best.w, best.b)[0]))
            best = lbfgs_refit(self.spec_, x_all, loss_all, [best], group=k,
                               deadline=None if self.time_budget is None else t0 + self.time_budget)[0]
        self.candidate_, self.tree_depth_ = best, self.spec_.depth
        self.n_rounds_, self.fit_seconds_ = res.rounds, res.seconds
        return self

    def _search(self, Z: np.ndarray, y: np.ndarray, ce: Callable, rng: np.random.Generator,
                budget: float | None) -> tuple[SearchResult, list]:
        """The search (from the linear proposals when ``propose``) on ``(Z, y)``; its result and
        the proposals."""
        k = len(self.classes_)
        seeds = (linear_proposals(Z, y, k, self.spec_, self.max_nodes)
                 if self.propose and k >= 2 and len(np.unique(y)) == k else [])
        res = run_search(self.spec_, torch.as_tensor(Z), ce(torch.as_tensor(y, dtype=torch.long)), self._config(),
                         rng, group=k, max_rounds=self.max_rounds, time_budget=budget,
                         refit_per_round=self.refit_per_round, parsimony=self.parsimony,
                         snap_constants=self.snap, exact_loss=0.0, proposals=seeds)
        return res, seeds

    def _fit_bagged(self, Z: np.ndarray, y: np.ndarray, ce: Callable, rng: np.random.Generator,
                    t0: float) -> "XNetClassifier":
        """Bagging (ours): ``bagging`` searches, each on a stratified bootstrap resample of the
        training data with an equal share of the budget left; the final class trees average
        their best trees' logits (``classify.average_trees``), with no refit and no inner
        choice (``choice_ = "bagged"``)."""
        parts, rounds, secs = [], 0, 0.0
        for i in range(self.bagging):
            left = (None if self.time_budget is None
                    else max(self.time_budget - (time.process_time() - t0), 0.0) / (self.bagging - i))
            idx = stratified_bootstrap(y, rng)
            res = self._search(Z[idx], y[idx], ce, rng, left)[0]
            parts.append(res.best)
            rounds, secs = rounds + res.rounds, secs + res.seconds
        self.spec_, joined = average_trees(self.spec_, parts)
        k = len(self.classes_)
        joined.loss = float(losses(self.spec_, torch.as_tensor(Z), ce(torch.as_tensor(y, dtype=torch.long)), k,
                                   joined.ops, joined.w, joined.b)[0])
        self.candidate_, self.choice_, self.tree_depth_ = joined, "bagged", self.spec_.depth
        self.n_rounds_, self.fit_seconds_ = rounds, secs
        return self

    def _linear_or_searched(self, linear: tuple[np.ndarray, np.ndarray, np.ndarray], searched: Candidate,
                            Z: np.ndarray, y: np.ndarray, ce: Callable, rng: np.random.Generator,
                            deadline: float | None) -> tuple[Candidate, str]:
        """The choice (trees and ``"searched"``, ``"logistic"`` or ``"lda"``) among the search's best trees and two linear starts by their accuracy in
        an inner ``select_cv``-fold cross-validation (``classify.inner_cv_accuracy``): the
        linear discriminant analysis's class trees (only when all inputs fit the node budget;
        recomputed on each inner split), then the full logistic start refitted on the
        cross-entropy, win ties; the searched trees must be strictly better than both. The
        search's trees when the logistic start is among them already; the logistic start when
        the cross-validation runs out of time."""
        k = searched.ops.shape[0]
        x, loss = torch.as_tensor(Z), ce(torch.as_tensor(y, dtype=torch.long))

        def scored(t: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Candidate:
            return Candidate(t[0], t[1], t[2], float(losses(self.spec_, x, loss, k, *t)[0]))

        lin = scored(linear)
        if lin.key == searched.key:
            return searched, "searched"
        lin = lbfgs_refit(self.spec_, x, loss, [lin], group=k, deadline=deadline)[0]
        cands, recompute = [searched, lin], {}
        if (2 * Z.shape[1] - 1) <= self.max_nodes:

            def lda(Zp: np.ndarray, yp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
                return linear_proposals(Zp, yp, k, self.spec_, self.max_nodes, method="lda")[0]

            cands.append(scored(lda(Z, y)))
            recompute = {2: lambda Zp, yp: Candidate(*lda(Zp, yp), 0.0)}
        acc = inner_cv_accuracy(self.spec_, cands, Z, y, k,
                                lambda labels: ce(torch.as_tensor(labels, dtype=torch.long)), self.select_cv,
                                int(rng.integers(2**31 - 1)), deadline, recompute)
        if acc is None:
            return lin, "logistic"
        best = max(range(len(cands)), key=lambda i: (acc[i], i))  # ties: LDA, then logistic
        return cands[best], ("searched", "logistic", "lda")[best]

    def decision_function(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "candidate_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        out = self._forward(self._scaled(X)).numpy().T.copy()  # [N, C]
        return out[:, 1] - out[:, 0] if out.shape[1] == 2 else out

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "candidate_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return torch.softmax(self._forward(self._scaled(X)).T, dim=1).numpy().copy()

    def predict(self, X: Any) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def sympy(self) -> list[sympy.Expr]:
        """One formula (logit) per class, in the raw input names."""
        check_is_fitted(self, "candidate_")
        raw = _symbols(self._names(self.n_features_in_))
        z = [(s - float(m)) / float(d) for s, m, d in zip(raw, self.mean_, self.std_)]
        if self.components_ is not None:
            z = [sum(float(c) * zi for c, zi in zip(row, z)) for row in self.components_]
        syms = sympy.symbols(f"_z1:{len(z) + 1}")
        c = self.candidate_
        return [T.to_sympy(self.spec_, c.ops[g], c.w[g], c.b[g], syms).xreplace(dict(zip(syms, z)))
                for g in range(c.ops.shape[0])]

    def _save_state(self) -> dict[str, Any]:
        st = super()._save_state()
        st.update(classes=self.classes_.tolist(), mean=self.mean_.tolist(), std=self.std_.tolist(),
                  tree_depth=self.spec_.depth,
                  components=None if self.components_ is None else self.components_.tolist())
        return st

    def _load_state(self, st: dict[str, Any]) -> None:
        super()._load_state(st)
        self.tree_depth_ = int(st.get("tree_depth", self.depth))
        self.classes_ = np.asarray(st["classes"])
        self.mean_, self.std_ = np.asarray(st["mean"]), np.asarray(st["std"])
        self.components_ = None if st.get("components") is None else np.asarray(st["components"])
        self.spec_ = TreeSpec(self._tree_inputs(), self.library, self.tree_depth_)
