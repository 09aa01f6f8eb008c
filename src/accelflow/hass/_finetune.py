"""Short fine-tuning of a thresholded, pruned model with its pruning masks held fixed."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import TextColumn, TimeRemainingColumn
from torch import nn

from accelflow.data import ArraySplit
from accelflow.hass._errors import HassError
from accelflow.hass._progress import progress_bar
from accelflow.hass._space import Thresholds
from accelflow.train import arrays_digest, load_weights, save_weights, weights_cache_dir, weights_digest

__all__ = ["FINETUNE_CACHE_VERSION", "FineTune", "finetune_cache_dir"]

log = logging.getLogger(__name__)

#: Bump when the fine-tuning loop changes in a way that makes cached tuned weights stale.
FINETUNE_CACHE_VERSION = 1


def finetune_cache_dir() -> Path:
    """Where the CLI and the flow keep fine-tuned weights: ``<weights cache>/finetune``."""
    return weights_cache_dir() / "finetune"


@dataclass(frozen=True, eq=False)
class FineTune:
    """``FineTune(train_split, steps)(model, thresholds) -> tuned model``: Adam for ``steps`` mini-batches of
    ``batch_size`` with the thresholded activations in place; pruned weights are re-zeroed after every step
    so the sparsity pattern is kept. The original model is not modified. ``progress`` shows a bar with the
    running loss on a terminal (a fine-tuning takes minutes on CPU).

    ``distill`` > 0 adds knowledge distillation from the original (dense, unthresholded) model, the usual
    way to recover a pruned network in few steps (Hinton et al., 2015): the loss is
    ``(1 - distill) * CE(labels) + distill * T**2 * KL(softmax(teacher / T) || softmax(student / T))`` with
    ``T = temperature``. The teacher's soft targets say how the unpruned network ranks every class, more
    signal per image than the label. Measured here (docs/hass.md) it did not help at 800-1600 steps; the
    recipe that recovered most (MobileNetV2-tiny) was 3200 distilled steps, which was not tried without it.

    ``ramp`` > 0 prunes gradually (Zhu and Gupta, 2017): the weight and activation thresholds rise from 0
    to their values over the first ``ramp`` fraction of the steps, as ``t * (1 - (1 - s / S)**3)``, so
    the network adapts while it loses its small weights and activations instead of all at once. Weight
    masks are recomputed from the current magnitudes every ~1% of the steps and only ever grow, to the end,
    so the returned model is what the thresholds make of it (the evaluator re-applies them). 0 prunes
    at once and keeps the masks of the original weights.

    ``cache_dir`` keeps each tuned model under a hash of everything that decides it (the recipe, the
    thresholds, the original model's weights and the training split), so an interrupted or repeated
    recovery (:func:`~accelflow.hass.recover`, minutes per candidate) loads the fine-tunings already done."""

    train: ArraySplit
    steps: int = 200
    batch_size: int = 128
    lr: float = 2e-4
    seed: int = 0
    progress: bool = False
    distill: float = 0.0
    temperature: float = 4.0
    ramp: float = 0.0
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        self.check_settings(steps=self.steps, batch_size=self.batch_size, lr=self.lr, distill=self.distill,
                            temperature=self.temperature, ramp=self.ramp)

    @staticmethod
    def check_settings(*, steps: int = 1, batch_size: int = 1, lr: float = 2e-4, distill: float = 0.0,
                       temperature: float = 4.0, ramp: float = 0.0) -> None:
        """Raise `HassError` naming the bad setting. Callers (the CLI) use it to refuse a bad recipe before
        the network and its training split are loaded, which constructing a `FineTune` needs."""
        if steps < 1 or batch_size < 1 or not lr > 0:
            raise HassError(f"FineTune needs steps >= 1, batch_size >= 1 and lr > 0; got steps={steps}, "
                            f"batch_size={batch_size}, lr={lr}")
        if not 0.0 <= distill <= 1.0 or not temperature > 0:
            raise HassError(f"FineTune needs 0 <= distill <= 1 and temperature > 0; got distill={distill}, "
                            f"temperature={temperature}")
        if not 0.0 <= ramp <= 1.0:
            raise HassError(f"FineTune needs 0 <= ramp <= 1 (the fraction of steps over which the thresholds "
                            f"rise); got ramp={ramp}")

    def recipe(self) -> dict[str, float | int]:
        """The settings that decide the tuned weights, for results to record."""
        return {"steps": self.steps, "batch_size": self.batch_size, "lr": self.lr, "seed": self.seed,
                "distill": self.distill, "temperature": self.temperature, "ramp": self.ramp}

    def cache_key(self, model: nn.Module, thresholds: Thresholds) -> str:
        """Hex sha256 of the recipe, the thresholds, ``model``'s weights and the training split."""
        payload = {"recipe": self.recipe(), "thresholds": thresholds.to_dict(), "model": weights_digest(model),
                   "train": self._train_sha256, "version": FINETUNE_CACHE_VERSION}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    @functools.cached_property
    def _train_sha256(self) -> str:
        return arrays_digest(self.train.x, self.train.y)

    def __call__(self, model: nn.Module, thresholds: Thresholds) -> nn.Module:
        stem = None if self.cache_dir is None else Path(self.cache_dir) / self.cache_key(model, thresholds)
        if stem is not None:
            cached = thresholds.apply(model)
            if load_weights(cached, stem) is not None:
                log.info("loaded fine-tuned weights from %s", stem.with_suffix(".pt"))
                return cached.eval()
        start = time.perf_counter()
        tuned = self._tune(model, thresholds)
        if stem is not None:
            save_weights(tuned, stem, {"model": type(model).__name__, "recipe": self.recipe(),
                                       "thresholds": thresholds.to_dict(),
                                       "seconds": time.perf_counter() - start, "torch_version": torch.__version__,
                                       "version": FINETUNE_CACHE_VERSION})
        return tuned

    def _tune(self, model: nn.Module, thresholds: Thresholds) -> nn.Module:
        ramp_steps = round(self.ramp * self.steps)
        if ramp_steps:  # thresholded modules in place, every threshold starting at 0
            tuned = Thresholds({}, dict.fromkeys(thresholds.activation, 0.0)).apply(model)
        else:
            tuned = thresholds.apply(model)
        teacher = copy.deepcopy(model).eval() if self.distill > 0 else None
        masks = {name: (tuned.get_submodule(name).weight != 0).to(torch.float32)
                 for name, t in thresholds.weight.items() if t > 0}
        every = max(1, self.steps // 100)
        opt = torch.optim.Adam(tuned.parameters(), lr=self.lr)
        rng = np.random.default_rng(self.seed)
        tuned.train()
        with progress_bar(self.progress, TimeRemainingColumn(), TextColumn("loss {task.fields[loss]:.4f}")) as bar:
            task = bar.add_task("fine-tune", total=self.steps, loss=float("nan"))
            for step in range(self.steps):
                if ramp_steps and (step % every == 0 or step == ramp_steps):
                    _raise_thresholds(tuned, thresholds, masks, 1 - (1 - min(step / ramp_steps, 1.0)) ** 3)
                loss = self._step(tuned, teacher, opt, masks, rng)
                if step % 20 == 0 or step == self.steps - 1:
                    bar.update(task, completed=step + 1, loss=float(loss))
        if ramp_steps:
            _raise_thresholds(tuned, thresholds, masks, 1.0)
        tuned.eval()
        log.info("fine-tuned %d steps, last loss %.4f", self.steps, float(loss))
        return tuned

    def _step(self, tuned: nn.Module, teacher: nn.Module | None, opt: torch.optim.Optimizer,
              masks: dict[str, torch.Tensor], rng: np.random.Generator) -> torch.Tensor:
        idx = rng.integers(0, len(self.train), self.batch_size)
        x, y = torch.as_tensor(self.train.x[idx]), torch.as_tensor(self.train.y[idx])
        opt.zero_grad()
        logits = tuned(x)
        loss = nn.functional.cross_entropy(logits, y)
        if teacher is not None:
            with torch.no_grad():
                soft = nn.functional.log_softmax(teacher(x) / self.temperature, dim=1)
            kl = nn.functional.kl_div(nn.functional.log_softmax(logits / self.temperature, dim=1), soft,
                                      reduction="batchmean", log_target=True)
            loss = (1 - self.distill) * loss + self.distill * self.temperature**2 * kl
        loss.backward()
        opt.step()
        with torch.no_grad():
            for name, mask in masks.items():
                tuned.get_submodule(name).weight.mul_(mask)
        return loss.detach()


@torch.no_grad()
def _raise_thresholds(tuned: nn.Module, thresholds: Thresholds, masks: dict[str, torch.Tensor], fraction: float) -> None:
    """Set ``tuned``'s thresholds to ``fraction`` of ``thresholds``: activation cut-offs in place, weight masks
    narrowed (never widened) to the current magnitudes at or above the scaled threshold, weights re-masked."""
    for name, t in thresholds.activation.items():
        tuned.get_submodule(name).threshold = fraction * t
    for name, mask in masks.items():
        weight = tuned.get_submodule(name).weight
        mask.mul_((weight.abs() >= fraction * thresholds.weight[name]).to(mask.dtype))
        weight.mul_(mask)
