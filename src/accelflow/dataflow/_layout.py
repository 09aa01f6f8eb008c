"""Stream layout of every tensor on the dataflow accelerator (an interpreter over the IR).

The accelerator moves a tensor one word per cycle per stream in a fixed order. A CNN map ``(C, H, W)``
streams pixel by pixel with a pixel's C channels innermost (fpgaConvNet's order: rows, columns, channels);
a channels-last map ``(H, W, C)`` or a token sequence ``(S, D)`` streams in row-major order. One number
describes both: the first ``k`` axes (the channel axes) are innermost and the other axes, in order, are
outside them::

    stream order = axes k, k+1, ..., r-1, then 0, ..., k-1

``k = 1`` for a CNN map, ``k = 0`` for a row-major tensor, ``k = 2`` for a map whose channels a reshape
split into ``(g, C/g)`` (the first step of a channel shuffle). The layout decides what layout operators
cost: a reshape or transpose that keeps the order of the words in the stream only renames axes and is
free (``(C, H, W) <-> (H, W, C)`` around a per-pixel layer norm or linear layer); one that changes it
must buffer the block of words it re-orders (a channel shuffle re-orders the C words of a pixel). The
same order gives the group a layer norm, softmax or reduction works on (the smallest block of the stream
that holds every word it combines) and the words a broadcast operand must wait for.

A node computed from constants only (a ``CONSTANT``, or layout operators and arithmetic on constants) is
*constant*: its value is known when the accelerator is built, so it is a weight held on chip by the layer
that reads it, not a stage.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from accelflow.ir import (
    DType,
    GatherAttrs,
    Graph,
    InputAttrs,
    Node,
    OpKind,
    ReduceAttrs,
    SoftmaxAttrs,
    TransposeAttrs,
    interpret,
    propagate_shapes,
)

__all__ = [
    "StreamLayout",
    "stream_layouts",
    "stream_order",
    "vector_words",
    "group_words",
    "broadcast_axes",
    "reorder_words",
    "demanded_layout",
]


@dataclass(frozen=True)
class StreamLayout:
    """How one tensor streams: its first ``channel_axes`` axes innermost (see the module doc).

    ``constant``: computed from constants only (a weight, no stage). ``reorder_words``: for a transpose,
    the words of the block whose order it changes (0 = it only renames axes and costs nothing).
    """

    channel_axes: int = 0
    constant: bool = False
    reorder_words: int = 0


def _normal(k: int, rank: int) -> int:
    """``k`` channel axes of a rank-``rank`` tensor; all or none of the axes is the row-major order."""
    return k if 0 < k < rank else 0


def stream_order(shape: Sequence[int], k: int) -> tuple[int, ...]:
    """The axes of ``shape`` from the outermost to the innermost of the stream."""
    r = len(shape)
    k = _normal(k, r)
    return (*range(k, r), *range(k))


def vector_words(shape: Sequence[int], k: int) -> int:
    """Words of the innermost unit of the stream (a pixel's channels; the last axis of a row-major
    tensor): parallel streams split it, so a stage's ``coarse`` divides it."""
    if not shape:
        return 1
    k = _normal(k, len(shape))
    return math.prod(shape[:k]) if k else int(shape[-1])


def group_words(shape: Sequence[int], k: int, axes: Sequence[int]) -> int:
    """Words of the smallest innermost block of the stream that holds every index of ``axes``: what a
    layer norm or softmax over ``axes`` buffers, and what a reduction over them reads per result group."""
    order = stream_order(shape, k)
    live = [a for a in axes if shape[a] > 1]
    if not live:
        return 1
    first = min(order.index(a) for a in live)
    return math.prod(shape[a] for a in order[first:])


def broadcast_axes(small: Sequence[int], big: Sequence[int]) -> tuple[int, ...]:
    """Axes of ``big`` along which ``small`` (right-aligned, NumPy rules) is repeated."""
    pad = (1,) * (len(big) - len(small)) + tuple(small)
    return tuple(i for i, (s, b) in enumerate(zip(pad, big, strict=True)) if s == 1 and b > 1)


def reorder_words(shape: Sequence[int], k_in: int, perm: Sequence[int], k_out: int) -> int:
    """Words a transpose with ``perm`` must buffer to turn the stream of ``shape`` (``k_in`` channel axes)
    into the stream of its output with ``k_out`` channel axes: the block below the outer axes both orders
    share (0 when the orders agree: a renaming). Unit axes do not change the order."""
    out_shape = [shape[p] for p in perm]
    have = [a for a in stream_order(shape, k_in) if shape[a] > 1]
    want = [perm[a] for a in stream_order(out_shape, k_out) if out_shape[a] > 1]
    if have == want:
        return 0
    common = 0
    while have[common] == want[common]:
        common += 1
    return math.prod(shape[a] for a in have[common:])


# -- the interpreter ---------------------------------------------------------------------------------
Rule = Callable[[Node, list[StreamLayout]], StreamLayout]


def _shape(node: Node) -> tuple[int, ...]:
    assert node.shape is not None
    return node.shape


def _same(node: Node, ins: list[StreamLayout]) -> StreamLayout:
    """Element-wise: the layout of the first non-constant operand with the output's rank."""
    rank = len(_shape(node))
    live = [(p, lay) for p, lay in zip(node.inputs, ins, strict=True) if not lay.constant]
    for p, lay in live:
        if len(_shape(p)) == rank:
            return StreamLayout(_normal(lay.channel_axes, rank))
    return StreamLayout(_normal(live[0][1].channel_axes if live else 0, rank))


def _maps(node: Node, ins: list[StreamLayout]) -> StreamLayout:
    """Convolution, pooling, resize: a CNN map, channels innermost."""
    return StreamLayout(_normal(1, len(_shape(node))))


def _reshape(node: Node, ins: list[StreamLayout]) -> StreamLayout:
    """Free; keeps its channel block when the new shape splits or merges the channel axes and the outer
    axes separately (a row-major tensor stays row-major under any reshape). Otherwise, as fpgaConvNet's
    flatten, it re-interprets the stream (the next layer's weights are stored in stream order)."""
    src, dst = _shape(node.inputs[0]), _shape(node)
    k = _normal(ins[0].channel_axes, len(src))
    if k == 0 or node.op is OpKind.FLATTEN:
        return StreamLayout(0)
    block = math.prod(src[:k])
    for j in range(1, len(dst) + 1):
        if math.prod(dst[:j]) == block:
            return StreamLayout(_normal(j, len(dst)))
    return StreamLayout(0)


#: Stages that read a map pixel by pixel, channels innermost.
_MAP_STAGES = frozenset(
    {OpKind.CONV, OpKind.CONV_TRANSPOSE, OpKind.MAXPOOL, OpKind.AVGPOOL, OpKind.GLOBAL_AVGPOOL, OpKind.RESIZE}
)


def demanded_layout(node: Node, memo: dict[Node, int | None] | None = None) -> int | None:
    """The channel axes the consumers of ``node`` need, or None when none cares.

    A map stage (conv, pooling, resize) needs a pixel's channels innermost (k = 1); a linear layer, layer
    norm or softmax over the last axis needs that axis innermost (k = 0). Element-wise operators and other
    operators that keep the rank pass on their own consumers' demand; a reshape translates it."""
    memo = {} if memo is None else memo
    if node in memo:
        return memo[node]
    memo[node] = None  # guards the walk; a DAG has no cycles, but shared consumers are visited once
    shape = _shape(node)
    found: int | None = None
    for user in node.users:
        if user.op in _MAP_STAGES:
            found = _normal(1, len(shape))
        elif user.op in (OpKind.LINEAR, OpKind.LAYERNORM) or (
            isinstance(user.attrs, SoftmaxAttrs) and user.attrs.axis % len(shape) == len(shape) - 1
        ):
            found = 0
        elif user.op is OpKind.RESHAPE:
            wanted = demanded_layout(user, memo)
            if wanted == 0:
                found = 0
            elif wanted is not None:  # the same channel block, counted in this node's axes
                block = math.prod(_shape(user)[:wanted])
                splits = (j for j in range(1, len(shape) + 1) if math.prod(shape[:j]) == block)
                found = next((_normal(j, len(shape)) for j in splits), None)
        elif user.op not in (OpKind.TRANSPOSE, OpKind.FLATTEN) and len(_shape(user)) == len(shape):
            found = demanded_layout(user, memo)
        if found is not None:
            break
    memo[node] = found
    return found


def _transpose(node: Node, ins: list[StreamLayout]) -> StreamLayout:
    """The output layout the consumers need (:func:`demanded_layout`), else the one needing the smallest
    re-ordering; a renaming when the two stream orders agree."""
    a = node.attrs
    assert isinstance(a, TransposeAttrs)
    src = _shape(node.inputs[0])
    k_in = _normal(ins[0].channel_axes, len(src))
    wanted = demanded_layout(node)
    candidates = range(len(src)) if wanted is None else (wanted,)
    words, k = min((reorder_words(src, k_in, a.perm, k), k) for k in candidates)
    return StreamLayout(_normal(k, len(src)), reorder_words=words)


def _drop_axes(node: Node, ins: list[StreamLayout]) -> StreamLayout:
    """A reduction without kept axes, or a gather with a scalar index: the channel axes it removes go."""
    src = _shape(node.inputs[0])
    k = _normal(ins[0].channel_axes, len(src))
    if isinstance(node.attrs, ReduceAttrs):
        removed = set() if node.attrs.keepdims else {ax % len(src) for ax in node.attrs.axes}
    elif isinstance(node.attrs, GatherAttrs) and node.params["indices"].ndim == 0:
        removed = {node.attrs.axis % len(src)}
    else:
        removed = set()
    return StreamLayout(_normal(k - sum(1 for ax in removed if ax < k), len(_shape(node))))


def _expand(node: Node, ins: list[StreamLayout]) -> StreamLayout:
    src, dst = _shape(node.inputs[0]), _shape(node)
    k = _normal(ins[0].channel_axes, len(src))
    return StreamLayout(_normal(k + len(dst) - len(src) if k else 0, len(dst)))


_RULES: dict[OpKind, Rule] = {
    OpKind.CONV: _maps,
    OpKind.CONV_TRANSPOSE: _maps,
    OpKind.MAXPOOL: _maps,
    OpKind.AVGPOOL: _maps,
    OpKind.GLOBAL_AVGPOOL: _maps,
    OpKind.RESIZE: _maps,
    OpKind.FLATTEN: _reshape,
    OpKind.RESHAPE: _reshape,
    OpKind.TRANSPOSE: _transpose,
    OpKind.GATHER: _drop_axes,
    OpKind.EXPAND: _expand,
    **{op: _drop_axes for op in (OpKind.REDUCE_MEAN, OpKind.REDUCE_SUM, OpKind.REDUCE_MAX, OpKind.REDUCE_MIN)},
}


def _rule(op: OpKind) -> Rule:
    inner = _RULES.get(op, _same)

    def rule(node: Node, ins: list[StreamLayout]) -> StreamLayout:
        if node.op is OpKind.CONSTANT or (ins and all(lay.constant for lay in ins)):
            return StreamLayout(0, constant=True)
        return inner(node, ins)

    return rule


def _input_layout(node: Node) -> StreamLayout:
    """A float input of rank >= 2 is a map (C, H, W) or (C, L); token ids and feature vectors are row-major."""
    a = node.attrs
    ids = isinstance(a, InputAttrs) and a.dtype is not DType.FLOAT32
    return StreamLayout(0 if ids else _normal(1, len(_shape(node))))


def stream_layouts(graph: Graph) -> dict[Node, StreamLayout]:
    """The :class:`StreamLayout` of every node of ``graph`` (shapes are propagated if missing)."""
    if any(n.shape is None for n in graph):
        propagate_shapes(graph)
    rules = {op: _rule(op) for op in OpKind if op is not OpKind.INPUT}
    return interpret(graph, rules, {n.name: _input_layout(n) for n in graph.inputs})
