"""Deterministic CPU training, evaluation and a cache of trained zoo weights.

Example::

    from accelflow.data import load
    from accelflow.train import TrainRecipe, cached_model, evaluate, train

    model, info = cached_model("lenet5", "fashion_mnist")   # trains once (~1 min), then loads
    print(info.test_accuracy, info.hit)

    splits = load("digits")
    result = train(my_model, splits, TrainRecipe(epochs=20, lr=3e-3), progress=False)
    evaluate(my_model, splits.test)   # top-1 accuracy in [0, 1]
"""

from accelflow.train._cache import (
    CACHE_ENV,
    CACHE_VERSION,
    DEFAULT_RECIPES,
    FALLBACK_RECIPE,
    CacheEntry,
    CacheInfo,
    arrays_digest,
    cache_entries,
    cache_key,
    cached_model,
    cached_training,
    default_recipe,
    load_weights,
    remove_entries,
    save_weights,
    weights_cache_dir,
    weights_digest,
)
from accelflow.train._loop import (
    EpochStats,
    TrainingDivergedError,
    TrainResult,
    default_num_threads,
    evaluate,
    train,
)
from accelflow.train._recipe import OptimizerKind, SchedulerKind, TrainRecipe

__all__ = [
    "TrainRecipe",
    "OptimizerKind",
    "SchedulerKind",
    "train",
    "evaluate",
    "TrainResult",
    "EpochStats",
    "TrainingDivergedError",
    "cached_model",
    "cached_training",
    "CacheInfo",
    "CacheEntry",
    "cache_entries",
    "remove_entries",
    "cache_key",
    "default_recipe",
    "DEFAULT_RECIPES",
    "FALLBACK_RECIPE",
    "CACHE_ENV",
    "CACHE_VERSION",
    "weights_cache_dir",
    "load_weights",
    "save_weights",
    "weights_digest",
    "arrays_digest",
    "default_num_threads",
]
