"""Data sets: digits splits, iris, the MNIST IDX / npz reader and its errors, tasks plugin."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from neuroplex.datasets import DataError, digits, iris, load_dataset, mnist, read_idx, write_idx
from neuroplex.host import get_task


def test_digits_fixed_split_is_first_1437_last_360():
    from sklearn.datasets import load_digits

    d = digits()
    raw = load_digits()
    assert d.x_train.shape == (1437, 64) and d.x_test.shape == (360, 64) and d.n_classes == 10
    assert np.allclose(d.x_train.numpy(), raw.data[:1437] / 16) and np.allclose(d.x_test.numpy(), raw.data[1437:] / 16)
    assert torch.equal(d.y_test, torch.as_tensor(raw.target[1437:]))
    assert float(d.x_train.max()) == 1.0 and float(d.x_train.min()) == 0.0


def test_digits_random_split_and_zscore():
    from sklearn.datasets import load_digits

    r = load_dataset("digits-random", seed=0)
    perm = np.random.RandomState(0).permutation(1797)
    assert torch.equal(r.y_train, torch.as_tensor(load_digits().target[perm[:1437]]))
    assert not torch.equal(r.y_train, digits().y_train)
    z = digits(normalize="zscore")
    nonconst = z.x_train.std(0) > 0
    assert torch.allclose(z.x_train.mean(0), torch.zeros(64), atol=1e-5)
    assert torch.allclose(z.x_train.std(0, unbiased=False)[nonconst], torch.ones(int(nonconst.sum())), atol=1e-4)
    assert abs(float(z.x_test.mean())) > 1e-3  # test split uses the train statistics
    with pytest.raises(DataError, match="normalize"):
        digits(normalize="minmax")
    with pytest.raises(DataError, match="unknown data set"):
        load_dataset("cifar")


def test_iris():
    d = iris(seed=1)
    assert d.x_train.shape == (120, 4) and d.x_test.shape == (30, 4) and d.n_classes == 3


def _fake_mnist(rng, n):
    x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, size=n, dtype=np.uint8)
    return x, y


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_folder(tmp_path, gz):
    rng = np.random.default_rng(0)
    xtr, ytr = _fake_mnist(rng, 30)
    xte, yte = _fake_mnist(rng, 12)
    sfx = ".gz" if gz else ""
    write_idx(tmp_path / f"train-images-idx3-ubyte{sfx}", xtr)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{sfx}", ytr)
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{sfx}", xte)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{sfx}", yte)
    if gz:
        assert (tmp_path / "t10k-labels-idx1-ubyte.gz").read_bytes()[:2] == b"\x1f\x8b"
    d = load_dataset(f"mnist:{tmp_path}", normalize="none")
    assert d.x_train.shape == (30, 784) and d.x_test.shape == (12, 784)
    assert np.allclose(d.x_train.numpy(), xtr.reshape(30, -1) / 255.0)
    assert torch.equal(d.y_test, torch.as_tensor(yte, dtype=torch.int64))
    assert np.array_equal(read_idx(tmp_path / f"train-images-idx3-ubyte{sfx}"), xtr)


def test_mnist_npz_and_task(tmp_path):
    rng = np.random.default_rng(1)
    xtr, ytr = _fake_mnist(rng, 20)
    xte, yte = _fake_mnist(rng, 5)
    np.savez(tmp_path / "m.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    d = get_task("mnist")(tmp_path / "m.npz")
    assert d.x_train.shape == (20, 784) and float(d.x_train.max()) <= 1.0
    assert get_task("digits")(split="random").name == "digits-random"
    assert get_task("iris")().n_classes == 3


def test_mnist_bad_files_name_the_file(tmp_path):
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(b"not an idx file at all")
    with pytest.raises(DataError, match="train-images-idx3-ubyte: not an IDX file"):
        read_idx(bad)
    trunc = tmp_path / "short.idx"
    trunc.write_bytes(bytes([0, 0, 8, 1]) + (100).to_bytes(4, "big") + b"\x00" * 10)
    with pytest.raises(DataError, match="short.idx: IDX header promises"):
        read_idx(trunc)
    badgz = tmp_path / "x.gz"
    badgz.write_bytes(gzip.compress(b"abc")[:8])
    with pytest.raises(DataError, match="x.gz"):
        read_idx(badgz)
    with pytest.raises(DataError, match="train-images-idx3-ubyte: not an IDX"):
        mnist(tmp_path)  # the bad file is found first and named
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no train-images-idx3-ubyte or train-images-idx3-ubyte.gz"):
        mnist(empty)
    with pytest.raises(DataError, match="no such file"):
        mnist(tmp_path / "missing")
    np.savez(tmp_path / "partial.npz", x_train=np.zeros((2, 4)))
    with pytest.raises(DataError, match="partial.npz: npz lacks"):
        mnist(tmp_path / "partial.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match="junk.npz"):
        mnist(tmp_path / "junk.npz")
