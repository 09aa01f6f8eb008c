"""Per-layer value ranges on calibration data and the integer bits they need."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from accelflow.ir import COMPUTE_OPS, Graph, Node, OpKind, execute

__all__ = ["LayerRanges", "profile_ranges", "integer_bits"]


@dataclass(frozen=True)
class LayerRanges:
    """Largest magnitudes seen in one layer: weights, biases, outputs (after the layer) and accumulator
    (the largest partial or final sum before the result cast; bounded by sum |x||w| + |b|)."""

    name: str
    op: OpKind
    weight_max: float = 0.0
    bias_max: float = 0.0
    output_max: float = 0.0
    accum_max: float = 0.0
    output_min: float = 0.0


def integer_bits(max_abs: float, margin_bits: int = 1, signed: bool = True) -> int:
    """Integer bits (sign included when ``signed``) so that ``max_abs`` fits, plus ``margin_bits``."""
    if max_abs <= 0:
        return 1 + margin_bits if signed else margin_bits
    bits = math.floor(math.log2(max_abs)) + 1  # 2**(bits-1) <= max_abs < 2**bits
    return bits + (1 if signed else 0) + margin_bits


def profile_ranges(graph: Graph, x: np.ndarray, batch: int = 2000) -> dict[str, LayerRanges]:
    """Float ranges of every layer of ``graph`` on calibration inputs ``x`` (N, *input_shape).

    The accumulator bound of a dense/conv layer is the largest ``sum_k |x_k w_kj| + |b_j|`` over outputs
    and samples, an upper bound of every partial sum hls4ml's accumulator holds.
    """
    out_max: dict[str, float] = {}
    out_min: dict[str, float] = {}
    acc_max: dict[str, float] = {}
    for i in range(0, len(x), batch):
        vals = execute(graph, np.asarray(x[i : i + batch], dtype=np.float32), keep=True)
        assert isinstance(vals, Mapping)
        abs_graph: dict[str, np.ndarray] = {}
        for node in graph:
            v = vals[node]
            out_max[node.name] = max(out_max.get(node.name, 0.0), float(np.abs(v).max(initial=0.0)))
            out_min[node.name] = min(out_min.get(node.name, 0.0), float(v.min(initial=0.0)))
            if node.op in COMPUTE_OPS and node.op is not OpKind.MATMUL:
                abs_graph[node.name] = _abs_accumulation(node, np.abs(vals[node.inputs[0]]))
        for k, v in abs_graph.items():
            acc_max[k] = max(acc_max.get(k, 0.0), float(v))
    ranges: dict[str, LayerRanges] = {}
    for node in graph:
        w = node.weight
        b = node.bias
        ranges[node.name] = LayerRanges(
            node.name,
            node.op,
            float(np.abs(w).max()) if w is not None and w.size else 0.0,
            float(np.abs(b).max()) if b is not None and b.size else 0.0,
            out_max[node.name],
            acc_max.get(node.name, 0.0),
            out_min[node.name],
        )
    return ranges


def _abs_accumulation(node: Node, abs_x: np.ndarray) -> float:
    """max over samples/outputs of sum |x||w| + |b| for one dense/conv node (the node run on |x|, |w|, |b|)."""
    g = Graph("abs")
    inp = g.add_input("x", abs_x.shape[1:])
    params = {"weight": np.abs(node.params["weight"])}
    if node.bias is not None:
        params["bias"] = np.abs(node.bias)
    out = g.add_node("n", node.op, [inp], node.attrs, params)
    g.set_outputs([out])
    (y,) = execute(g, abs_x)
    return float(np.max(y, initial=0.0))
