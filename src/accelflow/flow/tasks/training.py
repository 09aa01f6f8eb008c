"""Training tasks: train / fine-tune a model with :mod:`accelflow.train`, and evaluate it."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from accelflow.flow.state import DesignState, MetricKey, StateField
from accelflow.flow.task import Task, TaskContext, param
from accelflow.train import (
    FALLBACK_RECIPE,
    CacheInfo,
    OptimizerKind,
    TrainRecipe,
    cached_training,
    evaluate,
    train,
)

__all__ = ["Train", "FineTune", "Evaluate"]


def from_weights_cache(state: DesignState, model: nn.Module, info: CacheInfo) -> DesignState:
    """``state`` with a model trained through the weights cache: its key in ``info``, and its test / validation
    accuracy as ``train.accuracy`` / ``train.val_accuracy`` (what :class:`Train` records)."""
    return state.evolve(model=model).with_info(weights_cache_key=info.key).with_metrics(
        "train", accuracy=info.test_accuracy, val_accuracy=info.val_accuracy)


def train_through_cache(state: DesignState, recipe: TrainRecipe = FALLBACK_RECIPE, progress: bool = True) -> DesignState:
    """``state`` with its model trained with ``recipe`` through the weights cache
    (:func:`accelflow.train.cached_training`), keyed by the model's current weights, its model file's sha256
    when it came from one, the data and the recipe; ``train.accuracy`` is the test accuracy, as for a zoo
    model from ``train_cached``."""
    assert state.model is not None
    model, info = cached_training(state.model, state.splits(), recipe, name=state.model_name or "model",
                                  source=str(state.info.get("model_file_sha256", "")), progress=progress)
    return from_weights_cache(state, model, info)


@dataclass
class Train(Task):
    """Train the model (in a copy) and record ``train.accuracy`` (test split) and ``train.val_accuracy``."""

    name = "train"
    needs = (StateField.MODEL, StateField.DATASET)
    produces = (StateField.TRAINED, MetricKey("train", "accuracy"), MetricKey("train", "val_accuracy"))

    epochs: int = param(10, low=1, high=1000, help="passes over the training split")
    batch_size: int = param(128, low=1, high=65536)
    lr: float = param(1e-3, low=1e-6, high=1.0, log_scale=True, help="peak learning rate")
    optimizer: OptimizerKind = param(OptimizerKind.ADAM, choices=tuple(OptimizerKind))
    weight_decay: float = param(0.0, low=0.0, high=1.0)
    seed: int = param(0, low=0)
    cache: bool = param(False, help="train once: reuse the weights cache's result for the same starting "
                                    "weights, model file, data and recipe")

    def recipe(self) -> TrainRecipe:
        return TrainRecipe(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                           optimizer=self.optimizer, weight_decay=self.weight_decay, seed=self.seed)

    def run(self, state: DesignState, ctx: TaskContext) -> DesignState:
        if self.cache:
            return train_through_cache(state, self.recipe(), progress=ctx.progress)
        model = state.model_copy()
        result = train(model, state.splits(), self.recipe(), progress=ctx.progress)
        return state.evolve(model=model).with_metrics(
            "train", accuracy=result.test_accuracy, val_accuracy=result.val_accuracy)


@dataclass
class FineTune(Train):
    """Train a trained model a little more at a lower learning rate (same metrics as :class:`Train`)."""

    name = "fine_tune"
    needs = (StateField.MODEL, StateField.DATASET, StateField.TRAINED)

    epochs: int = param(3, low=1, high=1000)
    lr: float = param(3e-4, low=1e-6, high=1.0, log_scale=True)


@dataclass
class Evaluate(Task):
    """Measure the model's top-1 accuracy on a split and record it as ``<stage>.accuracy``."""

    name = "evaluate"
    needs = (StateField.MODEL, StateField.DATASET)
    produces = (MetricKey("eval", "accuracy"),)

    split: str = param("test", choices=("train", "val", "test"))

    def run(self, state: DesignState, ctx: TaskContext) -> DesignState:
        assert state.model is not None
        split = getattr(state.splits(), self.split)
        return state.with_metrics("eval", accuracy=evaluate(state.model, split))
