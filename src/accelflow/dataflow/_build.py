"""Build the per-layer hardware models of a network from the IR (one dispatch table over op kinds)."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable

from accelflow.dataflow._layers import SPARSE_MIN, ConvLayer, LayerModel, PoolLayer
from accelflow.dataflow._lockstep import WindowSample
from accelflow.dataflow._sparse import LockStep
from accelflow.dataflow._stream import StreamLayer
from accelflow.errors import ConfigError, GraphError, UnsupportedOperatorError
from accelflow.ir import (
    ACTIVATION_OPS,
    ChannelSparsity,
    ConvAttrs,
    Graph,
    LinearAttrs,
    Node,
    OpKind,
    PoolAttrs,
    propagate_shapes,
)

__all__ = ["build_layers", "FREE_OPS"]

log = logging.getLogger(__name__)

#: Ops that only re-interpret the stream order and cost no hardware.
FREE_OPS = frozenset({OpKind.INPUT, OpKind.FLATTEN, OpKind.RESHAPE})

Builder = Callable[[Node, int, int, bool], LayerModel]


def _spatial(shape: tuple[int, ...]) -> tuple[int, int]:
    """(rows, cols) of a (C,H,W) or (C,L) or (F,) shape; 1-D maps are one row."""
    if len(shape) == 3:
        return shape[1], shape[2]
    if len(shape) == 2:
        return 1, shape[1]
    return 1, 1


def _conv(node: Node, d: int, w: int, use_sparsity: bool = True) -> LayerModel:
    a = node.attrs
    assert isinstance(a, ConvAttrs) and node.shape is not None
    x = node.input_shapes()[0]
    h_in, w_in = _spatial(x)
    h_out, w_out = _spatial(node.shape)
    kh, kw = (a.kernel if len(a.kernel) == 2 else (1, a.kernel[0]))
    hist, sparse, sparsity = None, False, 0.0
    ann = node.annotation(ChannelSparsity) if use_sparsity else None
    if ann is not None:
        if ann.hist.shape != (a.in_channels, kh * kw + 1):
            raise ConfigError(
                f"layer {node.name!r}: sparsity histogram has shape {ann.hist.shape}, "
                f"expected ({a.in_channels}, {kh * kw + 1}) = (C_in, K*K+1)"
            )
        sparsity = ann.mean_sparsity
        sparse = sparsity >= SPARSE_MIN
        hist = ann.hist if sparse else None
    return ConvLayer(
        name=node.name, op=node.op, data_bits=d, weight_bits=w, sparse=sparse, sparsity=sparsity,
        channels=a.in_channels, filters=a.out_channels, groups=a.groups, kh=kh, kw=kw,
        h_in=h_in, w_in=w_in, h_out=h_out, w_out=w_out, padded=any(a.padding),
        has_bias=node.bias is not None, hist=hist,
    )  # fmt: skip


def _linear(node: Node, d: int, w: int, use_sparsity: bool = True) -> LayerModel:
    a = node.attrs
    assert isinstance(a, LinearAttrs) and node.shape is not None
    x = node.input_shapes()[0]
    rows = math.prod(x[:-1]) if len(x) > 1 else 1  # a linear layer on a sequence repeats per row
    return ConvLayer(
        name=node.name, op=node.op, data_bits=d, weight_bits=w, channels=a.in_features,
        filters=a.out_features, h_in=rows, h_out=rows, has_bias=node.bias is not None,
    )  # fmt: skip


def _pool(node: Node, d: int, w: int, use_sparsity: bool = True) -> LayerModel:
    a = node.attrs
    assert isinstance(a, PoolAttrs) and node.shape is not None
    x = node.input_shapes()[0]
    h_in, w_in = _spatial(x)
    h_out, w_out = _spatial(node.shape)
    kh, kw = (a.kernel if len(a.kernel) == 2 else (1, a.kernel[0]))
    return PoolLayer(
        name=node.name, op=node.op, data_bits=d, weight_bits=w, channels=x[0], kh=kh, kw=kw,
        h_in=h_in, w_in=w_in, h_out=h_out, w_out=w_out, padded=any(a.padding),
    )  # fmt: skip


def _rows_to_fork(node: Node) -> int:
    """Rows of window latency along a single-input chain back to the branch point (ours: an estimate
    of how far one branch of a residual block lags the other)."""
    rows = 0
    while len(node.inputs) == 1 and len(node.users) <= 1:
        if isinstance(node.attrs, ConvAttrs | PoolAttrs):
            rows += node.attrs.kernel[0] if len(node.attrs.kernel) == 2 else 1
        node = node.inputs[0]
    return rows


def _stream(node: Node, d: int, w: int, use_sparsity: bool = True) -> LayerModel:
    shapes = node.input_shapes()
    big = max(shapes, key=math.prod)
    buffer = 0
    if node.op in (OpKind.ADD, OpKind.MUL) and len(shapes) == 2:
        if shapes[0] != shapes[1]:  # broadcast (squeeze-excitation): hold the whole map
            buffer = math.prod(big)
        else:
            lag = abs(_rows_to_fork(node.inputs[0]) - _rows_to_fork(node.inputs[1]))
            _, cols = _spatial(big)
            buffer = (lag + 1) * cols * big[0]
    elements = sum(math.prod(s) for s in shapes) if node.op is OpKind.CONCAT else math.prod(big)
    channels = node.shape[0] if node.shape and node.op is not OpKind.GLOBAL_AVGPOOL else big[0]
    if node.op is OpKind.CONCAT:
        channels = math.gcd(*[s[0] for s in shapes])
    return StreamLayer(
        name=node.name, op=node.op, data_bits=d, weight_bits=w, channels=channels,
        elements=elements, buffer_words=buffer, inputs=len(shapes),
    )  # fmt: skip


def _hardware_producers(node: Node) -> list[str]:
    out: list[str] = []
    for p in node.inputs:
        while p.op in FREE_OPS and p.inputs:
            p = p.inputs[0]
        if p.op is not OpKind.INPUT:
            out.append(p.name)
    return out


BUILDERS: dict[OpKind, Builder] = {
    OpKind.CONV: _conv,
    OpKind.LINEAR: _linear,
    OpKind.MAXPOOL: _pool,
    OpKind.AVGPOOL: _pool,
    OpKind.GLOBAL_AVGPOOL: _stream,
    OpKind.ADD: _stream,
    OpKind.MUL: _stream,
    OpKind.CONCAT: _stream,
    OpKind.SOFTMAX: _stream,
    **{op: _stream for op in ACTIVATION_OPS},
}


def build_layers(
    graph: Graph,
    data_bits: int = 16,
    weight_bits: int = 16,
    use_sparsity: bool = True,
    lockstep: LockStep = LockStep.MEAN,
) -> list[LayerModel]:
    """One hardware layer per IR node that does work, in execution order (``use_sparsity=False``:
    ignore ChannelSparsity annotations and build every layer dense)."""
    if data_bits < 1 or weight_bits < 1:
        raise ConfigError(f"bit widths must be positive, got data {data_bits}, weight {weight_bits}")
    if any(n.shape is None for n in graph):
        propagate_shapes(graph)
    layers: list[LayerModel] = []
    for node in graph:
        if node.op in FREE_OPS:
            continue
        builder = BUILDERS.get(node.op)
        if builder is None:
            supported = ", ".join(sorted(op.value for op in BUILDERS))
            raise UnsupportedOperatorError(
                f"node {node.name!r}: the dataflow model has no hardware for {node.op.value!r} "
                f"(supported: {supported})"
            )
        layer = builder(node, data_bits, weight_bits, use_sparsity)
        if isinstance(layer, ConvLayer) and layer.sparse and lockstep is not LockStep.MEAN:
            windows = node.annotation(WindowSample) if lockstep is LockStep.SAMPLED else None
            layer = dataclasses.replace(layer, lockstep=LockStep(lockstep), windows=windows, _window_cycles=None,
                                        _memo={})  # fmt: skip
        producers = tuple(_hardware_producers(node))
        layers.append(dataclasses.replace(layer, producers=producers) if producers else layer)
    if not layers:
        raise GraphError(f"graph {graph.name!r} has no layers to map")
    log.debug("built %d dataflow layers for %s", len(layers), graph.name)
    return layers
