"""ATen operators with weights or windows: convolutions, products, normalisation, pooling, resampling, lookup.

Their spellings after ``run_decompositions``: ``convolution`` (plain and transposed, 1-D and 2-D), ``addmm`` /
``mm`` / ``bmm`` with a folded ``permute`` of the weight for linear layers (``linear`` itself where it is
kept whole), ``_native_batch_norm_legit_no_training`` folded into the conv/linear before it (an affine layer
where nothing precedes it), ``native_layer_norm``, ``max_pool2d_with_indices`` (1-D pooling arrives as its 2-D
form between an unsqueeze and a squeeze), and a ``constant_pad_nd`` folded into the pads of the conv (zeros)
or max pool (-inf) that reads it, as the ONNX importer folds a Pad node. The same handlers read the forms a
program has before decomposition (``conv2d``, ``conv_transpose2d``, ``batch_norm``, ``layer_norm``,
``max_pool2d``, ``dropout``), for programs that need none (:func:`accelflow.frontends.pytorch._lower`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.fx

from accelflow.errors import ModelImportError, UnsupportedOperatorError
from accelflow.frontends._onnx.ops_nn import param_name
from accelflow.frontends._torch.importer import (
    Act,
    Handler,
    PendingPad,
    TorchImporter,
    arguments,
    f32,
    op_name,
    to_numpy,
)
from accelflow.ir import (
    AffineAttrs,
    ConvAttrs,
    ConvTransposeAttrs,
    GlobalPoolAttrs,
    LayerNormAttrs,
    LinearAttrs,
    Node,
    OpKind,
    PoolAttrs,
    ResizeAttrs,
    ResizeMode,
    fold_batchnorm,
)

__all__ = ["NN_HANDLERS", "ints", "feature_map"]


def ints(value: Any, n: int) -> tuple[int, ...]:
    """An int or a list of ints (a single one repeated) as ``n`` ints."""
    values = [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]
    if len(values) == 1:
        values *= n
    if len(values) != n:
        raise ModelImportError(f"expected {n} values, got {list(values)}")
    return tuple(values)


def _name(imp: TorchImporter, weight: Any) -> str | None:
    """A layer's IR name from its weight: ``layer1.0.conv1`` for ``layer1.0.conv1.weight`` (as ONNX names it)."""
    source = imp.source(weight)
    return param_name(source) if source else None


def feature_map(imp: TorchImporter, n: torch.fx.Node, arg: Any, dims: int) -> Node:
    """Argument ``arg`` of a conv/pool as a (C, *spatial) IR node: it must carry the batch axis (or a leading
    axis of 1 that can be taken as one)."""
    x = imp.act(n, arg)
    if imp.rank(arg) != dims + 2:
        raise ModelImportError(f"{imp.where(n)}: input of shape {imp.shape(arg)} for a {dims}-D window")
    if imp.batched(arg):
        return x
    assert x.shape is not None
    if x.shape[0] != 1:
        raise UnsupportedOperatorError(f"{imp.where(n)}: a window over a batch of {x.shape[0]} merged from other "
                                       "axes; supported: a batch of 1")
    return imp.reshape(f"{x.name}/batched", x, x.shape[1:])


def _padded_input(imp: TorchImporter, n: torch.fx.Node, arg: Any, dims: int, fill: float) -> tuple[Node, tuple[int, ...]]:
    """The input of a conv/max pool and the spatial pads of a ``constant_pad_nd`` it reads and folds (zeros
    when none). A pad with another value, or of the batch or channel axes, stays a node of its own."""
    pending = imp.values.get(arg) if isinstance(arg, torch.fx.Node) else None
    if isinstance(pending, PendingPad) and pending.x.batched and pending.value == fill \
            and len(pending.pads) == 2 * (dims + 2) and len(arg.users) == 1:
        rank = dims + 2
        if not any(pending.pads[a] or pending.pads[rank + a] for a in (0, 1)):
            return pending.x.node, pending.pads[2:rank] + pending.pads[rank + 2:]
    return feature_map(imp, n, arg, dims), (0,) * 2 * dims


def _convolution(imp: TorchImporter, n: torch.fx.Node) -> None:
    """``convolution``, and as exported before decomposition ``conv1d``/``conv2d`` (padding may be
    ``'same'``/``'valid'``) and ``conv_transpose1d``/``conv_transpose2d``."""
    a = arguments(n)
    w = imp.const(n, a["weight"])
    assert w is not None
    dims = w.dim() - 2
    if dims not in (1, 2):
        raise UnsupportedOperatorError(f"{imp.where(n)}: only 1-D and 2-D convolutions are supported")
    kernel = tuple(int(k) for k in w.shape[2:])
    stride, dil = ints(a["stride"], dims), ints(a["dilation"], dims)
    groups = int(a["groups"])
    transposed = bool(a.get("transposed", "transpose" in op_name(n.target)))
    if isinstance(a["padding"], str):  # 'same' (stride 1): the extra pad at the end, as torch pads it
        totals = [dil[i] * (kernel[i] - 1) if a["padding"] == "same" else 0 for i in range(dims)]
        padding_pairs = tuple(t // 2 for t in totals) + tuple(t - t // 2 for t in totals)
    else:
        padding_pairs = ints(a["padding"], dims) * 2
    params = {"weight": w, "bias": imp.const(n, a["bias"], required=False)}
    if transposed:
        x = feature_map(imp, n, a["input"], dims)
        attrs: ConvAttrs | ConvTransposeAttrs = ConvTransposeAttrs(
            w.shape[0], w.shape[1] * groups, kernel, stride, padding_pairs, ints(a["output_padding"], dims), dil,
            groups)
        imp.emit(n, OpKind.CONV_TRANSPOSE, [x], attrs, params, batched=True, name=_name(imp, a["weight"]))
        return
    x, extra = _padded_input(imp, n, a["input"], dims, 0.0)
    pads = tuple(p + e for p, e in zip(padding_pairs, extra, strict=True))
    attrs = ConvAttrs(w.shape[1] * groups, w.shape[0], kernel, stride, pads, dil, groups)
    imp.emit(n, OpKind.CONV, [x], attrs, params, batched=True, name=_name(imp, a["weight"]))


# -- products ---------------------------------------------------------------------------------------
def _product(imp: TorchImporter, n: torch.fx.Node, x: Any, y: Any, bias: Any = None, alpha: float = 1.0,
             beta: float = 1.0) -> None:
    """``beta * bias + alpha * (x @ y)``: a linear layer when ``y`` is a constant matrix, else a product of
    two activations (MATMUL)."""
    if imp.is_const(y) and not imp.is_const(x):
        w = imp.const(n, y)
        assert w is not None
        if w.dim() == 2:
            _linear_layer(imp, n, x, w.T * alpha if alpha != 1 else w.T, bias, beta, _name(imp, y))
            return
    args = [x, y]
    for i, arg in enumerate(args):  # a batch axis that is a matrix axis: the operand is a plain matrix
        if not imp.is_const(arg) and imp.batched(arg) and imp.rank(arg) <= 2:
            node = imp.act(n, arg)
            args[i] = Act(imp.reshape(f"{node.name}/matrix", node, imp.shape(arg)), False)
    nodes, batched = imp.operands(n, args, lead=2)
    if alpha == 1 and bias is None:
        imp.emit(n, OpKind.MATMUL, nodes, batched=batched)
        return
    out = Act(imp.node(f"{imp.label(n)}/product", OpKind.MATMUL, nodes), batched)
    if alpha != 1:
        scaled, batched = imp.operands(n, [out, alpha])
        out = Act(imp.node(f"{imp.label(n)}/alpha", OpKind.MUL, scaled), batched)
    _add_bias(imp, n, out, bias, beta)


def _linear_layer(imp: TorchImporter, n: torch.fx.Node, x: Any, w: torch.Tensor, bias: Any, beta: float,
                  name: str | None) -> None:
    """A LINEAR node on activation ``x`` with weight ``w`` (out, in); a constant bias along the outputs
    becomes its bias, any other is added after it."""
    b = imp.const(n, bias) if imp.is_const(bias) else None
    if b is not None and b.numel() == w.shape[0] and (b.dim() == 1 or b.shape[-1] == w.shape[0]):
        params = {"weight": w, "bias": b.reshape(-1) * beta if beta != 1 else b.reshape(-1)}
        imp.emit(n, OpKind.LINEAR, [imp.act(n, x)], LinearAttrs(w.shape[1], w.shape[0]), params,
                 batched=imp.batched(x), name=name)
        return
    if bias is None:
        imp.emit(n, OpKind.LINEAR, [imp.act(n, x)], LinearAttrs(w.shape[1], w.shape[0]), {"weight": w},
                 batched=imp.batched(x), name=name)
        return
    node = imp.node(name or f"{imp.label(n)}/product", OpKind.LINEAR, [imp.act(n, x)],
                    LinearAttrs(w.shape[1], w.shape[0]), {"weight": w})
    _add_bias(imp, n, Act(node, imp.batched(x)), bias, beta)


def _add_bias(imp: TorchImporter, n: torch.fx.Node, out: Act, bias: Any, beta: float) -> None:
    if bias is None:
        imp.bind(n, out.node, out.batched)
        return
    term: Any = bias
    if beta != 1:
        scaled, b = imp.operands(n, [bias, beta])
        term = Act(imp.node(f"{imp.label(n)}/beta", OpKind.MUL, scaled), b)
    nodes, batched = imp.operands(n, [out, term])
    imp.emit(n, OpKind.ADD, nodes, batched=batched)


def _addmm(imp: TorchImporter, n: torch.fx.Node) -> None:
    a = arguments(n)
    _product(imp, n, a["mat1"], a["mat2"], a["self"], float(a["alpha"]), float(a["beta"]))


def _mm(imp: TorchImporter, n: torch.fx.Node) -> None:
    a = arguments(n)
    _product(imp, n, a["self"], a[next(k for k in a if k != "self")])


def _linear(imp: TorchImporter, n: torch.fx.Node) -> None:
    a = arguments(n)
    if not imp.is_const(a["weight"]):
        raise UnsupportedOperatorError(f"{imp.where(n)}: linear with a computed weight; supported: a constant "
                                       "weight (use matmul for a product of two activations)")
    w = imp.const(n, a["weight"])
    assert w is not None
    _linear_layer(imp, n, a["input"], w, a["bias"], 1.0, _name(imp, a["weight"]))


# -- normalisation ----------------------------------------------------------------------------------
def _batchnorm(imp: TorchImporter, n: torch.fx.Node) -> None:
    """Folded into the conv/linear before it when that is used only here; else a per-channel affine layer."""
    a = arguments(n)
    x = a["input"]
    prev = imp.act(n, x)
    channels = imp.shape(x)[1] if imp.rank(x) > 1 else imp.shape(x)[0]
    mean, var = (_float64(imp, n, a[k]) for k in ("running_mean", "running_var"))
    gamma = np.ones(channels) if a["weight"] is None else _float64(imp, n, a["weight"])
    beta = np.zeros(channels) if a["bias"] is None else _float64(imp, n, a["bias"])
    eps = f32(a["eps"])
    if a.get("training"):
        raise UnsupportedOperatorError(f"{imp.where(n)}: BatchNorm in training mode")
    why = "BatchNorm's saved mean and inverse deviation are not supported"
    if prev.op in (OpKind.CONV, OpKind.LINEAR) and not prev.users and imp.consumers(prev) == 1 \
            and prev not in imp.graph.outputs:
        w, b = fold_batchnorm(prev.params["weight"], prev.bias, gamma, beta, mean, var, eps)
        prev.params["weight"], prev.params["bias"] = w, b
        _bind_first(imp, n, prev, imp.batched(x), why)
        return
    axis = imp.ir_axis(n, x, 1 if imp.rank(x) > 1 else 0)
    if axis is None:
        raise UnsupportedOperatorError(f"{imp.where(n)}: BatchNorm of a rank-1 input")
    scale = gamma / np.sqrt(var + eps)
    node = imp.node(_name(imp, a["weight"]) or imp.label(n), OpKind.AFFINE, [prev], AffineAttrs(axis),
                    {"weight": scale, "bias": beta - mean * scale})
    _bind_first(imp, n, node, imp.batched(x), why)


def _bind_first(imp: TorchImporter, n: torch.fx.Node, node: Node, batched: bool, why: str) -> None:
    """Bind ``n`` to ``node``: its value, or the first of its outputs (``native_layer_norm`` also gives the
    statistics that ``layer_norm``, as exported before decomposition, does not)."""
    if isinstance(n.meta.get("val"), (tuple, list)):
        imp.bind_outputs(n, [(node, batched), *[None] * (len(n.meta["val"]) - 1)], why)
    else:
        imp.bind(n, node, batched)


def _float64(imp: TorchImporter, n: torch.fx.Node, arg: Any) -> np.ndarray:
    value = imp.const(n, arg)
    assert value is not None
    return to_numpy(value).astype(np.float64)


def _layernorm(imp: TorchImporter, n: torch.fx.Node) -> None:
    a = arguments(n)
    x = imp.act(n, a["input"])
    ir_rank = len(x.shape or ())
    axis = max(-len(a["normalized_shape"]), -ir_rank)  # trailing axes: the same counted from the end
    params = {"weight": imp.const(n, a["weight"], required=False), "bias": imp.const(n, a["bias"], required=False)}
    source = imp.source(a["weight"])
    name = param_name(source) if source and source.endswith(".weight") else None
    node = imp.node(name or imp.label(n), OpKind.LAYERNORM, [x], LayerNormAttrs(axis, f32(a["eps"])), params)
    _bind_first(imp, n, node, imp.batched(a["input"]), "layer norm's mean and inverse deviation are not supported")


# -- windows ----------------------------------------------------------------------------------------
def _max_pool(imp: TorchImporter, n: torch.fx.Node) -> None:
    a = arguments(n)
    dims = len(imp.out_shape(a["self"])) - 2  # (its recorded shape: a pad before it stays pending)
    if dims not in (1, 2):
        raise UnsupportedOperatorError(f"{imp.where(n)}: only 1-D and 2-D pooling is supported")
    kernel = ints(a["kernel_size"], dims)
    if any(d != 1 for d in ints(a["dilation"], dims)):
        raise UnsupportedOperatorError(f"{imp.where(n)}: dilated pooling is not supported")
    stride = ints(a["stride"] or kernel, dims)
    x, extra = _padded_input(imp, n, a["self"], dims, -math.inf)
    pads = tuple(p + e for p, e in zip(ints(a["padding"], dims) * 2, extra, strict=True))
    node = imp.node(imp.label(n), OpKind.MAXPOOL, [x], PoolAttrs(kernel, stride, pads, bool(a["ceil_mode"]), False))
    if n.target._overloadpacket.__name__.endswith("with_indices"):  # type: ignore[union-attr]
        imp.bind_outputs(n, [(node, True), None], "max pooling's indices are not supported")
    else:
        imp.bind(n, node, True)


def _avg_pool(imp: TorchImporter, n: torch.fx.Node) -> None:
    a = arguments(n)
    dims = imp.rank(a["self"]) - 2
    kernel = ints(a["kernel_size"], dims)
    if a.get("divisor_override") is not None:
        raise UnsupportedOperatorError(f"{imp.where(n)}: average pooling with divisor_override")
    x = feature_map(imp, n, a["self"], dims)
    attrs = PoolAttrs(kernel, ints(a["stride"] or kernel, dims), ints(a["padding"], dims) * 2, bool(a["ceil_mode"]),
                      bool(a["count_include_pad"]))
    imp.emit(n, OpKind.AVGPOOL, [x], attrs, batched=True)


def _adaptive_avg_pool(imp: TorchImporter, n: torch.fx.Node) -> None:
    """To size 1: global average pooling (kept dims, as ONNX's GlobalAveragePool); to a divisor of the
    input size: average pooling with equal windows."""
    a = arguments(n)
    src = imp.shape(a["self"])
    dims = len(src) - 2
    out = ints(a["output_size"], dims)
    x = feature_map(imp, n, a["self"], dims)
    if all(o == 1 for o in out):
        imp.emit(n, OpKind.GLOBAL_AVGPOOL, [x], GlobalPoolAttrs(keepdims=True), batched=True)
        return
    if any(s % o for s, o in zip(src[2:], out, strict=True)):
        raise UnsupportedOperatorError(f"{imp.where(n)}: adaptive pooling of {src[2:]} to {out}; supported: to 1, "
                                       "or to a divisor of the input size")
    kernel = tuple(s // o for s, o in zip(src[2:], out, strict=True))
    imp.emit(n, OpKind.AVGPOOL, [x], PoolAttrs(kernel, kernel, (0,) * 2 * dims), batched=True)


def _upsample(mode: str) -> Handler:
    def handler(imp: TorchImporter, n: torch.fx.Node) -> None:
        a = arguments(n)
        src = a.get("input", a.get("self"))
        before, after = imp.shape(src), imp.out_shape(n)
        scales = a.get("scale_factors") or [a[k] for k in ("scales_h", "scales_w", "scales") if a.get(k) is not None]
        if scales and any(float(s) * i != o for s, i, o in zip(scales, before[2:], after[2:], strict=False)):
            raise UnsupportedOperatorError(f"{imp.where(n)}: resampling {before[2:]} to {after[2:]} by scale "
                                           f"{list(scales)}; supported: sizes, or scales that give them exactly")
        if mode == "nearest":
            resize = ResizeMode.NEAREST
        else:
            resize = ResizeMode.LINEAR_ALIGN_CORNERS if a.get("align_corners") else ResizeMode.LINEAR
        x = feature_map(imp, n, src, len(before) - 2)
        imp.emit(n, OpKind.RESIZE, [x], ResizeAttrs(after[2:], resize), batched=True)

    return handler


def _embedding(imp: TorchImporter, n: torch.fx.Node) -> None:
    a = arguments(n)
    table = imp.const(n, a["weight"])
    assert table is not None
    if table.dim() != 2:
        raise UnsupportedOperatorError(f"{imp.where(n)}: embedding table of shape {tuple(table.shape)}; expected 2-D")
    source = imp.source(a["weight"])
    imp.emit(n, OpKind.EMBEDDING, [imp.act(n, a["indices"])], None, {"weight": table},
             batched=imp.batched(a["indices"]), name=(param_name(source) or source) if source else None)


def _constant_pad(imp: TorchImporter, n: torch.fx.Node) -> None:
    """A constant pad: held until a conv/max pool folds it, or becomes a PAD node when something else reads it."""
    a = arguments(n)
    x = a["self"]
    node = imp.act(n, x)  # an activation (a pad of a pad becomes a node)
    rank = imp.rank(x)
    pad: Sequence[int] = [int(p) for p in a["pad"]]
    if len(pad) % 2 or len(pad) // 2 > rank:
        raise ModelImportError(f"{imp.where(n)}: {len(pad)} pads for a rank-{rank} input")
    full = [0] * 2 * rank
    for i in range(len(pad) // 2):  # torch lists the last axis first
        full[rank - 1 - i], full[2 * rank - 1 - i] = pad[2 * i], pad[2 * i + 1]
    if any(p < 0 for p in full):
        raise UnsupportedOperatorError(f"{imp.where(n)}: negative pads {list(pad)} (cropping); only padding")
    value = float(a["value"])
    if math.isnan(value):
        raise ModelImportError(f"{imp.where(n)}: pad value NaN")
    imp.values[n] = PendingPad(Act(node, imp.batched(x)), tuple(full), value, imp.label(n))


def _dropout(imp: TorchImporter, n: torch.fx.Node) -> None:
    """Dropout as exported before decomposition: the identity at inference."""
    a = arguments(n)
    if a.get("train"):
        raise UnsupportedOperatorError(f"{imp.where(n)}: dropout in training mode")
    x = a["input"]
    imp.bind(n, imp.act(n, x), imp.batched(x))


NN_HANDLERS: dict[str, Handler] = {
    "aten.convolution": _convolution,
    "aten.conv1d": _convolution,
    "aten.conv2d": _convolution,
    "aten.conv_transpose1d": _convolution,
    "aten.conv_transpose2d": _convolution,
    "aten.batch_norm": _batchnorm,
    "aten.layer_norm": _layernorm,
    "aten.dropout": _dropout,
    "aten.addmm": _addmm,
    "aten.mm": _mm,
    "aten.bmm": _mm,
    "aten.matmul": _mm,
    "aten.linear": _linear,
    "aten._native_batch_norm_legit_no_training": _batchnorm,
    "aten.native_layer_norm": _layernorm,
    "aten.max_pool2d_with_indices": _max_pool,
    "aten.max_pool2d": _max_pool,
    "aten.max_pool1d": _max_pool,
    "aten.avg_pool2d": _avg_pool,
    "aten.avg_pool1d": _avg_pool,
    "aten._adaptive_avg_pool2d": _adaptive_avg_pool,
    "aten.adaptive_avg_pool2d": _adaptive_avg_pool,
    "aten.adaptive_avg_pool1d": _adaptive_avg_pool,
    "aten.upsample_nearest2d": _upsample("nearest"),
    "aten.upsample_nearest1d": _upsample("nearest"),
    "aten.upsample_bilinear2d": _upsample("linear"),
    "aten.upsample_linear1d": _upsample("linear"),
    "aten.embedding": _embedding,
    "aten.constant_pad_nd": _constant_pad,
}
