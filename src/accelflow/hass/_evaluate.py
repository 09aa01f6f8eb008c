"""One HASS evaluation: thresholds -> (accuracy, measured sparsity, folded dataflow design).

:class:`Evaluator` holds everything fixed during a search (trained model, validation and calibration
subsets, device, folding method) and is called with a :class:`Thresholds`; it is deterministic, so a trial
can be re-evaluated later (e.g. after resuming a study) with identical numbers.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import nn

from accelflow.data import ArraySplit
from accelflow.dataflow import DataflowDesign, Device, Method, optimise_folding
from accelflow.frontends import from_pytorch
from accelflow.hass._errors import HassError
from accelflow.hass._space import Objective, Thresholds, ThresholdSpace
from accelflow.ir import ChannelSparsity, Graph, OpKind
from accelflow.sparsity import annotate_graph, measure_sparsity

__all__ = ["Evaluation", "Evaluator", "accuracy"]

log = logging.getLogger(__name__)


def accuracy(model: nn.Module, split: ArraySplit, batch_size: int = 500) -> float:
    """Top-1 accuracy in [0, 1] of ``model`` (eval mode, no grad) on ``split``."""
    correct = 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(split), batch_size):
            logits = model(torch.as_tensor(split.x[start:start + batch_size]))
            correct += int((logits.argmax(dim=1).numpy() == split.y[start:start + batch_size]).sum())
    return correct / max(len(split), 1)


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Outcome of one evaluation. ``accuracy`` in [0, 1] on the search's validation subset;
    ``accuracy_drop`` in percentage points below the unpruned model; ``sparsity[conv]`` the measured
    fraction of zero products; ``seconds`` wall time of the evaluation."""

    thresholds: Thresholds
    accuracy: float
    accuracy_drop: float
    design: DataflowDesign
    sparsity: dict[str, float]
    seconds: float

    @property
    def throughput(self) -> float:
        return float(self.design.throughput_images_per_s)

    @property
    def dsp(self) -> int:
        return int(self.design.resources.dsp)

    def objective(self, kind: Objective) -> float:
        if kind is Objective.THROUGHPUT:
            return self.throughput
        return self.throughput / max(self.dsp, 1)

    def feasible(self, max_accuracy_drop: float) -> bool:
        """Within the accuracy bound (points) and the device's resources."""
        return self.accuracy_drop <= max_accuracy_drop + 1e-9 and bool(self.design.feasible)

    def summary(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "accuracy_drop": self.accuracy_drop,
            "throughput_images_per_s": self.throughput,
            "dsp": self.dsp,
            "design_feasible": bool(self.design.feasible),
            "mean_sparsity": float(np.mean(list(self.sparsity.values()))) if self.sparsity else 0.0,
        }


@dataclass(frozen=True, eq=False)
class Evaluator:
    """Evaluate thresholds of ``model`` on ``device``.

    ``validation`` decides accuracy, ``calibration`` (inputs ``(N, *input_shape)``) the sparsity
    histograms; ``reference_accuracy`` (in [0, 1]) is the unpruned model's accuracy on ``validation``
    (computed when None). ``batch`` is the accelerator batch size, ``method`` the folding optimiser.
    """

    model: nn.Module
    input_shape: tuple[int, ...]
    validation: ArraySplit
    calibration: np.ndarray
    device: Device
    space: ThresholdSpace
    name: str = "model"
    batch: int = 256
    method: Method = Method.GREEDY
    data_bits: int = 16
    weight_bits: int = 16
    calibration_batch: int = 100
    reference_accuracy: float | None = None

    def __post_init__(self) -> None:
        if len(self.validation) == 0 or len(self.calibration) == 0:
            raise HassError("evaluator needs non-empty validation and calibration data")

    @cached_property
    def base_accuracy(self) -> float:
        if self.reference_accuracy is not None:
            return float(self.reference_accuracy)
        return accuracy(self.model, self.validation)

    @cached_property
    def _graph(self) -> Graph:
        return from_pytorch(self.model, self.input_shape, name=self.name)

    def graph(self) -> Graph:
        """A fresh copy of the network IR (annotations are per evaluation)."""
        return copy.deepcopy(self._graph)

    def design(self, graph: Graph) -> DataflowDesign:
        return optimise_folding(graph, self.device, self.method, batch=self.batch, data_bits=self.data_bits,
                                weight_bits=self.weight_bits)

    def dense_design(self) -> DataflowDesign:
        """The design without sparsity support (no histograms), optimised on the same device."""
        graph = self.graph()
        for node in graph.find(OpKind.CONV):
            node.annotations.pop(ChannelSparsity, None)
        return self.design(graph)

    def __call__(self, thresholds: Thresholds, model: nn.Module | None = None) -> Evaluation:
        """Evaluate ``thresholds`` applied to ``model`` (default: the evaluator's model)."""
        start = time.perf_counter()
        pruned = thresholds.apply(self.model if model is None else model)
        acc = accuracy(pruned, self.validation)
        batches = [self.calibration[i:i + self.calibration_batch]
                   for i in range(0, len(self.calibration), self.calibration_batch)]
        stats = measure_sparsity(pruned, batches)
        graph = annotate_graph(self.graph(), stats)
        design = self.design(graph)
        drop = 100.0 * (self.base_accuracy - acc)
        seconds = time.perf_counter() - start
        log.debug("evaluated %s: acc %.4f drop %.2f thr %.0f img/s in %.1fs", self.name, acc, drop,
                  design.throughput_images_per_s, seconds)
        return Evaluation(thresholds, acc, drop, design, {k: v.mean_sparsity for k, v in stats.items()}, seconds)
