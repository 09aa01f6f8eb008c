"""Helpers shared by the compression algorithms."""

from __future__ import annotations

from torch import nn

from accelflow.data import Splits
from accelflow.errors import AccelflowError
from accelflow.train import evaluate

__all__ = ["CompressError", "prunable_layers", "evaluate_on"]


class CompressError(AccelflowError):
    """A model cannot be pruned, scaled or quantised as asked (message says which layer and why)."""


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Linear | nn.Conv2d | nn.Conv1d]]:
    """Dense and convolution layers in registration order (the zoo registers them in execution order)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv2d | nn.Conv1d)]


def evaluate_on(model: nn.Module, splits: Splits, split: str) -> float:
    return evaluate(model, getattr(splits, split))
