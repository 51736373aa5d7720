"""A resume continues the run it was started as, epoch means weigh every sample once, and a
non-finite metric marks the run stalled; an epoch that would train on no batch is refused.

Before: ``neuroplex eqprop train --resume`` (and ``Trainer(resume=True)``) with another
``--batch-size``, ``--split-seed`` or ``--normalize`` went on silently with the new data and
overwrote ``config.json``, so the run claimed one split while its earlier epochs had trained on
another (test samples among them). And the epoch's training metrics were the plain mean of the
batch means, so a short last batch weighed as much as a full one."""
from __future__ import annotations

import json

import pytest
import torch

from neuroplex.datasets import Dataset
from neuroplex.errors import NeuroplexError
from neuroplex.trainer import Trainer, start_run_dir


class MeanRule:
    """Returns the batch's mean input as a metric; learns nothing."""

    name = "mean"

    def init(self, seed, device):
        self.w = torch.zeros(1)

    def train_batch(self, x, y):
        return {"x_mean": float(x.mean())}

    def evaluate(self, x, y):
        return {"accuracy": 1.0}

    def state_dict(self):
        return {"w": self.w.clone()}

    def load_state_dict(self, state):
        self.w = state["w"].clone()


def _data(n=5):
    x = torch.arange(n, dtype=torch.float32).reshape(n, 1) ** 2
    y = torch.zeros(n, dtype=torch.int64)
    return Dataset("toy", x, y, x[:2], y[:2], n_classes=2)


def test_epoch_mean_weighs_each_sample_once():
    data = _data(5)  # batches of 4 and 1: plain mean of batch means would differ
    history = Trainer(MeanRule(), data, epochs=1, batch_size=4, shuffle=False, progress=False, plot=False).fit()
    assert history[0]["x_mean"] == pytest.approx(float(data.x_train.mean()))


def test_trainer_refuses_a_resume_with_other_settings(tmp_path):
    cfg = {"batch_size": 4, "split_seed": 0, "epochs": 1}
    Trainer(MeanRule(), _data(), epochs=1, batch_size=4, run_dir=tmp_path, config=cfg, progress=False, plot=False).fit()
    with pytest.raises(NeuroplexError, match="split_seed=0 \\(now 3\\)"):
        Trainer(MeanRule(), _data(), epochs=2, batch_size=4, run_dir=tmp_path, resume=True,
                config={**cfg, "split_seed": 3, "epochs": 2}, progress=False, plot=False).fit()
    history = Trainer(MeanRule(), _data(), epochs=2, batch_size=4, run_dir=tmp_path, resume=True,
                      config={**cfg, "epochs": 2}, progress=False, plot=False).fit()
    assert [row["epoch"] for row in history] == [1, 2]


def test_start_run_dir_keeps_the_config_of_a_run_it_refuses_to_resume(tmp_path):
    settings = {"dataset": "iris", "normalize": "zscore", "batch_size": 10, "epochs": 1, "lr": (0.1, 0.05)}
    start_run_dir(tmp_path, settings, resume=False)
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(NeuroplexError, match="normalize='zscore' \\(now 'none'\\)"):
        start_run_dir(tmp_path, {**settings, "normalize": "none"}, resume=True)
    assert json.loads((tmp_path / "config.json").read_text())["normalize"] == "zscore"
    start_run_dir(tmp_path, {**settings, "epochs": 3}, resume=True)  # a longer run is a resume
    assert json.loads((tmp_path / "config.json").read_text())["epochs"] == 3


class OverflowRule(MeanRule):
    """Reports an infinite weight norm, as a diverged run does."""

    def epoch_metrics(self):
        return {"w_norm": float("inf")}


def test_a_non_finite_metric_marks_the_epoch_stalled():
    # before: an overflowed weight norm (or a NaN loss) passed as an ordinary epoch
    trainer = Trainer(OverflowRule(), _data(), epochs=1, batch_size=4, progress=False, plot=False)
    with pytest.warns(RuntimeWarning, match="non-finite w_norm"):
        history = trainer.fit()
    assert history[0]["stalled"] == 1.0 and trainer.stalled == ["non-finite w_norm"]


@pytest.mark.parametrize("n, drop_last", [(3, True), (0, False)])
def test_an_epoch_without_a_batch_is_refused(n, drop_last):
    # before: 3 samples with batch_size 4 and drop_last (or an empty training split) ran "epochs"
    # that trained nothing and reported them like any other
    data = _data(5)
    data = Dataset("toy", data.x_train[:n], data.y_train[:n], data.x_test, data.y_test, n_classes=2)
    with pytest.raises(NeuroplexError, match="make no batch of 4"):
        Trainer(MeanRule(), data, epochs=1, batch_size=4, drop_last=drop_last, progress=False, plot=False).fit()
