"""Graph -> Graph passes shared by the importers. Each is a plain function, short enough to read."""

from __future__ import annotations

import numpy as np

from accelflow.ir.fusion import fuse_functions
from accelflow.ir.graph import Graph, Node
from accelflow.ir.interpret import propagate_shapes
from accelflow.ir.ops import (
    ClipAttrs,
    GatherAttrs,
    GlobalPoolAttrs,
    OpKind,
    ReshapeAttrs,
    ThresholdAttrs,
    TransposeAttrs,
)

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


def _erase_if_unused(graph: Graph, *nodes: Node) -> None:
    for node in nodes:
        if not node.users and node not in graph.outputs:
            graph.erase_node(node)


def _scalar(node: Node) -> float | None:
    """The value of a one-element constant, else None."""
    if node.op is not OpKind.CONSTANT or node.params["value"].size != 1:
        return None
    return float(node.params["value"].reshape(-1)[0])


def _threshold_relu(graph: Graph, node: Node) -> bool:
    """``where(x > t, x, 0)`` with a scalar ``t`` becomes THRESHOLD_RELU (how torch.export and ONNX spell
    :class:`~accelflow.zoo.ThresholdReLU`), and a clip from above of one becomes its ``clip``. The node is
    rewritten in place, so it keeps its name (the module's path)."""
    if node.op is OpKind.WHERE and len(node.inputs) == 3:
        cond, x, zero = node.inputs
        t = _scalar(cond.inputs[1]) if cond.op is OpKind.GREATER and len(cond.inputs) == 2 else None
        if t is None or cond.inputs[0] is not x or cond.users != (node,) or cond in graph.outputs \
                or zero.op is not OpKind.CONSTANT or np.any(zero.params["value"]) or node.shape != x.shape:
            return False
        t_node = cond.inputs[1]
        node.op, node.attrs, node.inputs = OpKind.THRESHOLD_RELU, ThresholdAttrs(t), [x]
        graph.erase_node(cond)
        _erase_if_unused(graph, t_node, zero)
        return True
    if node.op is OpKind.CLIP and isinstance(node.attrs, ClipAttrs) and node.attrs.lo is None \
            and node.attrs.hi is not None:
        prev = node.inputs[0]
        a = prev.attrs
        if prev.op is not OpKind.THRESHOLD_RELU or not isinstance(a, ThresholdAttrs) or a.clip is not None \
                or prev.users != (node,) or prev in graph.outputs:
            return False
        node.op, node.attrs, node.inputs = OpKind.THRESHOLD_RELU, ThresholdAttrs(a.threshold, node.attrs.hi), prev.inputs
        graph.erase_node(prev)
        return True
    return False


def _merge_transposes(graph: Graph, node: Node) -> bool:
    """A transpose of a transpose used only there becomes one transpose (none if they cancel)."""
    parent = node.inputs[0] if node.op is OpKind.TRANSPOSE and node.inputs else None
    if parent is None or parent.op is not OpKind.TRANSPOSE or len(parent.users) != 1 or parent in graph.outputs:
        return False
    assert isinstance(node.attrs, TransposeAttrs) and isinstance(parent.attrs, TransposeAttrs)
    perm = tuple(parent.attrs.perm[p] for p in node.attrs.perm)
    node.inputs, node.attrs = [parent.inputs[0]], TransposeAttrs(perm)
    graph.erase_node(parent)
    if perm == tuple(range(len(perm))) and node not in graph.outputs:
        graph.bypass(node)
    return True


def _gather_in_order(node: Node) -> bool:
    """A gather that takes every element of its axis once, in order, is a reshape (an exporter's spelling of
    ``as_strided`` as a gather of computed positions)."""
    if node.op is not OpKind.GATHER or not isinstance(node.attrs, GatherAttrs) or node.shape is None:
        return False
    x = node.inputs[0].shape
    idx = node.params["indices"].reshape(-1)
    if x is None or idx.size != x[node.attrs.axis % len(x)] or np.any(idx != np.arange(idx.size)):
        return False
    node.op, node.attrs, node.params = OpKind.RESHAPE, ReshapeAttrs(node.shape), {}
    return True


def _merge_equal_constants(graph: Graph) -> None:
    """Constants with the same element type, shape and values become one node (the first): exporters share
    one initializer between layers whose parameters are equal, or not."""
    first: dict[tuple[str, tuple[int, ...], bytes], Node] = {}
    for node in graph.find(OpKind.CONSTANT):
        value = node.params["value"]
        key = (value.dtype.str, value.shape, value.tobytes())
        if key not in first:
            first[key] = node
        elif node not in graph.outputs:
            graph.replace_all_uses(node, first[key])
            graph.erase_node(node)


def _rewrite_once(graph: Graph) -> bool:
    """Apply the first applicable rewrite; return whether the graph changed."""
    for node in graph:
        if _threshold_relu(graph, node) or _merge_transposes(graph, node) or _gather_in_order(node):
            return True
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
      only for a query that may attend to no key at all (a fully masked row);
    * ``where(x > t, x, 0)`` (then a clip from above) is a thresholded ReLU;
    * a transpose of a transpose is one transpose; a gather of every element in order is a reshape;
    * constants with equal values are one node.
    """
    propagate_shapes(graph)
    while _rewrite_once(graph):
        pass
    fuse_functions(graph)
    _merge_equal_constants(graph)
    graph.check()
    return graph
