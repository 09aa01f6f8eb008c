"""DNN-level quantisation-aware fine-tuning with per-layer fixed-point weights and activations.

Every dense/conv layer is wrapped so that its weights and its outputs pass through a fake quantiser
(``ap_fixed``-like: truncation to the LSB grid, saturation at the range during training) with a
straight-through gradient. Zero weights (from pruning) stay zero. After fine-tuning the wrappers are
removed and the weights are left on their fixed-point grid, so hls4ml reproduces them exactly.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from accelflow.compress._common import CompressError, evaluate_on, fit, prunable_layers
from accelflow.data import Splits
from accelflow.hls._fixed import FixedPoint, RoundingMode
from accelflow.hls._profile import integer_bits
from accelflow.train import TrainRecipe

__all__ = ["QATConfig", "QATResult", "quantize_aware_train", "fake_quantize", "weight_types_for_bits"]

log = logging.getLogger(__name__)


class _STEQuant(torch.autograd.Function):
    @staticmethod
    def forward(ctx: object, x: torch.Tensor, fp: FixedPoint) -> torch.Tensor:  # type: ignore[override]
        scale = 2.0**fp.fractional
        y = x * scale
        y = torch.floor(y + 0.5) if fp.rounding is RoundingMode.RND else torch.floor(y)
        return torch.clamp(y / scale, fp.min_value, fp.max_value)

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad, None


def fake_quantize(x: torch.Tensor, fp: FixedPoint) -> torch.Tensor:
    """``x`` on ``fp``'s grid (floor or round, saturated), with an identity (straight-through) gradient."""
    return _STEQuant.apply(x, fp)  # type: ignore[no-any-return]


class _QuantWrapped(nn.Module):
    def __init__(self, inner: nn.Linear | nn.Conv2d | nn.Conv1d, weight: FixedPoint, act: FixedPoint | None):
        super().__init__()
        self.inner = inner
        self.weight_type = weight
        self.act_type = act
        self.register_buffer("mask", (inner.weight.detach() != 0).to(inner.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = fake_quantize(self.inner.weight * self.mask, self.weight_type)
        if isinstance(self.inner, nn.Linear):
            y = nn.functional.linear(x, w, self.inner.bias)
        else:
            y = self.inner._conv_forward(x, w, self.inner.bias)
        return fake_quantize(y, self.act_type) if self.act_type is not None else y


@dataclass(frozen=True)
class QATConfig:
    """Per-layer weight/activation types (module names from ``named_modules``, e.g. ``layers.fc1``; a
    single FixedPoint applies to every layer; None: activations not quantised) and the fine-tune recipe."""

    weight: FixedPoint | Mapping[str, FixedPoint] = FixedPoint(8, 2)
    activation: FixedPoint | Mapping[str, FixedPoint] | None = FixedPoint(16, 6)
    finetune: TrainRecipe = TrainRecipe(epochs=3, lr=5e-4)
    eval_split: str = "val"


@dataclass(frozen=True)
class QATResult:
    """Fine-tuned model (plain layers, weights on their fixed-point grids), accuracies in [0, 1] on the
    config's eval split before (float) and after (fake-quantised) fine-tuning."""

    model: nn.Module
    accuracy: float
    reference_accuracy: float
    weight_types: dict[str, FixedPoint] = field(default_factory=dict)
    activation_types: dict[str, FixedPoint | None] = field(default_factory=dict)


def _pick(spec: FixedPoint | Mapping[str, FixedPoint] | None, name: str) -> FixedPoint | None:
    if spec is None or isinstance(spec, FixedPoint):
        return spec
    return spec.get(name)


def weight_types_for_bits(
    model: nn.Module, bits: int | Mapping[str, int], rounding: RoundingMode = RoundingMode.RND
) -> dict[str, FixedPoint]:
    """Per-layer weight types of ``bits`` total bits (an int for every layer or a mapping by module name;
    layers left out are skipped) whose integer bits (sign included) just cover the layer's largest |weight|,
    so every fractional bit left goes to resolution. Round-to-nearest by default: QAT then moves each weight
    to the nearest grid point instead of always down."""
    types: dict[str, FixedPoint] = {}
    for name, mod in prunable_layers(model):
        b = bits.get(name) if isinstance(bits, Mapping) else bits
        if b is None:
            continue
        if b < 2:
            raise CompressError(f"weight_types_for_bits: {name!r} needs at least 2 bits (sign + 1), got {b}")
        types[name] = FixedPoint(
            int(b), integer_bits(float(mod.weight.detach().abs().max()), 0), rounding=rounding
        )
    return types


def quantize_aware_train(model: nn.Module, splits: Splits, config: QATConfig = QATConfig()) -> QATResult:
    """Fine-tune a copy of ``model`` with fake-quantised weights/activations; return it with weights
    quantised to their types (see module doc)."""
    layers = prunable_layers(model)
    if not layers:
        raise CompressError("quantize_aware_train: the model has no Linear/Conv layers")
    reference = evaluate_on(model, splits, config.eval_split)
    q = copy.deepcopy(model)
    wtypes: dict[str, FixedPoint] = {}
    atypes: dict[str, FixedPoint | None] = {}
    for name, mod in prunable_layers(q):
        wt = _pick(config.weight, name)
        if wt is None:
            continue
        at = _pick(config.activation, name)
        wtypes[name], atypes[name] = wt, at
        parent_name, _, leaf = name.rpartition(".")
        parent = q.get_submodule(parent_name) if parent_name else q
        setattr(parent, leaf, _QuantWrapped(mod, wt, at))
    fit(q, splits, config.finetune)
    accuracy = evaluate_on(q, splits, config.eval_split)
    # unwrap: weights onto their grids (masked), activations left to the HLS precision
    for name, mod in list(q.named_modules()):
        if isinstance(mod, _QuantWrapped):
            with torch.no_grad():
                mod.inner.weight.copy_(fake_quantize(mod.inner.weight * mod.mask, mod.weight_type))
            parent_name, _, leaf = name.rpartition(".")
            parent = q.get_submodule(parent_name) if parent_name else q
            setattr(parent, leaf, mod.inner)
    log.info("QAT: accuracy %.4f (float reference %.4f)", accuracy, reference)
    return QATResult(q.eval(), accuracy, reference, wtypes, atypes)
