"""Deterministic train/val/test splitting and the public :func:`load` entry point."""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np

from accelflow.data._sources import SOURCES, RawData
from accelflow.data._types import ArraySplit, Splits
from accelflow.errors import DataError

__all__ = ["load", "dataset_names", "DATA_VERSION", "TEST_FRACTION", "TEST_SPLIT_SEED"]

log = logging.getLogger(__name__)

#: Bump when preprocessing or splitting changes, so fingerprints (and cached weights) change too.
DATA_VERSION = 1
#: Share of the examples held out as test for sets without an official test split.
TEST_FRACTION = 0.2
#: The held-out test split of such sets is fixed (independent of ``seed``) so accuracies are comparable
#: across training seeds.
TEST_SPLIT_SEED = 20_240


def dataset_names() -> tuple[str, ...]:
    """Names accepted by :func:`load`."""
    return tuple(SOURCES)


def _stratified_take(y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(len(y))`` into (taken, rest) with ``len(taken) == n``, per-class proportions kept.

    Each class contributes ``round(n * class_share)`` examples (largest remainders fix the total), drawn
    with a PCG64 generator seeded by ``seed``; both index arrays come back sorted.
    """
    if not 0 <= n <= len(y):
        raise ValueError(f"cannot take {n} of {len(y)} examples")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    exact = counts * (n / len(y))
    quota = np.floor(exact).astype(np.int64)
    short = n - int(quota.sum())
    if short:
        order = np.argsort(-(exact - quota), kind="stable")
        quota[order[:short]] += 1
    taken = [rng.permutation(np.flatnonzero(y == c))[:q] for c, q in zip(classes, quota, strict=True)]
    idx = np.sort(np.concatenate(taken)) if taken else np.empty(0, np.int64)
    mask = np.ones(len(y), bool)
    mask[idx] = False
    return idx, np.flatnonzero(mask)


def _check_args(name: str, val_fraction: float, limit_train: int | None, limit_test: int | None) -> None:
    if name not in SOURCES:
        raise DataError(f"unknown data set {name!r}; available: {', '.join(SOURCES)}")
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction must be in (0, 1), got {val_fraction}")
    for label, value in (("limit_train", limit_train), ("limit_test", limit_test)):
        if value is not None and value < 1:
            raise DataError(f"{label} must be a positive number of examples, got {value}")


def _fingerprint(parts: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def load(
    name: str,
    seed: int = 0,
    val_fraction: float = 0.1,
    limit_train: int | None = None,
    limit_test: int | None = None,
) -> Splits:
    """Load data set ``name`` split into train / val / test float32 arrays.

    The test split is the official one where the set has it (Fashion-MNIST: 10k), else a fixed stratified
    ``TEST_FRACTION`` of the examples (seeded by ``TEST_SPLIT_SEED``, not by ``seed``). Validation is a
    stratified ``val_fraction`` of the remaining pool drawn with ``seed``. ``limit_train`` keeps a seeded
    stratified subset of that many training examples and shrinks validation in proportion;
    ``limit_test`` keeps that many test examples. The same arguments always give the same arrays.

    Raises :class:`DataError` for an unknown name, bad fractions or limits, or missing/corrupt files.
    """
    _check_args(name, val_fraction, limit_train, limit_test)
    raw: RawData = SOURCES[name].load_raw()
    if raw.x_test is not None and raw.y_test is not None:
        x_pool, y_pool, x_test, y_test = raw.x_pool, raw.y_pool, raw.x_test, raw.y_test
    else:
        n_test = round(len(raw.y_pool) * TEST_FRACTION)
        test_idx, pool_idx = _stratified_take(raw.y_pool, n_test, TEST_SPLIT_SEED)
        x_pool, y_pool = raw.x_pool[pool_idx], raw.y_pool[pool_idx]
        x_test, y_test = raw.x_pool[test_idx], raw.y_pool[test_idx]

    val_idx, train_idx = _stratified_take(y_pool, round(len(y_pool) * val_fraction), seed)
    if limit_train is not None and limit_train < len(train_idx):
        n_val = min(len(val_idx), max(1, round(limit_train * val_fraction / (1.0 - val_fraction))))
        keep, _ = _stratified_take(y_pool[train_idx], limit_train, seed + 1)
        train_idx = train_idx[keep]
        keep, _ = _stratified_take(y_pool[val_idx], n_val, seed + 2)
        val_idx = val_idx[keep]
    if limit_test is not None and limit_test < len(y_test):
        keep, _ = _stratified_take(y_test, limit_test, seed + 3)
        x_test, y_test = x_test[keep], y_test[keep]

    train = ArraySplit(raw.features(x_pool[train_idx]), y_pool[train_idx].copy())
    val = ArraySplit(raw.features(x_pool[val_idx]), y_pool[val_idx].copy())
    test = ArraySplit(raw.features(x_test), np.array(y_test, dtype=np.int64))
    fingerprint = _fingerprint({
        "name": name,
        "seed": seed,
        "val_fraction": val_fraction,
        "limit_train": limit_train,
        "limit_test": limit_test,
        "sizes": [len(train), len(val), len(test)],
        "data_version": DATA_VERSION,
    })
    log.debug("loaded %s: train %d, val %d, test %d", name, len(train), len(val), len(test))
    return Splits(train=train, val=val, test=test, info=raw.info, fingerprint=fingerprint)
