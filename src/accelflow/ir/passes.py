"""Graph -> Graph passes shared by the importers. Each is a plain function, short enough to read."""

from __future__ import annotations

import numpy as np

from accelflow.ir.fusion import fuse_functions
from accelflow.ir.graph import Graph, Node
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


def _is_reshape(node: Node) -> bool:
    return node.op in (OpKind.FLATTEN, OpKind.RESHAPE)


def _only_inserts_unit_dims(node: Node) -> bool:
    src, dst = node.inputs[0].shape, node.shape
    return src is not None and dst is not None and [d for d in dst if d != 1] == [d for d in src if d != 1] \
        and dst[0] == src[0]


def _softmax_nan_guard(node: Node) -> Node | None:
    """The softmax ``s`` when ``node`` is ``where(isnan(s), 0, s)``, the guard torch's exporter writes after
    an attention softmax (a row of all -inf scores, a query that may attend to no key, gives NaN)."""
    if node.op is not OpKind.WHERE or len(node.inputs) != 3:
        return None
    cond, zero, s = node.inputs
    if s.op is not OpKind.SOFTMAX or cond.op is not OpKind.ISNAN or cond.inputs[0] is not s or cond.users != (node,):
        return None
    if zero.op is not OpKind.CONSTANT or zero.params["value"].size != 1 or np.any(zero.params["value"]):
        return None
    return s


def _rewrite_once(graph: Graph) -> bool:
    """Apply the first applicable rewrite; return whether the graph changed."""
    for node in graph:
        softmax = _softmax_nan_guard(node)
        if softmax is not None and node not in graph.outputs:
            cond, zero = node.inputs[:2]
            graph.replace_all_uses(node, softmax)
            graph.erase_node(node)
            graph.erase_node(cond)
            if not zero.users and zero not in graph.outputs:
                graph.erase_node(zero)
            return True
        bias = node.params.get("bias")
        if bias is not None and not np.any(bias):
            del node.params["bias"]
        if node.op is OpKind.RESHAPE and node.shape is not None and len(node.shape) == 1:
            node.op, node.attrs = OpKind.FLATTEN, None
        if _is_reshape(node) and node.shape == node.inputs[0].shape:
            graph.bypass(node)
            return True
        if _is_reshape(node) and _is_reshape(node.inputs[0]) and len(node.inputs[0].users) == 1 \
                and node.inputs[0] not in graph.outputs:
            parent = node.inputs[0]
            node.inputs = [parent.inputs[0]]
            graph.erase_node(parent)
            return True
        if node.op is OpKind.GLOBAL_AVGPOOL and _is_reshape(node.inputs[0]) and len(node.inputs[0].users) == 1 \
                and _only_inserts_unit_dims(node.inputs[0]) and node.inputs[0] not in graph.outputs:
            parent = node.inputs[0]  # ONNX spells 1-D global pooling as Unsqueeze + ReduceMean + Squeeze
            node.inputs = [parent.inputs[0]]
            graph.erase_node(parent)
            propagate_shapes(graph)
            return True
        if node.op is OpKind.GLOBAL_AVGPOOL and isinstance(node.attrs, GlobalPoolAttrs) and node.attrs.keepdims:
            users = node.users
            assert node.shape is not None
            if users and all(_is_reshape(u) and u.shape == node.shape[:1] for u in users):
                node.attrs = GlobalPoolAttrs(keepdims=False)
                node.shape = node.shape[:1]
                for u in users:
                    graph.replace_all_uses(u, node)
                    graph.erase_node(u)
                return True
    return False


def canonicalize(graph: Graph) -> Graph:
    """Give equivalent spellings one form, so both importers produce the same IR.

    * global average pooling followed by a flatten/reshape to ``(C,)`` becomes one pooling node
      without kept dimensions (ONNX GlobalAveragePool+Flatten and ReduceMean+Reshape, PyTorch
      AdaptiveAvgPool+flatten); unit dims inserted before it (Unsqueeze) are dropped;
    * an all-zero bias is no bias (exporters drop it after folding a freshly initialised BatchNorm);
    * a reshape to one dimension is a flatten; chains of reshapes collapse to one;
    * reshapes and flattens that do not change the shape are removed;
    * decomposed GELU, SiLU, hard-swish and layer norm become single nodes (:func:`fuse_functions`);
    * the NaN guard after an attention softmax, ``where(isnan(p), 0, p)``, is dropped: it changes a result
      only for a query that may attend to no key at all (a fully masked row).
    """
    propagate_shapes(graph)
    while _rewrite_once(graph):
        pass
    fuse_functions(graph)
    graph.check()
    return graph
