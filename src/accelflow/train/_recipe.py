"""Training recipes: frozen dataclasses whose fields are the hyper-parameters."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from accelflow.errors import ConfigError

__all__ = ["OptimizerKind", "SchedulerKind", "TrainRecipe"]


class OptimizerKind(StrEnum):
    """Optimisers :func:`accelflow.train.train` can build."""

    ADAM = "adam"
    ADAMW = "adamw"
    SGD = "sgd"  # momentum from TrainRecipe.momentum, Nesterov


class SchedulerKind(StrEnum):
    """Learning-rate schedules, stepped once per batch."""

    NONE = "none"  # constant lr
    COSINE = "cosine"  # cosine decay from lr to 0 over all steps


@dataclass(frozen=True)
class TrainRecipe:
    """How to train a model; constructing one does no work.

    ``lr`` is the peak learning rate, ``weight_decay`` the L2 (Adam/SGD) or decoupled (AdamW) coefficient,
    ``label_smoothing`` the cross-entropy smoothing in [0, 1), ``momentum`` is used by SGD only.
    ``optimizer`` and ``scheduler`` accept the enum or its string value.
    """

    epochs: int = 3
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: OptimizerKind = OptimizerKind.ADAM
    weight_decay: float = 0.0
    seed: int = 0
    label_smoothing: float = 0.0
    scheduler: SchedulerKind = SchedulerKind.COSINE
    momentum: float = 0.9

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "optimizer", OptimizerKind(self.optimizer))
            object.__setattr__(self, "scheduler", SchedulerKind(self.scheduler))
        except ValueError as exc:
            raise ConfigError(
                f"{exc}; optimizers: {[o.value for o in OptimizerKind]}, "
                f"schedulers: {[s.value for s in SchedulerKind]}"
            ) from exc
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ConfigError(f"need lr > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (enums as their string values)."""
        return {k: (v.value if isinstance(v, StrEnum) else v) for k, v in asdict(self).items()}
