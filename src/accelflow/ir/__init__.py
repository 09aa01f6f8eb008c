"""The network IR: typed nodes with shapes and numpy weights, and the analyses that walk it.

Package map: :mod:`~accelflow.ir.ops` (operator kinds, attribute records), :mod:`~accelflow.ir.graph`
(Graph/Node with checked links), :mod:`~accelflow.ir.interpret` (walker + shape propagation),
:mod:`~accelflow.ir.cost` (MACs, parameters), :mod:`~accelflow.ir.execute` (numpy reference executor),
:mod:`~accelflow.ir.passes` (canonicalisation, BatchNorm folding).
"""

from accelflow.ir.annotations import ChannelSparsity
from accelflow.ir.cost import LayerCost, layer_cost, network_cost
from accelflow.ir.execute import execute
from accelflow.ir.graph import Graph, Node
from accelflow.ir.interpret import interpret, propagate_shapes
from accelflow.ir.ops import (
    ACTIVATION_OPS,
    COMPUTE_OPS,
    Attrs,
    ConcatAttrs,
    ConvAttrs,
    GlobalPoolAttrs,
    HardSigmoidAttrs,
    LinearAttrs,
    OpKind,
    PoolAttrs,
    ReshapeAttrs,
    SoftmaxAttrs,
    ThresholdAttrs,
)
from accelflow.ir.passes import canonicalize, fold_batchnorm

__all__ = [
    "ACTIVATION_OPS",
    "ChannelSparsity",
    "COMPUTE_OPS",
    "Attrs",
    "ConcatAttrs",
    "ConvAttrs",
    "GlobalPoolAttrs",
    "Graph",
    "HardSigmoidAttrs",
    "LayerCost",
    "LinearAttrs",
    "Node",
    "OpKind",
    "PoolAttrs",
    "ReshapeAttrs",
    "SoftmaxAttrs",
    "ThresholdAttrs",
    "canonicalize",
    "execute",
    "fold_batchnorm",
    "interpret",
    "layer_cost",
    "network_cost",
    "propagate_shapes",
]
