"""The IR back to PyTorch: a :class:`torch.fx.GraphModule` that computes what the graph computes.

What it is for: an ONNX file (weights included) becomes a PyTorch module that can be run, thresholded and
fine-tuned, so `accelflow hass net.onnx` searches the network it describes. Layers with weights (conv,
transposed conv, linear, embedding, layer norm, affine, PReLU), activations and pools become submodules
named after their IR nodes (``features.0.Conv`` -> ``features_0_Conv``), so the HASS search space sees convs
and the ReLUs that feed them exactly as in a hand-written model; constant tensors become buffers; everything
else is a function call. BatchNorm reaches the module folded into its conv, as the IR holds it.

Every operator of :class:`accelflow.ir.OpKind` converts, with the IR's batch semantics (the batch axis
carried apart, other axes right-aligned when operands broadcast): the module reproduces
:func:`accelflow.ir.execute` to float rounding, for float and int64 (token id) inputs. Shapes are resolved
here, from the IR, so the module's code never branches on a tensor's shape: it traces again with
``torch.fx`` (as HASS does).

Example::

    >>> from accelflow.frontends import from_onnx, to_torch
    >>> module = to_torch(from_onnx("net.onnx"))      # doctest: +SKIP
    >>> logits = module(torch.randn(8, 1, 28, 28))     # doctest: +SKIP
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from accelflow.errors import UnsupportedOperatorError
from accelflow.frontends import _torch_layers as L
from accelflow.ir import (
    CastAttrs,
    ClipAttrs,
    ConcatAttrs,
    CumsumAttrs,
    DType,
    EinsumAttrs,
    ExpandAttrs,
    GatherAttrs,
    GlobalPoolAttrs,
    Graph,
    Node,
    OpKind,
    PadAttrs,
    ReduceAttrs,
    ResizeAttrs,
    ResizeMode,
    SliceAttrs,
    SoftmaxAttrs,
    TransposeAttrs,
)

__all__ = ["to_torch"]

_TORCH_DTYPES = {DType.FLOAT32: torch.float32, DType.INT64: torch.int64, DType.BOOL: torch.bool}


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array).copy())


# ---------------------------------------------------------------------------------- the rest as calls


@dataclass
class _Builder:
    """The module and fx graph under construction, and what is known about each IR node's value."""

    root: nn.Module = field(default_factory=nn.Module)
    g: torch.fx.Graph = field(default_factory=torch.fx.Graph)
    values: dict[Node, torch.fx.Node] = field(default_factory=dict)
    batched: dict[Node, bool] = field(default_factory=dict)  # False: computed from constants only (batch 1)
    taken: set[str] = field(default_factory=set)

    def name(self, base: str) -> str:
        """An attribute name from an IR node name: identifier characters only, unique."""
        out = re.sub(r"\W", "_", base).strip("_") or "node"
        out = f"n_{out}" if out[0].isdigit() else out
        unique, k = out, 1
        while unique in self.taken:
            k += 1
            unique = f"{out}_{k}"
        self.taken.add(unique)
        return unique

    def buffer(self, base: str, array: np.ndarray) -> torch.fx.Node:
        target = self.name(base)
        self.root.register_buffer(target, _tensor(array))
        return self.g.get_attr(target)

    def call(self, fn: Callable[..., object], *args: object, **kwargs: object) -> torch.fx.Node:
        return self.g.call_function(fn, tuple(args), kwargs)  # type: ignore[arg-type]


Emit = Callable[[_Builder, Node, list[torch.fx.Node]], torch.fx.Node]


def _dim(axis: int) -> int:
    """An IR axis (without batch) as a torch dimension (with it)."""
    return axis + 1 if axis >= 0 else axis


def _rank(node: Node) -> int:
    assert node.shape is not None
    return len(node.shape)


def _align(b: _Builder, x: torch.fx.Node, extra: int) -> torch.fx.Node:
    """``x`` with ``extra`` size-1 axes inserted after its batch axis (none: ``x`` itself)."""
    return b.call(operator.getitem, x, (slice(None), *([None] * extra), Ellipsis)) if extra > 0 else x


def _aligned(b: _Builder, node: Node, args: list[torch.fx.Node]) -> list[torch.fx.Node]:
    """The operands, those of lower rank given size-1 axes after their batch axis: PyTorch right-aligns every
    axis, the batch included, where the IR right-aligns the axes after the batch."""
    rank = max(_rank(p) for p in node.inputs)
    return [_align(b, a, rank - _rank(p)) for p, a in zip(node.inputs, args, strict=True)]


def _elementwise(fn: Callable[..., torch.Tensor]) -> Emit:
    return lambda b, node, args: b.call(fn, *_aligned(b, node, args))


def _unary(fn: Callable[..., torch.Tensor]) -> Emit:
    return lambda b, node, args: b.call(fn, args[0])


def _matmul(b: _Builder, node: Node, args: list[torch.fx.Node]) -> torch.fx.Node:
    """NumPy's matmul on the axes after the batch: a 1-D operand is a vector (made a matrix, then its axis
    dropped from the product), operands of unequal rank aligned after their batch axis."""
    (rx, ry), (x, y) = (_rank(p) for p in node.inputs), args
    vx, vy = rx == 1, ry == 1
    x = b.g.call_method("unsqueeze", (x, 1)) if vx else x
    y = b.g.call_method("unsqueeze", (y, 2)) if vy else y
    rank = max(rx + vx, ry + vy)
    out = b.call(torch.matmul, _align(b, x, rank - rx - vx), _align(b, y, rank - ry - vy))
    if vx or vy:
        index = (Ellipsis, 0, 0) if vx and vy else (Ellipsis, 0, slice(None)) if vx else (Ellipsis, 0)
        out = b.call(operator.getitem, out, index)
    return out


def _where(b: _Builder, node: Node, args: list[torch.fx.Node]) -> torch.fx.Node:
    cond, x, y = _aligned(b, node, args)
    return b.call(torch.where, b.g.call_method("to", (cond, torch.bool)), x, y)  # any non-zero is true


def _einsum(b: _Builder, node: Node, args: list[torch.fx.Node]) -> torch.fx.Node:
    a = node.attrs
    assert isinstance(a, EinsumAttrs)
    terms, out = a.terms
    return b.call(torch.einsum, ",".join(f"...{t}" for t in terms) + f"->...{out}", *args)


def _concat(b: _Builder, node: Node, args: list[torch.fx.Node]) -> torch.fx.Node:
    a = node.attrs
    assert isinstance(a, ConcatAttrs)
    # constants (batch 1) meeting batched values, such as a class token, first take their batch size
    batched = [a for p, a in zip(node.inputs, args, strict=True) if b.batched[p]]
    if batched and len(batched) < len(args):
        batch = b.g.call_method("size", (batched[0], 0))  # broadcast_to, not a method of a buffer: traceable
        args = [a if b.batched[p] else b.call(torch.broadcast_to, a, (batch, *p.shape))  # type: ignore[misc]
                for p, a in zip(node.inputs, args, strict=True)]
    return b.call(torch.cat, list(args), _dim(a.axis))


def _reshape(b: _Builder, node: Node, args: list[torch.fx.Node]) -> torch.fx.Node:
    assert node.shape is not None
    return b.call(torch.reshape, args[0], (-1, *node.shape))


def _softmax(b: _Builder, node: Node, args: list[torch.fx.Node]) -> torch.fx.Node:
    assert isinstance(node.attrs, SoftmaxAttrs)
    return b.call(F.softmax, args[0], dim=_dim(node.attrs.axis))


def _global_avgpool(b: _Builder, node: Node, args: list[torch.fx.Node]) -> torch.fx.Node:
    a = node.attrs
    assert isinstance(a, GlobalPoolAttrs)
    dims = tuple(range(2, 1 + _rank(node.inputs[0])))
    return b.call(torch.mean, args[0], dims, keepdim=a.keepdims)


def _constant(b: _Builder, node: Node, args: list[torch.fx.Node]) -> torch.fx.Node:
    return b.buffer(node.name, node.params["value"][None])


def _cast(b: _Builder, node: Node, args: list[torch.fx.Node]) -> torch.fx.Node:
    assert isinstance(node.attrs, CastAttrs)
    return b.g.call_method("to", (args[0], _TORCH_DTYPES[node.attrs.dtype]))


def _clip(b: _Builder, node: Node, args: list[torch.fx.Node]) -> torch.fx.Node:
    a = node.attrs
    assert isinstance(a, ClipAttrs)
    if a.lo is None and a.hi is None:
        return args[0]
    return b.call(torch.clamp, args[0], min=a.lo, max=a.hi)


def _cumsum(b: _Builder, node: Node, args: list[torch.fx.Node]) -> torch.fx.Node:
    a = node.attrs
    assert isinstance(a, CumsumAttrs)
    dim = _dim(a.axis % _rank(node.inputs[0]))
    x = b.call(torch.flip, args[0], (dim,)) if a.reverse else args[0]
    out = b.call(torch.cumsum, x, dim)
    if a.exclusive:
        out = b.call(operator.sub, out, x)
    return b.call(torch.flip, out, (dim,)) if a.reverse else out


def _reduce(fn: Callable[..., torch.Tensor]) -> Emit:
    def emit(b: _Builder, node: Node, args: list[torch.fx.Node]) -> torch.fx.Node:
        a = node.attrs
        assert isinstance(a, ReduceAttrs)
        rank = _rank(node.inputs[0])
        return b.call(fn, args[0], tuple(_dim(ax % rank) for ax in a.axes), keepdim=a.keepdims)

    return emit


def _transpose(b: _Builder, node: Node, args: list[torch.fx.Node]) -> torch.fx.Node:
    assert isinstance(node.attrs, TransposeAttrs)
    return b.call(torch.permute, args[0], (0, *(p + 1 for p in node.attrs.perm)))


def _slice(b: _Builder, node: Node, args: list[torch.fx.Node]) -> torch.fx.Node:
    a = node.attrs
    assert isinstance(a, SliceAttrs)
    index: list[slice] = [slice(None)] * (_rank(node.inputs[0]) + 1)
    for ax, start, end, step in zip(a.axes, a.starts, a.ends, a.steps, strict=True):
        index[ax + 1] = slice(start, end, step)
    return b.call(operator.getitem, args[0], tuple(index))


def _gather(b: _Builder, node: Node, args: list[torch.fx.Node]) -> torch.fx.Node:
    a = node.attrs
    assert isinstance(a, GatherAttrs) and node.inputs[0].shape is not None
    x = node.inputs[0].shape
    axis = a.axis % len(x)
    indices = node.params["indices"].astype(np.int64) % x[axis]  # np.take's negative indices count from the end
    if indices.ndim == 0:
        return b.call(torch.select, args[0], axis + 1, int(indices))
    assert node.shape is not None  # np.take: the axis replaced by the axes of the indices
    picked = b.call(torch.index_select, args[0], axis + 1, b.buffer(f"{node.name}_indices", indices.reshape(-1)))
    return b.call(torch.reshape, picked, (-1, *node.shape))


def _expand(b: _Builder, node: Node, args: list[torch.fx.Node]) -> torch.fx.Node:
    a = node.attrs
    assert isinstance(a, ExpandAttrs) and node.shape is not None
    x = _align(b, args[0], len(node.shape) - _rank(node.inputs[0]))
    return b.g.call_method("expand", (x, -1, *node.shape))


def _pad(b: _Builder, node: Node, args: list[torch.fx.Node]) -> torch.fx.Node:
    a = node.attrs
    assert isinstance(a, PadAttrs)
    n = len(a.pads) // 2
    widths = [w for i in reversed(range(n)) for w in (a.pads[i], a.pads[n + i])]  # last axis first
    return b.call(F.pad, args[0], widths, value=a.value)


_LINEAR_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def _resize(b: _Builder, node: Node, args: list[torch.fx.Node]) -> torch.fx.Node:
    a = node.attrs
    assert isinstance(a, ResizeAttrs)
    if a.mode is ResizeMode.NEAREST:
        return b.call(F.interpolate, args[0], size=tuple(a.size), mode="nearest")
    if len(a.size) not in _LINEAR_MODES:
        raise UnsupportedOperatorError(f"node {node.name!r}: linear resizing of {len(a.size)} spatial axes has "
                                       "no PyTorch function; 1 to 3 axes convert")
    return b.call(F.interpolate, args[0], size=tuple(a.size), mode=_LINEAR_MODES[len(a.size)],
                  align_corners=a.mode is ResizeMode.LINEAR_ALIGN_CORNERS)


_CALLS: dict[OpKind, Emit] = {
    OpKind.ADD: _elementwise(operator.add),
    OpKind.SUB: _elementwise(operator.sub),
    OpKind.MUL: _elementwise(operator.mul),
    OpKind.DIV: _elementwise(operator.truediv),
    OpKind.POW: _elementwise(torch.pow),
    OpKind.MAX: _elementwise(torch.maximum),
    OpKind.MIN: _elementwise(torch.minimum),
    OpKind.EQUAL: _elementwise(torch.eq),
    OpKind.LESS: _elementwise(torch.lt),
    OpKind.GREATER: _elementwise(torch.gt),
    OpKind.AND: _elementwise(torch.logical_and),
    OpKind.OR: _elementwise(torch.logical_or),
    OpKind.WHERE: _where,
    OpKind.MATMUL: _matmul,
    OpKind.EINSUM: _einsum,
    OpKind.CONCAT: _concat,
    OpKind.FLATTEN: lambda b, node, args: b.call(torch.flatten, args[0], 1),
    OpKind.RESHAPE: _reshape,
    OpKind.SOFTMAX: _softmax,
    OpKind.GLOBAL_AVGPOOL: _global_avgpool,
    OpKind.CONSTANT: _constant,
    OpKind.CAST: _cast,
    OpKind.CUMSUM: _cumsum,
    OpKind.CLIP: _clip,
    OpKind.ERF: _unary(torch.erf),
    OpKind.EXP: _unary(torch.exp),
    OpKind.LOG: _unary(torch.log),
    OpKind.SQRT: _unary(torch.sqrt),
    OpKind.RECIPROCAL: _unary(torch.reciprocal),
    OpKind.NEG: _unary(torch.neg),
    OpKind.ABS: _unary(torch.abs),
    OpKind.SIN: _unary(torch.sin),
    OpKind.COS: _unary(torch.cos),
    OpKind.NOT: _unary(torch.logical_not),
    OpKind.ISNAN: _unary(torch.isnan),
    OpKind.REDUCE_MEAN: _reduce(torch.mean),
    OpKind.REDUCE_SUM: _reduce(torch.sum),
    OpKind.REDUCE_MAX: _reduce(torch.amax),
    OpKind.REDUCE_MIN: _reduce(torch.amin),
    OpKind.TRANSPOSE: _transpose,
    OpKind.SLICE: _slice,
    OpKind.GATHER: _gather,
    OpKind.EXPAND: _expand,
    OpKind.PAD: _pad,
    OpKind.RESIZE: _resize,
}

#: Operators :func:`to_torch` converts (every operator but the graph input).
SUPPORTED_OPS = frozenset(L.MODULES) | frozenset(_CALLS)


def to_torch(graph: Graph) -> torch.fx.GraphModule:
    """A PyTorch module (eval mode) computing ``graph``: one positional input per graph input, in order
    (float32 features, or int64 token ids); the output, or a tuple of them when the graph has several.

    Raises:
        UnsupportedOperatorError: an operator or attribute combination PyTorch has no counterpart for
            (unequal pads of 1-D convs and of average pools); the message names the node.
    """
    b = _Builder()
    for node in graph:
        if node.op is OpKind.INPUT:
            b.values[node], b.batched[node] = b.g.placeholder(b.name(node.name)), True
            continue
        args = [b.values[p] for p in node.inputs]
        b.batched[node] = any(b.batched[p] for p in node.inputs)
        make = L.MODULES.get(node.op)
        if make is not None:
            target = b.name(node.name)
            b.root.add_module(target, make(node))
            b.values[node] = b.g.call_module(target, tuple(args))
            continue
        emit = _CALLS.get(node.op)
        if emit is None:
            raise UnsupportedOperatorError(f"node {node.name!r}: operator {node.op.value!r} has no PyTorch "
                                           f"conversion; supported: {', '.join(sorted(SUPPORTED_OPS))}")
        b.values[node] = emit(b, node, args)
    outs = [b.values[o] for o in graph.outputs]
    b.g.output(outs[0] if len(outs) == 1 else tuple(outs))
    return torch.fx.GraphModule(b.root, b.g, class_name=re.sub(r"\W", "_", graph.name) or "Graph").eval()
