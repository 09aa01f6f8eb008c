"""Baselines on the same layers: roofline and a regression model trained on FULL-mode results.

Roofline: ``max(MACs / peak MACs per cycle, bytes moved / DRAM bytes per cycle)`` with bytes moved =
input + weight + output elements x word size (each once; unlimited bandwidth gives the compute bound).
Regression (ours): a gradient-boosted tree model on log-features of the layer (MACs, GEMM sizes, fold
counts on the architecture, element counts), trained on the FULL-mode cycles of *other* layers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from accelflow.arch import Architecture, ceil_div
from accelflow.mapping import LayerShape

__all__ = ["roofline_cycles", "layer_features", "RegressionModel"]


def roofline_cycles(shape: LayerShape, arch: Architecture) -> int:
    compute = shape.macs / arch.peak_macs_per_cycle if shape.macs else shape.out_elems / arch.peak_macs_per_cycle
    memory = 0.0
    if arch.dram_bytes_per_cycle is not None:
        moved = (shape.in_elems + shape.weight_elems + shape.out_elems) * arch.word_bits / 8
        memory = moved / arch.dram_bytes_per_cycle
    return max(1, math.ceil(max(compute, memory)))


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
