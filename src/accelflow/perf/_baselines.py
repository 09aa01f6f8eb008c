"""Baselines on the same layers: roofline and a regression model trained on FULL-mode results.

Roofline: ``max(work / peak, bytes moved / DRAM bytes per cycle)`` with work = MACs at the array's peak MACs
per cycle for GEMM layers, vector operations at the vector unit's peak for vector layers, and bytes moved =
input + weight (B operand) + output elements x word size (each once; unlimited bandwidth gives the compute
bound). A layer is memory-bound when its memory term exceeds its compute term, i.e. when its bytes per
operation exceed the machine balance (peak operations per cycle / DRAM bytes per cycle).
Regression (ours): a gradient-boosted tree model on log-features of the layer (MACs, GEMM sizes, fold
counts on the architecture, element counts), trained on the FULL-mode cycles of *other* layers.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from accelflow.arch import Architecture, ceil_div
from accelflow.mapping import LayerKind, LayerShape

__all__ = ["Bound", "RooflineTerms", "roofline_terms", "roofline_cycles", "layer_features", "RegressionModel"]


class Bound(enum.StrEnum):
    """Which roof limits a layer (or a network) in the roofline model."""

    COMPUTE = "compute"
    MEMORY = "memory"


@dataclass(frozen=True)
class RooflineTerms:
    """The two roofline terms of a layer, in cycles; they add layer by layer (``+``)."""

    compute_cycles: float = 0.0
    memory_cycles: float = 0.0

    @property
    def bound(self) -> Bound:
        return Bound.MEMORY if self.memory_cycles > self.compute_cycles else Bound.COMPUTE

    def __add__(self, other: RooflineTerms) -> RooflineTerms:
        return RooflineTerms(self.compute_cycles + other.compute_cycles, self.memory_cycles + other.memory_cycles)


def roofline_terms(shape: LayerShape, arch: Architecture) -> RooflineTerms:
    """Compute and memory terms of ``shape`` on ``arch`` (free layers: both 0)."""
    if shape.kind is LayerKind.FREE:
        return RooflineTerms()
    if shape.kind is LayerKind.VECTOR:
        compute = shape.vector_ops / arch.peak_vector_ops_per_cycle
    else:
        compute = shape.macs / arch.peak_macs_per_cycle if shape.macs else shape.out_elems / arch.peak_macs_per_cycle
    memory = 0.0
    if arch.dram_bytes_per_cycle is not None:
        moved = (shape.in_elems + shape.weight_elems + shape.out_elems) * arch.word_bits / 8
        memory = moved / arch.dram_bytes_per_cycle
    return RooflineTerms(compute, memory)


def roofline_cycles(shape: LayerShape, arch: Architecture) -> int:
    terms = roofline_terms(shape, arch)
    return max(1, math.ceil(max(terms.compute_cycles, terms.memory_cycles)))


def layer_features(shape: LayerShape, arch: Architecture) -> list[float]:
    side = int(math.isqrt(max(1, arch.peak_macs_per_cycle)))
    folds = shape.groups * ceil_div(shape.window, side) * ceil_div(shape.filters, side) * ceil_div(shape.npx, side)
    raw = [shape.macs, shape.npx, shape.window, shape.filters, shape.groups, shape.taps, folds, shape.in_elems,
           shape.out_elems, shape.weight_elems, roofline_cycles(shape, arch)]  # fmt: skip
    return [math.log1p(float(v)) for v in raw]


class RegressionModel:
    """Predicts log-cycles from :func:`layer_features`; fit on (shape, FULL cycles) pairs."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._model: object | None = None

    def fit(self, shapes: Sequence[LayerShape], cycles: Sequence[int], arch: Architecture) -> RegressionModel:
        from sklearn.ensemble import GradientBoostingRegressor

        x = np.array([layer_features(s, arch) for s in shapes])
        y = np.log1p(np.array(cycles, dtype=float))
        model = GradientBoostingRegressor(n_estimators=100, max_depth=3, learning_rate=0.05, random_state=self.seed)
        model.fit(x, y)
        self._model = model
        return self

    def predict(self, shape: LayerShape, arch: Architecture) -> int:
        if self._model is None:
            raise RuntimeError("RegressionModel.predict called before fit")
        y = self._model.predict(np.array([layer_features(shape, arch)]))[0]  # type: ignore[attr-defined]
        return max(1, int(round(math.expm1(y))))
