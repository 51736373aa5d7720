"""Alternating Backpropagation (paper section 4) over a population of X-Net trees.

One iteration ``t`` on the whole population (a torch batch of trees):

* forward (4.1) and the loss of each individual (MSE for regression, eq. 10; cross-entropy
  over a group of trees for classification, section 2.2);
* if ``t % k != 0``: a gradient step on every node's constants ``w, b`` (4.2), with gradients
  truncated to ``[g_min, g_max]`` in magnitude (4.5 (2));
* else: the gradients ``dL/dE_i`` of every node output, the updated outputs
  ``E_i,new = E_i - eta * dL/dE_i`` (4.3), and the neuron-type selection: every library function
  (binary on the updated children, unary on either child, a variable, and growth of a leaf)
  is fitted (best scale and bias, closed form) to ``E_i,new``; the best change of each tree is
  applied when it lowers that node's error by more than ``accept`` (share of the target's
  variance), through the substitution rules of 4.4 (Fig. 4) so the tree stays valid;
* an individual whose loss has not dropped for ``stall_limit`` iterations gets a random type
  change at a random node (4.6, threshold 20);
* the step sizes follow eq. 29, ``eta = c * tanh(exp(-|L[-2] - L[-1]| / L[-2]))`` per individual
  (the loss change taken relative to the loss, ours, so ``c`` does not depend on the data scale).

Every structure met is kept in a hall of fame with its best loss; the caller refits the best
ones (``refit.py``). Restarts with fresh random trees (sizes growing round by round) make the
search cheap to repeat.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from . import tree as T
from .tree import EMPTY, TreeSpec

LossFn = Callable[[torch.Tensor], torch.Tensor]  # roots [M, G, N] -> loss [M]


@dataclass
class ABPConfig:
    """Settings of Alternating Backpropagation (defaults are ours where the paper gives none)."""

    population: int = 32
    max_nodes: int = 15
    steps_per_round: int = 60
    k_alternate: int = 2          # every k-th iteration updates outputs and types (4.2)
    lr_const: float = 0.05        # c of eq. 29 for the constants
    lr_output: float = 1.0        # c of eq. 29 for the node outputs
    accept: float = 0.01          # acceptance threshold of a type change (4.3)
    stall_limit: int = 20         # perturbation threshold (4.6)
    g_max: float = 1e3            # gradient truncation (4.5)
    g_min: float = 0.0
    init_size_max: int = 3        # first round's largest initial tree; +2 per round
    constants: bool = True        # False: every w = 1, b = 0 (the paper's "without constants")


@dataclass
class Candidate:
    """A structure found by the search with constants and its loss."""

    ops: np.ndarray   # [G, S]
    w: np.ndarray
    b: np.ndarray
    loss: float

    @property
    def key(self) -> bytes:
        return self.ops.tobytes()

    @property
    def nodes(self) -> int:
        return int(T.n_nodes(self.ops).sum())


def eta(c: float, prev: torch.Tensor, cur: torch.Tensor) -> torch.Tensor:
    """Eq. 29: step size from the change of the loss between the last two iterations."""
    rel = (prev - cur).abs() / (prev.abs() + 1e-30)
    rel = torch.nan_to_num(rel, nan=1.0, posinf=1.0)
    return c * torch.tanh(torch.exp(-rel))


def _truncate(g: torch.Tensor, g_min: float, g_max: float) -> torch.Tensor:
    """Section 4.5 (2): gradient magnitudes kept in [g_min, g_max]."""
    g = torch.nan_to_num(g, nan=0.0, posinf=g_max, neginf=-g_max)
    mag = g.abs().clamp(max=g_max)
    if g_min > 0:
        mag = torch.where(g != 0, mag.clamp(min=g_min), mag)
    return torch.sign(g) * mag


class ABPSearch:
    """Population search by Alternating Backpropagation for one data set.

    ``group`` trees form one individual (1 for regression, one per class for classification);
    ``loss_fn`` maps roots [M, group, N] to the loss of each individual [M].
    """

    def __init__(self, spec: TreeSpec, x: torch.Tensor, loss_fn: LossFn, cfg: ABPConfig,
                 rng: np.random.Generator, group: int = 1) -> None:
        self.spec, self.x, self.loss_fn, self.cfg, self.rng, self.group = spec, x, loss_fn, cfg, rng, group
        self.hof: dict[bytes, Candidate] = {}
        self.round = 0
        ar = np.array([spec.arity(c) for c in range(spec.n_ops)] + [-1])
        self._arity = torch.as_tensor(ar)  # index -1 -> empty
        nb, nu, k = len(spec.binary), len(spec.unary), spec.n_vars
        self._off = dict(bin=0, una=nb, unb=nb + nu, binx=nb + 2 * nu, var=nb + 2 * nu + nb * k)
        self._n_cand = nb + 2 * nu + nb * k + k

    # ------------------------------------------------------------ population
    @property
    def node_cap(self) -> int:
        """This round's node budget: small shapes first (grows by 2 a round up to ``max_nodes``)."""
        return min(self.cfg.init_size_max + 2 + 2 * self.round, self.cfg.max_nodes)

    def init_population(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fresh random trees; the largest initial size grows with the round (small shapes first)."""
        cfg, s = self.cfg, self.spec.slots
        top = min(cfg.init_size_max + 2 * self.round, cfg.max_nodes)
        p = cfg.population * self.group
        ops = np.full((p, s), EMPTY, dtype=np.int64)
        w, b = np.ones((p, s)), np.zeros((p, s))
        for i in range(p):
            ops[i], w[i], b[i] = T.random_tree(self.spec, int(self.rng.integers(1, top + 1)), self.rng)
        return ops, w, b

    def run_round(self, state=None, deadline: float | None = None) -> None:
        """``steps_per_round`` iterations of Alternating Backpropagation from ``state`` (or fresh
        trees); fewer once ``time.process_time()`` passes ``deadline`` (at least one)."""
        cfg, g = self.cfg, self.group
        ops, w, b = state if state is not None else self.init_population()
        m = ops.shape[0] // g
        wt = torch.as_tensor(w, dtype=self.x.dtype)
        bt = torch.as_tensor(b, dtype=self.x.dtype)
        mom = [torch.zeros_like(wt), torch.zeros_like(bt)]
        sq = [torch.zeros_like(wt), torch.zeros_like(bt)]
        n_const = 0
        prev = torch.full((m,), float("inf"), dtype=self.x.dtype)
        best = prev.clone()
        stall = np.zeros(m, dtype=np.int64)
        n = self.x.shape[0]
        for t in range(cfg.steps_per_round):
            if t and deadline is not None and time.process_time() >= deadline:
                break
            opt = torch.as_tensor(ops)
            wt.requires_grad_(True)
            bt.requires_grad_(True)
            levels, _ = T.forward(self.spec, opt, wt, bt, self.x)
            roots = levels[0][:, 0].reshape(m, g, n)
            loss = self.loss_fn(roots)
            loss = torch.nan_to_num(loss, nan=float("inf"))
            self._record(ops, wt.detach().numpy(), bt.detach().numpy(), loss.detach())
            finite = torch.isfinite(loss)
            total = torch.where(finite, loss, torch.zeros_like(loss)).sum()
            lv = loss.detach()
            step = eta(1.0, prev, lv)
            if t % cfg.k_alternate != 0 and cfg.constants:
                gw, gb = torch.autograd.grad(total, [wt, bt], allow_unused=True)
                n_const += 1
                with torch.no_grad():
                    ind = step.repeat_interleave(g)[:, None] * cfg.lr_const
                    for j, (p_, gr) in enumerate(((wt, gw), (bt, gb))):
                        gr = _truncate(gr if gr is not None else torch.zeros_like(p_), cfg.g_min, cfg.g_max)
                        mom[j].mul_(0.9).add_(0.1 * gr)
                        sq[j].mul_(0.999).add_(0.001 * gr * gr)
                        mh = mom[j] / (1 - 0.9**n_const)
                        vh = sq[j] / (1 - 0.999**n_const)
                        p_.sub_(ind * mh / (vh.sqrt() + 1e-12))
                wt, bt = wt.detach(), bt.detach()
            else:
                live = [i for i, lv_ in enumerate(levels) if lv_.requires_grad]
                got = torch.autograd.grad(total, [levels[i] for i in live], allow_unused=True)
                deltas = [None] * len(levels)
                for i, gr in zip(live, got):
                    deltas[i] = gr
                wt, bt = wt.detach(), bt.detach()
                perturb = stall >= cfg.stall_limit
                stall[perturb] = 0
                w_np, b_np = wt.numpy().copy(), bt.numpy().copy()
                self._select_types(ops, w_np, b_np, [lv.detach() for lv in levels], deltas,
                                   step.repeat_interleave(g) * cfg.lr_output * n, np.repeat(perturb, g), deadline)
                wt = torch.as_tensor(w_np)
                bt = torch.as_tensor(b_np)
            improved = (lv < best * (1 - 1e-4)).numpy()
            stall = np.where(improved, 0, stall + 1)
            best = torch.minimum(best, lv)
            prev = lv
        self.round += 1

    # ------------------------------------------------------------ hall of fame
    def _record(self, ops, w, b, loss) -> None:
        g = self.group
        for i, lo in enumerate(loss.tolist()):
            if not math.isfinite(lo):
                continue
            o = ops[i * g:(i + 1) * g]
            key = o.tobytes()
            c = self.hof.get(key)
            if c is None or lo < c.loss:
                self.hof[key] = Candidate(o.copy(), w[i * g:(i + 1) * g].copy(), b[i * g:(i + 1) * g].copy(), lo)

    def best_candidates(self, k: int, exclude: set[bytes] = frozenset(), per_size: int = 2) -> list[Candidate]:
        """The ``k`` best structures by loss (ties: fewer nodes) not in ``exclude``, plus the
        ``per_size`` best of every tree size (constants before refit rank structures poorly)."""
        pool = [c for key, c in self.hof.items() if key not in exclude]
        pool.sort(key=lambda c: (c.loss, c.nodes))
        picked, seen, count = [], set(), {}
        for c in pool:
            if len(picked) < k or count.get(c.nodes, 0) < per_size:
                if c.key not in seen:
                    picked.append(c)
                    seen.add(c.key)
                    count[c.nodes] = count.get(c.nodes, 0) + 1
        if len(self.hof) > 20000:  # keep the hall of fame bounded
            keep = sorted(self.hof.values(), key=lambda c: c.loss)[:5000]
            self.hof = {c.key: c for c in keep}
        return picked

    # ------------------------------------------------------------ type selection (4.3, 4.4)
    def _select_types(self, ops: np.ndarray, w: np.ndarray, b: np.ndarray, levels, deltas,
                      step: torch.Tensor, perturb: np.ndarray, deadline: float | None = None) -> None:
        """Type changes (4.3-4.6) from the best changes over all levels, or over the levels
        seen before ``deadline`` passed (the root level always)."""
        spec, cfg = self.spec, self.cfg
        p = ops.shape[0]
        size = torch.as_tensor(T.n_nodes(ops))
        best_gain = torch.full((p,), -float("inf"), dtype=self.x.dtype)
        best_node = torch.zeros(p, dtype=torch.long)
        best_cand = torch.zeros(p, dtype=torch.long)
        best_w = torch.zeros(p, dtype=self.x.dtype)
        best_b = torch.zeros(p, dtype=self.x.dtype)
        rand_score = torch.full((p,), -1.0, dtype=self.x.dtype)
        rand_node = torch.zeros(p, dtype=torch.long)
        rand_cand = torch.zeros(p, dtype=torch.long)
        rand_w = torch.ones(p, dtype=self.x.dtype)
        rand_b = torch.zeros(p, dtype=self.x.dtype)
        gen = torch.Generator().manual_seed(int(self.rng.integers(2**31)))
        st = step[:, None, None]
        opt = torch.as_tensor(ops)
        for d in range(spec.depth):
            if d and deadline is not None and time.process_time() >= deadline:
                break
            sl = T.level_slice(d)
            nl = 2**d
            op_full = opt[:, sl].reshape(-1)
            act = (op_full >= 0).nonzero().squeeze(1)
            if act.numel() == 0:
                continue
            op = op_full[act]
            tree_of = act // nl
            dl = deltas[d] if deltas[d] is not None else torch.zeros_like(levels[d])
            o = levels[d].reshape(-1, levels[d].shape[-1])[act]
            sa = st[tree_of, 0]
            target = o - sa * _truncate(dl.reshape(-1, o.shape[-1])[act], cfg.g_min, cfg.g_max)
            if d + 1 < spec.depth:
                dc = deltas[d + 1] if deltas[d + 1] is not None else torch.zeros_like(levels[d + 1])
                cnew = levels[d + 1] - st * _truncate(dc, cfg.g_min, cfg.g_max)
                pair = cnew.reshape(p * nl, 2, -1)
                lnew, rnew = pair[act, 0], pair[act, 1]
            else:
                lnew = rnew = torch.zeros_like(o)
            ar = self._arity[op]
            a_in = torch.where((ar == 0)[:, None], o, lnew)
            cands, valid, cur = self._candidates(a_in, rnew, op, ar, size[tree_of], d)
            err, cw, cb, var_t = _affine_fit(cands, target) if cfg.constants else _plain_fit(cands, target)
            err_cur = torch.gather(err, 1, cur.clamp_min(0)[:, None]).squeeze(1)
            gain = (err_cur[:, None] - err) / (var_t[:, None] + 1e-12)
            is_cur = torch.arange(self._n_cand)[None, :] == cur[:, None]
            ok = valid & ~is_cur & torch.isfinite(err)
            rs = torch.rand(ok.shape, generator=gen, dtype=self.x.dtype)
            rs = torch.where(ok, rs, torch.full_like(rs, -1.0))
            gain = torch.where(ok, gain, torch.full_like(gain, -float("inf")))
            full = (p * nl, self._n_cand)

            def spread(v: torch.Tensor, fill: float) -> torch.Tensor:
                return torch.full(full, fill, dtype=v.dtype).index_put((act,), v).reshape(p, -1)

            gf, rf, wf, bf = spread(gain, -float("inf")), spread(rs, -1.0), spread(cw, 0.0), spread(cb, 0.0)
            def keep_max(scores: torch.Tensor, kept: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
                """(score, node, candidate, w, b) of the best entry of ``scores`` where it beats ``kept``."""
                top, arg = scores.max(dim=1)
                found = (top, arg // self._n_cand + sl.start, arg % self._n_cand,
                         wf.gather(1, arg[:, None]).squeeze(1), bf.gather(1, arg[:, None]).squeeze(1))
                better = top > kept[0]
                return tuple(torch.where(better, new, old) for new, old in zip(found, kept))

            best_gain, best_node, best_cand, best_w, best_b = keep_max(gf, (best_gain, best_node, best_cand, best_w, best_b))
            # 4.6: a uniformly random valid change (random scores, keep the max)
            rand_score, rand_node, rand_cand, rand_w, rand_b = keep_max(
                rf, (rand_score, rand_node, rand_cand, rand_w, rand_b))
        for i in range(p):
            if perturb[i] and rand_score[i] >= 0:
                node, cand, nw, nb_ = int(rand_node[i]), int(rand_cand[i]), float(rand_w[i]), float(rand_b[i])
            elif best_gain[i] > cfg.accept:
                node, cand, nw, nb_ = int(best_node[i]), int(best_cand[i]), float(best_w[i]), float(best_b[i])
            else:
                continue
            if not (math.isfinite(nw) and math.isfinite(nb_)):
                continue
            self.apply_change(ops[i], w[i], b[i], node, cand)
            w[i, node], b[i, node] = nw, nb_

    def _candidates(self, a_in, b_in, op, ar, size, d):
        """All type changes of active nodes [A, N] of one level (4.3), their validity under the
        substitution rules and node budget (4.4), and the index of each node's current type."""
        spec = self.spec
        n, m = a_in.shape
        nb, nu, k = len(spec.binary), len(spec.unary), spec.n_vars
        xs = self.x.T.reshape(1, k, m).expand(n, k, m)
        parts = [a.torch_fn(a_in, b_in).unsqueeze(1) for a in spec.binary]
        parts += [a.torch_fn(a_in).unsqueeze(1) for a in spec.unary]
        parts += [a.torch_fn(b_in).unsqueeze(1) for a in spec.unary]
        parts += [a.torch_fn(a_in.unsqueeze(1), xs) for a in spec.binary]
        parts.append(xs)
        cands = torch.cat(parts, dim=1)
        is_bin, is_un, is_leaf = (ar == 2), (ar == 1), (ar == 0)
        room, cap = d + 1 < spec.depth, self.node_cap
        grow1 = is_leaf & room & (size + 1 <= cap)
        grow2 = is_leaf & room & (size + 2 <= cap)
        valid = torch.cat([
            is_bin[:, None].expand(n, nb),
            (is_un | is_bin | grow1)[:, None].expand(n, nu),
            is_bin[:, None].expand(n, nu),
            ((is_un & (size + 1 <= cap)) | grow2)[:, None].expand(n, nb * k),
            torch.ones(n, k, dtype=torch.bool),
        ], dim=1)
        off = self._off
        cur = torch.where(is_bin, op - spec.first_binary + off["bin"],
                          torch.where(is_un, op - spec.first_unary + off["una"], op + off["var"]))
        return cands, valid, cur

    def apply_change(self, ops: np.ndarray, w: np.ndarray, b: np.ndarray, i: int, cand: int) -> None:
        """Apply candidate ``cand`` at node ``i`` with the substitution rules of 4.4 (Fig. 4)."""
        spec, off = self.spec, self._off
        k = spec.n_vars
        arity = spec.arity(int(ops[i]))
        li, ri = 2 * i + 1, 2 * i + 2

        def leaf_down() -> None:  # x -> f(x, ...): the leaf moves to the left child (Fig. 4g, h)
            ops[li], w[li], b[li] = ops[i], w[i], b[i]

        if cand < off["una"]:                      # binary -> binary (rule 3)
            ops[i] = spec.first_binary + cand
        elif cand < off["unb"]:                    # -> unary on the left child (rules 1, 4a, 6a)
            if arity == 2:
                T.clear_subtree(spec, ops, w, b, ri)
            elif arity == 0:
                leaf_down()
            ops[i] = spec.first_unary + cand - off["una"]
        elif cand < off["binx"]:                   # binary -> unary on the right child (rule 4b)
            T.move_subtree(spec, ops, w, b, ri, li)
            ops[i] = spec.first_unary + cand - off["unb"]
        elif cand < off["var"]:                    # -> binary with a new variable leaf (rules 2, 6b)
            j = cand - off["binx"]
            fi, var = j // k, j % k
            if arity == 0:
                leaf_down()
            ops[ri], w[ri], b[ri] = var, 1.0, 0.0
            ops[i] = spec.first_binary + fi
        else:                                      # -> a variable: the subtree goes (rule 5)
            if arity >= 1:
                T.clear_subtree(spec, ops, w, b, li)
                if ri < len(ops):
                    T.clear_subtree(spec, ops, w, b, ri)
            ops[i] = cand - off["var"]


def _plain_fit(c: torch.Tensor, t: torch.Tensor):
    """As :func:`_affine_fit` with ``w = 1, b = 0`` fixed (no constants): (error, w, b, var(t))."""
    err = ((c - t[:, None, :]) ** 2).mean(-1)
    err = torch.where(torch.isfinite(err), err, torch.full_like(err, float("inf")))
    var_t = ((t - t.mean(-1, keepdim=True)) ** 2).mean(-1)
    return err, torch.ones_like(err), torch.zeros_like(err), var_t


def _affine_fit(c: torch.Tensor, t: torch.Tensor):
    """Closed-form best ``w * c + b`` for target ``t`` [A, N] per candidate c [A, K, N]:
    (error, w, b, var(t))."""
    tt = t[:, None, :]
    cm, tm = c.mean(-1, keepdim=True), tt.mean(-1, keepdim=True)
    cc, tc = c - cm, tt - tm
    var_c = (cc * cc).mean(-1)
    cov = (cc * tc).mean(-1)
    var_t = (tc * tc).mean(-1)
    flat = var_c < 1e-12
    w = torch.where(flat, torch.zeros_like(cov), cov / torch.where(flat, torch.ones_like(var_c), var_c))
    b = tm.squeeze(-1) - w * cm.squeeze(-1)
    err = (var_t - w * cov).clamp_min(0)
    err = torch.where(torch.isfinite(err) & torch.isfinite(w), err, torch.full_like(err, float("inf")))
    return err, w, b, var_t[:, 0]
