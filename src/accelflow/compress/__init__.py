"""DNN-level optimisation tasks of MetaML as plain functions: auto-pruning, auto-scaling and
quantisation-aware fine-tuning. Each takes (model, splits, config dataclass) and returns a frozen result
with the new model and its metrics; the input model is never modified.

Example::

    from accelflow.compress import PruneConfig, ScaleConfig, auto_prune, auto_scale
    from accelflow.data import load
    from accelflow.train import TrainRecipe, cached_model

    model, _ = cached_model("digits_mlp", "digits")
    splits = load("digits")
    res = auto_prune(model, splits, PruneConfig(tolerance_points=2.0, finetune=TrainRecipe(epochs=5)))
    res.rate, res.accuracy, res.reference_accuracy, res.sparsity
    small = auto_scale(res.model, splits, ScaleConfig(tolerance_relative=0.02))

Scaling supports chain-structured models (zoo jet_dnn, digits_mlp, lenet5, vgg7).
"""

from accelflow.compress._common import CompressError, prunable_layers
from accelflow.compress._prune import (
    PruneConfig,
    PruneResult,
    PruneScope,
    PruneTrial,
    auto_prune,
    gradual_rates,
    prune_magnitude,
    weight_sparsity,
)
from accelflow.compress._qat import (
    QATConfig,
    QATResult,
    fake_quantize,
    quantize_aware_train,
    weight_types_for_bits,
)
from accelflow.compress._scale import (
    ScaleConfig,
    ScaleMethod,
    ScaleResult,
    ScaleTrial,
    auto_scale,
    layer_widths,
    scale_widths,
)

__all__ = [
    "CompressError",
    "PruneConfig",
    "PruneResult",
    "PruneScope",
    "PruneTrial",
    "QATConfig",
    "QATResult",
    "ScaleConfig",
    "ScaleMethod",
    "ScaleResult",
    "ScaleTrial",
    "auto_prune",
    "auto_scale",
    "fake_quantize",
    "gradual_rates",
    "layer_widths",
    "prunable_layers",
    "prune_magnitude",
    "quantize_aware_train",
    "scale_widths",
    "weight_sparsity",
    "weight_types_for_bits",
]
