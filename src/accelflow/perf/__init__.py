"""Latency estimation from architecture descriptions: AIDG evaluation (full, fast) and baselines.

>>> import torch
>>> from accelflow.frontends import from_pytorch
>>> from accelflow.arch import template
>>> from accelflow.perf import estimate, Mode
>>> g = from_pytorch(torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3)), (8, 10, 10))
>>> arch = template("systolic", rows=4, cols=4, dataflow="ws")
>>> estimate(g, arch, Mode.FULL).total_cycles == estimate(g, arch, Mode.FAST).total_cycles
True
"""

from accelflow.perf._baselines import (
    Bound,
    RegressionModel,
    RooflineTerms,
    layer_features,
    roofline_cycles,
    roofline_terms,
)
from accelflow.perf._engine import EngineResult, KernelCache, evaluate_nest
from accelflow.perf._estimate import estimate, estimate_layer, estimate_shape
from accelflow.perf._report import LayerPerf, Mode, PerfReport

__all__ = [
    "Bound",
    "EngineResult",
    "KernelCache",
    "LayerPerf",
    "Mode",
    "PerfReport",
    "RegressionModel",
    "RooflineTerms",
    "estimate",
    "estimate_layer",
    "estimate_shape",
    "evaluate_nest",
    "layer_features",
    "roofline_cycles",
    "roofline_terms",
]
