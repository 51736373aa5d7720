"""Trainer stall check: train accuracy near chance for two epochs, and a rule's own reasons."""
from __future__ import annotations

import warnings

import pytest
import torch

from neuroplex.datasets import Dataset
from neuroplex.trainer import Trainer


class Frozen:
    """A rule that never learns: it predicts class 0 (about chance on balanced data)."""

    name = "frozen"

    def __init__(self, reasons=None):
        self.reasons = reasons

    def init(self, seed, device):
        pass

    def train_batch(self, x, y):
        return {}

    def evaluate(self, x, y):
        return {"accuracy": float((y == 0).float().mean())}

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


class Sane(Frozen):
    def evaluate(self, x, y):
        return {"accuracy": 0.9}


def balanced(k=4, n=200):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % k
    x = torch.randn(n, 3, generator=g)
    return Dataset("balanced", x[:160], y[:160], x[160:], y[160:], k)


def test_near_chance_for_two_epochs_is_stalled(capsys, monkeypatch):
    monkeypatch.setenv("NEUROPLEX_PROGRESS", "1")  # draw the bar although pytest's stderr is no terminal
    with pytest.warns(RuntimeWarning, match="epoch 2: the run looks stalled: train accuracy near chance") as rec:
        trainer = Trainer(Frozen(), balanced(), epochs=4, seed=0, plot=False)
        hist = trainer.fit()
    assert [row["stalled"] for row in hist] == [0.0, 1.0, 1.0, 1.0]
    assert len([w for w in rec if issubclass(w.category, RuntimeWarning)]) == 1  # once per run
    assert trainer.stalled == ["train accuracy near chance (0.25)"]
    assert "STALLED=train accuracy near chance" in capsys.readouterr().err


def test_rule_reasons_and_healthy_runs():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hist = Trainer(Sane(), balanced(), epochs=2, seed=0, progress=False, plot=False).fit()
    assert [row["stalled"] for row in hist] == [0.0, 0.0]

    class Pinned(Sane):
        def stall_reasons(self, metrics):
            return ["1 unit pinned"] if metrics["epoch"] >= 2 else []

    trainer = Trainer(Pinned(), balanced(), epochs=3, seed=0, progress=False, plot=False)
    with pytest.warns(RuntimeWarning, match="epoch 2: the run looks stalled: 1 unit pinned"):
        hist = trainer.fit()
    assert [row["stalled"] for row in hist] == [0.0, 1.0, 1.0]
    assert trainer.stall_reasons({"epoch": 1, "train_accuracy": 0.9}) == []


def test_no_stall_column_without_accuracy_or_reasons():
    class Bandit:
        name = "bandit"

        def init(self, seed, device):
            pass

        def train_epoch(self, env, epoch):
            return {"reward": 1.0}

        def evaluate(self, env):
            return {"mean_reward": 1.0}

        def state_dict(self):
            return {}

        def load_state_dict(self, state):
            pass

    hist = Trainer(Bandit(), [0.0, 1.0], epochs=2, progress=False, plot=False).fit()
    assert "stalled" not in hist[-1]
