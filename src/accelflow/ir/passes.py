"""Graph -> Graph passes shared by the importers. Each is a plain function, short enough to read."""

from __future__ import annotations

import numpy as np

from accelflow.ir.graph import Graph
from accelflow.ir.interpret import propagate_shapes
from accelflow.ir.ops import GlobalPoolAttrs, OpKind

__all__ = ["fold_batchnorm", "canonicalize"]


def fold_batchnorm(
    weight: np.ndarray,
    bias: np.ndarray | None,
    gamma: np.ndarray,
    beta: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    eps: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Fold an inference-mode BatchNorm into the preceding conv/linear (output channels on axis 0)."""
    scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
    w = weight.astype(np.float64) * scale.reshape(-1, *([1] * (weight.ndim - 1)))
    b0 = np.zeros_like(mean, dtype=np.float64) if bias is None else bias.astype(np.float64)
    b = (b0 - mean) * scale + beta
    return w.astype(np.float32), b.astype(np.float32)


def canonicalize(graph: Graph) -> Graph:
    """Give equivalent spellings one form, so both importers produce the same IR.

    * global average pooling followed by a flatten/reshape to ``(C,)`` becomes one pooling node
      without kept dimensions (ONNX GlobalAveragePool+Flatten and ReduceMean+Reshape, PyTorch
      AdaptiveAvgPool+flatten);
    * reshapes and flattens that do not change the shape are removed.
    """
    propagate_shapes(graph)
    for node in graph:
        if node.op is OpKind.GLOBAL_AVGPOOL and isinstance(node.attrs, GlobalPoolAttrs) and node.attrs.keepdims:
            users = node.users
            if users and all(u.op in (OpKind.FLATTEN, OpKind.RESHAPE) and u.shape == node.shape[:1] for u in users):
                node.attrs = GlobalPoolAttrs(keepdims=False)
                node.shape = node.shape[:1]
                for u in users:
                    graph.replace_all_uses(u, node)
                    graph.erase_node(u)
    for node in graph:
        if node.op in (OpKind.FLATTEN, OpKind.RESHAPE) and node.shape == node.inputs[0].shape:
            graph.bypass(node)
    graph.check()
    return graph
