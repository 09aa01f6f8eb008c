"""One HASS evaluation: thresholds -> (accuracy, measured sparsity, folded dataflow design).

:class:`Evaluator` holds everything fixed during a search (trained model, validation and calibration
subsets, device, folding method) and is called with a :class:`Thresholds`; it is deterministic, so a trial
can be re-evaluated later (e.g. after resuming a study) with identical numbers.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import nn

from accelflow.data import ArraySplit
from accelflow.dataflow import DataflowDesign, Device, LockStep, Method, optimise_folding
from accelflow.frontends import from_pytorch
from accelflow.hass._errors import HassError
from accelflow.hass._space import Objective, Thresholds, ThresholdSpace
from accelflow.ir import ChannelSparsity, Graph, OpKind
from accelflow.ir.cost import layer_cost
from accelflow.sparsity import ConvSparsity, annotate_graph, measure_sparsity

__all__ = ["CALIBRATION_BATCH", "WINDOW_POSITIONS", "DropEstimate", "Evaluation", "Evaluator", "accuracy",
           "calibration_batches", "drop_estimates", "hits", "paired_drop"]

log = logging.getLogger(__name__)

_MEMO_SIZE = 1024  # evaluations kept per evaluator (each holds a small folded design)


#: Calibration images per forward pass when measuring histograms (the batching decides which window
#: positions the sampled lock-step model's reservoir keeps, so every measurement uses the same).
CALIBRATION_BATCH = 100
#: Window positions per conv sampled for the sampled lock-step model.
WINDOW_POSITIONS = 4096


def calibration_batches(images: np.ndarray, batch: int = CALIBRATION_BATCH) -> list[np.ndarray]:
    """``images`` in batches of ``batch``, as the histograms are measured."""
    return [images[i:i + batch] for i in range(0, len(images), batch)]


def hits(model: nn.Module, split: ArraySplit, batch_size: int = 500) -> np.ndarray:
    """Per image of ``split``, whether ``model`` (eval mode, no grad) ranks the true class first."""
    out = np.zeros(len(split), dtype=bool)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(split), batch_size):
            logits = model(torch.as_tensor(split.x[start:start + batch_size]))
            out[start:start + batch_size] = logits.argmax(dim=1).numpy() == split.y[start:start + batch_size]
    return out


def accuracy(model: nn.Module, split: ArraySplit, batch_size: int = 500) -> float:
    """Top-1 accuracy in [0, 1] of ``model`` (eval mode, no grad) on ``split``."""
    return int(hits(model, split, batch_size).sum()) / max(len(split), 1)


@dataclass(frozen=True)
class DropEstimate:
    """An accuracy drop in points, measured on ``images`` images against the reference model on the same
    images, with a 95% interval (``low``, ``high``) for the drop on the population the images were drawn from.

    The interval is Agresti & Min's (2005) for a difference of matched proportions: the Wald interval with
    0.5 added to each of the four cells of the paired 2x2 table. Where few images change their outcome it
    errs wide (99% coverage with ~3 of 500 changed), while the plain Wald interval under-covers there and
    shrinks to a point when no image changes (tests/hass/test_evaluate.py). It covers the sampling of the
    images only: on the images a design was *chosen* on, the drop is biased low."""

    points: float
    low: float
    high: float
    images: int

    def to_dict(self) -> dict[str, float | int]:
        return {"points": self.points, "ci95": [self.low, self.high], "images": self.images}


def paired_drop(reference_hits: np.ndarray, design_hits: np.ndarray) -> DropEstimate:
    """The drop from ``reference_hits`` to ``design_hits`` (per-image top-1 hits on the same images)."""
    ref, des = np.asarray(reference_hits, dtype=bool), np.asarray(design_hits, dtype=bool)
    if ref.shape != des.shape or ref.ndim != 1 or len(ref) == 0:
        raise HassError(f"paired drop needs two equal-length, non-empty hit vectors; got {ref.shape} and {des.shape}")
    n = len(ref)
    lost = float(np.count_nonzero(ref & ~des)) + 0.5  # reference right, design wrong (+0.5: Agresti-Min)
    won = float(np.count_nonzero(~ref & des)) + 0.5
    m = n + 2.0  # 0.5 added to all four cells
    diff = (lost - won) / m
    half = 1.96 * float(np.sqrt(max((lost + won) / m - diff * diff, 0.0) / m))
    return DropEstimate(100.0 * (lost - won) / n, 100.0 * (diff - half), 100.0 * (diff + half), n)


#: Slack on every accuracy-bound comparison: drops are ``100 * (reference - accuracy)`` in floats, so a drop
#: of exactly the bound (10 of 1,000 images against 1 point) can come out as 1.0000000000000009.
BOUND_SLACK = 1e-9


def within_bound(drop: float, bound: float) -> bool:
    """``drop <= bound`` up to float rounding (:data:`BOUND_SLACK`): the one test of an accuracy bound, so a
    design that one check accepts is never rejected by another (search, hold-out, baselines, recovery)."""
    return drop <= bound + BOUND_SLACK


def holdout_drop(evaluator: Evaluator, holdout: ArraySplit | None, thresholds: Thresholds, model: nn.Module | None = None,
                 base: list[float] | None = None) -> float:
    """Accuracy drop in points on ``holdout`` (0 when there is none) of ``thresholds`` applied to ``model``
    (default: the evaluator's), against the evaluator's unpruned model; ``base`` caches that reference
    accuracy across calls (pass an empty list)."""
    if holdout is None:
        return 0.0
    if base is not None and not base:
        base.append(accuracy(evaluator.model, holdout))
    reference = base[0] if base else accuracy(evaluator.model, holdout)
    return 100.0 * (reference - accuracy(thresholds.apply(evaluator.model if model is None else model), holdout))


def drop_estimates(evaluator: Evaluator, design: nn.Module, holdout: ArraySplit | None) -> dict[str, DropEstimate]:
    """The drop of the network ``design`` against the evaluator's model, with its 95% interval, on the
    validation images (where designs are chosen) and on ``holdout`` (checked only), keyed by split."""
    out = {}
    if len(evaluator.validation) > 0:
        out["validation"] = paired_drop(evaluator.reference_hits, hits(design, evaluator.validation))
    if holdout is not None and len(holdout) > 0:
        out["holdout"] = paired_drop(hits(evaluator.model, holdout), hits(design, holdout))
    return out


def meets_holdout(evaluator: Evaluator, holdout: ArraySplit | None, thresholds: Thresholds, bound: float,
                  model: nn.Module | None = None, base: list[float] | None = None) -> bool:
    """:func:`holdout_drop` :func:`within_bound` ``bound`` (always true without a hold-out)."""
    return within_bound(holdout_drop(evaluator, holdout, thresholds, model=model, base=base), bound)


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Outcome of one evaluation. ``accuracy`` in [0, 1] on the search's validation subset;
    ``accuracy_drop`` in percentage points below the unpruned model; ``sparsity[conv]`` the measured
    fraction of zero products; ``zero_products`` that fraction over the whole network (each conv weighted
    by its MACs: the hardware-blind measure of how sparse a model is); ``seconds`` wall time."""

    thresholds: Thresholds
    accuracy: float
    accuracy_drop: float
    design: DataflowDesign
    sparsity: dict[str, float]
    seconds: float
    zero_products: float = 0.0

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
        return within_bound(self.accuracy_drop, max_accuracy_drop) and bool(self.design.feasible)

    def summary(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "accuracy_drop": self.accuracy_drop,
            "throughput_images_per_s": self.throughput,
            "dsp": self.dsp,
            "design_feasible": bool(self.design.feasible),
            "mean_sparsity": float(np.mean(list(self.sparsity.values()))) if self.sparsity else 0.0,
            "zero_products": self.zero_products,
        }


@dataclass(frozen=True, eq=False)
class Evaluator:
    """Evaluate thresholds of ``model`` on ``device``.

    ``validation`` decides accuracy, ``calibration`` (inputs ``(N, *input_shape)``) the sparsity
    histograms; ``reference_accuracy`` (in [0, 1]) is the unpruned model's accuracy on ``validation``
    (computed when None). ``batch`` is the accelerator batch size, ``method`` the folding optimiser,
    ``lockstep`` the sparse layers' lock-step cost: the REFERENCE ``MEAN`` (fast, optimistic for sparse
    layers) or ``SAMPLED`` (``window_positions`` calibration positions per conv, within 2% of the
    cycle-level simulation; folding then takes seconds instead of a fraction of one).
    Evaluations of the evaluator's own model are memoised by thresholds (the evaluator is deterministic),
    so baselines that scan the same grid share the work; the memo is not pickled to workers.
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
    calibration_batch: int = CALIBRATION_BATCH
    reference_accuracy: float | None = None
    lockstep: LockStep = LockStep.MEAN
    window_positions: int = WINDOW_POSITIONS

    def __post_init__(self) -> None:
        if len(self.validation) == 0 or len(self.calibration) == 0:
            raise HassError("evaluator needs non-empty validation and calibration data")
        if self.lockstep is LockStep.SAMPLED and self.window_positions <= 0:
            raise HassError(f"lockstep=sampled needs window_positions > 0, got {self.window_positions}")
        # not a dataclass field, so fields()/asdict()/replace() never see or copy it
        object.__setattr__(self, "_memo", {})

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_memo"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _memo={})

    @cached_property
    def reference_hits(self) -> np.ndarray:
        """Per validation image, whether the unpruned model gets it right (one pass, shared by
        :attr:`base_accuracy` and :func:`drop_estimates`)."""
        return hits(self.model, self.validation)

    @cached_property
    def base_accuracy(self) -> float:
        if self.reference_accuracy is not None:
            return float(self.reference_accuracy)
        return int(self.reference_hits.sum()) / max(len(self.validation), 1)

    @cached_property
    def fingerprint(self) -> dict[str, str]:
        """Short digests of what decides an evaluation besides the thresholds: the model's weights, the
        validation and calibration images and the hardware settings (device, batch, optimiser, bit widths,
        lock-step model). A stored study is resumed only by an evaluator with the same fingerprint."""
        from dataclasses import asdict

        from accelflow.train import arrays_digest, weights_digest

        hardware = {"device": asdict(self.device), "batch": self.batch, "method": self.method.value,
                    "bits": [self.data_bits, self.weight_bits], "lockstep": self.lockstep.value,
                    "window_positions": self.window_positions if self.lockstep is LockStep.SAMPLED else None}
        return {"weights": weights_digest(self.model)[:16],
                "validation": arrays_digest(self.validation.x, self.validation.y)[:16],
                "calibration": arrays_digest(self.calibration)[:16],
                "hardware": hashlib.sha256(json.dumps(hardware, sort_keys=True).encode()).hexdigest()[:16]}

    @cached_property
    def _graph(self) -> Graph:
        return from_pytorch(self.model, self.input_shape, name=self.name)

    @cached_property
    def conv_macs(self) -> dict[str, int]:
        """MACs per image of every conv (the weights of :attr:`Evaluation.zero_products`)."""
        return {node.name: layer_cost(node).macs for node in self._graph.find(OpKind.CONV)}

    def zero_products(self, sparsity: dict[str, float]) -> float:
        """MAC-weighted fraction of zero products over the convs in ``sparsity``."""
        macs = {k: self.conv_macs.get(k, 0) for k in sparsity}
        total = sum(macs.values())
        return sum(macs[k] * v for k, v in sparsity.items()) / total if total else 0.0

    def calibration_batches(self) -> list[np.ndarray]:
        """The calibration images in batches of ``calibration_batch`` (what the histograms are measured on)."""
        return calibration_batches(self.calibration, self.calibration_batch)

    def measure(self, pruned: nn.Module) -> dict[str, ConvSparsity]:
        """Zero-product histograms of ``pruned`` (thresholds already applied) on the calibration images,
        with the window samples the sampled lock-step cost needs when the evaluator uses it."""
        positions = self.window_positions if self.lockstep is LockStep.SAMPLED else 0
        return measure_sparsity(pruned, self.calibration_batches(), window_positions=positions)

    def graph(self) -> Graph:
        """A fresh copy of the network IR (annotations are per evaluation)."""
        return copy.deepcopy(self._graph)

    def design(self, graph: Graph) -> DataflowDesign:
        return optimise_folding(graph, self.device, self.method, batch=self.batch, data_bits=self.data_bits,
                                weight_bits=self.weight_bits, lockstep=self.lockstep)

    def dense_design(self) -> DataflowDesign:
        """The design without sparsity support (no histograms), optimised on the same device."""
        graph = self.graph()
        for node in graph.find(OpKind.CONV):
            node.annotations.pop(ChannelSparsity, None)
        return self.design(graph)

    def __call__(self, thresholds: Thresholds, model: nn.Module | None = None) -> Evaluation:
        """Evaluate ``thresholds`` applied to ``model`` (default: the evaluator's model)."""
        key = json.dumps(thresholds.to_dict(), sort_keys=True) if model is None else None
        if key is not None and key in self._memo:
            return self._memo[key]
        ev = self._evaluate(thresholds, model)
        if key is not None:
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.pop(next(iter(self._memo)))
            self._memo[key] = ev
        return ev

    def _evaluate(self, thresholds: Thresholds, model: nn.Module | None) -> Evaluation:
        start = time.perf_counter()
        pruned = thresholds.apply(self.model if model is None else model)
        acc = accuracy(pruned, self.validation)
        stats = self.measure(pruned)
        graph = annotate_graph(self.graph(), stats)
        design = self.design(graph)
        drop = 100.0 * (self.base_accuracy - acc)
        seconds = time.perf_counter() - start
        log.debug("evaluated %s: acc %.4f drop %.2f thr %.0f img/s in %.1fs", self.name, acc, drop,
                  design.throughput_images_per_s, seconds)
        sparsity = {k: v.mean_sparsity for k, v in stats.items()}
        return Evaluation(thresholds, acc, drop, design, sparsity, seconds, self.zero_products(sparsity))
