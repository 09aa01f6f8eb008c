"""ATen operators that compute element by element, move data or reduce it: their IR translation.

Each handler reads one exported node and emits IR nodes through :class:`~.importer.TorchImporter`, as the
ONNX importer's handler for the same operation does (:mod:`accelflow.frontends._onnx.ops_tensor`). Torch dims
become IR axes with ``imp.ir_axis``; an operation on the batch axis (of size 1) is either a no-op or refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.fx

from accelflow.errors import ModelImportError, UnsupportedOperatorError
from accelflow.frontends._batch import is_feature_map
from accelflow.frontends._torch.importer import Act, Const, Handler, TorchImporter, arguments, f32, ir_dtype
from accelflow.ir import (
    AlphaAttrs,
    Attrs,
    CastAttrs,
    ClipAttrs,
    ConcatAttrs,
    ExpandAttrs,
    GatherAttrs,
    GeluAttrs,
    GlobalPoolAttrs,
    HardSigmoidAttrs,
    Node,
    OpKind,
    ReduceAttrs,
    SliceAttrs,
    SoftmaxAttrs,
    ThresholdAttrs,
    TransposeAttrs,
)

__all__ = ["TENSOR_HANDLERS"]


def _first(n: torch.fx.Node) -> Any:
    return n.args[0]


# -- element-wise ------------------------------------------------------------------------------------
def _unary(op: OpKind, attrs: Callable[[dict[str, Any]], Attrs | None] | None = None) -> Handler:
    def handler(imp: TorchImporter, n: torch.fx.Node) -> None:
        x = _first(n)
        imp.emit(n, op, [imp.act(n, x)], attrs(arguments(n)) if attrs else None, batched=imp.batched(x))

    return handler


def _gelu(a: dict[str, Any]) -> GeluAttrs:
    approx = str(a.get("approximate") or "none")
    if approx not in ("none", "tanh"):
        raise UnsupportedOperatorError(f"gelu approximate={approx!r}; supported: 'none', 'tanh'")
    return GeluAttrs(approx == "tanh")


def _elu(a: dict[str, Any]) -> AlphaAttrs:
    if float(a.get("scale", 1)) != 1 or float(a.get("input_scale", 1)) != 1:
        raise UnsupportedOperatorError(f"elu with scale {a.get('scale')} / input_scale {a.get('input_scale')}; "
                                       "supported: 1 (SELU is not)")
    return AlphaAttrs(f32(a["alpha"]))


def _softplus(imp: TorchImporter, n: torch.fx.Node) -> None:
    a = arguments(n)
    if float(a["beta"]) != 1:
        raise UnsupportedOperatorError(f"{imp.where(n)}: softplus with beta {a['beta']}; supported: 1")
    _unary(OpKind.SOFTPLUS)(imp, n)


def _rsqrt(imp: TorchImporter, n: torch.fx.Node) -> None:
    x = _first(n)
    root = imp.node(f"{imp.label(n)}/sqrt", OpKind.SQRT, [imp.act(n, x)])
    imp.emit(n, OpKind.RECIPROCAL, [root], batched=imp.batched(x))


def _bound(value: Any) -> float | None:
    return None if value is None else f32(value)


def _clip(imp: TorchImporter, n: torch.fx.Node, lo: float | None, hi: float | None) -> None:
    """``clamp``/``hardtanh``: ReLU6 for (0, 6), ReLU for (0, none), else a clip."""
    x = _first(n)
    node, batched = imp.act(n, x), imp.batched(x)
    if lo == 0.0 and hi == 6.0:
        imp.emit(n, OpKind.RELU6, [node], batched=batched)
    elif lo == 0.0 and hi is None:
        imp.emit(n, OpKind.RELU, [node], batched=batched)
    else:
        imp.emit(n, OpKind.CLIP, [node], ClipAttrs(lo, hi), batched=batched)


def _clamp(imp: TorchImporter, n: torch.fx.Node) -> None:
    a = arguments(n)
    lo, hi = a.get("min"), a.get("max")
    if isinstance(lo, torch.fx.Node) or isinstance(hi, torch.fx.Node):  # clamp.Tensor: bounds are tensors
        out: Any = _first(n)
        for bound, op in ((lo, OpKind.MAX), (hi, OpKind.MIN)):
            if bound is not None:
                nodes, batched = imp.operands(n, [out, bound])
                out = Act(imp.node(f"{imp.label(n)}/{op.value}", op, nodes), batched)
        imp.bind(n, out.node, out.batched)
        return
    _clip(imp, n, _bound(lo), _bound(hi))


def _hardtanh(imp: TorchImporter, n: torch.fx.Node) -> None:
    a = arguments(n)
    _clip(imp, n, f32(a["min_val"]), f32(a["max_val"]))


def _clamp_one(side: str) -> Handler:
    def handler(imp: TorchImporter, n: torch.fx.Node) -> None:
        bound = n.args[1]
        if isinstance(bound, torch.fx.Node):
            nodes, batched = imp.operands(n, [_first(n), bound])
            imp.emit(n, OpKind.MAX if side == "min" else OpKind.MIN, nodes, batched=batched)
            return
        _clip(imp, n, f32(bound) if side == "min" else None, f32(bound) if side == "max" else None)

    return handler


def _threshold(imp: TorchImporter, n: torch.fx.Node) -> None:
    a = arguments(n)
    if float(a["value"]) != 0:
        raise UnsupportedOperatorError(f"{imp.where(n)}: threshold replacing with {a['value']}; supported: 0")
    _unary(OpKind.THRESHOLD_RELU, lambda a: ThresholdAttrs(float(a["threshold"])))(imp, n)


def _binary(op: OpKind, negate: bool = False) -> Handler:
    """Broadcasting operators of two tensors or a tensor and a number (``alpha`` scales the second);
    ``negate`` gives ``ne``, ``le`` and ``ge`` as the negation of ``eq``, ``gt`` and ``lt``."""

    def handler(imp: TorchImporter, n: torch.fx.Node) -> None:
        a = arguments(n)
        values = list(a.values())
        x, y = values[0], values[1]
        alpha = a.get("alpha")
        if alpha is not None and alpha != 1:
            if isinstance(y, torch.fx.Node) and not imp.is_const(y):
                scaled, b = imp.operands(n, [y, alpha])
                y = Act(imp.node(f"{imp.label(n)}/alpha", OpKind.MUL, scaled), b)
            else:
                y = Const(imp.const(n, y) * alpha) if isinstance(y, torch.fx.Node) else y * alpha
        nodes, batched = imp.operands(n, [x, y])
        if negate:
            cmp = imp.node(f"{imp.label(n)}/cmp", op, nodes)
            imp.emit(n, OpKind.NOT, [cmp], batched=batched)
        else:
            imp.emit(n, op, nodes, batched=batched)

    return handler


def _div(imp: TorchImporter, n: torch.fx.Node) -> None:
    mode = arguments(n).get("rounding_mode")
    if mode is not None:
        raise UnsupportedOperatorError(f"{imp.where(n)}: division with rounding_mode {mode!r} of an activation; "
                                       "supported: true division")
    _binary(OpKind.DIV)(imp, n)


def _where(imp: TorchImporter, n: torch.fx.Node) -> None:
    nodes, batched = imp.operands(n, list(arguments(n).values())[:3])
    imp.emit(n, OpKind.WHERE, nodes, batched=batched)


def _cast(imp: TorchImporter, n: torch.fx.Node) -> None:
    """``_to_copy``: a cast when the element type changes (in the IR's types), else the value itself."""
    x = _first(n)
    dtype = arguments(n).get("dtype")
    node, batched = imp.act(n, x), imp.batched(x)
    if dtype is None or ir_dtype(dtype) is ir_dtype(imp.dtype(x)):
        imp.bind(n, node, batched)
    else:
        imp.emit(n, OpKind.CAST, [node], CastAttrs(ir_dtype(dtype)), batched=batched)


def _alias(imp: TorchImporter, n: torch.fx.Node) -> None:
    x = _first(n)
    imp.bind(n, imp.act(n, x), imp.batched(x))


def _as_strided(imp: TorchImporter, n: torch.fx.Node) -> None:
    """``as_strided`` that restates a contiguous tensor's own layout (decompositions write it after a mean)."""
    a = arguments(n)
    x = a["self"]
    shape, size = imp.shape(x), tuple(int(d) for d in a["size"])
    contiguous = [math.prod(shape[i + 1:]) for i in range(len(shape))]
    if size != shape or (a.get("storage_offset") or 0) != 0 or any(
            d > 1 and int(s) != c for d, s, c in zip(size, a["stride"], contiguous, strict=True)):
        raise UnsupportedOperatorError(f"{imp.where(n)}: as_strided to size {list(size)} strides {list(a['stride'])}"
                                       f" of a tensor of shape {list(shape)}; supported: its own contiguous layout")
    _alias(imp, n)


def _softmax(log: bool) -> Handler:
    def handler(imp: TorchImporter, n: torch.fx.Node) -> None:
        x = _first(n)
        ax = imp.ir_axis(n, x, int(arguments(n)["dim"]))
        if ax is None:
            raise UnsupportedOperatorError(f"{imp.where(n)}: softmax over the batch axis")
        if not log:
            imp.emit(n, OpKind.SOFTMAX, [imp.act(n, x)], SoftmaxAttrs(ax), batched=imp.batched(x))
            return
        p = imp.node(f"{imp.label(n)}/softmax", OpKind.SOFTMAX, [imp.act(n, x)], SoftmaxAttrs(ax))
        imp.emit(n, OpKind.LOG, [p], batched=imp.batched(x))

    return handler


# -- layout ------------------------------------------------------------------------------------------
def _view(imp: TorchImporter, n: torch.fx.Node) -> None:
    """view, reshape, (un)squeeze, flatten: the result's shape as torch.export recorded it."""
    imp.reshape_to(n, imp.act(n, _first(n)), imp.out_shape(n))


def _expand(imp: TorchImporter, n: torch.fx.Node) -> None:
    x = _first(n)
    src, out = imp.shape(x), imp.out_shape(n)
    if math.prod(out) > 64 * 1024 * 1024:
        raise ModelImportError(f"{imp.where(n)}: expands to {out} ({math.prod(out):,} elements per sample)")
    batched = len(out) >= 2 and out[0] == 1
    ir = out[1:] if batched else out
    node = imp.act(n, x)
    if len(src) == len(out):  # x's axis 0 lines up with the output's
        node = imp.reshape(f"{node.name}/{'unbatched' if batched else 'batched'}", node,
                           src[1:] if batched else src)
    if node.shape == ir:
        imp.bind(n, node, batched)
    else:
        imp.emit(n, OpKind.EXPAND, [node], ExpandAttrs(ir), batched=batched)


def _permutation(imp: TorchImporter, n: torch.fx.Node, rank: int) -> list[int]:
    a = arguments(n)
    if "dims" in a:
        perm = [int(d) % max(rank, 1) for d in a["dims"]]
    elif "dim0" in a:
        perm = list(range(rank))
        d0, d1 = int(a["dim0"]) % rank, int(a["dim1"]) % rank
        perm[d0], perm[d1] = perm[d1], perm[d0]
    else:  # t, numpy_T: every axis reversed
        perm = list(range(rank))[::-1]
    if sorted(perm) != list(range(rank)):
        raise ModelImportError(f"{imp.where(n)}: permutation {perm} for rank {rank}")
    return perm


def _transpose(imp: TorchImporter, n: torch.fx.Node) -> None:
    x = _first(n)
    perm = _permutation(imp, n, imp.rank(x))
    node = imp.act(n, x)
    if not imp.batched(x):
        _emit_transpose(imp, n, node, tuple(perm), batched=False)
        return
    if perm[0] == 0:
        _emit_transpose(imp, n, node, tuple(p - 1 for p in perm[1:]), batched=True)
        return
    # the batch axis (size 1) moves: transpose the others, then view as the full output shape
    inner = tuple(p - 1 for p in perm if p != 0)
    moved = node if inner == tuple(range(len(inner))) else \
        imp.node(f"{imp.label(n)}/perm", OpKind.TRANSPOSE, [node], TransposeAttrs(inner))
    full = tuple(imp.shape(x)[p] for p in perm)
    imp.bind(n, imp.reshape(imp.label(n), moved, full), False)


def _emit_transpose(imp: TorchImporter, n: torch.fx.Node, x: Node, perm: tuple[int, ...], batched: bool) -> None:
    assert x.shape is not None
    if perm == tuple(range(len(perm))):
        imp.bind(n, x, batched)
    elif [p for p in perm if x.shape[p] != 1] == [i for i, d in enumerate(x.shape) if d != 1]:  # only unit axes move
        imp.reshape_to(n, x, imp.out_shape(n))  # a view: a leading 1 may be the batch moved back to the front
    else:
        imp.emit(n, OpKind.TRANSPOSE, [x], TransposeAttrs(perm), batched=batched)


def _slice_attrs(imp: TorchImporter, n: torch.fx.Node, x: Any, dim: int, start: int | None, end: int | None,
                 step: int) -> SliceAttrs | None:
    """IR slice attributes of ``x[start:end:step]`` along torch ``dim``; None when nothing is cut."""
    size = imp.shape(x)[dim % imp.rank(x)]
    if step < 1:
        raise UnsupportedOperatorError(f"{imp.where(n)}: slice step {step}; only positive steps (no reversal)")
    lo, hi, _ = slice(start, end, step).indices(size)
    if len(range(lo, hi, step)) == 0:
        raise ModelImportError(f"{imp.where(n)}: slice [{start}:{end}:{step}] of an axis of size {size} is empty")
    ir = imp.ir_axis(n, x, dim)
    if ir is None:
        if lo != 0:
            raise ModelImportError(f"{imp.where(n)}: slice [{start}:{end}] of the batch axis (size 1)")
        return None
    if (lo, hi, step) == (0, size, 1):
        return None
    return SliceAttrs((ir,), (lo,), (hi,), (step,))


def _slice(imp: TorchImporter, n: torch.fx.Node) -> None:
    a = arguments(n)
    x = a["self"]
    attrs = _slice_attrs(imp, n, x, int(a["dim"]), a["start"], a["end"], int(a["step"]))
    if attrs is None:
        imp.bind(n, imp.act(n, x), imp.batched(x))
    else:
        imp.emit(n, OpKind.SLICE, [imp.act(n, x)], attrs, batched=imp.batched(x))


def _split(imp: TorchImporter, n: torch.fx.Node) -> None:
    """split / split_with_sizes / chunk into slices; unbind into selections."""
    a = arguments(n)
    x = a["self"]
    dim = int(a["dim"])
    size = imp.shape(x)[dim % imp.rank(x)]
    node = imp.act(n, x)
    label = imp.label(n)
    if "split_sizes" in a:
        sizes = [int(s) for s in a["split_sizes"]]
    elif "split_size" in a or "chunks" in a:  # chunk: parts of ceil(size / chunks), the last one smaller
        chunk = int(a["split_size"]) if "split_size" in a else -(-size // int(a["chunks"]))
        sizes = [min(chunk, size - i) for i in range(0, size, chunk)]
    else:  # unbind
        ax = imp.ir_axis(n, x, dim)
        if ax is None:
            imp.bind_outputs(n, [(imp.reshape(label, node, node.shape or ()), False)])
            return
        items = [(imp.node(f"{label}.{i}", OpKind.GATHER, [node], GatherAttrs(ax), {"indices": np.asarray(i)}),
                  imp.batched(x)) for i in range(size)]
        imp.bind_outputs(n, items)
        return
    if sum(sizes) != size or any(s < 0 for s in sizes):
        raise ModelImportError(f"{imp.where(n)}: split sizes {sizes} of an axis of size {size}")
    if imp.ir_axis(n, x, dim) is None:
        if len(sizes) != 1:
            raise UnsupportedOperatorError(f"{imp.where(n)}: split of the batch axis")
        imp.bind_outputs(n, [(node, imp.batched(x))])
        return
    outs: list[tuple[Node, bool] | None] = []
    start = 0
    for i, s in enumerate(sizes):
        attrs = _slice_attrs(imp, n, x, dim, start, start + s, 1)
        part = node if attrs is None else imp.node(f"{label}.{i}", OpKind.SLICE, [node], attrs)
        outs.append((part, imp.batched(x)))
        start += s
    imp.bind_outputs(n, outs)


def _take(imp: TorchImporter, n: torch.fx.Node, x: Any, dim: int, idx: np.ndarray) -> None:
    """``x`` indexed along torch ``dim`` with constant ``idx`` (a scalar index removes the axis)."""
    ax = imp.ir_axis(n, x, dim)
    node = imp.act(n, x)
    if ax is None:  # the batch axis of size 1: index 0 keeps the data
        if np.any((idx != 0) & (idx != -1)):
            raise ModelImportError(f"{imp.where(n)}: index {idx.tolist()} on the batch axis of size 1")
        imp.reshape_to(n, node, idx.shape + imp.shape(x)[1:])
        return
    assert node.shape is not None
    if idx.size and (idx.max() >= node.shape[ax] or idx.min() < -node.shape[ax]):
        raise ModelImportError(f"{imp.where(n)}: index out of range for an axis of size {node.shape[ax]}")
    idx = np.where(idx < 0, idx + node.shape[ax], idx)
    imp.emit(n, OpKind.GATHER, [node], GatherAttrs(ax), {"indices": idx}, batched=imp.batched(x))


def _select(imp: TorchImporter, n: torch.fx.Node) -> None:
    a = arguments(n)
    _take(imp, n, a["self"], int(a["dim"]), np.asarray(int(a["index"]), dtype=np.int64))


def _index_select(imp: TorchImporter, n: torch.fx.Node) -> None:
    a = arguments(n)
    if not imp.is_const(a["index"]):
        raise UnsupportedOperatorError(f"{imp.where(n)}: index_select with computed indices; supported: constant")
    index = imp.const(n, a["index"])
    assert index is not None
    _take(imp, n, a["self"], int(a["dim"]), index.numpy().astype(np.int64))


def _index(imp: TorchImporter, n: torch.fx.Node) -> None:
    """``x[..., idx]``: one constant index tensor on one dim (the others taken whole)."""
    a = arguments(n)
    used = [(d, i) for d, i in enumerate(a["indices"]) if i is not None]
    if len(used) != 1 or not imp.is_const(used[0][1]):
        raise UnsupportedOperatorError(f"{imp.where(n)}: indexing with {len(used)} index tensors; supported: one "
                                       "constant index tensor")
    dim, arg = used[0]
    index = imp.const(n, arg)
    assert index is not None
    if index.dtype == torch.bool:
        raise UnsupportedOperatorError(f"{imp.where(n)}: indexing with a boolean mask; supported: integer indices")
    _take(imp, n, a["self"], dim, index.numpy().astype(np.int64))


def _concat(imp: TorchImporter, n: torch.fx.Node) -> None:
    a = arguments(n)
    parts = list(a["tensors"])
    shapes = [imp.shape(x) for x in parts]
    rank = len(shapes[0])
    axis = int(a["dim"]) % rank
    if any(len(s) != rank for s in shapes):
        raise ModelImportError(f"{imp.where(n)}: concatenating ranks {[len(s) for s in shapes]}")
    batched = axis != 0 and all(s[0] == 1 for s in shapes) and any(
        not imp.is_const(x) and imp.batched(x) for x in parts)
    nodes = []
    for x, s in zip(parts, shapes, strict=True):
        if imp.is_const(x):
            nodes.append(imp.constant(n, x, strip_batch=batched))
            continue
        node = imp.act(n, x)
        if imp.batched(x) != batched:
            node = imp.reshape(f"{node.name}/{'unbatched' if batched else 'batched'}", node,
                               s[1:] if batched else s)
        nodes.append(node)
    imp.emit(n, OpKind.CONCAT, nodes, ConcatAttrs(axis - 1 if batched else axis), batched=batched)


# -- reductions --------------------------------------------------------------------------------------
def _reduce(op: OpKind) -> Handler:
    def handler(imp: TorchImporter, n: torch.fx.Node) -> None:
        a = arguments(n)
        x = a["self"]
        rank = imp.rank(x)
        dims = a.get("dim")
        dims = list(range(rank)) if dims is None or dims == [] else \
            [int(d) for d in (dims if isinstance(dims, (list, tuple)) else [dims])]
        keep = bool(a.get("keepdim", False))
        full = sorted({d % rank for d in dims})
        ir = [imp.ir_axis(n, x, d) for d in full]
        kept = [ax for ax in ir if ax is not None]
        node = imp.act(n, x)
        spatial = list(range(1, len(node.shape or ())))
        if op is OpKind.REDUCE_MEAN and imp.batched(x) and None not in ir and kept == spatial and is_feature_map(node):
            imp.emit(n, OpKind.GLOBAL_AVGPOOL, [node], GlobalPoolAttrs(keepdims=keep), batched=True)
            return
        if not kept:  # only the batch axis of size 1
            imp.reshape_to(n, node, imp.out_shape(n) or (1,))
            return
        imp.emit(n, op, [node], ReduceAttrs(tuple(kept), keep), batched=imp.batched(x) and (keep or None not in ir))

    return handler


TENSOR_HANDLERS: dict[str, Handler] = {
    "aten.relu": _unary(OpKind.RELU),
    "aten.sigmoid": _unary(OpKind.SIGMOID),
    "aten.tanh": _unary(OpKind.TANH),
    "aten.silu": _unary(OpKind.SILU),
    "aten.hardswish": _unary(OpKind.HARDSWISH),
    "aten.hardsigmoid": _unary(OpKind.HARDSIGMOID, lambda a: HardSigmoidAttrs(f32(1 / 6), 0.5)),
    "aten.gelu": _unary(OpKind.GELU, _gelu),
    "aten.leaky_relu": _unary(OpKind.LEAKY_RELU, lambda a: AlphaAttrs(f32(a["negative_slope"]))),
    "aten.elu": _unary(OpKind.ELU, _elu),
    "aten.softplus": _softplus,
    "aten.erf": _unary(OpKind.ERF),
    "aten.exp": _unary(OpKind.EXP),
    "aten.log": _unary(OpKind.LOG),
    "aten.sqrt": _unary(OpKind.SQRT),
    "aten.rsqrt": _rsqrt,
    "aten.reciprocal": _unary(OpKind.RECIPROCAL),
    "aten.neg": _unary(OpKind.NEG),
    "aten.abs": _unary(OpKind.ABS),
    "aten.sin": _unary(OpKind.SIN),
    "aten.cos": _unary(OpKind.COS),
    "aten.logical_not": _unary(OpKind.NOT),
    "aten.bitwise_not": _unary(OpKind.NOT),
    "aten.isnan": _unary(OpKind.ISNAN),
    "aten.relu6": _unary(OpKind.RELU6),
    "aten.hardtanh": _hardtanh,
    "aten.clamp": _clamp,
    "aten.clamp_min": _clamp_one("min"),
    "aten.clamp_max": _clamp_one("max"),
    "aten.threshold": _threshold,
    "aten.add": _binary(OpKind.ADD),
    "aten.sub": _binary(OpKind.SUB),
    "aten.mul": _binary(OpKind.MUL),
    "aten.div": _div,
    "aten.pow": _binary(OpKind.POW),
    "aten.maximum": _binary(OpKind.MAX),
    "aten.minimum": _binary(OpKind.MIN),
    "aten.eq": _binary(OpKind.EQUAL),
    "aten.ne": _binary(OpKind.EQUAL, negate=True),
    "aten.lt": _binary(OpKind.LESS),
    "aten.gt": _binary(OpKind.GREATER),
    "aten.le": _binary(OpKind.GREATER, negate=True),
    "aten.ge": _binary(OpKind.LESS, negate=True),
    "aten.logical_and": _binary(OpKind.AND),
    "aten.logical_or": _binary(OpKind.OR),
    "aten.bitwise_and": _binary(OpKind.AND),
    "aten.bitwise_or": _binary(OpKind.OR),
    "aten.where": _where,
    "aten._to_copy": _cast,
    "aten.clone": _alias,
    "aten.alias": _alias,
    "aten.contiguous": _alias,
    "aten.detach": _alias,
    "aten.lift_fresh_copy": _alias,
    "aten.as_strided": _as_strided,
    "aten._softmax": _softmax(log=False),
    "aten.softmax": _softmax(log=False),
    "aten._log_softmax": _softmax(log=True),
    "aten.log_softmax": _softmax(log=True),
    "aten.view": _view,
    "aten._unsafe_view": _view,
    "aten.reshape": _view,
    "aten.unsqueeze": _view,
    "aten.squeeze": _view,
    "aten.flatten": _view,
    "aten.unflatten": _view,
    "aten.expand": _expand,
    "aten.permute": _transpose,
    "aten.transpose": _transpose,
    "aten.t": _transpose,
    "aten.numpy_T": _transpose,
    "aten.slice": _slice,
    "aten.split": _split,
    "aten.split_with_sizes": _split,
    "aten.chunk": _split,
    "aten.unbind": _split,
    "aten.select": _select,
    "aten.index_select": _index_select,
    "aten.index": _index,
    "aten.cat": _concat,
    "aten.mean": _reduce(OpKind.REDUCE_MEAN),
    "aten.sum": _reduce(OpKind.REDUCE_SUM),
    "aten.amax": _reduce(OpKind.REDUCE_MAX),
    "aten.amin": _reduce(OpKind.REDUCE_MIN),
    "aten.any": _reduce(OpKind.REDUCE_MAX),
    "aten.all": _reduce(OpKind.REDUCE_MIN),
}
