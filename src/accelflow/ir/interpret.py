"""Analyses as interpreters: one walk over the graph through a per-op dispatch table.

:func:`interpret` is the single walker; shape propagation (here), cost (:mod:`accelflow.ir.cost`) and
reference execution (:mod:`accelflow.ir.execute`) are tables of rules passed to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TypeVar

import numpy as np

from accelflow.errors import GraphError, UnsupportedOperatorError
from accelflow.ir.graph import Graph, Node
from accelflow.ir.ops import (
    ACTIVATION_OPS,
    BINARY_OPS,
    NORM_OPS,
    REDUCE_OPS,
    UNARY_OPS,
    ConcatAttrs,
    ConvAttrs,
    ConvTransposeAttrs,
    EinsumAttrs,
    ExpandAttrs,
    GatherAttrs,
    GlobalPoolAttrs,
    LinearAttrs,
    OpKind,
    PadAttrs,
    PoolAttrs,
    ReduceAttrs,
    ReshapeAttrs,
    ResizeAttrs,
    SliceAttrs,
    TransposeAttrs,
)

__all__ = [
    "interpret",
    "propagate_shapes",
    "infer_shape",
    "SHAPE_RULES",
    "conv_output_size",
    "conv_transpose_output_size",
    "resolve_reshape",
    "einsum_sizes",
]

V = TypeVar("V")
Rule = Callable[[Node, list[V]], V]


def interpret(graph: Graph, rules: Mapping[OpKind, Rule[V]], inputs: Mapping[str, V]) -> dict[Node, V]:
    """Evaluate ``rules`` on every node in order; graph inputs take their value from ``inputs``."""
    values: dict[Node, V] = {}
    for node in graph:
        if node.op is OpKind.INPUT:
            if node.name not in inputs:
                raise GraphError(f"no value given for graph input {node.name!r}")
            values[node] = inputs[node.name]
            continue
        rule = rules.get(node.op)
        if rule is None:
            raise UnsupportedOperatorError(f"node {node.name!r}: no rule for operator {node.op.value!r}")
        values[node] = rule(node, [values[p] for p in node.inputs])
    return values


# ---------------------------------------------------------------------------------------------
# shape propagation (shapes without batch)
# ---------------------------------------------------------------------------------------------
Shape = tuple[int, ...]


def conv_output_size(size: int, kernel: int, stride: int, pad_total: int, dilation: int = 1, ceil: bool = False) -> int:
    span = size + pad_total - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + pad_total // 2:
        out -= 1  # PyTorch/ONNX: the last window must start inside the input or left padding
    return out


def _conv_shape(node: Node, shapes: list[Shape]) -> Shape:
    a = node.attrs
    assert isinstance(a, ConvAttrs)
    x = shapes[0]
    if len(x) != 1 + a.spatial_dims or x[0] != a.in_channels:
        raise GraphError(f"node {node.name!r}: conv expects ({a.in_channels}, ...{a.spatial_dims}-D), got {x}")
    n = a.spatial_dims
    spatial = tuple(
        conv_output_size(x[1 + i], a.kernel[i], a.stride[i], a.padding[i] + a.padding[n + i], a.dilation[i])
        for i in range(n)
    )
    if min(spatial) < 1:
        raise GraphError(f"node {node.name!r}: conv output would be empty for input {x}")
    return (a.out_channels, *spatial)


def _pool_shape(node: Node, shapes: list[Shape]) -> Shape:
    a = node.attrs
    assert isinstance(a, PoolAttrs)
    x = shapes[0]
    n = len(a.kernel)
    spatial = tuple(
        conv_output_size(x[1 + i], a.kernel[i], a.stride[i], a.padding[i] + a.padding[n + i], 1, a.ceil_mode)
        for i in range(n)
    )
    return (x[0], *spatial)


def _linear_shape(node: Node, shapes: list[Shape]) -> Shape:
    a = node.attrs
    assert isinstance(a, LinearAttrs)
    x = shapes[0]
    if x[-1] != a.in_features:
        raise GraphError(f"node {node.name!r}: linear expects last dim {a.in_features}, got {x}")
    return (*x[:-1], a.out_features)


def _matmul_shape(node: Node, shapes: list[Shape]) -> Shape:
    """NumPy's matmul on the shapes without batch (a 1-D operand is a vector)."""
    x, y = shapes
    if not x or not y or x[-1] != y[-2 if len(y) > 1 else 0]:
        raise GraphError(f"node {node.name!r}: matmul of incompatible shapes {x} and {y}")
    try:
        lead = tuple(int(d) for d in np.broadcast_shapes(x[:-2], y[:-2]))
    except ValueError:
        raise GraphError(f"node {node.name!r}: matmul batch dims of {x} and {y} do not broadcast") from None
    return lead + x[-2:-1] + (y[-1:] if len(y) > 1 else ())


def _broadcast_shape(node: Node, shapes: list[Shape]) -> Shape:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise GraphError(f"node {node.name!r}: shapes {shapes} do not broadcast") from None


def _concat_shape(node: Node, shapes: list[Shape]) -> Shape:
    a = node.attrs
    assert isinstance(a, ConcatAttrs)
    ax = a.axis % len(shapes[0])
    for s in shapes[1:]:
        if len(s) != len(shapes[0]) or any(s[i] != shapes[0][i] for i in range(len(s)) if i != ax):
            raise GraphError(f"node {node.name!r}: cannot concatenate {shapes} on axis {a.axis}")
    return (*shapes[0][:ax], sum(s[ax] for s in shapes), *shapes[0][ax + 1 :])


def resolve_reshape(target: tuple[int, ...], source: Shape, where: str) -> Shape:
    total = math.prod(source)
    if target.count(-1) > 1:
        raise GraphError(f"{where}: reshape target {target} has more than one -1")
    known = math.prod(d for d in target if d != -1)
    if -1 in target:
        if known == 0 or total % known:
            raise GraphError(f"{where}: cannot reshape {source} to {target}")
        target = tuple(total // known if d == -1 else d for d in target)
    if math.prod(target) != total:
        raise GraphError(f"{where}: cannot reshape {source} ({total} elements) to {target}")
    return target


def _reshape_shape(node: Node, shapes: list[Shape]) -> Shape:
    a = node.attrs
    assert isinstance(a, ReshapeAttrs)
    return resolve_reshape(a.shape, shapes[0], f"node {node.name!r}")


def _global_pool_shape(node: Node, shapes: list[Shape]) -> Shape:
    a = node.attrs
    assert isinstance(a, GlobalPoolAttrs)
    x = shapes[0]
    return (x[0], *(1 for _ in x[1:])) if a.keepdims else (x[0],)


def _same(node: Node, shapes: list[Shape]) -> Shape:
    return shapes[0]


def _axis(axis: int, rank: int, where: str) -> int:
    if not -rank <= axis < rank:
        raise GraphError(f"{where}: axis {axis} out of range for rank {rank} (without batch)")
    return axis % rank


def conv_transpose_output_size(size: int, kernel: int, stride: int, pad_total: int, dilation: int,
                               output_padding: int) -> int:
    return (size - 1) * stride - pad_total + dilation * (kernel - 1) + output_padding + 1


def _conv_transpose_shape(node: Node, shapes: list[Shape]) -> Shape:
    a = node.attrs
    assert isinstance(a, ConvTransposeAttrs)
    x = shapes[0]
    n = a.spatial_dims
    if len(x) != 1 + n or x[0] != a.in_channels:
        raise GraphError(f"node {node.name!r}: transposed conv expects ({a.in_channels}, ...{n}-D), got {x}")
    spatial = tuple(
        conv_transpose_output_size(x[1 + i], a.kernel[i], a.stride[i], a.padding[i] + a.padding[n + i],
                                   a.dilation[i], a.output_padding[i])
        for i in range(n)
    )
    if min(spatial) < 1:
        raise GraphError(f"node {node.name!r}: transposed conv output would be empty for input {x}")
    return (a.out_channels, *spatial)


def einsum_sizes(equation: str, shapes: list[Shape], where: str) -> dict[str, int]:
    """The size of every index letter of an explicit two-sided einsum ``equation`` over ``shapes``."""
    lhs, arrow, out = equation.partition("->")
    terms = lhs.split(",")
    if not arrow or len(terms) != len(shapes) or "." in equation:
        raise GraphError(f"{where}: einsum {equation!r} needs one term per operand and an explicit output")
    sizes: dict[str, int] = {}
    for term, shape in zip(terms, shapes, strict=True):
        if len(term) != len(shape):
            raise GraphError(f"{where}: einsum term {term!r} does not match operand shape {shape}")
        for letter, d in zip(term, shape, strict=True):
            if sizes.setdefault(letter, d) != d and 1 not in (d, sizes[letter]):
                raise GraphError(f"{where}: einsum index {letter!r} has sizes {sizes[letter]} and {d}")
            sizes[letter] = max(sizes[letter], d)
    if any(letter not in sizes for letter in out) or len(set(out)) != len(out):
        raise GraphError(f"{where}: einsum output {out!r} names an index no operand has, or one twice")
    return sizes


def _einsum_shape(node: Node, shapes: list[Shape]) -> Shape:
    a = node.attrs
    assert isinstance(a, EinsumAttrs)
    sizes = einsum_sizes(a.equation, shapes, f"node {node.name!r}")
    return tuple(sizes[letter] for letter in a.terms[1])


def _embedding_shape(node: Node, shapes: list[Shape]) -> Shape:
    return (*shapes[0], int(node.params["weight"].shape[1]))


def _reduce_shape(node: Node, shapes: list[Shape]) -> Shape:
    a = node.attrs
    assert isinstance(a, ReduceAttrs)
    x = shapes[0]
    axes = {_axis(ax, len(x), f"node {node.name!r}") for ax in a.axes}
    if a.keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(x))
    return tuple(d for i, d in enumerate(x) if i not in axes)


def _transpose_shape(node: Node, shapes: list[Shape]) -> Shape:
    a = node.attrs
    assert isinstance(a, TransposeAttrs)
    if len(a.perm) != len(shapes[0]):
        raise GraphError(f"node {node.name!r}: perm {a.perm} for a rank-{len(shapes[0])} input {shapes[0]}")
    return tuple(shapes[0][p] for p in a.perm)


def _slice_shape(node: Node, shapes: list[Shape]) -> Shape:
    a = node.attrs
    assert isinstance(a, SliceAttrs)
    out = list(shapes[0])
    for ax, start, end, step in zip(a.axes, a.starts, a.ends, a.steps, strict=True):
        ax = _axis(ax, len(out), f"node {node.name!r}")
        out[ax] = len(range(start, min(end, out[ax]), step))
    if 0 in out:
        raise GraphError(f"node {node.name!r}: slice of {shapes[0]} is empty")
    return tuple(out)


def _gather_shape(node: Node, shapes: list[Shape]) -> Shape:
    a = node.attrs
    assert isinstance(a, GatherAttrs)
    x = shapes[0]
    ax = _axis(a.axis, len(x), f"node {node.name!r}")
    idx = node.params["indices"]
    if idx.size and (idx.max() >= x[ax] or idx.min() < -x[ax]):
        raise GraphError(f"node {node.name!r}: gather index out of range for axis {ax} of size {x[ax]}")
    return (*x[:ax], *idx.shape, *x[ax + 1 :])


def _expand_shape(node: Node, shapes: list[Shape]) -> Shape:
    a = node.attrs
    assert isinstance(a, ExpandAttrs)
    try:
        return tuple(int(d) for d in np.broadcast_shapes(shapes[0], a.shape))
    except ValueError:
        raise GraphError(f"node {node.name!r}: cannot expand {shapes[0]} to {a.shape}") from None


def _pad_shape(node: Node, shapes: list[Shape]) -> Shape:
    a = node.attrs
    assert isinstance(a, PadAttrs)
    x = shapes[0]
    if len(a.pads) != 2 * len(x):
        raise GraphError(f"node {node.name!r}: {len(a.pads)} pads for a rank-{len(x)} input")
    return tuple(d + a.pads[i] + a.pads[len(x) + i] for i, d in enumerate(x))


def _resize_shape(node: Node, shapes: list[Shape]) -> Shape:
    a = node.attrs
    assert isinstance(a, ResizeAttrs)
    if len(a.size) != len(shapes[0]) - 1:
        raise GraphError(f"node {node.name!r}: resize to {a.size} for input {shapes[0]} (channels first)")
    return (shapes[0][0], *a.size)


def _prelu_shape(node: Node, shapes: list[Shape]) -> Shape:
    if np.broadcast_shapes(shapes[0], node.params["slope"].shape) != shapes[0]:
        raise GraphError(f"node {node.name!r}: slope {node.params['slope'].shape} does not broadcast to {shapes[0]}")
    return shapes[0]


def _norm_shape(node: Node, shapes: list[Shape]) -> Shape:
    return shapes[0]


SHAPE_RULES: dict[OpKind, Rule[Shape]] = {
    OpKind.CONV: _conv_shape,
    OpKind.LINEAR: _linear_shape,
    OpKind.MATMUL: _matmul_shape,
    OpKind.MAXPOOL: _pool_shape,
    OpKind.AVGPOOL: _pool_shape,
    OpKind.GLOBAL_AVGPOOL: _global_pool_shape,
    OpKind.ADD: _broadcast_shape,
    OpKind.MUL: _broadcast_shape,
    OpKind.CONCAT: _concat_shape,
    OpKind.FLATTEN: lambda node, s: (math.prod(s[0]),),
    OpKind.RESHAPE: _reshape_shape,
    OpKind.SOFTMAX: _same,
    **{op: _same for op in ACTIVATION_OPS},
    **{op: _same for op in UNARY_OPS},
    **{op: _broadcast_shape for op in BINARY_OPS},
    **{op: _reduce_shape for op in REDUCE_OPS},
    **{op: _norm_shape for op in NORM_OPS},
    OpKind.PRELU: _prelu_shape,
    OpKind.WHERE: _broadcast_shape,
    OpKind.CONSTANT: lambda node, s: tuple(int(d) for d in node.params["value"].shape),
    OpKind.CONV_TRANSPOSE: _conv_transpose_shape,
    OpKind.EINSUM: _einsum_shape,
    OpKind.EMBEDDING: _embedding_shape,
    OpKind.TRANSPOSE: _transpose_shape,
    OpKind.SLICE: _slice_shape,
    OpKind.GATHER: _gather_shape,
    OpKind.EXPAND: _expand_shape,
    OpKind.PAD: _pad_shape,
    OpKind.RESIZE: _resize_shape,
    OpKind.CUMSUM: _same,
}


def infer_shape(node: Node) -> tuple[int, ...]:
    """Set and return the shape of one node from its inputs' shapes (already known)."""
    if node.op is OpKind.INPUT:
        assert node.shape is not None
        return node.shape
    rule = SHAPE_RULES.get(node.op)
    if rule is None:
        raise UnsupportedOperatorError(f"node {node.name!r}: no shape rule for operator {node.op.value!r}")
    node.shape = rule(node, list(node.input_shapes()))
    return node.shape


def propagate_shapes(graph: Graph) -> Graph:
    """Set ``node.shape`` on every node from the input shapes (in place; returns the graph)."""
    shapes = interpret(graph, SHAPE_RULES, {n.name: n.shape for n in graph.inputs if n.shape is not None})
    for node, shape in shapes.items():
        node.shape = shape
    return graph
