"""DNN-level O-tasks wrapping :mod:`accelflow.compress`: auto-PRUNING, auto-SCALING and quantisation-aware
fine-tuning (DNN-level QUANTIZATION). Tolerances are fractions (0.02 = 2 %): absolute accuracy drop for
pruning (as in MetaML), relative for scaling."""

from __future__ import annotations

from dataclasses import dataclass

from accelflow.compress import (
    PruneConfig,
    PruneScope,
    QATConfig,
    ScaleConfig,
    ScaleMethod,
    auto_prune,
    auto_scale,
    quantize_aware_train,
    weight_types_for_bits,
)
from accelflow.flow.state import DesignState, MetricKey, StateField
from accelflow.flow.task import Task, TaskContext, param
from accelflow.hls import FixedPoint
from accelflow.train import TrainRecipe, evaluate

__all__ = ["Prune", "Scale", "QuantizeAware"]


def _recipe(epochs: int, lr: float, seed: int, batch_size: int = 128) -> TrainRecipe:
    return TrainRecipe(epochs=epochs, lr=lr, seed=seed, batch_size=batch_size)


def _with_dnn_accuracy(state: DesignState) -> DesignState:
    """Every DNN-level task ends by measuring the float model's test accuracy as ``dnn.accuracy``."""
    assert state.model is not None
    return state.with_metrics("dnn", accuracy=evaluate(state.model, state.splits().test))


_DNN = MetricKey("dnn", "accuracy")


@dataclass
class Prune(Task):
    """Auto-PRUNING: magnitude pruning with a bisection on the rate; a rate is accepted if the fine-tuned
    accuracy drops by at most ``tolerance`` (absolute, 0.02 = 2 points) from the unpruned model."""

    name = "prune"
    needs = (StateField.MODEL, StateField.DATASET)
    produces = (MetricKey("prune", "rate"), MetricKey("prune", "sparsity"), MetricKey("prune", "accuracy"), _DNN)

    tolerance: float = param(0.02, low=0.0, high=0.5, help="absolute accuracy drop allowed (fraction)")
    structured: bool = param(False, help="remove whole neurons/filters instead of single weights")
    start_rate: float = param(0.5, low=0.01, high=0.99)
    min_step: float = param(0.02, low=0.001, high=0.49)
    scope: PruneScope = param(PruneScope.LAYER, choices=tuple(PruneScope),
                              help="unstructured: per-layer rate or one global |w| threshold")
    steps: int = param(1, low=1, high=20, help="gradual pruning: prune/fine-tune rounds per candidate")
    finetune_epochs: int = param(3, low=0, high=1000, help="fine-tuning epochs per candidate (0 = none)")
    lr: float = param(1e-3, low=1e-6, high=1.0, log_scale=True)
    batch_size: int = param(128, low=1)
    seed: int = param(0, low=0)

    def run(self, state: DesignState, ctx: TaskContext) -> DesignState:
        assert state.model is not None
        cfg = PruneConfig(tolerance_points=100.0 * self.tolerance, start_rate=self.start_rate,
                          min_step=self.min_step, structured=self.structured,
                          scope=self.scope, steps=self.steps,
                          finetune=_recipe(self.finetune_epochs, self.lr, self.seed, self.batch_size)
                          if self.finetune_epochs else None)
        res = auto_prune(state.model, state.splits(), cfg)
        out = state.evolve(model=res.model).with_metrics(
            "prune", rate=res.rate, sparsity=res.sparsity, accuracy=res.accuracy,
            reference_accuracy=res.reference_accuracy, trials=float(len(res.trials)))
        return _with_dnn_accuracy(out)


@dataclass
class Scale(Task):
    """Auto-SCALING: shrink every hidden width by a common factor (stepwise 1 - i/8 or Bayesian in
    [0.125, 0.99]), retraining each candidate; keep the smallest within ``tolerance`` (relative)."""

    name = "scale"
    needs = (StateField.MODEL, StateField.DATASET)
    produces = (MetricKey("scale", "factor"), MetricKey("scale", "accuracy"), _DNN)

    tolerance: float = param(0.02, low=0.0, high=0.5, help="relative accuracy loss allowed (fraction)")
    method: ScaleMethod = param(ScaleMethod.STEPWISE, choices=tuple(ScaleMethod))
    max_failures: int = param(3, low=1, high=8, help="stepwise: stop after this many rejected factors in a row")
    n_trials: int = param(10, low=1, high=200, help="bayesian: number of factors tried")
    retrain_epochs: int = param(5, low=1, high=1000)
    lr: float = param(2e-3, low=1e-6, high=1.0, log_scale=True)
    batch_size: int = param(128, low=1)
    seed: int = param(0, low=0)

    def run(self, state: DesignState, ctx: TaskContext) -> DesignState:
        assert state.model is not None
        cfg = ScaleConfig(tolerance_relative=self.tolerance, method=self.method, max_failures=self.max_failures,
                          retrain=_recipe(self.retrain_epochs, self.lr, self.seed, self.batch_size),
                          n_trials=self.n_trials, seed=self.seed)
        res = auto_scale(state.model, state.splits(), cfg)
        out = state.evolve(model=res.model).with_metrics(
            "scale", factor=res.factor, accuracy=res.accuracy, reference_accuracy=res.reference_accuracy,
            trials=float(len(res.trials))).with_info(widths=list(res.widths))
        return _with_dnn_accuracy(out)


@dataclass
class QuantizeAware(Task):
    """DNN-level QUANTIZATION: quantisation-aware fine-tuning with ``ap_fixed<weight_bits, weight_integer>``
    weights (every layer) and optional fixed-point activations; the weights end on their grid."""

    name = "qat"
    needs = (StateField.MODEL, StateField.DATASET)
    produces = (MetricKey("qat", "accuracy"), _DNN)

    weight_bits: int = param(8, low=2, high=32)
    weight_integer: int = param(2, low=-8, high=32)
    per_layer_integer: bool = param(False, help="integer bits per layer from its largest |w| "
                                    "(weight_integer ignored)")
    activation_bits: int = param(16, low=0, high=32, help="0 = activations stay float")
    activation_integer: int = param(6, low=-8, high=32)
    epochs: int = param(3, low=1, high=1000)
    lr: float = param(5e-4, low=1e-6, high=1.0, log_scale=True)
    batch_size: int = param(128, low=1)
    seed: int = param(0, low=0)

    def run(self, state: DesignState, ctx: TaskContext) -> DesignState:
        assert state.model is not None
        act = FixedPoint(self.activation_bits, self.activation_integer) if self.activation_bits else None
        weight = (weight_types_for_bits(state.model, self.weight_bits) if self.per_layer_integer
                  else FixedPoint(self.weight_bits, self.weight_integer))
        cfg = QATConfig(weight=weight, activation=act,
                        finetune=_recipe(self.epochs, self.lr, self.seed, self.batch_size))
        res = quantize_aware_train(state.model, state.splits(), cfg)
        out = state.evolve(model=res.model).with_metrics(
            "qat", accuracy=res.accuracy, reference_accuracy=res.reference_accuracy)
        out = out.with_info(qat_weight_types={k: str(v) for k, v in res.weight_types.items()})
        return _with_dnn_accuracy(out)
