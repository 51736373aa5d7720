"""Classification data sets for learning rules: digits, iris, MNIST (IDX or npz).

``load_dataset(spec)`` with ``spec`` one of

* ``"digits"``: scikit-learn's bundled 8x8 digits (1797 images, no download), pixels / 16
  in [0, 1]. **Fixed split**: the first 1437 images train, the last 360 test (no shuffle;
  the last 360 are harder than a random 360). ``split="random"`` (or the spec
  ``"digits-random"``) permutes with ``numpy.random.RandomState(seed).permutation`` and
  keeps the same 1437 / 360 cut.
* ``"iris"``: scikit-learn's iris (150 x 4); random split (``RandomState(seed)``
  permutation) 120 train / 30 test; raw centimetre features (use ``normalize="zscore"``).
* ``"mnist:PATH"``: PATH is a directory holding the four standard IDX files
  (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
  ``t10k-labels-idx1-ubyte``, each raw or ``.gz``) or an ``.npz`` file with ``x_train``,
  ``y_train``, ``x_test``, ``y_test``. Images are flattened, pixels / 255.

Input normalisation is explicit: ``normalize="none"`` (default) or ``"zscore"`` (per
feature, with the **training** split's mean and standard deviation, applied to both splits).
"""
from __future__ import annotations

import gzip
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import NeuroplexError


class DataError(NeuroplexError):
    """A data set could not be read (missing or malformed file) or an option is invalid."""


@dataclass
class Dataset:
    """A classification data set as tensors: ``x_*`` float32 ``(n, d)``, ``y_*`` int64 ``(n,)``."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    def to(self, device: Any) -> "Dataset":
        return replace(self, x_train=self.x_train.to(device), y_train=self.y_train.to(device),
                       x_test=self.x_test.to(device), y_test=self.y_test.to(device))


NORMALIZE = ("none", "zscore")
SPLITS = ("fixed", "random")
DIGITS_TRAIN = 1437


def _make(name: str, x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray,
          normalize: str, n_classes: int | None = None, **meta: Any) -> Dataset:
    if normalize not in NORMALIZE:
        raise DataError(f"normalize must be one of {', '.join(NORMALIZE)}, not {normalize!r}")
    x_tr = x_tr.reshape(len(x_tr), -1).astype(np.float64)
    x_te = x_te.reshape(len(x_te), -1).astype(np.float64)
    if normalize == "zscore":
        mean, std = x_tr.mean(0), x_tr.std(0)
        std[std == 0] = 1.0
        x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
    n_classes = int(n_classes or max(int(y_tr.max(initial=0)), int(y_te.max(initial=0))) + 1)
    return Dataset(name, torch.as_tensor(x_tr, dtype=torch.float32), torch.as_tensor(y_tr, dtype=torch.int64),
                   torch.as_tensor(x_te, dtype=torch.float32), torch.as_tensor(y_te, dtype=torch.int64),
                   n_classes, {"normalize": normalize, **meta})


def digits(*, split: str = "fixed", seed: int = 0, normalize: str = "none") -> Dataset:
    """scikit-learn digits, pixels / 16; fixed split first 1437 train / last 360 test, or
    ``split="random"``: ``RandomState(seed).permutation`` then the same cut."""
    from sklearn.datasets import load_digits

    if split not in SPLITS:
        raise DataError(f"digits: split must be one of {', '.join(SPLITS)}, not {split!r}")
    bunch = load_digits()
    x, y = bunch.data / 16.0, bunch.target.astype(np.int64)
    if split == "random":
        perm = np.random.RandomState(seed).permutation(len(x))
        x, y = x[perm], y[perm]
    return _make("digits" if split == "fixed" else "digits-random", x[:DIGITS_TRAIN], y[:DIGITS_TRAIN],
                 x[DIGITS_TRAIN:], y[DIGITS_TRAIN:], normalize, 10, split=split, seed=seed)


def iris(*, seed: int = 0, normalize: str = "none") -> Dataset:
    """scikit-learn iris; ``RandomState(seed)`` permutation, 120 train / 30 test."""
    from sklearn.datasets import load_iris

    bunch = load_iris()
    perm = np.random.RandomState(seed).permutation(150)
    x, y = bunch.data[perm], bunch.target[perm].astype(np.int64)
    return _make("iris", x[:120], y[:120], x[120:], y[120:], normalize, 3, seed=seed)


# ---------------------------------------------------------------------- IDX files
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (raw or gzip-compressed, detected from its first bytes)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: corrupt gzip data ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"{path}: IDX header promises shape {shape} ({expected} bytes of data) "
                        f"but the file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray, *, compress: bool | None = None) -> None:
    """Write a uint8 array as an IDX file (``.gz`` suffix or ``compress=True``: gzip)."""
    path = Path(path)
    arr = np.ascontiguousarray(array, dtype=np.uint8)
    data = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape) + arr.tobytes()
    if compress or (compress is None and path.suffix == ".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)


_MNIST_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
                "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


def _find_idx(folder: Path, stem: str) -> Path:
    for candidate in (stem, f"{stem}.gz", stem.replace("-idx", ".idx"), f"{stem.replace('-idx', '.idx')}.gz"):
        if (folder / candidate).exists():
            return folder / candidate
    raise DataError(f"{folder}: no {stem} or {stem}.gz (an MNIST folder holds the four IDX files)")


def mnist(path: str | Path, *, normalize: str = "none") -> Dataset:
    """MNIST-format data from a folder of IDX files (raw or .gz) or an ``.npz``."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    arrays: dict[str, np.ndarray] = {}
    if path.is_dir():
        for key, stem in _MNIST_FILES.items():
            arrays[key] = read_idx(_find_idx(path, stem))
    else:
        try:
            with np.load(path, allow_pickle=False) as npz:
                missing = [k for k in _MNIST_FILES if k not in npz.files]
                if missing:
                    raise DataError(f"{path}: npz lacks {', '.join(missing)} (has {', '.join(npz.files) or 'nothing'})")
                arrays = {k: np.asarray(npz[k]) for k in _MNIST_FILES}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path}: not a readable .npz or IDX folder ({exc})") from None
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if len(x) != len(y) or y.ndim != 1:
            raise DataError(f"{path}: {split} images ({len(x)}) and labels ({y.shape}) do not match")
        if y.size and not (np.issubdtype(y.dtype, np.number) and np.all(y == np.round(y)) and y.min() >= 0):
            raise DataError(f"{path}: {split} labels must be whole numbers >= 0 (got dtype {y.dtype}, "
                            f"values from {y.min()} to {y.max()})")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise DataError(f"{path}: train images {arrays['x_train'].shape[1:]} and test images "
                        f"{arrays['x_test'].shape[1:]} differ in shape")
    return _make(f"mnist:{path.name}", _pixels(path, arrays["x_train"]), arrays["y_train"].astype(np.int64),
                 _pixels(path, arrays["x_test"]), arrays["y_test"].astype(np.int64), normalize, None, path=str(path))


def _pixels(path: Path, x: np.ndarray) -> np.ndarray:
    """Integer pixels (0..255, any integer dtype) / 255; float pixels as they are."""
    if not np.issubdtype(x.dtype, np.integer):
        return x
    if x.size and (x.min() < 0 or x.max() > 255):
        raise DataError(f"{path}: integer pixels must lie in 0..255 (got {x.min()}..{x.max()})")
    return x / 255.0


#: the specs whose train / test split is a seeded permutation (the others' split is fixed)
RANDOM_SPLITS = ("digits-random", "iris")


def check_split_seed(spec: str, split_seed: int, option: str = "--split-seed") -> None:
    """Refuse a non-zero split seed for a data set whose split it cannot change."""
    if split_seed != 0 and spec not in RANDOM_SPLITS:
        raise DataError(f"{option} {split_seed}: {spec} has a fixed train / test split "
                        f"(only {' and '.join(RANDOM_SPLITS)} permute with a seed)")


def load_dataset(spec: str, *, seed: int = 0, normalize: str = "none", split: str | None = None) -> Dataset:
    """A data set from a spec: ``digits``, ``digits-random``, ``iris`` or ``mnist:PATH``."""
    if spec == "digits":
        return digits(split=split or "fixed", seed=seed, normalize=normalize)
    fixed_split = "random" if spec in RANDOM_SPLITS else "fixed"
    if spec != "digits" and split not in (None, fixed_split):
        raise DataError(f"{spec}: split must be {fixed_split!r} (only digits offers both), not {split!r}")
    if spec == "digits-random":
        return digits(split="random", seed=seed, normalize=normalize)
    if spec == "iris":
        return iris(seed=seed, normalize=normalize)
    if spec.startswith("mnist:"):
        return mnist(spec.split(":", 1)[1], normalize=normalize)
    raise DataError(f"unknown data set {spec!r} (use digits, digits-random, iris or mnist:PATH)")
