"""Per-node work and size: multiply-accumulates, parameters, activation sizes.

MACs are counted for convolutions (plain and transposed), linear layers and products of two activations
(matmul, einsum: attention's QK^T and AV) only, the convention of the published figures (ResNet-18 = 1.82 G
at 224x224); element-wise operators, normalisation, softmax and embedding lookups cost no MACs.
Parameters are the floating-point constants a node holds: weights, biases, embedding tables, and constant
tensors such as position embeddings (integer index tables and boolean masks are not counted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from accelflow.errors import GraphError
from accelflow.ir.graph import Graph, Node
from accelflow.ir.interpret import einsum_sizes
from accelflow.ir.ops import ConvAttrs, ConvTransposeAttrs, EinsumAttrs, LinearAttrs, OpKind

__all__ = ["LayerCost", "layer_cost", "network_cost"]


@dataclass(frozen=True)
class LayerCost:
    """Work and sizes of one node (or a sum of nodes). Sizes are element counts for one input sample."""

    macs: int = 0
    params: int = 0
    input_elems: int = 0
    output_elems: int = 0

    def __add__(self, other: LayerCost) -> LayerCost:
        return LayerCost(
            self.macs + other.macs,
            self.params + other.params,
            self.input_elems + other.input_elems,
            self.output_elems + other.output_elems,
        )


def _macs(node: Node) -> int:
    if node.shape is None:
        raise GraphError(f"node {node.name!r} has no shape: run propagate_shapes first")
    out = math.prod(node.shape)
    if node.op is OpKind.CONV:
        a = node.attrs
        assert isinstance(a, ConvAttrs)
        return out * (a.in_channels // a.groups) * a.kernel_size
    if node.op is OpKind.LINEAR:
        a = node.attrs
        assert isinstance(a, LinearAttrs)
        return out * a.in_features
    if node.op is OpKind.MATMUL:
        return out * node.input_shapes()[0][-1]
    if node.op is OpKind.EINSUM:
        a = node.attrs
        assert isinstance(a, EinsumAttrs)
        return math.prod(einsum_sizes(a.equation, list(node.input_shapes()), f"node {node.name!r}").values())
    if node.op is OpKind.CONV_TRANSPOSE:
        a = node.attrs
        assert isinstance(a, ConvTransposeAttrs)
        x = node.input_shapes()[0]  # every input element meets every tap of its group's filters
        return math.prod(x) * (a.out_channels // a.groups) * math.prod(a.kernel)
    return 0


def layer_cost(node: Node) -> LayerCost:
    return LayerCost(
        macs=_macs(node),
        params=sum(int(p.size) for p in node.params.values() if np.issubdtype(p.dtype, np.floating)),
        input_elems=sum(math.prod(s) for s in node.input_shapes()) if node.inputs else 0,
        output_elems=math.prod(node.shape) if node.shape is not None else 0,
    )


def network_cost(graph: Graph) -> dict[Node, LayerCost]:
    """Cost of every non-input node, in execution order; ``sum(..., LayerCost())`` gives the total."""
    return {node: layer_cost(node) for node in graph if node.op is not OpKind.INPUT}
