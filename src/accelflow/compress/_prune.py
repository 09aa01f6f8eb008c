"""Magnitude pruning (unstructured and structured) and MetaML's auto-pruning: bisection on the rate."""

from __future__ import annotations

import copy
import enum
import logging
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from accelflow.compress._common import CompressError, evaluate_on, fit, prunable_layers
from accelflow.data import Splits
from accelflow.errors import ConfigError
from accelflow.train import TrainRecipe

__all__ = [
    "PruneScope",
    "PruneConfig",
    "PruneTrial",
    "PruneResult",
    "prune_magnitude",
    "auto_prune",
    "weight_sparsity",
    "gradual_rates",
]

log = logging.getLogger(__name__)


class PruneScope(enum.StrEnum):
    """Where the unstructured magnitude threshold is taken."""

    LAYER = "layer"  # the same rate in every layer (each layer's smallest |w|)
    GLOBAL = "global"  # one |w| threshold over all layers (ours: wide layers end up sparser)


@dataclass(frozen=True)
class PruneConfig:
    """Auto-pruning settings; constructing one does no work.

    ``tolerance_points``: accepted absolute accuracy drop in percentage points (2.0 = 2 points) against the
    unpruned model on ``eval_split``. The bisection starts at ``start_rate`` and stops when the next step
    would be smaller than ``min_step``. ``structured`` removes whole neurons/filters (L1 norm of their
    weights) of every hidden layer instead of single weights. ``finetune`` retrains each candidate with its
    mask fixed (None: no fine-tuning). ``scope`` applies to unstructured pruning only. ``steps`` > 1 prunes
    gradually (ours, after Zhu & Gupta 2017): each candidate rate r is reached in ``steps`` rounds of
    prune-then-fine-tune at rates ``r * (1 - (1 - k/steps)**3)``, k = 1..steps, each round keeping the
    previous round's zeros; it costs ``steps`` fine-tunes per candidate and keeps more accuracy at high rates.
    """

    tolerance_points: float = 2.0
    start_rate: float = 0.5
    min_step: float = 0.02
    structured: bool = False
    finetune: TrainRecipe | None = TrainRecipe(epochs=3, lr=1e-3)
    eval_split: str = "val"
    scope: PruneScope = PruneScope.LAYER
    steps: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "scope", PruneScope(self.scope))
        if self.steps < 1:
            raise ConfigError(f"PruneConfig.steps must be >= 1, got {self.steps}")
        if self.steps > 1 and self.finetune is None:
            raise ConfigError("PruneConfig.steps > 1 needs a finetune recipe (gradual pruning retrains)")
        if not 0.0 < self.start_rate < 1.0:
            raise ConfigError(f"PruneConfig.start_rate must be in (0, 1), got {self.start_rate}")
        if not 0.0 < self.min_step < 0.5:
            raise ConfigError(f"PruneConfig.min_step must be in (0, 0.5), got {self.min_step}")
        if self.tolerance_points < 0:
            raise ConfigError(f"PruneConfig.tolerance_points must be >= 0, got {self.tolerance_points}")
        if self.eval_split not in ("train", "val", "test"):
            raise ConfigError(f"PruneConfig.eval_split must be train/val/test, got {self.eval_split!r}")


@dataclass(frozen=True)
class PruneTrial:
    """One candidate: pruning rate, accuracy in [0, 1] after fine-tuning, whether it was accepted."""

    rate: float
    accuracy: float
    accepted: bool
    seconds: float


@dataclass(frozen=True)
class PruneResult:
    """Best accepted pruned model (the unpruned copy if no rate was accepted).

    ``rate`` is the requested pruning rate, ``sparsity`` the measured fraction of zero weights over all
    prunable layers, accuracies in [0, 1] on the config's ``eval_split``.
    """

    model: nn.Module
    rate: float
    accuracy: float
    reference_accuracy: float
    sparsity: float
    trials: tuple[PruneTrial, ...]


def _masks(
    model: nn.Module, rate: float, structured: bool, scope: PruneScope = PruneScope.LAYER
) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
    """Weight (and bias) masks per prunable layer. Structured: rows of hidden layers by L1 norm; the output
    layer keeps all its neurons. Unstructured: smallest |w| per layer (or over all layers for GLOBAL scope),
    output layer included."""
    layers = prunable_layers(model)
    masks: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
    if not structured and scope is PruneScope.GLOBAL:
        flat = torch.cat([m.weight.detach().abs().flatten() for _, m in layers])
        k = int(round(rate * flat.numel()))
        if k == 0:
            return {name: (torch.ones_like(m.weight), None) for name, m in layers}
        threshold = torch.sort(flat, stable=True).values[k - 1]
        return {name: ((m.weight.detach().abs() > threshold).to(m.weight.dtype), None) for name, m in layers}
    for i, (name, mod) in enumerate(layers):
        w = mod.weight.detach()
        if structured:
            if i == len(layers) - 1:
                continue
            norms = w.abs().reshape(w.shape[0], -1).sum(dim=1)
            drop = int(round(rate * w.shape[0]))
            drop = min(drop, w.shape[0] - 1)  # keep at least one neuron
            keep = torch.ones(w.shape[0], dtype=torch.bool)
            if drop > 0:
                keep[torch.argsort(norms, stable=True)[:drop]] = False
            shape = (-1,) + (1,) * (w.dim() - 1)
            wmask = keep.reshape(shape).expand_as(w).to(w.dtype).clone()
            bmask = keep.to(w.dtype) if mod.bias is not None else None
            masks[name] = (wmask, bmask)
        else:
            k = int(round(rate * w.numel()))
            wmask = torch.ones_like(w)
            if k > 0:
                idx = torch.argsort(w.abs().flatten(), stable=True)[:k]
                wmask.view(-1)[idx] = 0.0
            masks[name] = (wmask, None)
    return masks


def _apply(model: nn.Module, masks: dict[str, tuple[torch.Tensor, torch.Tensor | None]]) -> None:
    mods = dict(model.named_modules())
    for name, (wmask, bmask) in masks.items():
        torch_prune.custom_from_mask(mods[name], "weight", wmask)
        if bmask is not None:
            torch_prune.custom_from_mask(mods[name], "bias", bmask)


def _bake(model: nn.Module) -> None:
    """Make the masks permanent (plain weights with zeros) so the model saves and converts normally."""
    for mod in model.modules():
        for pname in ("weight", "bias"):
            if torch_prune.is_pruned(mod) and hasattr(mod, pname + "_mask"):
                torch_prune.remove(mod, pname)


def prune_magnitude(
    model: nn.Module,
    rate: float,
    structured: bool = False,
    splits: Splits | None = None,
    finetune: TrainRecipe | None = None,
    scope: PruneScope = PruneScope.LAYER,
) -> nn.Module:
    """Copy of ``model`` with a fraction ``rate`` of weights (or hidden neurons/filters) zeroed by magnitude,
    optionally fine-tuned on ``splits`` with the mask held fixed. The input model is not changed."""
    if not 0.0 <= rate < 1.0:
        raise ConfigError(f"pruning rate must be in [0, 1), got {rate}")
    pruned = copy.deepcopy(model)
    _apply(pruned, _masks(pruned, rate, structured, PruneScope(scope)))
    if finetune is not None:
        if splits is None:
            raise ConfigError("prune_magnitude: fine-tuning needs splits")
        fit(pruned, splits, finetune)
    _bake(pruned)
    return pruned.eval()


def gradual_rates(rate: float, steps: int) -> list[float]:
    """Intermediate pruning rates ``rate * (1 - (1 - k/steps)**3)``, k = 1..steps (cubic: large steps
    first, small ones near the target, as Zhu & Gupta's schedule); the last one is ``rate``."""
    return [rate * (1.0 - (1.0 - k / steps) ** 3) for k in range(1, steps + 1)]


def _prune_gradually(model: nn.Module, rate: float, splits: Splits, config: PruneConfig) -> nn.Module:
    """``config.steps`` rounds of magnitude pruning + fine-tuning up to ``rate``. Weights already zero
    are the smallest in magnitude, so each round's mask contains the previous round's zeros."""
    current = model
    for r in gradual_rates(rate, config.steps):
        current = prune_magnitude(current, r, config.structured, splits, config.finetune, config.scope)
    return current


def weight_sparsity(model: nn.Module) -> float:
    """Fraction of exactly-zero weights over all dense/conv layers."""
    zeros = total = 0
    for _, mod in prunable_layers(model):
        zeros += int((mod.weight == 0).sum())
        total += mod.weight.numel()
    return zeros / max(1, total)


def auto_prune(model: nn.Module, splits: Splits, config: PruneConfig = PruneConfig()) -> PruneResult:
    """MetaML auto-pruning: try ``start_rate``, then bisect — up after an accepted rate, down after a
    rejected one — until the step is below ``min_step``; every candidate starts from ``model`` (not from the
    previous candidate) and is fine-tuned with its mask fixed. Returns the highest accepted rate."""
    if not prunable_layers(model):
        raise CompressError("auto_prune: the model has no Linear/Conv layers to prune")
    reference = evaluate_on(model, splits, config.eval_split)
    best: PruneResult | None = None
    trials: list[PruneTrial] = []
    lo, hi, rate = 0.0, 1.0, config.start_rate
    while True:
        t0 = time.perf_counter()
        if config.steps > 1:
            candidate = _prune_gradually(model, rate, splits, config)
        else:
            candidate = prune_magnitude(model, rate, config.structured, splits, config.finetune, config.scope)
        acc = evaluate_on(candidate, splits, config.eval_split)
        accepted = (reference - acc) * 100.0 <= config.tolerance_points
        trials.append(PruneTrial(rate, acc, accepted, time.perf_counter() - t0))
        log.info(
            "prune rate %.3f: accuracy %.4f (reference %.4f) %s",
            rate,
            acc,
            reference,
            "accepted" if accepted else "rejected",
        )
        if accepted:
            if best is None or rate > best.rate:
                best = PruneResult(candidate, rate, acc, reference, weight_sparsity(candidate), ())
            lo = rate
        else:
            hi = rate
        nxt = (lo + hi) / 2.0
        if abs(nxt - rate) < config.min_step:
            break
        rate = nxt
    if best is None:
        best = PruneResult(copy.deepcopy(model).eval(), 0.0, reference, reference, weight_sparsity(model), ())
    return PruneResult(best.model, best.rate, best.accuracy, reference, best.sparsity, tuple(trials))
