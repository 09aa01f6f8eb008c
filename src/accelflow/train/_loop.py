"""Deterministic CPU training and evaluation loops."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from torch import nn

from accelflow.data import ArraySplit, BatchLoader, Splits, to_loader
from accelflow.errors import AccelflowError, ConfigError, DataError
from accelflow.train._recipe import OptimizerKind, SchedulerKind, TrainRecipe

__all__ = ["EpochStats", "TrainResult", "TrainingDivergedError", "train", "evaluate", "default_num_threads"]

log = logging.getLogger(__name__)

# Thread count torch chose at import; if it is unchanged at train time the user did not pick one.
_THREADS_AT_IMPORT = torch.get_num_threads()


class TrainingDivergedError(AccelflowError):
    """The training loss became NaN or infinite; lower the learning rate."""


@dataclass(frozen=True)
class EpochStats:
    """Measurements of one epoch: mean training loss (nats), accuracies in [0, 1], lr at the end."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_accuracy: float
    lr: float
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train`: final val/test accuracy in [0, 1], epochs run, wall time in seconds."""

    val_accuracy: float
    test_accuracy: float
    epochs: int
    seconds: float
    history: tuple[EpochStats, ...]


def default_num_threads() -> int:
    """Threads used for training when the user has not chosen: at most 2 of the CPUs we may run on."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(2, cpus))


@contextlib.contextmanager
def _threads(num_threads: int | None) -> Iterator[None]:
    """Run the block with ``num_threads`` intra-op threads, or with :func:`default_num_threads` when None
    and neither ``OMP_NUM_THREADS`` nor ``torch.set_num_threads`` chose a count; restore it afterwards."""
    before = torch.get_num_threads()
    if num_threads is None:
        user_set = "OMP_NUM_THREADS" in os.environ or before != _THREADS_AT_IMPORT
        num_threads = before if user_set else default_num_threads()
    if num_threads < 1:
        raise ConfigError(f"num_threads must be >= 1, got {num_threads}")
    if num_threads != before:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@contextlib.contextmanager
def _deterministic(seed: int) -> Iterator[None]:
    """Seed torch and numpy and force deterministic kernels for the block, restoring the previous mode."""
    was_on = torch.are_deterministic_algorithms_enabled()
    was_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    _set_deterministic(True, warn_only=True)
    try:
        yield
    finally:
        _set_deterministic(was_on, warn_only=was_warn)


def _set_deterministic(mode: bool, warn_only: bool) -> None:
    """``torch.use_deterministic_algorithms`` without its import of ``torch._inductor`` (several seconds
    per process, and only relevant to compiled code, which training here never uses)."""
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:  # future torch: fall back to the public API
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    else:
        setter(mode, warn_only=warn_only)


def _progress(enabled: bool) -> Progress:
    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=True,
        disable=not (enabled and console.is_terminal),
    )


def _optimizer(model: nn.Module, recipe: TrainRecipe) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if recipe.optimizer is OptimizerKind.ADAM:
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer is OptimizerKind.ADAMW:
        return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    return torch.optim.SGD(
        params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay, nesterov=True
    )


def _scheduler(opt: torch.optim.Optimizer, recipe: TrainRecipe, steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    if recipe.scheduler is SchedulerKind.COSINE:
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _step: 1.0)


def evaluate(model: nn.Module, split: ArraySplit, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` on ``split`` in [0, 1], computed in eval mode without gradients.

    The model's train/eval mode is restored afterwards.
    """
    if len(split) == 0:
        raise DataError("cannot evaluate on an empty split; load the data set with a larger limit")
    was_training = model.training
    model.eval()
    correct = 0
    try:
        with torch.inference_mode():
            for x, y in to_loader(split, batch_size):
                correct += int((model(x).argmax(dim=1) == y).sum())
    finally:
        model.train(was_training)
    return correct / len(split)


@dataclass
class _Step:
    """The per-run objects one epoch needs."""

    model: nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    criterion: nn.Module
    bars: Progress
    task: TaskID


def _train_epoch(step: _Step, loader: BatchLoader, epoch: int, lr: float) -> tuple[float, float]:
    """One pass over ``loader``; returns (mean loss in nats, training accuracy in [0, 1])."""
    step.model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    for x, y in loader:
        step.opt.zero_grad(set_to_none=True)
        logits = step.model(x)
        loss = step.criterion(logits, y)
        loss.backward()
        step.opt.step()
        step.sched.step()
        batch_loss = float(loss.detach())
        if not math.isfinite(batch_loss):
            raise TrainingDivergedError(f"loss became {batch_loss} in epoch {epoch}; lower the learning rate "
                                        f"(now {lr})")
        loss_sum += batch_loss * len(y)
        correct += int((logits.detach().argmax(dim=1) == y).sum())
        seen += len(y)
        step.bars.update(step.task, advance=1, status=f"loss {batch_loss:.3f}")
    return loss_sum / seen, correct / seen


def train(
    model: nn.Module,
    splits: Splits,
    recipe: TrainRecipe,
    progress: bool = True,
    num_threads: int | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``splits.train`` with ``recipe``; return accuracies and timings.

    Runs on CPU, deterministic for a given model initialisation, data, recipe and thread count (batch
    order and any dropout are seeded from ``recipe.seed``). Validation accuracy is measured after every
    epoch, test accuracy once at the end; the model is left in eval mode. Progress bars go to stderr
    (transient) when ``progress`` is true and stderr is a terminal; per-epoch summaries are logged at INFO.
    ``num_threads`` sets torch's intra-op threads for the run (default: at most 2 unless the user chose);
    tiny models train fastest with 1, and more threads than free cores slow OpenMP down badly.
    """
    start = time.perf_counter()
    loader = to_loader(splits.train, recipe.batch_size, shuffle=True, seed=recipe.seed)
    history: list[EpochStats] = []
    with _threads(num_threads), _deterministic(recipe.seed), _progress(progress) as bars:
        opt = _optimizer(model, recipe)
        step = _Step(model, opt, _scheduler(opt, recipe, recipe.epochs * len(loader)),
                     nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing), bars,
                     bars.add_task("", total=len(loader), status=""))
        for epoch in range(1, recipe.epochs + 1):
            t0 = time.perf_counter()
            bars.reset(step.task, total=len(loader), description=f"epoch {epoch}/{recipe.epochs}", status="")
            loss, train_acc = _train_epoch(step, loader, epoch, recipe.lr)
            val_acc = evaluate(model, splits.val) if len(splits.val) else float("nan")
            stats = EpochStats(epoch, loss, train_acc, val_acc, float(opt.param_groups[0]["lr"]),
                               time.perf_counter() - t0)
            history.append(stats)
            log.info("epoch %d/%d: loss %.4f, train acc %.4f, val acc %.4f, %.1f s", epoch, recipe.epochs,
                     stats.train_loss, stats.train_accuracy, stats.val_accuracy, stats.seconds)
        test_acc = evaluate(model, splits.test)
    model.eval()
    seconds = time.perf_counter() - start
    final_val = history[-1].val_accuracy
    log.info("trained %d epochs in %.1f s: val acc %.4f, test acc %.4f", recipe.epochs, seconds, final_val,
             test_acc)
    return TrainResult(final_val, test_acc, recipe.epochs, seconds, tuple(history))
