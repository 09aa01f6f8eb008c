"""Typed records describing a loaded data set: its metadata and its train/val/test arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DatasetInfo", "ArraySplit", "Splits"]


@dataclass(frozen=True)
class DatasetInfo:
    """What a data set is, independent of how it was split.

    ``input_shape`` is the shape of one example without the batch axis: ``(C, H, W)`` for images,
    ``(F,)`` for tabular features. Stored features are ``(raw_scaled - mean) / std`` where
    ``raw_scaled`` is in [0, 1] for images; ``mean``/``std`` are fixed constants (0 and 1 when the set
    is not normalised), so a consumer can map inputs back to pixel intensities.
    """

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    synthetic: bool
    source: str
    description: str
    mean: float = 0.0
    std: float = 1.0
    class_names: tuple[str, ...] = ()

    @property
    def is_image(self) -> bool:
        """True for ``(C, H, W)`` inputs."""
        return len(self.input_shape) == 3


@dataclass(frozen=True, eq=False)
class ArraySplit:
    """One split: features ``x`` (float32, ``(N, *input_shape)``) and labels ``y`` (int64, ``(N,)``)."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if self.x.dtype != np.float32 or self.y.dtype != np.int64:
            raise TypeError(f"ArraySplit needs float32 x and int64 y, got {self.x.dtype} and {self.y.dtype}")
        if len(self.x) != len(self.y):
            raise ValueError(f"ArraySplit has {len(self.x)} examples but {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True, eq=False)
class Splits:
    """Train, validation and test splits of one data set plus a stable fingerprint of how they were made.

    ``fingerprint`` is a hex sha256 over (name, seed, val_fraction, limits, split sizes, loader version);
    the training cache keys trained weights on it.
    """

    train: ArraySplit
    val: ArraySplit
    test: ArraySplit
    info: DatasetInfo
    fingerprint: str
