"""The MNIST reader scales every integer pixel type and refuses labels and shapes it cannot use.

Before: an ``.npz`` whose pixels were int64 (0..255) came back unscaled (inputs up to 255
instead of 1); negative labels were accepted (``n_classes`` from the maximum only), fractional
labels were truncated to integers, train and test images of different sizes were flattened to
different feature counts, and ``load_dataset("iris", split="fixed")`` ignored the split it was
given (iris is always a random split) and `--split-seed` on digits was ignored. All silently."""
from __future__ import annotations

import numpy as np
import pytest

from neuroplex.datasets import DataError, load_dataset, mnist


def _npz(tmp_path, **override):
    rng = np.random.RandomState(0)
    arrays = {"x_train": rng.randint(0, 256, (6, 2, 3)).astype(np.uint8), "y_train": rng.randint(0, 4, 6),
              "x_test": rng.randint(0, 256, (3, 2, 3)).astype(np.uint8), "y_test": rng.randint(0, 4, 3)}
    arrays.update(override)
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return path, arrays


@pytest.mark.parametrize("dtype", [np.int16, np.int64, np.uint16])
def test_integer_pixels_of_any_dtype_are_scaled_like_uint8(tmp_path, dtype):
    path, arrays = _npz(tmp_path)
    want = mnist(path).x_train.numpy()
    path, _ = _npz(tmp_path, x_train=arrays["x_train"].astype(dtype), x_test=arrays["x_test"].astype(dtype))
    np.testing.assert_array_equal(mnist(path).x_train.numpy(), want)
    assert want.max() <= 1.0


def test_float_pixels_are_kept(tmp_path):
    x = np.full((6, 2, 3), 0.25, dtype=np.float32)
    path, _ = _npz(tmp_path, x_train=x, x_test=x[:3])
    assert float(mnist(path).x_train.max()) == 0.25


@pytest.mark.parametrize("override, problem", [
    ({"y_train": np.array([0, 1, -1, 2, 3, 0])}, "labels must be whole numbers >= 0"),
    ({"y_test": np.array([0.5, 1.0, 2.0])}, "labels must be whole numbers >= 0"),
    ({"x_test": np.zeros((3, 3, 3), dtype=np.uint8)}, "differ in shape"),
    ({"x_train": np.full((6, 2, 3), 300, dtype=np.int64)}, "pixels must lie in 0..255"),
])
def test_unusable_arrays_are_refused_naming_the_file(tmp_path, override, problem):
    path, _ = _npz(tmp_path, **override)
    with pytest.raises(DataError, match=problem) as err:
        mnist(path)
    assert str(path) in str(err.value)


def test_a_split_a_data_set_does_not_offer_is_refused(tmp_path):
    assert load_dataset("iris", split="random").name == "iris"
    assert load_dataset("digits", split="random").name == "digits-random"
    with pytest.raises(DataError, match="iris: split must be 'random'"):
        load_dataset("iris", split="fixed")
    with pytest.raises(DataError, match="digits-random: split must be 'random'"):
        load_dataset("digits-random", split="fixed")
    path, _ = _npz(tmp_path)
    with pytest.raises(DataError, match="split must be 'fixed'"):
        load_dataset(f"mnist:{path}", split="random")


@pytest.mark.parametrize("command", [["eqprop", "train", "--dimensions", "64 10 10"], ["wuxing", "train"]])
def test_a_split_seed_for_a_fixed_split_is_refused(tmp_path, command):
    # before: `--dataset digits --split-seed 3` trained on the fixed split, the seed ignored
    from click.testing import CliRunner

    from neuroplex.cli import build_cli

    res = CliRunner().invoke(build_cli(), [*command, "--split-seed", "3", "--epochs", "1", "--log-dir",
                                           str(tmp_path / "run"), "--no-progress"])
    assert res.exit_code != 0 and "--split-seed 3: digits has a fixed train / test split" in res.output
    assert not (tmp_path / "run").exists()
