"""Closed-form stall-free compute cycles of SCALE-Sim 3.0.0, derived from its source.

Standalone (no accelflow import, no numpy) so it runs in any interpreter; used by the benchmark as an
independent check of both SCALE-Sim's numbers and our systolic template.

SCALE-Sim turns a conv layer into three operand matrices (``compute/operand_matrix.py``)::

    E  = Ho * Wo              output pixels per filter, Ho = ceil((H - Fh + s) / s)  (no padding)
    K  = Fh * Fw * C          convolution window (reduction length)
    F  = number of filters

and maps them onto an R x C array according to the dataflow
(``topology_utils.calc_spatio_temporal_params``): spatial rows Sr, spatial columns Sc, temporal T::

    ws: Sr = K, Sc = F, T = E       os: Sr = E, Sc = F, T = K       is: Sr = K, Sc = E, T = F

It then builds per-fold demand matrices (one line = one cycle) in
``compute/systolic_compute_{ws,os,is}.py``, for ``ceil(Sr/R) * ceil(Sc/C)`` folds in sequence (no
overlap between folds), each of length::

    ws, is: 2R + C + T - 2   (R cycles to load the stationary operand, T streaming cycles,
                               R-1 + C-1 cycles of skew: fill and drain)
    os:     R + C + T - 2    (T streaming cycles plus R-1 + C-1 of skew; outputs drain in the skew)

``double_buffered_scratchpad_mem.service_memory_requests`` walks the demand lines one per cycle
(starting at cycle 0) and reports ``Total Cycles = max(ofmap write cycle)`` which, without stalls, is
the index of the last line, i.e. the number of lines minus one::

    compute_cycles = ceil(Sr/R) * ceil(Sc/C) * L - 1

Partially used folds cost a full fold (null requests pad them to the array size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ConvShape:
    """A layer as SCALE-Sim sees it (unpadded ifmap, one stride for both axes)."""

    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    num_filters: int
    stride: int = 1

    @property
    def ofmap_hw(self) -> tuple[int, int]:
        s = self.stride
        return (math.ceil((self.ifmap_h - self.filter_h + s) / s),
                math.ceil((self.ifmap_w - self.filter_w + s) / s))

    @property
    def macs(self) -> int:
        ho, wo = self.ofmap_hw
        return ho * wo * self.filter_h * self.filter_w * self.channels * self.num_filters


def spatio_temporal(shape: ConvShape, dataflow: str) -> tuple[int, int, int]:
    """(Sr, Sc, T) exactly as SCALE-Sim's ``calc_spatio_temporal_params``."""
    ho, wo = shape.ofmap_hw
    e = ho * wo
    k = shape.filter_h * shape.filter_w * shape.channels
    f = shape.num_filters
    if dataflow == "ws":
        return k, f, e
    if dataflow == "os":
        return e, f, k
    if dataflow == "is":
        return k, e, f
    raise ValueError(f"unknown dataflow {dataflow!r} (expected ws, os or is)")


def fold_length(rows: int, cols: int, t: int, dataflow: str) -> int:
    """Cycles of one fold (demand-matrix lines) in SCALE-Sim."""
    if dataflow in ("ws", "is"):
        return 2 * rows + cols + t - 2
    if dataflow == "os":
        return rows + cols + t - 2
    raise ValueError(f"unknown dataflow {dataflow!r} (expected ws, os or is)")


def compute_cycles(shape: ConvShape, rows: int, cols: int, dataflow: str) -> int:
    """Stall-free compute cycles SCALE-Sim 3.0.0 reports (COMPUTE_REPORT 'Total Cycles' - stalls)."""
    sr, sc, t = spatio_temporal(shape, dataflow)
    folds = math.ceil(sr / rows) * math.ceil(sc / cols)
    return folds * fold_length(rows, cols, t, dataflow) - 1


def layer_compute_cycles(layer: dict, rows: int, cols: int, dataflow: str) -> int:
    """Same, for a layer record of ``benchmarks/layers/scalesim_layers.json``.

    A depthwise layer (``"kind": "depthwise"``) is what SCALE-Sim does with a 'DP' layer: ``channels``
    separate one-channel, one-filter convolutions in sequence, each with its own fill/drain and -1.
    """
    if layer.get("kind") == "depthwise":
        one = ConvShape(layer["ifmap_h"], layer["ifmap_w"], layer["filter_h"], layer["filter_w"],
                        1, 1, layer["stride"])
        return layer["channels"] * compute_cycles(one, rows, cols, dataflow)
    shape = ConvShape(layer["ifmap_h"], layer["ifmap_w"], layer["filter_h"], layer["filter_w"],
                      layer["channels"], layer["num_filters"], layer["stride"])
    return compute_cycles(shape, rows, cols, dataflow)
