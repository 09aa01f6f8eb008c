"""Build an :class:`Evaluator` for a zoo model trained on its data set (what the CLI and benchmark use)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from accelflow.data import ArraySplit, Splits, load
from accelflow.dataflow import LockStep, Method, load_device
from accelflow.hass._errors import HassError
from accelflow.hass._evaluate import Evaluator
from accelflow.hass._space import build_space
from accelflow.train import TrainRecipe

__all__ = ["ZooProblem", "zoo_problem", "subset"]

log = logging.getLogger(__name__)


def subset(split: ArraySplit, n: int, seed: int = 0) -> ArraySplit:
    """A seeded random subset of ``n`` examples (all of them when ``n >= len(split)``)."""
    if n >= len(split):
        return split
    idx = np.sort(np.random.default_rng(seed).choice(len(split), n, replace=False))
    return ArraySplit(split.x[idx], split.y[idx])


@dataclass(frozen=True, eq=False)
class ZooProblem:
    """A trained zoo model, its data, the evaluator of a search on ``device`` and an optional hold-out split
    (validation images the search never sees, for :func:`run_search`'s ``holdout``)."""

    name: str
    model: nn.Module
    splits: Splits
    evaluator: Evaluator
    test_accuracy: float
    holdout: ArraySplit | None = None


def zoo_problem(name: str, device: str, dataset: str | None = None, validation_size: int = 1000,
                calibration_size: int = 100, batch: int = 256, method: Method = Method.GREEDY,
                seed: int = 0, progress: bool = False, recipe: TrainRecipe | None = None,
                train_data: Mapping[str, Any] | None = None, holdout_size: int = 0,
                lockstep: LockStep = LockStep.MEAN) -> ZooProblem:
    """Trained ``name`` (from the training cache, trained on first use) with an evaluator whose accuracy is
    measured on ``validation_size`` validation examples and sparsity on ``calibration_size`` training images.

    ``recipe``/``train_data`` (kwargs of :func:`accelflow.data.load`, e.g. ``{"limit_train": 8000}``) select
    a cheaper training than the cache's default; validation and calibration come from the full splits
    (disjoint from any training subset: the subset is drawn from the same training pool). ``holdout_size``
    further validation images, disjoint from the search's, make :attr:`ZooProblem.holdout`. ``lockstep`` is
    the sparse layers' cost model the evaluator folds under (see :class:`Evaluator`)."""
    from accelflow.train import cached_model
    from accelflow.zoo import spec

    info = spec(name)
    data = dataset or info.default_dataset
    if data is None:
        raise HassError(f"zoo model {name!r} has no default data set; pass --data (e.g. fashion_mnist)")
    model, cache = cached_model(name, data, recipe=recipe, data_kwargs=train_data, progress=progress)
    splits = load(data)
    if not splits.info.is_image:
        raise HassError(f"HASS searches conv thresholds; data set {data!r} is not an image set")
    calibration = subset(splits.train, calibration_size, seed + 1).x
    order = np.random.default_rng(seed).permutation(len(splits.val))
    if validation_size + holdout_size > len(order):
        raise HassError(f"{data} has {len(order)} validation images; asked for {validation_size} + "
                        f"{holdout_size} hold-out")
    pick = np.sort(order[:validation_size])
    validation = ArraySplit(splits.val.x[pick], splits.val.y[pick])
    rest = np.sort(order[validation_size:validation_size + holdout_size])
    holdout = ArraySplit(splits.val.x[rest], splits.val.y[rest]) if holdout_size else None
    space = build_space(model, calibration)
    evaluator = Evaluator(model, tuple(splits.info.input_shape), validation, calibration, load_device(device),
                          space, name=name, batch=batch, method=method, lockstep=LockStep(lockstep))
    log.info("%s on %s: cached test accuracy %.4f", name, data, cache.test_accuracy)
    return ZooProblem(name, model, splits, evaluator, cache.test_accuracy, holdout)
