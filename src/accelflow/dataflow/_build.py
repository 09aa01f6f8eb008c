"""Build the per-layer hardware models of a network from the IR (one dispatch table over op kinds).

Every node that does work becomes one stage; a node that only renames the stream (flatten, reshape, a
transpose that keeps the stream order, an expand to the same shape) or is computed from constants only
(a weight held on chip by the stage that reads it) is no stage. :mod:`accelflow.dataflow._layout` tells
which is which. Products of two activations (attention) and token embeddings have no stage: the first such
node is reported with the reason (:class:`~accelflow.errors.UnsupportedOperatorError`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from accelflow.dataflow._layers import SPARSE_MIN, ConvLayer, ConvTransposeLayer, LayerModel, PoolLayer
from accelflow.dataflow._layout import (
    StreamLayout,
    broadcast_axes,
    group_words,
    stream_layouts,
    vector_words,
)
from accelflow.dataflow._lockstep import WindowSample
from accelflow.dataflow._movement import BroadcastLayer, PadLayer, ReorderLayer, ResizeLayer, SelectLayer
from accelflow.dataflow._norm import NormLayer, ReduceLayer
from accelflow.dataflow._sparse import LockStep
from accelflow.dataflow._stream import StreamLayer
from accelflow.errors import ConfigError, GraphError, UnsupportedOperatorError
from accelflow.ir import (
    ACTIVATION_OPS,
    BINARY_OPS,
    REDUCE_OPS,
    UNARY_OPS,
    AffineAttrs,
    ChannelSparsity,
    ClipAttrs,
    ConcatAttrs,
    ConvAttrs,
    ConvTransposeAttrs,
    GatherAttrs,
    Graph,
    LayerNormAttrs,
    LinearAttrs,
    Node,
    OpKind,
    PadAttrs,
    PoolAttrs,
    ReduceAttrs,
    ResizeAttrs,
    ResizeMode,
    SliceAttrs,
    SoftmaxAttrs,
    propagate_shapes,
)

__all__ = ["build_layers", "FREE_OPS", "SUPPORTED_NETWORKS"]

log = logging.getLogger(__name__)

#: Ops that only re-interpret the stream order and cost no hardware.
FREE_OPS = frozenset({OpKind.INPUT, OpKind.FLATTEN, OpKind.RESHAPE})
#: What the dataflow model holds, for error messages.
SUPPORTED_NETWORKS = (
    "CNNs (conv, transposed conv, pooling, activations, batch norm, residual add, concat, split, channel "
    "shuffle, squeeze-excitation, per-pixel layer norm and linear layers, pad, resize)"
)


@dataclass(frozen=True)
class _Context:
    """What every builder needs besides its node: widths, the sparsity switch, the stream layouts."""

    data_bits: int
    weight_bits: int
    use_sparsity: bool
    layouts: Mapping[Node, StreamLayout]

    def k(self, node: Node) -> int:
        return self.layouts[node].channel_axes

    def constant(self, node: Node) -> bool:
        return self.layouts[node].constant

    def live(self, node: Node) -> list[Node]:
        """The inputs that are activations (not computed from constants only)."""
        return [p for p in node.inputs if not self.constant(p)]

    def vector(self, node: Node) -> int:
        return vector_words(_shape(node), self.k(node))


Builder = Callable[[Node, _Context], LayerModel]


def _shape(node: Node) -> tuple[int, ...]:
    assert node.shape is not None
    return node.shape


def _spatial(shape: tuple[int, ...]) -> tuple[int, int]:
    """(rows, cols) of a (C,H,W) or (C,L) or (F,) shape; 1-D maps are one row."""
    if len(shape) == 3:
        return shape[1], shape[2]
    if len(shape) == 2:
        return 1, shape[1]
    return 1, 1


L = TypeVar("L", bound=LayerModel)


def _make(kind: type[L], node: Node, ctx: _Context, **geometry: Any) -> L:
    """A layer model of ``kind`` for ``node``: its name, op and the design's widths, plus ``geometry``."""
    return kind(name=node.name, op=node.op, data_bits=ctx.data_bits, weight_bits=ctx.weight_bits, **geometry)


# -- weighted layers -------------------------------------------------------------------------------
def _conv(node: Node, ctx: _Context) -> LayerModel:
    a = node.attrs
    assert isinstance(a, ConvAttrs)
    x = node.input_shapes()[0]
    h_in, w_in = _spatial(x)
    h_out, w_out = _spatial(_shape(node))
    kh, kw = (a.kernel if len(a.kernel) == 2 else (1, a.kernel[0]))
    hist, sparse, sparsity = None, False, 0.0
    ann = node.annotation(ChannelSparsity) if ctx.use_sparsity else None
    if ann is not None:
        if ann.hist.shape != (a.in_channels, kh * kw + 1):
            raise ConfigError(
                f"layer {node.name!r}: sparsity histogram has shape {ann.hist.shape}, "
                f"expected ({a.in_channels}, {kh * kw + 1}) = (C_in, K*K+1)"
            )
        sparsity = ann.mean_sparsity
        sparse = sparsity >= SPARSE_MIN
        hist = ann.hist if sparse else None
    return _make(
        ConvLayer, node, ctx, sparse=sparse, sparsity=sparsity,
        channels=a.in_channels, filters=a.out_channels, groups=a.groups, kh=kh, kw=kw,
        h_in=h_in, w_in=w_in, h_out=h_out, w_out=w_out, padded=any(a.padding),
        has_bias=node.bias is not None, hist=hist,
    )  # fmt: skip


def _conv_transpose(node: Node, ctx: _Context) -> LayerModel:
    """Sub-pixel form: stride_h x stride_w phases, each a conv of ceil(K/stride) taps per axis on the input."""
    a = node.attrs
    assert isinstance(a, ConvTransposeAttrs)
    x = node.input_shapes()[0]
    h_in, w_in = _spatial(x)
    h_out, w_out = _spatial(_shape(node))
    kernel = a.kernel if len(a.kernel) == 2 else (1, a.kernel[0])
    stride = a.stride if len(a.stride) == 2 else (1, a.stride[0])
    kh, kw = (math.ceil(k / s) for k, s in zip(kernel, stride, strict=True))
    return _make(
        ConvTransposeLayer, node, ctx, channels=a.in_channels, filters=a.out_channels,
        groups=a.groups, kh=kh, kw=kw, h_in=h_in, w_in=w_in, h_out=h_out, w_out=w_out, padded=kh * kw > 1,
        has_bias=node.bias is not None, phases=stride[0] * stride[1],
    )  # fmt: skip


def _linear(node: Node, ctx: _Context) -> LayerModel:
    """A linear layer is a 1x1 conv: on a 1x1 map, on every pixel of a channels-last map (H, W, C), or on
    every token of a sequence (S, D)."""
    a = node.attrs
    assert isinstance(a, LinearAttrs)
    x = node.input_shapes()[0]
    per_pixel = len(x) == 3 and ctx.k(node.inputs[0]) == 0  # (H, W, C): the 1x1 conv's own map
    rows, cols = (x[0], x[1]) if per_pixel else (math.prod(x[:-1]) if len(x) > 1 else 1, 1)
    return _make(
        ConvLayer, node, ctx, channels=a.in_features, filters=a.out_features,
        h_in=rows, w_in=cols, h_out=rows, w_out=cols, has_bias=node.bias is not None,
    )  # fmt: skip


def _pool(node: Node, ctx: _Context) -> LayerModel:
    """Max or average pooling; a window larger than the padded map (a global pool spelled as a pool with a
    large kernel and ceil_mode, as in Hugging Face's EfficientNet) only ever covers the map."""
    a = node.attrs
    assert isinstance(a, PoolAttrs)
    x = node.input_shapes()[0]
    h_in, w_in = _spatial(x)
    h_out, w_out = _spatial(_shape(node))
    kh, kw = (a.kernel if len(a.kernel) == 2 else (1, a.kernel[0]))
    pads = a.padding if len(a.padding) == 4 else (0, a.padding[0], 0, a.padding[1])
    kh, kw = min(kh, h_in + pads[0] + pads[2]), min(kw, w_in + pads[1] + pads[3])
    return _make(
        PoolLayer, node, ctx, channels=x[0], kh=kh, kw=kw,
        h_in=h_in, w_in=w_in, h_out=h_out, w_out=w_out, padded=any(a.padding),
    )  # fmt: skip


# -- element-wise layers ---------------------------------------------------------------------------
def _rows_to_fork(node: Node, ctx: _Context) -> int:
    """Rows of window latency along a single-input chain back to the branch point (ours: an estimate
    of how far one branch of a residual block lags the other; constant operands do not branch)."""
    rows = 0
    while len(live := ctx.live(node)) == 1 and len(node.users) <= 1:
        a = node.attrs
        if isinstance(a, ConvAttrs | PoolAttrs):
            rows += a.kernel[0] if len(a.kernel) == 2 else 1
        elif isinstance(a, ConvTransposeAttrs):
            rows += math.ceil(a.kernel[0] / a.stride[0]) if len(a.kernel) == 2 else 1
        elif isinstance(a, ResizeAttrs):
            rows += 1 if a.mode is ResizeMode.NEAREST else 2
        node = live[0]
    return rows


def _row_words(shape: tuple[int, ...], k: int) -> int:
    """Words of one row of the stream: a map's W*C (a 1-D map is one row), a sequence's token."""
    if k == 0 and len(shape) >= 2:
        return math.prod(shape[1:])
    if len(shape) == 3:
        return shape[0] * shape[2]
    return math.prod(shape)


def _skip_buffer(node: Node, ctx: _Context) -> int:
    """Words a multi-input layer holds while its inputs catch up with each other.

    An operand repeated along some axes (squeeze-excitation's per-channel scale, a per-pixel mean) arrives
    after the block of the other operand it was computed from: that block waits (the whole map for SE, a
    pixel's channels for a per-pixel statistic). Equal operands from branches of different depth: every
    branch but the slowest waits (lag difference + 1) rows of its map."""
    live = ctx.live(node)
    if len(live) < 2:
        return 0
    out, k = _shape(node), ctx.k(node)
    if node.op is not OpKind.CONCAT and any(_shape(p) != out for p in live):
        return sum(group_words(out, k, axes) for p in live if (axes := broadcast_axes(_shape(p), out)))
    lags = [_rows_to_fork(p, ctx) for p in live]
    slowest = lags.index(max(lags))
    return sum((lags[slowest] - lag + 1) * _row_words(_shape(p), ctx.k(p))
               for i, (p, lag) in enumerate(zip(live, lags, strict=True)) if i != slowest)  # fmt: skip


def _constant_words(values: np.ndarray, out: tuple[int, ...], k: int) -> tuple[int, bool]:
    """Words of a constant operand and whether they vary along the channel axes (then each stream's bank
    holds its share; otherwise every bank holds them all)."""
    aligned = (1,) * (len(out) - values.ndim) + tuple(values.shape)
    if not out:
        return int(values.size), True
    inner = set(range(k)) if k else {len(out) - 1}
    return int(values.size), any(aligned[a] > 1 for a in inner if a < len(aligned))


def _constant_value(node: Node) -> np.ndarray:
    """The words a constant operand stores: its largest CONSTANT (an expand or reshape of a constant is
    read from the same words; an expression of constants is stored as its result, no larger)."""
    if node.op is OpKind.CONSTANT:
        return np.asarray(node.params["value"])
    return max((_constant_value(p) for p in node.inputs), key=lambda v: v.size)


def _stream(node: Node, ctx: _Context) -> LayerModel:
    live = ctx.live(node)
    shapes = [_shape(p) for p in live]
    out, k = _shape(node), ctx.k(node)
    big = max(shapes, key=math.prod)
    if node.op is OpKind.CONCAT:
        a = node.attrs
        assert isinstance(a, ConcatAttrs)
        axis = a.axis % len(out)
        elements = sum(math.prod(_shape(p)) for p in node.inputs)
        inner = axis < k if k else axis == len(out) - 1
        channels = math.gcd(*[vector_words(_shape(p), ctx.k(p)) for p in node.inputs]) if inner else ctx.vector(node)
    elif node.op is OpKind.GLOBAL_AVGPOOL:
        elements, channels = math.prod(big), big[0]
    else:
        elements, channels = max(math.prod(big), math.prod(out)), ctx.vector(node)
    words, split = 0, True
    params = [np.asarray(v) for key, v in node.params.items() if key in ("weight", "bias", "slope")]
    consts = [_constant_value(p) for p in node.inputs if ctx.constant(p)]
    if isinstance(node.attrs, AffineAttrs):  # per-channel weight and bias along one axis
        axis = node.attrs.axis % len(out)
        params = [v.reshape([-1 if i == axis else 1 for i in range(len(out))]) for v in params]
    for v in params + consts:
        n, s = _constant_words(v, out, k)
        words, split = words + n, split and s
    exponent = None
    if node.op is OpKind.POW and ctx.constant(node.inputs[1]):
        power = _constant_value(node.inputs[1])
        exponent = float(power.reshape(-1)[0]) if power.size == 1 else None
    bounds = 2
    if isinstance(node.attrs, ClipAttrs):
        bounds = (node.attrs.lo is not None) + (node.attrs.hi is not None)
    return _make(
        StreamLayer, node, ctx, channels=channels, elements=elements,
        buffer_words=_skip_buffer(node, ctx), inputs=len(node.inputs), weight_words=words, weight_split=split,
        exponent=exponent, bounds=bounds,
    )  # fmt: skip


# -- norms, reductions, layout ---------------------------------------------------------------------
def _norm(node: Node, ctx: _Context) -> LayerModel:
    """Layer norm over the trailing axes from ``axis``, or softmax over one axis."""
    x = node.input_shapes()[0]
    k = ctx.k(node.inputs[0])
    if isinstance(node.attrs, LayerNormAttrs):
        axes: tuple[int, ...] = tuple(range(node.attrs.axis % len(x), len(x)))
    else:
        assert isinstance(node.attrs, SoftmaxAttrs)
        axes = (node.attrs.axis % len(x),)
    words = sum(int(np.asarray(v).size) for key, v in node.params.items() if key in ("weight", "bias"))
    return _make(
        NormLayer, node, ctx, channels=vector_words(x, k), elements=math.prod(x),
        group=group_words(x, k, axes), has_weight="weight" in node.params, has_bias="bias" in node.params,
        weight_words=words,
    )  # fmt: skip


def _inner_axes(shape: tuple[int, ...], k: int) -> set[int]:
    return set(range(k)) if k else ({len(shape) - 1} if shape else set())


def _reduce(node: Node, ctx: _Context) -> LayerModel:
    a = node.attrs
    assert isinstance(a, ReduceAttrs)
    x = node.input_shapes()[0]
    k = ctx.k(node.inputs[0])
    axes = tuple(ax % len(x) for ax in a.axes)
    group = group_words(x, k, axes)
    return _make(
        ReduceLayer, node, ctx, channels=vector_words(x, k), elements=math.prod(x),
        group=group, results=max(group // math.prod(x[ax] for ax in axes), 1),
        across=bool(_inner_axes(x, k) & {ax for ax in axes if x[ax] > 1}),
    )  # fmt: skip


def _transpose(node: Node, ctx: _Context) -> LayerModel:
    src = node.inputs[0]
    return _make(
        ReorderLayer, node, ctx, channels=math.gcd(ctx.vector(src), ctx.vector(node)),
        elements=math.prod(_shape(node)), block=ctx.layouts[node].reorder_words,
    )  # fmt: skip


def _select(node: Node, ctx: _Context) -> LayerModel:
    """Slice or gather: the stream width must divide the selection's offsets on the channel axes."""
    src = node.inputs[0]
    x, k = _shape(src), ctx.k(src)
    inner = _inner_axes(x, k)
    channels = math.gcd(ctx.vector(src), ctx.vector(node))
    a = node.attrs
    if isinstance(a, SliceAttrs):
        dims = tuple(x[ax] for ax in a.axes)
        for ax, start, step in zip(a.axes, a.starts, a.steps, strict=True):
            if ax in inner:
                channels = math.gcd(channels, start) if step == 1 else 1
        index_words = 0
    else:
        assert isinstance(a, GatherAttrs)
        axis = a.axis % len(x)
        dims, index_words = (x[axis],), int(node.params["indices"].size)
        if axis in inner:
            channels = 1
    return _make(
        SelectLayer, node, ctx, channels=max(channels, 1), elements=math.prod(x),
        dims=dims, index_words=index_words,
    )  # fmt: skip


def _pad(node: Node, ctx: _Context) -> LayerModel:
    a = node.attrs
    assert isinstance(a, PadAttrs)
    src = node.inputs[0]
    x, out, k = _shape(src), _shape(node), ctx.k(src)
    r = len(x)
    padded = [i for i in range(r) if a.pads[i] or a.pads[r + i]]
    channels = math.gcd(ctx.vector(src), ctx.vector(node))
    for i in padded:
        if i in _inner_axes(x, k):
            channels = math.gcd(channels, a.pads[i])
    return _make(
        PadLayer, node, ctx, channels=max(channels, 1), elements=math.prod(x),
        out_elements=math.prod(out), dims=tuple(out[i] for i in padded),
    )  # fmt: skip


def _expand(node: Node, ctx: _Context) -> LayerModel:
    src = node.inputs[0]
    out, k = _shape(node), ctx.k(node)
    axes = broadcast_axes(_shape(src), out)
    hold = group_words(out, k, axes) // max(math.prod(out[a] for a in axes), 1)
    return _make(
        BroadcastLayer, node, ctx, channels=math.gcd(ctx.vector(src), ctx.vector(node)),
        elements=math.prod(_shape(src)), out_elements=math.prod(out), hold=max(hold, 1),
    )  # fmt: skip


def _resize(node: Node, ctx: _Context) -> LayerModel:
    a = node.attrs
    assert isinstance(a, ResizeAttrs)
    x = node.input_shapes()[0]
    h_in, w_in = _spatial(x)
    h_out, w_out = _spatial(_shape(node))
    return _make(
        ResizeLayer, node, ctx, channels=x[0], elements=math.prod(x),
        h_in=h_in, w_in=w_in, h_out=h_out, w_out=w_out, linear=a.mode is not ResizeMode.NEAREST,
    )  # fmt: skip


BUILDERS: dict[OpKind, Builder] = {
    OpKind.CONV: _conv,
    OpKind.CONV_TRANSPOSE: _conv_transpose,
    OpKind.LINEAR: _linear,
    OpKind.MAXPOOL: _pool,
    OpKind.AVGPOOL: _pool,
    OpKind.GLOBAL_AVGPOOL: _stream,
    OpKind.CONCAT: _stream,
    OpKind.AFFINE: _stream,
    OpKind.WHERE: _stream,
    **{op: _stream for op in ACTIVATION_OPS | UNARY_OPS | BINARY_OPS},
    OpKind.LAYERNORM: _norm,
    OpKind.SOFTMAX: _norm,
    **{op: _reduce for op in REDUCE_OPS},
    OpKind.TRANSPOSE: _transpose,
    OpKind.SLICE: _select,
    OpKind.GATHER: _select,
    OpKind.PAD: _pad,
    OpKind.EXPAND: _expand,
    OpKind.RESIZE: _resize,
}


def _unsupported(node: Node, ctx: _Context) -> UnsupportedOperatorError:
    """The one-line reason a node has no stage."""
    shapes = " x ".join(str(s) for s in node.input_shapes())
    if node.op in (OpKind.MATMUL, OpKind.EINSUM) and len(ctx.live(node)) >= 2:
        why = (f"({node.op.value} of two activations, {shapes}): the dataflow accelerator streams each image "
               "through stages whose weights are fixed on chip; a product of two activations (attention's "
               "Q K^T, or its scores x V) needs one operand's whole sequence buffered before its first output "
               "and is not modelled, so transformers (ViT, BERT, GPT-2) are not supported")
    elif node.op is OpKind.EMBEDDING:
        why = ("(embedding): token ids index a table; the dataflow accelerator streams images through fixed "
               "per-layer weights and has no token-lookup stage, so language models are not supported")
    else:
        why = f"({node.op.value}): the dataflow model has no hardware stage for it"
    return UnsupportedOperatorError(f"node {node.name!r} {why}; supported: {SUPPORTED_NETWORKS}")


def _free(node: Node, ctx: _Context) -> bool:
    """No stage: a renaming of the stream, or a value known when the accelerator is built."""
    lay = ctx.layouts[node]
    if node.op in FREE_OPS or lay.constant:
        return True
    if node.op is OpKind.TRANSPOSE:
        return lay.reorder_words == 0
    return node.op is OpKind.EXPAND and _shape(node) == _shape(node.inputs[0])


def _hardware_producers(node: Node, ctx: _Context) -> list[str]:
    out: list[str] = []
    for p in ctx.live(node):
        while _free(p, ctx) and ctx.live(p):
            p = ctx.live(p)[0]
        if not _free(p, ctx):
            out.append(p.name)
    return out


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
    ctx = _Context(data_bits, weight_bits, use_sparsity, stream_layouts(graph))
    layers: list[LayerModel] = []
    for node in graph:
        if _free(node, ctx):
            continue
        builder = BUILDERS.get(node.op)
        if builder is None:
            raise _unsupported(node, ctx)
        layer = builder(node, ctx)
        if isinstance(layer, ConvLayer) and layer.sparse and lockstep is not LockStep.MEAN:
            windows = node.annotation(WindowSample) if lockstep is LockStep.SAMPLED else None
            layer = dataclasses.replace(layer, lockstep=LockStep(lockstep), windows=windows, _window_cycles=None,
                                        _memo={})  # fmt: skip
        producers = tuple(_hardware_producers(node, ctx))
        layers.append(dataclasses.replace(layer, producers=producers) if producers else layer)
    if not layers:
        raise GraphError(f"graph {graph.name!r} has no layers to map")
    log.debug("built %d dataflow layers for %s", len(layers), graph.name)
    return layers
