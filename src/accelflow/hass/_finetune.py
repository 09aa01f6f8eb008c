"""Short fine-tuning of a thresholded, pruned model with its pruning masks held fixed."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from accelflow.data import ArraySplit
from accelflow.hass._space import Thresholds

__all__ = ["FineTune"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class FineTune:
    """``FineTune(train_split, steps)(model, thresholds) -> tuned model``: Adam for ``steps`` mini-batches of
    ``batch_size`` with the thresholded activations in place; pruned weights are re-zeroed after every step
    so the sparsity pattern is kept. The original model is not modified."""

    train: ArraySplit
    steps: int = 200
    batch_size: int = 128
    lr: float = 2e-4
    seed: int = 0

    def __call__(self, model: nn.Module, thresholds: Thresholds) -> nn.Module:
        tuned = thresholds.apply(model)
        masks = {name: (tuned.get_submodule(name).weight != 0).to(torch.float32)
                 for name, t in thresholds.weight.items() if t > 0}
        opt = torch.optim.Adam(tuned.parameters(), lr=self.lr)
        rng = np.random.default_rng(self.seed)
        tuned.train()
        for _ in range(self.steps):
            idx = rng.integers(0, len(self.train), self.batch_size)
            x, y = torch.as_tensor(self.train.x[idx]), torch.as_tensor(self.train.y[idx])
            opt.zero_grad()
            loss = nn.functional.cross_entropy(tuned(x), y)
            loss.backward()
            opt.step()
            with torch.no_grad():
                for name, mask in masks.items():
                    tuned.get_submodule(name).weight.mul_(mask)
        tuned.eval()
        log.info("fine-tuned %d steps, last loss %.4f", self.steps, float(loss.detach()))
        return tuned
