"""Frozen search results: the chosen design per layer, totals, the baselines and every trial."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from accelflow.hass._evaluate import Evaluation
from accelflow.hass._space import Objective, Thresholds, ThresholdSpace

__all__ = ["LayerResult", "TrialRecord", "HassResult", "make_result"]


@dataclass(frozen=True)
class LayerResult:
    """One layer of the chosen design: folding, cycles per image, resources, measured sparsity (fraction of
    zero products), and the thresholds applied to its weights and to the ReLU feeding it."""

    name: str
    op: str
    folding: dict[str, int]
    cycles_per_image: float
    resources: dict[str, float]
    sparse: bool
    sparsity: float
    weight_threshold: float | None
    activation_threshold: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class TrialRecord:
    """One evaluated point (search trial or baseline probe); accuracy in [0, 1], drop in points."""

    number: int
    source: str
    accuracy: float
    accuracy_drop: float
    throughput_images_per_s: float
    dsp: int
    objective: float
    feasible: bool
    zero_products: float = 0.0  # MAC-weighted fraction of zero products over the network

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class HassResult:
    """The returned design of a search (or baseline) and how it compares with the dense design."""

    method: str
    network: str
    device: str
    objective: Objective
    max_accuracy_drop: float
    reference_accuracy: float
    accuracy: float
    accuracy_drop: float
    throughput_images_per_s: float
    dense_throughput_images_per_s: float
    dense_dsp: int
    dsp: int
    lut: float
    ff: float
    bram18: float
    binding_resource: str
    layers: tuple[LayerResult, ...]
    thresholds: Thresholds
    trials: tuple[TrialRecord, ...] = ()
    finetuned: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    zero_products: float = 0.0
    lockstep: str = "mean"  # the sparse layers' lock-step cost model the design was folded and scored under
    #: the fine-tuned weights (thresholds not yet applied) when ``finetuned``; otherwise None: the design is
    #: the searched model with ``thresholds``. Not serialised; see :meth:`design_model`.
    model: Any = field(default=None, repr=False, compare=False)

    def design_model(self, searched: Any) -> Any:
        """The network of this design: ``thresholds`` applied to the fine-tuned weights, or to ``searched``
        (the model the search ran on) when the design was not fine-tuned. A copy; neither input changes."""
        return self.thresholds.apply(self.model if self.model is not None else searched)

    @property
    def throughput_per_dsp(self) -> float:
        return self.throughput_images_per_s / max(self.dsp, 1)

    @property
    def objective_value(self) -> float:
        """The design's value of the searched objective: images/s, or images/s per DSP."""
        return self.throughput_images_per_s if self.objective is Objective.THROUGHPUT else self.throughput_per_dsp

    @property
    def speedup_over_dense(self) -> float:
        return self.throughput_images_per_s / self.dense_throughput_images_per_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "network": self.network,
            "device": self.device,
            "objective": self.objective.value,
            "max_accuracy_drop": self.max_accuracy_drop,
            "reference_accuracy": self.reference_accuracy,
            "accuracy": self.accuracy,
            "accuracy_drop": self.accuracy_drop,
            "throughput_images_per_s": self.throughput_images_per_s,
            "dense_throughput_images_per_s": self.dense_throughput_images_per_s,
            "dense_dsp": self.dense_dsp,
            "throughput_per_dsp": self.throughput_per_dsp,
            "speedup_over_dense": self.speedup_over_dense,
            "dsp": self.dsp,
            "lut": self.lut,
            "ff": self.ff,
            "bram18": self.bram18,
            "binding_resource": self.binding_resource,
            "lockstep": self.lockstep,
            "zero_products": self.zero_products,
            "finetuned": self.finetuned,
            "layers": [layer.to_dict() for layer in self.layers],
            "thresholds": self.thresholds.to_dict(),
            "trials": [t.to_dict() for t in self.trials],
            **self.extra,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def make_result(method: str, best: Evaluation, dense_throughput: float, dense_dsp: int, space: ThresholdSpace,
                objective: Objective, max_accuracy_drop: float, reference_accuracy: float,
                trials: tuple[TrialRecord, ...] = (), finetuned: bool = False,
                extra: dict[str, Any] | None = None, lockstep: str = "mean", model: Any = None) -> HassResult:
    """Assemble a :class:`HassResult` from an evaluation (the caller guarantees it is feasible)."""
    design = best.design
    layers = []
    for layer in design.layers:
        feed = space.feeds.get(layer.name)
        layers.append(LayerResult(
            name=layer.name, op=layer.op.value, folding=layer.folding.as_dict(),
            cycles_per_image=float(layer.cycles_per_image), resources=layer.resources.as_dict(),
            sparse=bool(layer.sparse), sparsity=float(best.sparsity.get(layer.name, layer.sparsity)),
            weight_threshold=best.thresholds.weight.get(layer.name),
            activation_threshold=None if feed is None else best.thresholds.activation.get(feed),
        ))
    r = design.resources
    return HassResult(
        method=method, network=design.network, device=design.device.name, objective=objective,
        max_accuracy_drop=max_accuracy_drop, reference_accuracy=reference_accuracy, accuracy=best.accuracy,
        accuracy_drop=best.accuracy_drop, throughput_images_per_s=best.throughput,
        dense_throughput_images_per_s=dense_throughput, dense_dsp=dense_dsp, dsp=int(r.dsp), lut=float(r.lut),
        ff=float(r.ff), bram18=float(r.bram18), binding_resource=design.binding_resource.value,
        layers=tuple(layers), thresholds=best.thresholds, trials=trials, finetuned=finetuned,
        extra=dict(extra or {}), zero_products=float(best.zero_products), lockstep=lockstep, model=model,
    )
