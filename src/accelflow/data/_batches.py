"""A deterministic mini-batch iterator over in-memory arrays (faster on CPU than a DataLoader)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from accelflow.data._types import ArraySplit
from accelflow.errors import ConfigError

__all__ = ["BatchLoader", "to_loader"]


class BatchLoader:
    """Yields ``(x, y)`` tensor batches (float32, int64) of one split.

    With ``shuffle`` the order of epoch ``k`` (the k-th call to ``iter``) is a permutation drawn from a
    generator seeded by ``(seed, k)``, so a run is reproducible without touching global RNG state.
    """

    def __init__(
        self, split: ArraySplit, batch_size: int, shuffle: bool = False, seed: int = 0, drop_last: bool = False
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.x = torch.from_numpy(np.ascontiguousarray(split.x))
        self.y = torch.from_numpy(np.ascontiguousarray(split.y))
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self._epoch = 0

    def __len__(self) -> int:
        n = len(self.y)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.y)
        if self.shuffle:
            order = torch.from_numpy(np.random.default_rng((self.seed, self._epoch)).permutation(n))
        else:
            order = None
        self._epoch += 1
        for b in range(len(self)):
            lo, hi = b * self.batch_size, min(n, (b + 1) * self.batch_size)
            if order is None:
                yield self.x[lo:hi], self.y[lo:hi]
            else:
                idx = order[lo:hi]
                yield self.x[idx], self.y[idx]


def to_loader(
    split: ArraySplit, batch_size: int, shuffle: bool = False, seed: int = 0, drop_last: bool = False
) -> BatchLoader:
    """Batches of ``split`` as torch tensors; see :class:`BatchLoader` for the shuffling contract."""
    return BatchLoader(split, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last)
