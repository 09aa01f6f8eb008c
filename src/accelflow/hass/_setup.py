"""Build the search problem of a trained model on an image data set: a zoo model from the training cache
(:func:`zoo_problem`) or any trained ``nn.Module`` (:func:`problem`). What the CLI and benchmark use."""

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

__all__ = ["Problem", "calibration_images", "problem", "zoo_problem", "subset"]

log = logging.getLogger(__name__)


def subset(split: ArraySplit, n: int, seed: int = 0) -> ArraySplit:
    """A seeded random subset of ``n`` examples (all of them when ``n >= len(split)``)."""
    if n >= len(split):
        return split
    idx = np.sort(np.random.default_rng(seed).choice(len(split), n, replace=False))
    return ArraySplit(split.x[idx], split.y[idx])


def calibration_images(splits: Splits, n: int, seed: int = 0) -> np.ndarray:
    """The ``n`` training images sparsity is measured on (a subset seeded apart from the validation draw):
    the same images for a search, its baselines and ``accelflow dataflow --data``."""
    return subset(splits.train, n, seed + 1).x


@dataclass(frozen=True, eq=False)
class Problem:
    """A trained model, its data, the evaluator of a search on a device and an optional hold-out split
    (validation images the search never sees, for :func:`run_search`'s ``holdout``). ``test_accuracy`` is
    the training cache's for a zoo model, None for a model given by the user (never measured here)."""

    name: str
    model: nn.Module
    splits: Splits
    evaluator: Evaluator
    test_accuracy: float | None
    holdout: ArraySplit | None = None


def problem(model: nn.Module, dataset: str | Splits, device: str, *, name: str = "model",
            validation_size: int | None = 1000, calibration_size: int = 100, batch: int = 256,
            method: Method = Method.GREEDY, seed: int = 0, holdout_size: int | None = 0,
            lockstep: LockStep = LockStep.MEAN, test_accuracy: float | None = None) -> Problem:
    """The search problem of a trained ``model`` on the image data set ``dataset`` (a name of
    :func:`accelflow.data.load`, or splits it loaded).

    Accuracy is measured on ``validation_size`` validation images, sparsity on ``calibration_size`` training
    images; ``holdout_size`` further validation images, disjoint from the search's, make
    :attr:`Problem.holdout` (a size of None: 1,000 each, or 70% / 30% of a smaller validation split).
    ``lockstep`` is the sparse layers' cost model the evaluator folds under (see :class:`Evaluator`). The
    model must take the data set's images, give one score per class and do better than 1.5x chance on the
    validation images (an untrained model is refused)."""
    splits = load(dataset) if isinstance(dataset, str) else dataset
    dataset = splits.info.name
    if not splits.info.is_image:
        raise HassError(f"HASS searches conv thresholds; data set {dataset!r} is not an image set")
    _check_fits(model, splits, name, dataset)
    calibration = calibration_images(splits, calibration_size, seed)
    order = np.random.default_rng(seed).permutation(len(splits.val))
    validation_size, holdout_size = _sizes(validation_size, holdout_size, len(order), dataset)
    if validation_size + holdout_size > len(order):
        raise HassError(f"{dataset} has {len(order)} validation images; asked for {validation_size} + "
                        f"{holdout_size} hold-out: ask for fewer (validation and hold-out sizes)")
    pick = np.sort(order[:validation_size])
    validation = ArraySplit(splits.val.x[pick], splits.val.y[pick])
    rest = np.sort(order[validation_size:validation_size + holdout_size])
    holdout = ArraySplit(splits.val.x[rest], splits.val.y[rest]) if holdout_size else None
    space = build_space(model, calibration)
    evaluator = Evaluator(model, tuple(splits.info.input_shape), validation, calibration, load_device(device),
                          space, name=name, batch=batch, method=method, lockstep=LockStep(lockstep))
    chance = 1.0 / splits.info.num_classes
    if evaluator.base_accuracy < 1.5 * chance:
        raise HassError(f"{name}: accuracy {100 * evaluator.base_accuracy:.1f}% on {len(validation)} validation "
                        f"images of {dataset} is near chance ({100 * chance:.0f}%), so no accuracy bound means "
                        "anything: load the trained weights (--weights) or train the model file first (--train), "
                        "on the data set's own preparation (accelflow.data.load)")
    return Problem(name, model, splits, evaluator, test_accuracy, holdout)


#: Validation and hold-out images a size of None asks for, when the data set has that many.
DEFAULT_SIZES = (1000, 1000)


def _sizes(validation: int | None, holdout: int | None, available: int, dataset: str) -> tuple[int, int]:
    """Sizes given as None: :data:`DEFAULT_SIZES`, or when the validation split is smaller, 70% / 30% of it
    (what is left beside a given size)."""
    if (validation is not None and validation < 1) or (holdout is not None and holdout < 0):
        raise HassError(f"validation size must be >= 1 and hold-out size >= 0 images; got {validation} and {holdout}")
    if validation is not None and holdout is not None:
        return validation, holdout
    want_v = DEFAULT_SIZES[0] if validation is None else validation
    want_h = DEFAULT_SIZES[1] if holdout is None else holdout
    if want_v + want_h <= available:
        return want_v, want_h
    if validation is None and holdout is None:
        validation = max(1, round(0.7 * available))
    elif validation is None:
        validation = max(available - want_h, 0)
    holdout = max(available - validation, 0) if holdout is None else holdout
    log.info("%s has %d validation images: %d for the search, %d hold-out", dataset, available, validation, holdout)
    return validation, holdout


def _check_fits(model: nn.Module, splits: Splits, name: str, dataset: str) -> None:
    """The model takes two of the data set's images and gives ``(2, num_classes)`` scores, or a named error."""
    import torch

    shape, classes = tuple(splits.info.input_shape), splits.info.num_classes
    x = torch.from_numpy(np.ascontiguousarray(splits.val.x[:2], dtype=np.float32))
    try:
        with torch.no_grad():
            out = model.eval()(x)
    except Exception as exc:  # the user's module may raise anything
        raise HassError(f"{name} does not run on {dataset} images of shape {shape} (with batch: "
                        f"{tuple(x.shape)}): {type(exc).__name__}: {exc}") from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise HassError(f"{name} gives {got} on a batch of 2 {dataset} images; HASS needs one score per class, "
                        f"(2, {classes})")


def zoo_problem(name: str, device: str, dataset: str | None = None, validation_size: int | None = 1000,
                calibration_size: int = 100, batch: int = 256, method: Method = Method.GREEDY,
                seed: int = 0, progress: bool = False, recipe: TrainRecipe | None = None,
                train_data: Mapping[str, Any] | None = None, holdout_size: int | None = 0,
                lockstep: LockStep = LockStep.MEAN) -> Problem:
    """:func:`problem` for the zoo model ``name``, trained (from the training cache, trained on first use) on
    ``dataset`` (default: the model's own).

    ``recipe``/``train_data`` (kwargs of :func:`accelflow.data.load`, e.g. ``{"limit_train": 8000}``) select
    a cheaper training than the cache's default; validation and calibration come from the full splits
    (disjoint from any training subset: the subset is drawn from the same training pool)."""
    from accelflow.train import cached_model
    from accelflow.zoo import spec

    info = spec(name)
    data = dataset or info.default_dataset
    if data is None:
        raise HassError(f"zoo model {name!r} has no default data set; pass --data (e.g. fashion_mnist)")
    model, cache = cached_model(name, data, recipe=recipe, data_kwargs=train_data, progress=progress)
    log.info("%s on %s: cached test accuracy %.4f", name, data, cache.test_accuracy)
    return problem(model, data, device, name=name, validation_size=validation_size,
                   calibration_size=calibration_size, batch=batch, method=method, seed=seed,
                   holdout_size=holdout_size, lockstep=lockstep, test_accuracy=cache.test_accuracy)
