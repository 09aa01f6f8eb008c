"""ONNX operators that compute element by element, move data or reduce it: their IR translation.

Each handler reads one ONNX node and emits IR nodes through :class:`~.importer.Importer`. Axes are turned
into IR axes with ``imp.ir_axis``; an operation on the batch axis (of size 1) is either a no-op or refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import onnx

from accelflow.errors import ModelImportError, UnsupportedOperatorError
from accelflow.frontends._batch import is_feature_map
from accelflow.frontends._onnx.importer import Handler, Importer, PendingPad, dtype_of
from accelflow.frontends._onnx.prepare import MAX_FOLDED_ELEMENTS
from accelflow.ir import (
    BOOLEAN_OPS,
    AlphaAttrs,
    CastAttrs,
    ClipAttrs,
    ConcatAttrs,
    CumsumAttrs,
    DType,
    ExpandAttrs,
    GatherAttrs,
    GeluAttrs,
    GlobalPoolAttrs,
    HardSigmoidAttrs,
    InputAttrs,
    Node,
    OpKind,
    ReduceAttrs,
    SliceAttrs,
    SoftmaxAttrs,
    ThresholdAttrs,
    TransposeAttrs,
)

__all__ = ["TENSOR_HANDLERS"]


# -- element-wise ------------------------------------------------------------------------------------
def _unary(op: OpKind, attrs: Callable[[dict], object] | None = None) -> Handler:
    def handler(imp: Importer, n: onnx.NodeProto) -> None:
        x = imp.act(n)
        imp.emit(n, op, [x], attrs(imp.attrs(n)) if attrs else None, batched=imp.batched[n.input[0]])  # type: ignore[arg-type]

    return handler


def _binary(op: OpKind) -> Handler:
    def handler(imp: Importer, n: onnx.NodeProto) -> None:
        names = [i for i in n.input if i]
        if len(names) == 1:  # variadic Max/Min/Sum of one input
            imp.bind(n, imp.act(n), imp.batched[names[0]])
            return
        nodes, batched = imp.operands(n, names)
        out = nodes[0]
        for other in nodes[1:]:  # variadic Max/Min/Sum: fold left
            out = imp.node(n.name or n.output[0], op, [out, other])
        imp.bind(n, out, batched)

    return handler


def _negated(op: OpKind) -> Handler:
    """LessOrEqual = Not(Greater), GreaterOrEqual = Not(Less)."""

    def handler(imp: Importer, n: onnx.NodeProto) -> None:
        nodes, batched = imp.operands(n, list(n.input[:2]))
        cmp = imp.node(f"{n.name or n.output[0]}/cmp", op, nodes)
        imp.emit(n, OpKind.NOT, [cmp], batched=batched)

    return handler


def _add(imp: Importer, n: onnx.NodeProto) -> None:
    """Add; a constant added to a linear layer or conv without a bias, used only here, becomes its bias."""
    for i in (0, 1):
        other, bias = n.input[1 - i], n.input[i]
        if imp.is_const(bias) and not imp.is_const(other) and other in imp.values:
            node = imp.values[other]
            if _absorb_bias(imp, node, other, imp.consts[bias]):
                imp.bind(n, node, imp.batched[other])
                return
    _binary(OpKind.ADD)(imp, n)


def _absorb_bias(imp: Importer, node: Node, name: str, value: np.ndarray) -> bool:
    """Make ``value`` the bias of ``node`` when it is a linear layer or conv without one, used only by this
    Add, and ``value`` lies along its output channels ((F,) for a linear layer, (C, 1, 1) for a conv)."""
    if node.op not in (OpKind.LINEAR, OpKind.CONV) or node.bias is not None or imp.consumers.get(name, 0) != 1 \
            or node.users or node in imp.graph.outputs:
        return False
    assert node.shape is not None
    rank = len(node.shape)
    channels = node.shape[-1] if node.op is OpKind.LINEAR else node.shape[0]
    along = -1 if node.op is OpKind.LINEAR else -rank
    if value.size != channels or value.ndim < -along or value.shape[along] != channels \
            or value.ndim > rank + (1 if imp.batched[name] else 0):
        return False
    node.params["bias"] = value.reshape(-1).astype(np.float32)
    return True


def _mul(imp: Importer, n: onnx.NodeProto) -> None:
    """Mul; x * sigmoid(x) is SiLU (exporters decompose it)."""
    a, b = n.input[0], n.input[1]
    if a in imp.values and b in imp.values:
        x, y = imp.values[a], imp.values[b]
        for p, q in ((x, y), (y, x)):
            if q.op is OpKind.SIGMOID and q.inputs[0] is p and not q.users and q not in imp.graph.outputs \
                    and imp.consumers.get(b if q is y else a, 0) == 1:
                imp.graph.erase_node(q)
                imp.emit(n, OpKind.SILU, [p], batched=imp.batched[a if p is x else b])
                return
    _binary(OpKind.MUL)(imp, n)


def _where(imp: Importer, n: onnx.NodeProto) -> None:
    """Where; Where(x > t, x, 0) with a scalar t is a thresholded ReLU (PyTorch exports ThresholdReLU so)."""
    cond, x, zero = n.input[0], n.input[1], n.input[2]
    if cond in imp.values and x in imp.values and imp.is_const(zero) and not np.any(imp.consts[zero]) \
            and _fits(imp.consts[zero].shape, imp.shape(x)):
        gt = imp.values[cond]
        t = gt.inputs[1] if gt.op is OpKind.GREATER and len(gt.inputs) == 2 else None
        if t is not None and gt.inputs[0] is imp.values[x] and t.op is OpKind.CONSTANT \
                and t.params["value"].size == 1 and imp.consumers.get(cond, 0) == 1 and not gt.users:
            threshold = float(t.params["value"].reshape(-1)[0])
            imp.graph.erase_node(gt)
            if not t.users:
                imp.graph.erase_node(t)
                imp._const_nodes = {k: v for k, v in imp._const_nodes.items() if v is not t}
            imp.emit(n, OpKind.THRESHOLD_RELU, [imp.values[x]], ThresholdAttrs(threshold), batched=imp.batched[x])
            return
    nodes, batched = imp.operands(n, list(n.input[:3]))
    imp.emit(n, OpKind.WHERE, nodes, batched=batched)


def _fits(small: tuple[int, ...], big: tuple[int, ...]) -> bool:
    """Whether ``small`` broadcasts to ``big`` without enlarging it."""
    try:
        return tuple(np.broadcast_shapes(small, big)) == tuple(big)
    except ValueError:
        return False


def _clip(imp: Importer, n: onnx.NodeProto) -> None:
    a = imp.attrs(n)
    lo = imp.const(n, 1, required=False) if len(n.input) > 1 else a.get("min")
    hi = imp.const(n, 2, required=False) if len(n.input) > 2 else a.get("max")
    lo_v = None if lo is None or np.asarray(lo).size == 0 else float(np.asarray(lo).reshape(-1)[0])
    hi_v = None if hi is None or np.asarray(hi).size == 0 else float(np.asarray(hi).reshape(-1)[0])
    x = imp.act(n)
    batched = imp.batched[n.input[0]]
    if lo_v is None and hi_v is not None and x.op is OpKind.THRESHOLD_RELU and not x.users \
            and isinstance(x.attrs, ThresholdAttrs) and x.attrs.clip is None:
        x.attrs = ThresholdAttrs(x.attrs.threshold, hi_v)  # torch.where(x > t, x, 0).clamp(max=c)
        imp.bind(n, x, batched)
    elif lo_v == 0.0 and hi_v == 6.0:
        imp.emit(n, OpKind.RELU6, [x], batched=batched)
    elif lo_v == 0.0 and hi_v is None:
        imp.emit(n, OpKind.RELU, [x], batched=batched)
    else:
        imp.emit(n, OpKind.CLIP, [x], ClipAttrs(lo_v, hi_v), batched=batched)


def _cast(imp: Importer, n: onnx.NodeProto) -> None:
    to = dtype_of(int(imp.attrs(n)["to"]), imp.where(n))
    x = imp.act(n)
    if _dtype(x) is to:
        imp.bind(n, x, imp.batched[n.input[0]])
    else:
        imp.emit(n, OpKind.CAST, [x], CastAttrs(to), batched=imp.batched[n.input[0]])


def _dtype(node: Node) -> DType:
    """The element type an IR node produces (float unless it is boolean or integer by construction)."""
    if node.op in BOOLEAN_OPS:
        return DType.BOOL
    if node.op is OpKind.CAST and isinstance(node.attrs, CastAttrs):
        return node.attrs.dtype
    if node.op is OpKind.INPUT:
        return node.attrs.dtype if isinstance(node.attrs, InputAttrs) else DType.FLOAT32
    if node.op is OpKind.CONSTANT:
        kind = node.params["value"].dtype
        return DType.BOOL if kind == np.bool_ else DType.INT64 if np.issubdtype(kind, np.integer) else DType.FLOAT32
    if node.op in (OpKind.RESHAPE, OpKind.FLATTEN, OpKind.TRANSPOSE, OpKind.SLICE, OpKind.GATHER, OpKind.EXPAND,
                   OpKind.CONCAT) and node.inputs:
        return _dtype(node.inputs[0])
    return DType.FLOAT32


def _softmax(imp: Importer, n: onnx.NodeProto) -> None:
    axis = int(imp.attrs(n).get("axis", -1 if imp.opset >= 13 else 1))
    name = n.input[0]
    rank = imp.rank(name)
    if imp.opset < 13 and axis % rank != rank - 1:
        raise UnsupportedOperatorError(f"{imp.where(n)}: Softmax before opset 13 over axis {axis} of rank {rank} "
                                       "(flattens the trailing axes); re-export with opset >= 13")
    ax = imp.ir_axis(n, name, axis)
    if ax is None:
        raise UnsupportedOperatorError(f"{imp.where(n)}: Softmax over the batch axis")
    imp.emit(n, OpKind.SOFTMAX, [imp.act(n)], SoftmaxAttrs(ax), batched=imp.batched[name])


# -- layout ------------------------------------------------------------------------------------------
def _reshape(imp: Importer, n: onnx.NodeProto) -> None:
    target = [int(d) for d in np.asarray(imp.const(n, 1)).reshape(-1)]
    src = imp.shape(n.input[0])
    allowzero = int(imp.attrs(n).get("allowzero", 0))
    out = [src[i] if d == 0 and not allowzero and i < len(src) else d for i, d in enumerate(target)]
    if out.count(-1) > 1 or any(d < -1 for d in out) or 0 in out:
        raise ModelImportError(f"{imp.where(n)}: reshape of {src} to {target}")
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        if known == 0 or math.prod(src) % known:
            raise ModelImportError(f"{imp.where(n)}: cannot reshape {src} to {target}")
        out = [math.prod(src) // known if d == -1 else d for d in out]
    imp.reshape_to(n, imp.act(n), out)


def _flatten(imp: Importer, n: onnx.NodeProto) -> None:
    src = imp.shape(n.input[0])
    axis = int(imp.attrs(n).get("axis", 1)) % max(len(src), 1) if src else 0
    imp.reshape_to(n, imp.act(n), [math.prod(src[:axis]), math.prod(src[axis:])])


def _squeeze(imp: Importer, n: onnx.NodeProto) -> None:
    src = list(imp.shape(n.input[0]))
    axes = imp.ints(n, 1, "axes")
    rank = len(src)
    if n.op_type == "Unsqueeze":
        out_rank = rank + len(axes or [])
        for ax in sorted(a % out_rank for a in axes or []):
            src.insert(ax, 1)
        out = src
    else:
        drop = {a % rank for a in axes} if axes else {i for i, d in enumerate(src) if d == 1}
        if any(src[i] != 1 for i in drop):
            raise ModelImportError(f"{imp.where(n)}: squeezing axes {sorted(drop)} of {tuple(src)} (not of size 1)")
        out = [d for i, d in enumerate(src) if i not in drop]
    imp.reshape_to(n, imp.act(n), out)


def _transpose(imp: Importer, n: onnx.NodeProto) -> None:
    name = n.input[0]
    rank = imp.rank(name)
    perm = [int(p) for p in imp.attrs(n).get("perm", list(range(rank))[::-1])]
    if sorted(p % rank for p in perm) != list(range(rank)):
        raise ModelImportError(f"{imp.where(n)}: perm {perm} for rank {rank}")
    perm = [p % rank for p in perm]
    x = imp.act(n)
    if not imp.batched[name]:
        _emit_transpose(imp, n, x, tuple(perm), batched=False)
        return
    if perm[0] == 0:
        _emit_transpose(imp, n, x, tuple(p - 1 for p in perm[1:]), batched=True)
        return
    # the batch axis (size 1) moves: transpose the others, then view as the full output shape
    inner = tuple(p - 1 for p in perm if p != 0)
    moved = x if inner == tuple(range(len(inner))) else imp.node(f"{n.name or n.output[0]}/perm", OpKind.TRANSPOSE,
                                                                 [x], TransposeAttrs(inner))
    full = tuple(imp.shape(name)[p] for p in perm)
    imp.bind(n, imp.reshape(n.name or n.output[0], moved, full), False)


def _emit_transpose(imp: Importer, n: onnx.NodeProto, x: Node, perm: tuple[int, ...], batched: bool) -> None:
    assert x.shape is not None
    if perm == tuple(range(len(perm))):
        imp.bind(n, x, batched)
    elif [p for p in perm if x.shape[p] != 1] == [i for i, d in enumerate(x.shape) if d != 1]:  # only unit axes move
        imp.reshape_to(n, x, ((1,) if batched else ()) + tuple(x.shape[p] for p in perm))  # a leading 1: the batch
    else:
        imp.emit(n, OpKind.TRANSPOSE, [x], TransposeAttrs(perm), batched=batched)


def _slice_attrs(imp: Importer, n: onnx.NodeProto, name: str, axes: list[int], starts: list[int],
                 ends: list[int], steps: list[int]) -> tuple[SliceAttrs | None, bool]:
    """IR slice attributes, and whether the batch axis is dropped; None when nothing is cut."""
    shape = imp.shape(name)
    ir_axes, ir_starts, ir_ends, ir_steps = [], [], [], []
    for ax, start, end, step in zip(axes, starts, ends, steps, strict=True):
        size = shape[ax % len(shape)]
        if step < 1:
            raise UnsupportedOperatorError(f"{imp.where(n)}: slice step {step}; only positive steps (no reversal)")
        lo, hi, _ = slice(start, end, step).indices(size)
        if len(range(lo, hi, step)) == 0:
            raise ModelImportError(f"{imp.where(n)}: slice [{start}:{end}:{step}] of an axis of size {size} is empty")
        ir = imp.ir_axis(n, name, ax)
        if ir is None:
            if lo != 0:
                raise ModelImportError(f"{imp.where(n)}: slice [{start}:{end}] of the batch axis (size 1)")
            continue
        if (lo, hi, step) == (0, size, 1):
            continue
        ir_axes.append(ir)
        ir_starts.append(lo)
        ir_ends.append(hi)
        ir_steps.append(step)
    if not ir_axes:
        return None, False
    return SliceAttrs(tuple(ir_axes), tuple(ir_starts), tuple(ir_ends), tuple(ir_steps)), False


def _slice(imp: Importer, n: onnx.NodeProto) -> None:
    name = n.input[0]
    rank = imp.rank(name)
    if imp.opset < 10:
        a = imp.attrs(n)
        starts, ends = [int(v) for v in a["starts"]], [int(v) for v in a["ends"]]
        axes = [int(v) for v in a.get("axes", range(len(starts)))]
        steps = [1] * len(starts)
    else:
        starts = imp.ints(n, 1) or []
        ends = imp.ints(n, 2) or []
        axes = imp.ints(n, 3) or list(range(len(starts)))
        steps = imp.ints(n, 4) or [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps) or len({a % rank for a in axes}) != len(axes):
        raise ModelImportError(f"{imp.where(n)}: starts/ends/axes/steps of different lengths or repeated axes")
    attrs, _ = _slice_attrs(imp, n, name, axes, starts, ends, steps)
    x = imp.act(n)
    if attrs is None:
        imp.bind(n, x, imp.batched[name])
    else:
        imp.emit(n, OpKind.SLICE, [x], attrs, batched=imp.batched[name])


def _split(imp: Importer, n: onnx.NodeProto) -> None:
    name = n.input[0]
    a = imp.attrs(n)
    axis = int(a.get("axis", 0))
    size = imp.shape(name)[axis % imp.rank(name)]
    outs = [o for o in n.output]
    sizes = imp.ints(n, 1, "split")
    if not sizes:
        parts = int(a.get("num_outputs", len(outs)))
        chunk = -(-size // parts)
        sizes = [min(chunk, size - i * chunk) for i in range(parts)]
    if len(sizes) != len(outs) or sum(sizes) != size or any(s < 0 for s in sizes):
        raise ModelImportError(f"{imp.where(n)}: split sizes {sizes} of an axis of size {size} into {len(outs)} outputs")
    x = imp.act(n)
    if imp.ir_axis(n, name, axis) is None:
        if len(outs) != 1:
            raise UnsupportedOperatorError(f"{imp.where(n)}: split of the batch axis")
        imp.bind(n, x, imp.batched[name])
        return
    start = 0
    for i, (out, s) in enumerate(zip(outs, sizes, strict=True)):
        if out:
            attrs, _ = _slice_attrs(imp, n, name, [axis], [start], [start + s], [1])
            if attrs is None:
                imp.bind(n, x, imp.batched[name], output=i)
            else:
                imp.emit(n, OpKind.SLICE, [x], attrs, batched=imp.batched[name], name=out, output=i)
        start += s


def _gather(imp: Importer, n: onnx.NodeProto) -> None:
    data, indices = n.input[0], n.input[1]
    axis = int(imp.attrs(n).get("axis", 0))
    if imp.is_const(data):  # an embedding table looked up with the model's token ids
        table = imp.consts[data]
        if table.ndim != 2 or axis % 2 != 0:
            raise UnsupportedOperatorError(f"{imp.where(n)}: Gather from a constant of shape {table.shape} on axis "
                                           f"{axis}; supported: a 2-D table on axis 0 (an embedding)")
        imp.emit(n, OpKind.EMBEDDING, [imp.act(n, 1)], None, {"weight": table}, batched=imp.batched[indices],
                 name=_table_name(data))
        return
    if not imp.is_const(indices):
        raise UnsupportedOperatorError(f"{imp.where(n)}: Gather of an activation with computed indices; supported: "
                                       "constant indices, or a constant table (embedding)")
    idx = np.asarray(imp.consts[indices]).astype(np.int64)
    ax = imp.ir_axis(n, data, axis)
    x = imp.act(n)
    if ax is None:  # the batch axis of size 1: index 0 keeps the data
        if np.any((idx != 0) & (idx != -1)):
            raise ModelImportError(f"{imp.where(n)}: index {idx.tolist()} on the batch axis of size 1")
        imp.reshape_to(n, x, idx.shape + imp.shape(data)[1:])
        return
    assert x.shape is not None
    idx = np.where(idx < 0, idx + x.shape[ax], idx)
    imp.emit(n, OpKind.GATHER, [x], GatherAttrs(ax), {"indices": idx}, batched=imp.batched[data])


def _gather_elements(imp: Importer, n: onnx.NodeProto) -> None:
    """GatherElements from a constant whose other axes have size 1 (a 1-D table, as RoBERTa gathers its
    token-type ids by position): an embedding of the indices into rows of one value, viewed back."""
    data, indices = n.input[0], n.input[1]
    if not imp.is_const(data) or imp.is_const(indices):
        raise UnsupportedOperatorError(f"{imp.where(n)}: GatherElements is supported from a constant 1-D table "
                                       "with computed indices")
    table = imp.consts[data]
    axis = int(imp.attrs(n).get("axis", 0)) % max(table.ndim, 1)
    if any(d != 1 for i, d in enumerate(table.shape) if i != axis) or imp.rank(indices) != table.ndim:
        raise UnsupportedOperatorError(f"{imp.where(n)}: GatherElements from a constant of shape {table.shape} on "
                                       f"axis {axis}; supported: a table whose other axes have size 1")
    ids = imp.act(n, 1)
    label = n.name or n.output[0]
    rows = imp.node(label, OpKind.EMBEDDING, [ids], None, {"weight": table.reshape(-1, 1)})
    assert ids.shape is not None
    imp.bind(n, imp.reshape(f"{label}/values", rows, ids.shape), imp.batched[indices])


def _table_name(initializer: str) -> str:
    for suffix in (".weight", ".W"):
        if initializer.endswith(suffix):
            return initializer[: -len(suffix)]
    return initializer


def _concat(imp: Importer, n: onnx.NodeProto) -> None:
    names = [i for i in n.input if i]
    rank = imp.rank(names[0])
    axis = int(imp.attrs(n)["axis"]) % rank
    shapes = [imp.shape(x) for x in names]
    if any(len(s) != rank for s in shapes):
        raise ModelImportError(f"{imp.where(n)}: concatenating ranks {[len(s) for s in shapes]}")
    batched = axis != 0 and all(s[0] == 1 for s in shapes) and any(
        not imp.is_const(x) and imp.batched[x] for x in names)
    nodes = []
    for x, s in zip(names, shapes, strict=True):
        if imp.is_const(x):
            nodes.append(imp.constant(x, strip_batch=batched))
            continue
        node = imp.values[x] if x in imp.values else imp.act(n, names.index(x))
        if imp.batched[x] != batched:
            node = imp.reshape(f"{node.name}/{'unbatched' if batched else 'batched'}", node, s[1:] if batched else s)
        nodes.append(node)
    imp.emit(n, OpKind.CONCAT, nodes, ConcatAttrs(axis - 1 if batched else axis), batched=batched)


def _expand(imp: Importer, n: onnx.NodeProto) -> None:
    name = n.input[0]
    target = tuple(int(d) for d in np.asarray(imp.const(n, 1)).reshape(-1))
    src = imp.shape(name)
    try:
        out = tuple(int(d) for d in np.broadcast_shapes(src, target))
    except ValueError:
        raise ModelImportError(f"{imp.where(n)}: cannot expand {src} to {target}") from None
    if math.prod(out) > MAX_FOLDED_ELEMENTS:
        raise ModelImportError(f"{imp.where(n)}: expands to {out} ({math.prod(out):,} elements per sample)")
    batched = len(out) >= 2 and out[0] == 1
    ir = out[1:] if batched else out
    x = imp.act(n)
    if len(src) == len(out):  # x's axis 0 lines up with the output's
        x = imp.reshape(f"{x.name}/{'unbatched' if batched else 'batched'}", x, src[1:] if batched else src)
    if x.shape == ir:
        imp.bind(n, x, batched)
    else:
        imp.emit(n, OpKind.EXPAND, [x], ExpandAttrs(ir), batched=batched)


def _pad(imp: Importer, n: onnx.NodeProto) -> None:
    """A constant Pad: held until a Conv/MaxPool folds it, or becomes a PAD node when something else reads it."""
    a = imp.attrs(n)
    mode = imp.text(a.get("mode", b"constant"))
    if mode != "constant":
        raise UnsupportedOperatorError(f"{imp.where(n)}: Pad mode {mode!r}; only 'constant' padding")
    name = n.input[0]
    imp.act(n)  # an activation (a Pad of a Pad becomes a node)
    pads = np.asarray(a["pads"] if "pads" in a else imp.const(n, 1)).astype(np.int64).reshape(-1)
    value = a.get("value", 0.0) if "pads" in a else imp.const(n, 2, required=False)
    fill = 0.0 if value is None or np.asarray(value).size == 0 else float(np.asarray(value).reshape(-1)[0])
    rank = imp.rank(name)
    raw = list(range(rank)) if len(n.input) < 4 or not n.input[3] else imp.ints(n, 3) or []
    if any(not -rank <= ax < rank for ax in raw) or len({ax % rank for ax in raw}) != len(raw):
        raise ModelImportError(f"{imp.where(n)}: axes {raw} for a rank-{rank} input (each in [{-rank}, {rank}), once)")
    if len(pads) != 2 * len(raw):
        raise ModelImportError(f"{imp.where(n)}: {len(pads)} pads for {len(raw)} axes")
    full = [0] * 2 * rank
    for i, ax in enumerate(ax % rank for ax in raw):
        full[ax], full[rank + ax] = int(pads[i]), int(pads[len(raw) + i])
    if any(p < 0 for p in full):
        raise UnsupportedOperatorError(f"{imp.where(n)}: negative pads {full} (cropping); only padding")
    if math.isnan(fill):
        raise ModelImportError(f"{imp.where(n)}: Pad value NaN")
    imp.pads[n.output[0]] = PendingPad(name, tuple(full), fill, n.name or n.output[0])


# -- reductions --------------------------------------------------------------------------------------
_REDUCE_OPS = {"ReduceMean": OpKind.REDUCE_MEAN, "ReduceSum": OpKind.REDUCE_SUM, "ReduceMax": OpKind.REDUCE_MAX,
               "ReduceMin": OpKind.REDUCE_MIN}


def _reduce_node(imp: Importer, n: onnx.NodeProto, x: Node, op: OpKind) -> tuple[Node, bool]:
    """Reduce ``x`` (which has the shape of ``n``'s input) as ``n`` says: the node and whether it is batched."""
    a = imp.attrs(n)
    name = n.input[0]
    rank = imp.rank(name)
    axes = imp.ints(n, 1, "axes")
    keep = bool(int(a.get("keepdims", 1)))
    if not axes:
        if int(a.get("noop_with_empty_axes", 0)):
            return x, imp.batched[name]
        axes = list(range(rank))
    full = sorted({ax % rank for ax in axes})
    ir = [imp.ir_axis(n, name, ax) for ax in full]
    kept = [ax for ax in ir if ax is not None]
    batched = imp.batched[name] and (keep or None not in ir)
    spatial = list(range(1, len(x.shape or ())))
    label = n.name or n.output[0]
    if op is OpKind.REDUCE_MEAN and imp.batched[name] and None not in ir and kept == spatial and is_feature_map(x):
        return imp.node(label, OpKind.GLOBAL_AVGPOOL, [x], GlobalPoolAttrs(keepdims=keep)), True
    if not kept:  # only the batch axis of size 1
        target = [d for i, d in enumerate(imp.shape(name)) if keep or i not in full] or [1]
        out = len(target) >= 2 and target[0] == 1
        return imp.reshape(label, x, tuple(target[1:] if out else target)), out
    return imp.node(label, op, [x], ReduceAttrs(tuple(kept), keep)), batched


def _reduce(imp: Importer, n: onnx.NodeProto) -> None:
    node, batched = _reduce_node(imp, n, imp.act(n), _REDUCE_OPS[n.op_type])
    imp.bind(n, node, batched)


def _reduce_composite(imp: Importer, n: onnx.NodeProto) -> None:
    """ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSumExp: an element-wise step, a sum, an element-wise step."""
    x = imp.act(n)
    label = n.name or n.output[0]
    before = {"ReduceL1": OpKind.ABS, "ReduceLogSumExp": OpKind.EXP}.get(n.op_type)
    if n.op_type in ("ReduceL2", "ReduceSumSquare"):
        x = imp.node(f"{label}/square", OpKind.MUL, [x, x])
    elif before is not None:
        x = imp.node(f"{label}/{before.value}", before, [x])
    node, batched = _reduce_node(imp, n, x, OpKind.REDUCE_SUM)
    after = {"ReduceL2": OpKind.SQRT, "ReduceLogSumExp": OpKind.LOG}.get(n.op_type)
    if after is not None:
        node = imp.node(f"{label}/{after.value}", after, [node])
    imp.bind(n, node, batched)


def _cumsum(imp: Importer, n: onnx.NodeProto) -> None:
    a = imp.attrs(n)
    name = n.input[0]
    axis = int(np.asarray(imp.const(n, 1)).reshape(-1)[0])
    ax = imp.ir_axis(n, name, axis)
    x = imp.act(n)
    if ax is None:  # a running sum over the batch axis of size 1 is the data itself
        if int(a.get("exclusive", 0)):
            raise UnsupportedOperatorError(f"{imp.where(n)}: exclusive CumSum over the batch axis")
        imp.bind(n, x, imp.batched[name])
        return
    imp.emit(n, OpKind.CUMSUM, [x], CumsumAttrs(ax, bool(int(a.get("exclusive", 0))), bool(int(a.get("reverse", 0)))),
             batched=imp.batched[name])


def _global_max(imp: Importer, n: onnx.NodeProto) -> None:
    x = imp.act(n)
    axes = tuple(range(1, len(x.shape or ())))
    imp.emit(n, OpKind.REDUCE_MAX, [x], ReduceAttrs(axes, True), batched=imp.batched[n.input[0]])


def _gelu_attrs(a: dict) -> GeluAttrs:
    approx = Importer.text(a.get("approximate", b"none"))
    if approx not in ("none", "tanh"):
        raise UnsupportedOperatorError(f"Gelu approximate={approx!r}; supported: 'none', 'tanh'")
    return GeluAttrs(approx == "tanh")


TENSOR_HANDLERS: dict[str, Handler] = {
    "Relu": _unary(OpKind.RELU),
    "Sigmoid": _unary(OpKind.SIGMOID),
    "HardSwish": _unary(OpKind.HARDSWISH),
    "HardSigmoid": _unary(OpKind.HARDSIGMOID, lambda a: HardSigmoidAttrs(float(a.get("alpha", 0.2)),
                                                                         float(a.get("beta", 0.5)))),
    "ThresholdedRelu": _unary(OpKind.THRESHOLD_RELU, lambda a: ThresholdAttrs(float(a.get("alpha", 1.0)))),
    "LeakyRelu": _unary(OpKind.LEAKY_RELU, lambda a: AlphaAttrs(float(a.get("alpha", 0.01)))),
    "Elu": _unary(OpKind.ELU, lambda a: AlphaAttrs(float(a.get("alpha", 1.0)))),
    "Gelu": _unary(OpKind.GELU, _gelu_attrs),
    "Softplus": _unary(OpKind.SOFTPLUS),
    "Tanh": _unary(OpKind.TANH),
    "Erf": _unary(OpKind.ERF),
    "Exp": _unary(OpKind.EXP),
    "Log": _unary(OpKind.LOG),
    "Sqrt": _unary(OpKind.SQRT),
    "Reciprocal": _unary(OpKind.RECIPROCAL),
    "Neg": _unary(OpKind.NEG),
    "Abs": _unary(OpKind.ABS),
    "Sin": _unary(OpKind.SIN),
    "Cos": _unary(OpKind.COS),
    "Not": _unary(OpKind.NOT),
    "IsNaN": _unary(OpKind.ISNAN),
    "Clip": _clip,
    "Cast": _cast,
    "Add": _add,
    "Sum": _binary(OpKind.ADD),
    "Mul": _mul,
    "Sub": _binary(OpKind.SUB),
    "Div": _binary(OpKind.DIV),
    "Pow": _binary(OpKind.POW),
    "Max": _binary(OpKind.MAX),
    "Min": _binary(OpKind.MIN),
    "Equal": _binary(OpKind.EQUAL),
    "Less": _binary(OpKind.LESS),
    "Greater": _binary(OpKind.GREATER),
    "LessOrEqual": _negated(OpKind.GREATER),
    "GreaterOrEqual": _negated(OpKind.LESS),
    "And": _binary(OpKind.AND),
    "Or": _binary(OpKind.OR),
    "Where": _where,
    "Softmax": _softmax,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Squeeze": _squeeze,
    "Unsqueeze": _squeeze,
    "Transpose": _transpose,
    "Slice": _slice,
    "Split": _split,
    "Gather": _gather,
    "GatherElements": _gather_elements,
    "Concat": _concat,
    "Expand": _expand,
    "Pad": _pad,
    "ReduceMean": _reduce,
    "ReduceSum": _reduce,
    "ReduceMax": _reduce,
    "ReduceMin": _reduce,
    "ReduceL1": _reduce_composite,
    "ReduceL2": _reduce_composite,
    "ReduceSumSquare": _reduce_composite,
    "ReduceLogSumExp": _reduce_composite,
    "GlobalMaxPool": _global_max,
    "CumSum": _cumsum,
}
