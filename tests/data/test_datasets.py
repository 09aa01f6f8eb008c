"""Loaders of the offline data sets: shapes, dtypes, split sizes, determinism and error messages."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from accelflow.data import (
    FASHION_MNIST_ENV,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    dataset_names,
    load,
    to_loader,
)
from accelflow.errors import DataError


def _check_split_types(splits, input_shape: tuple[int, ...], num_classes: int) -> None:
    for split in (splits.train, splits.val, splits.test):
        assert split.x.dtype == np.float32 and split.y.dtype == np.int64
        assert split.x.shape == (len(split.y), *input_shape)
        assert split.y.min() >= 0 and split.y.max() < num_classes
        assert np.isfinite(split.x).all()
    assert splits.info.input_shape == input_shape
    assert splits.info.num_classes == num_classes


def test_fashion_mnist_full_official_splits() -> None:
    splits = load("fashion_mnist")
    _check_split_types(splits, (1, 28, 28), 10)
    assert len(splits.train) == 54_000 and len(splits.val) == 6_000 and len(splits.test) == 10_000
    assert not splits.info.synthetic
    # the official test split is balanced: 1000 images per class
    assert np.bincount(splits.test.y).tolist() == [1000] * 10
    # normalised with the documented constants: pixel 0 maps to -mean/std, pixel 255 to (1-mean)/std
    assert splits.test.x.min() == pytest.approx(-FASHION_MNIST_MEAN / FASHION_MNIST_STD, abs=1e-5)
    assert splits.test.x.max() == pytest.approx((1 - FASHION_MNIST_MEAN) / FASHION_MNIST_STD, abs=1e-5)
    assert abs(float(splits.train.x.mean())) < 0.01


def test_fashion_mnist_is_deterministic_and_seeded() -> None:
    a = load("fashion_mnist", seed=0, limit_train=500, limit_test=200)
    b = load("fashion_mnist", seed=0, limit_train=500, limit_test=200)
    c = load("fashion_mnist", seed=1, limit_train=500, limit_test=200)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(a, name).x, getattr(b, name).x)
        np.testing.assert_array_equal(getattr(a, name).y, getattr(b, name).y)
    assert not np.array_equal(a.train.y, c.train.y) or not np.array_equal(a.train.x, c.train.x)
    assert len(a.train) == 500 and len(a.test) == 200 and len(a.val) == round(500 * 0.1 / 0.9)
    assert np.bincount(a.train.y).tolist() == [50] * 10  # stratified subset


def test_limits_change_the_fingerprint() -> None:
    full = load("digits")
    limited = load("digits", limit_train=100)
    assert full.fingerprint != limited.fingerprint
    assert len(limited.train) == 100


@pytest.mark.parametrize(
    ("name", "shape", "total"),
    [("mnist5k", (1, 28, 28), 5000), ("digits", (64,), 1797), ("digits_image", (1, 8, 8), 1797)],
)
def test_small_real_sets(name: str, shape: tuple[int, ...], total: int) -> None:
    splits = load(name)
    _check_split_types(splits, shape, 10)
    assert len(splits.train) + len(splits.val) + len(splits.test) == total
    assert len(splits.test) == round(total * 0.2)
    assert not splits.info.synthetic
    # the held-out test split does not depend on the training seed
    np.testing.assert_array_equal(load(name, seed=5).test.y, splits.test.y)


def test_digits_features_are_scaled_to_unit_interval() -> None:
    splits = load("digits")
    assert splits.train.x.min() == 0.0 and splits.train.x.max() == 1.0
    np.testing.assert_array_equal(load("digits_image").test.x.reshape(-1, 64), splits.test.x)


def test_synthetic_jets_is_flagged_synthetic() -> None:
    splits = load("synthetic_jets")
    _check_split_types(splits, (16,), 5)
    assert splits.info.synthetic
    assert "SYNTHETIC" in splits.info.description
    assert all(np.bincount(s.y).min() > 0.15 * len(s) for s in (splits.train, splits.test))


def test_unknown_name_lists_available_sets() -> None:
    with pytest.raises(DataError) as err:
        load("imagenet")
    for name in dataset_names():
        assert name in str(err.value)


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(DataError, match="val_fraction"):
        load("digits", val_fraction=1.5)
    with pytest.raises(DataError, match="limit_train"):
        load("digits", limit_train=0)


# --- IDX reading on small files made here ----------------------------------------------------------


def _write_idx(path: Path, array: np.ndarray, magic_ndim: int | None = None) -> None:
    ndim = array.ndim if magic_ndim is None else magic_ndim
    header = bytes([0, 0, 0x08, ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def _fake_fashion(root: Path, n_train: int = 40, n_test: int = 20) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(root / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(root / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)


def test_idx_reader_on_small_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_fashion(tmp_path)
    monkeypatch.setenv(FASHION_MNIST_ENV, str(tmp_path))
    splits = load("fashion_mnist")
    assert len(splits.train) + len(splits.val) == 40 and len(splits.test) == 20
    np.testing.assert_array_equal(splits.test.y, np.arange(20) % 10)
    assert str(tmp_path) in splits.info.source


def test_corrupt_gzip_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_fashion(tmp_path)
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:100])  # truncated gzip stream
    monkeypatch.setenv(FASHION_MNIST_ENV, str(tmp_path))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        load("fashion_mnist")


def test_bad_magic_number_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_fashion(tmp_path)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(20) % 10, magic_ndim=3)
    monkeypatch.setenv(FASHION_MNIST_ENV, str(tmp_path))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: bad IDX magic"):
        load("fashion_mnist")


def test_missing_files_say_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FASHION_MNIST_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"dataset-fashion-mnist \(make data\)"):
        load("fashion_mnist")


# --- batches ---------------------------------------------------------------------------------------


def test_loader_covers_every_example_once_per_epoch() -> None:
    split = load("digits").test
    loader = to_loader(split, batch_size=64, shuffle=True, seed=3)
    assert len(loader) == -(-len(split) // 64)
    epoch1 = np.concatenate([y.numpy() for _, y in loader])
    epoch2 = np.concatenate([y.numpy() for _, y in loader])
    assert sorted(epoch1.tolist()) == sorted(split.y.tolist()) == sorted(epoch2.tolist())
    assert not np.array_equal(epoch1, epoch2)  # reshuffled each epoch
    again = np.concatenate([y.numpy() for _, y in to_loader(split, 64, shuffle=True, seed=3)])
    np.testing.assert_array_equal(epoch1, again)
    plain = np.concatenate([y.numpy() for _, y in to_loader(split, 64)])
    np.testing.assert_array_equal(plain, split.y)
