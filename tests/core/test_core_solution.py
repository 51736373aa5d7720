"""Solution: array/table views, atomic CSV/npz writing, plotting and failure reports."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from neuroplex import Solution, SpikeTrain, Status
from neuroplex.errors import SolverError


def trajectory(batch: int = 2, status=None) -> Solution:
    ts = torch.linspace(0.0, 1.0, 5, dtype=torch.float64)
    a = torch.stack([torch.exp(-(b + 1) * ts) for b in range(batch)])
    ys = torch.stack([a, 1 - a], dim=-1)
    status = torch.zeros(batch, dtype=torch.long) if status is None else torch.tensor(status)
    spikes = SpikeTrain(torch.tensor([1, 0, 0]), torch.tensor([0, 1, 0]), torch.tensor([0.7, 0.5, 0.2], dtype=torch.float64),
                        names=["a-low", "b-high"])
    return Solution(ys=ys, ts=ts, names=["a", "b"], status=status, stats={"n_steps": torch.tensor([4] * batch)},
                    spikes=spikes, solver="toy", method="exact", meta={"model": "decay"})


def test_access_and_to_numpy():
    sol = trajectory()
    assert sol.batch_size == 2 and sol.ok and sol.failed_samples() == []
    assert torch.equal(sol["b"], sol.ys[..., 1])
    arrays = sol.to_numpy()
    assert list(arrays) == ["t", "a", "b"]
    np.testing.assert_allclose(arrays["a"][1], np.exp(-2 * np.linspace(0, 1, 5)))
    with pytest.raises(KeyError, match="no variable 'c'; have a, b"):
        sol["c"]


def test_to_pandas_long_form():
    pd = pytest.importorskip("pandas")
    df = trajectory().to_pandas()
    assert isinstance(df, pd.DataFrame) and list(df.columns) == ["sample", "t", "a", "b"]
    assert len(df) == 10 and df["sample"].tolist() == [0] * 5 + [1] * 5
    np.testing.assert_allclose(df[df["sample"] == 1]["a"], np.exp(-2 * np.linspace(0, 1, 5)))
    one = trajectory().to_pandas(sample=1)
    assert one["sample"].unique().tolist() == [1] and len(one) == 5


def test_equilibrium_table():
    sol = Solution(ys=torch.tensor([[1.0, 2.0], [3.0, 4.0]]), ts=None, names=["x", "y"], status=torch.tensor([0, 4]))
    assert sol.to_pandas()["y"].tolist() == [2.0, 4.0]
    with pytest.raises(SolverError, match="no trajectory to plot"):
        sol.plot()


def test_save_csv_round_trip(tmp_path: Path):
    path = trajectory().save(tmp_path / "sub" / "run.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "sample,t,a,b" and len(lines) == 11 and lines[6].startswith("1,0,1,0")
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(data[5:, 2], trajectory()["a"][1].numpy())  # %.17g is exact
    only = trajectory().save(tmp_path / "one.csv", sample=1)
    assert np.loadtxt(only, delimiter=",", skiprows=1)[:, 0].tolist() == [1.0] * 5
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["one.csv", "run.csv", "sub"]
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600


def test_save_npz_with_status_and_spikes(tmp_path: Path):
    sol = trajectory(status=[0, int(Status.MAX_STEPS)])
    with np.load(sol.save(tmp_path / "run.npz")) as z:
        assert set(z.files) == {"t", "a", "b", "status", "spike_sample", "spike_index", "spike_time"}
        assert z["status"].tolist() == [0, 1] and z["a"].shape == (2, 5)
        np.testing.assert_array_equal(z["spike_time"], [0.7, 0.5, 0.2])


def test_save_is_atomic_when_writing_fails(tmp_path: Path, monkeypatch):
    path = tmp_path / "run.csv"
    path.write_text("previous results\n")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savetxt", boom)
    with pytest.raises(OSError, match="disk full"):
        trajectory().save(path)
    assert path.read_text() == "previous results\n"
    assert os.listdir(tmp_path) == ["run.csv"]  # no temp file left behind


def test_plot_writes_png_with_raster(tmp_path: Path):
    fig = trajectory().plot(path=tmp_path / "plots" / "run.png", sample=0)
    png = tmp_path / "plots" / "run.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert len(fig.axes) == 2  # trajectories + spike raster
    assert fig.axes[0].get_title() == "decay (toy exact)"
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["a", "b"]
    assert os.listdir(png.parent) == ["run.png"]
    assert png.stat().st_mode & 0o044  # readable by others, like any saved file


def test_plot_into_given_axes():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    out = trajectory().plot(names=["b"], ax=ax, sample=1, title="only b")
    assert out is fig and ax.get_title() == "only b" and len(ax.get_lines()) == 1
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), 1 - np.exp(-2 * np.linspace(0, 1, 5)))
    plt.close(fig)


def test_raise_on_failure_names_failed_samples():
    sol = trajectory(batch=3, status=[0, int(Status.NONFINITE), int(Status.DT_MIN)])
    assert not sol.ok and sol.failed_samples() == [1, 2]
    with pytest.raises(SolverError, match=r"^toy: 2 of 3 sample\(s\) failed: 1 \(nonfinite\), 2 \(dt min\)$"):
        sol.raise_on_failure()
    many = Solution(ys=torch.zeros(12, 2, 1), ts=torch.zeros(2), names=["x"], status=torch.full((12,), 4))
    with pytest.raises(SolverError, match=r"12 of 12 .*9 \(not converged\) and 2 more$"):
        many.raise_on_failure()
    assert trajectory().raise_on_failure().ok


def test_spike_train_per_sample_sorted():
    train = trajectory().spikes
    idx, t = train.for_sample(0)
    assert len(train) == 3 and t.tolist() == [0.2, 0.5] and idx.tolist() == [0, 1]
    assert len(SpikeTrain.empty()) == 0
