"""``neuroplex eqprop train``: files, exact --resume, errors, the MNIST path on a generated file."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from neuroplex.cli import build_cli
from neuroplex.datasets import write_idx
from neuroplex.trainer import TIMING_KEYS


def _run(args):
    return CliRunner().invoke(build_cli(), ["eqprop", "train", "--no-progress", *args])


def _metrics(path):
    rows = json.loads((path / "metrics.json").read_text())
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]


def _tiny_mnist(folder, n_train=60, n_test=20, gz=True):
    rng = np.random.default_rng(0)
    protos = rng.integers(0, 256, size=(10, 28, 28))
    def make(n):
        y = rng.integers(0, 10, size=n)
        x = np.clip(protos[y] + rng.normal(0, 40, size=(n, 28, 28)), 0, 255).astype(np.uint8)
        return x, y.astype(np.uint8)
    sfx = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x, y = make(n)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{sfx}", x)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{sfx}", y)


def test_train_resume_is_exact(tmp_path):
    common = ["--dataset", "mnist:" + str(tmp_path / "mnist"), "--dimensions", "784 16 10", "--seed", "3",
              "--batch-size", "10"]
    (tmp_path / "mnist").mkdir()
    _tiny_mnist(tmp_path / "mnist")
    full = _run([*common, "--epochs", "3", "--log-dir", str(tmp_path / "full")])
    assert full.exit_code == 0, full.output
    assert "test accuracy" in full.output
    part = _run([*common, "--epochs", "1", "--log-dir", str(tmp_path / "part")])
    assert part.exit_code == 0, part.output
    again = _run([*common, "--epochs", "3", "--log-dir", str(tmp_path / "part")])
    assert again.exit_code != 0 and "--resume" in again.output  # refuses to overwrite a run
    resumed = _run([*common, "--epochs", "3", "--log-dir", str(tmp_path / "part"), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert _metrics(tmp_path / "part") == _metrics(tmp_path / "full")
    a = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=False)["rule"]["params"]
    b = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)["rule"]["params"]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    rows = _metrics(tmp_path / "full")
    assert 0.0 <= rows[-1]["train_accuracy"] <= 1.0 and rows[-1]["free_iterations"] > 0
    for name in ("metrics.csv", "curves.png", "config.json"):
        assert (tmp_path / "full" / name).exists()
    cfg = json.loads((tmp_path / "full" / "config.json").read_text())
    assert cfg["energy"] == "restr_hopfield" and cfg["nonlinearity"] == "hard_sigmoid"


def test_resume_with_other_settings_is_refused(tmp_path):
    (tmp_path / "m").mkdir()
    _tiny_mnist(tmp_path / "m", gz=False)
    common = ["--dataset", f"mnist:{tmp_path / 'm'}", "--dimensions", "784,8,10", "--log-dir", str(tmp_path / "r")]
    assert _run([*common, "--epochs", "1"]).exit_code == 0
    res = _run([*common, "--epochs", "2", "--resume", "--beta", "0.9"])
    assert res.exit_code == 1 and "beta=1.0" in res.output


@pytest.mark.parametrize("args,message", [
    (["--dimensions", "10 5 10"], "do not fit digits"),
    (["--dimensions", "64 x 10"], "--dimensions: expected numbers"),
    (["--dataset", "mnist:/nonexistent/folder"], "no such file"),
    (["--learning-rate", "0.1 0.1 0.1"], "3 learning rates for 2"),
    (["--beta", "0"], "beta must be > 0"),
])
def test_errors_are_one_line(tmp_path, args, message):
    res = _run(["--epochs", "1", "--log-dir", str(tmp_path / "x"), *args])
    assert res.exit_code == 1
    assert message in res.output and "Traceback" not in res.output


def test_help_lists_every_reference_option():
    res = CliRunner().invoke(build_cli(), ["eqprop", "train", "--help"])
    for opt in ("--batch-size", "--c-energy", "--dimensions", "--energy", "--epochs", "--fast-ff-init / --no-fast-ff-init",
                "--learning-rate", "--log-dir", "--nonlinearity", "--optimizer", "--seed", "--beta", "--beta-sign",
                "--dataset", "--normalize", "--device", "--resume", "--free-steps", "--nudged-steps", "--step-size"):
        assert opt in res.output, opt
    for choice in ("leaky_relu", "hard_sigmoid", "cond_gaussian", "adagrad", "centered"):
        assert choice in res.output
