"""Helpers shared by the compression algorithms."""

from __future__ import annotations

from torch import nn

from accelflow.data import Splits
from accelflow.errors import AccelflowError
from accelflow.train import TrainRecipe, evaluate, train

__all__ = ["CompressError", "prunable_layers", "evaluate_on", "fit"]


class CompressError(AccelflowError):
    """A model cannot be pruned, scaled or quantised as asked (message says which layer and why)."""


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Linear | nn.Conv2d | nn.Conv1d]]:
    """Dense and convolution layers in registration order (the zoo registers them in execution order)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv2d | nn.Conv1d)]


def evaluate_on(model: nn.Module, splits: Splits, split: str) -> float:
    return evaluate(model, getattr(splits, split))


def fit(model: nn.Module, splits: Splits, recipe: TrainRecipe) -> None:
    """Train in place quietly on one thread: the models pruned/scaled here are small, and one thread is
    faster than two on a shared machine (OpenMP threads waiting for busy cores)."""
    train(model, splits, recipe, progress=False, num_threads=1)
