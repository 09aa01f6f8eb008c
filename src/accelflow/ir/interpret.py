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
    ConcatAttrs,
    ConvAttrs,
    GlobalPoolAttrs,
    LinearAttrs,
    OpKind,
    PoolAttrs,
    ReshapeAttrs,
)

__all__ = ["interpret", "propagate_shapes", "SHAPE_RULES", "conv_output_size", "resolve_reshape"]

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
    x, y = shapes
    if x[-1] != y[-2 if len(y) > 1 else 0]:
        raise GraphError(f"node {node.name!r}: matmul of incompatible shapes {x} and {y}")
    return tuple(np.broadcast_shapes(x[:-2], y[:-2])) + x[-2:-1] + y[-1:]


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
}


def propagate_shapes(graph: Graph) -> Graph:
    """Set ``node.shape`` on every node from the input shapes (in place; returns the graph)."""
    shapes = interpret(graph, SHAPE_RULES, {n.name: n.shape for n in graph.inputs if n.shape is not None})
    for node, shape in shapes.items():
        node.shape = shape
    return graph
