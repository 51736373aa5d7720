"""Trainer loop: metrics files, checkpoints, exact resume, plot, with a toy delta rule."""
from __future__ import annotations

import json
import math

import pytest
import torch

from neuroplex.datasets import Dataset
from neuroplex.errors import NeuroplexError
from neuroplex.trainer import TIMING_KEYS, LearningRule, Trainer, load_checkpoint, start_run_dir


class DeltaRule:
    """Delta (LMS) rule on a linear model with SGD + momentum; adds torch-RNG noise to
    each update so that an inexact RNG restore would show up."""

    name = "delta"

    def __init__(self, n_in: int, n_out: int, lr: float = 0.05):
        self.n_in, self.n_out, self.lr = n_in, n_out, lr

    def init(self, seed, device):
        self.w = torch.randn(self.n_out, self.n_in, device=device) * 0.1
        self.opt = torch.optim.SGD([self.w], lr=self.lr, momentum=0.9)

    def train_batch(self, x, y):
        target = torch.nn.functional.one_hot(y, self.n_out).float()
        err = x @ self.w.T - target
        self.w.grad = err.T @ x / len(x) + 1e-3 * torch.randn_like(self.w)
        self.opt.step()
        return {"loss": float((err ** 2).mean())}

    def evaluate(self, x, y):
        return {"accuracy": float(((x @ self.w.T).argmax(1) == y).float().mean())}

    def epoch_metrics(self):
        return {"w_norm": float(self.w.norm())}

    def state_dict(self):
        return {"w": self.w.clone(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state):
        self.w.copy_(state["w"])
        self.opt.load_state_dict(state["opt"])


def toy_data(n=203, d=5, k=3):
    g = torch.Generator().manual_seed(1)
    centres = torch.randn(k, d, generator=g) * 3
    y = torch.randint(0, k, (n,), generator=g)
    x = centres[y] + torch.randn(n, d, generator=g)
    return Dataset("toy", x[:160], y[:160], x[160:], y[160:], k)


def _strip(history):
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in history]


def test_rule_satisfies_protocol():
    assert isinstance(DeltaRule(5, 3), LearningRule)


def test_files_metrics_and_learning(tmp_path):
    rule = DeltaRule(5, 3)
    hist = Trainer(rule, toy_data(), epochs=4, batch_size=16, seed=3, run_dir=tmp_path, progress=False).fit()
    assert [row["epoch"] for row in hist] == [1, 2, 3, 4]
    assert hist[-1]["test_accuracy"] > 0.8 and hist[-1]["train_accuracy"] > 0.8
    assert hist[-1]["loss"] < hist[0]["loss"]
    for name in ("metrics.csv", "metrics.json", "checkpoint.pt", "curves.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert json.loads((tmp_path / "metrics.json").read_text()) == hist
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert len(lines) == 5 and {"epoch", "loss", "seconds", "train_accuracy", "test_accuracy", "w_norm"} <= set(header)
    assert float(lines[-1].split(",")[header.index("loss")]) == hist[-1]["loss"]  # repr round-trips exactly
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert load_checkpoint(tmp_path)["epoch"] == 4
    assert not list(tmp_path.glob(".*tmp"))  # atomic writes leave no temp files


@pytest.mark.parametrize("stop_after", [1, 3])
def test_resume_is_bit_identical(tmp_path, stop_after):
    data = toy_data()
    full = DeltaRule(5, 3)
    ref = Trainer(full, data, epochs=5, batch_size=16, seed=7, run_dir=tmp_path / "full", progress=False, plot=False).fit()

    class Stop(Exception):
        pass

    def interrupt(trainer, epoch, metrics):
        if epoch == stop_after:
            raise Stop

    with pytest.raises(Stop):
        Trainer(DeltaRule(5, 3), data, epochs=5, batch_size=16, seed=7, run_dir=tmp_path / "cut",
                progress=False, plot=False, callbacks=[interrupt]).fit()
    # the interrupted process is gone: disturb every global RNG before resuming
    torch.manual_seed(12345)
    import random

    import numpy as np
    random.seed(1), np.random.seed(1)
    resumed = DeltaRule(5, 3)
    hist = Trainer(resumed, data, epochs=5, batch_size=16, seed=7, run_dir=tmp_path / "cut",
                   resume=True, progress=False, plot=False).fit()
    assert torch.equal(resumed.w, full.w)
    assert _strip(hist) == _strip(ref)
    assert _strip(json.loads((tmp_path / "cut" / "metrics.json").read_text())) == _strip(ref)


def test_resume_from_shorter_run_and_fresh_differs(tmp_path):
    data = toy_data()
    full = DeltaRule(5, 3)
    Trainer(full, data, epochs=4, batch_size=16, seed=2, run_dir=tmp_path / "a", progress=False, plot=False).fit()
    part = DeltaRule(5, 3)
    Trainer(part, data, epochs=2, batch_size=16, seed=2, run_dir=tmp_path / "b", progress=False, plot=False).fit()
    Trainer(part, data, epochs=4, batch_size=16, seed=2, run_dir=tmp_path / "b", resume=True, progress=False, plot=False).fit()
    assert torch.equal(part.w, full.w)
    # without resume the same directory restarts from scratch (and the noise makes seeds matter)
    other = DeltaRule(5, 3)
    Trainer(other, data, epochs=4, batch_size=16, seed=3, run_dir=tmp_path / "c", progress=False, plot=False).fit()
    assert not torch.equal(other.w, full.w)


def test_resume_checks_seed_and_needs_run_dir(tmp_path):
    data = toy_data()
    Trainer(DeltaRule(5, 3), data, epochs=1, seed=1, run_dir=tmp_path, progress=False, plot=False).fit()
    with pytest.raises(NeuroplexError, match="seed 1"):
        Trainer(DeltaRule(5, 3), data, epochs=2, seed=2, run_dir=tmp_path, resume=True, progress=False, plot=False).fit()
    with pytest.raises(NeuroplexError, match="run directory"):
        Trainer(DeltaRule(5, 3), data, epochs=1, resume=True)
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.raises(NeuroplexError, match="checkpoint.pt"):
        Trainer(DeltaRule(5, 3), data, epochs=2, seed=1, run_dir=tmp_path, resume=True, progress=False, plot=False).fit()


def test_environment_data_source():
    """A non-array data source goes to the rule's train_epoch / evaluate."""

    class Bandit:
        name = "bandit"

        def init(self, seed, device):
            self.q = torch.zeros(3)

        def train_epoch(self, env, epoch):
            for _ in range(50):
                a = int(torch.randint(0, 3, ()))
                self.q[a] += 0.1 * (env[a] + 0.1 * float(torch.randn(())) - self.q[a])
            return {"q_mean": float(self.q.mean())}

        def evaluate(self, env):
            return {"best_arm": float(self.q.argmax())}

        def state_dict(self):
            return {"q": self.q.clone()}

        def load_state_dict(self, s):
            self.q = s["q"].clone()

    hist = Trainer(Bandit(), [0.0, 1.0, 0.2], epochs=3, progress=False).fit()
    assert hist[-1]["best_arm"] == 1.0 and math.isfinite(hist[-1]["q_mean"])


def test_drop_last_and_batches():
    data = toy_data()
    t = Trainer(DeltaRule(5, 3), data, epochs=1, batch_size=50, drop_last=True, progress=False)
    sizes = [len(x) for x, _ in t.batches()]
    assert sizes == [50, 50, 50] and t.n_batches() == 3
    t2 = Trainer(DeltaRule(5, 3), data, epochs=1, batch_size=50, shuffle=False, progress=False)
    xs = torch.cat([x for x, _ in t2.batches()])
    assert torch.equal(xs, data.x_train)


def test_start_run_dir_writes_the_settings_and_refuses_a_used_folder(tmp_path):
    run = start_run_dir(tmp_path / "run", {"seed": 3}, resume=False)
    assert json.loads((run / "config.json").read_text()) == {"seed": 3}
    (run / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(NeuroplexError, match="already holds a run; pass --resume"):
        start_run_dir(run, {"seed": 3}, resume=False)
    assert start_run_dir(run, {"seed": 3}, resume=True) == run  # other settings: see tests/audit
