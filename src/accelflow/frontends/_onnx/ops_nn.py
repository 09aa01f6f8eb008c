"""ONNX operators with weights or windows: convolutions, products, normalisation, pooling, resampling.

Their spellings by both torch exporters: Gemm or MatMul(+Add) for linear layers, BatchNormalization folded
into the Conv/Gemm before it (an affine layer where nothing precedes it), Clip for ReLU6, TensorFlow-style
unequal pads and ``auto_pad`` SAME, and a constant Pad folded into the pads of the Conv (zeros) or MaxPool
(-inf) that reads it.
"""

from __future__ import annotations

import math
import string

import numpy as np
import onnx

from accelflow.errors import ModelImportError, UnsupportedOperatorError
from accelflow.frontends._onnx.importer import Handler, Importer
from accelflow.ir import (
    AffineAttrs,
    ChannelSparsity,
    ConvAttrs,
    ConvTransposeAttrs,
    EinsumAttrs,
    GlobalPoolAttrs,
    LayerNormAttrs,
    LinearAttrs,
    Node,
    OpKind,
    PoolAttrs,
    ResizeAttrs,
    ResizeMode,
    TransposeAttrs,
    fold_batchnorm,
)

__all__ = ["NN_HANDLERS", "param_name", "same_pads"]


def param_name(initializer: str) -> str | None:
    """'layer1.0.conv1.weight' -> 'layer1.0.conv1' (exporters keep module paths in initializer names)."""
    for suffix in (".weight", ".W"):
        if initializer.endswith(suffix):
            return initializer[: -len(suffix)]
    return None


def same_pads(spatial: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...],
              dil: tuple[int, ...], upper: bool) -> tuple[int, ...]:
    """Begin-then-end pads of ``auto_pad`` SAME_UPPER (extra pad at the end) or SAME_LOWER."""
    totals = []
    for size, k, s, d in zip(spatial, kernel, stride, dil, strict=True):
        out = math.ceil(size / s)
        totals.append(max(0, (out - 1) * s + d * (k - 1) + 1 - size))
    small = [t // 2 for t in totals]
    big = [t - t // 2 for t in totals]
    return tuple(small + big) if upper else tuple(big + small)


def _feature_map(imp: Importer, n: onnx.NodeProto, i: int, dims: int) -> Node:
    """Input ``i`` of a Conv/pool as a (C, *spatial) IR node: it must carry the batch axis (or a leading
    axis of 1 that can be taken as one)."""
    name = n.input[i]
    x = imp.act(n, i)
    if imp.rank(name) != dims + 2:
        raise ModelImportError(f"{imp.where(n)}: input of shape {imp.shape(name)} for a {dims}-D {n.op_type}")
    if imp.batched[name]:
        return x
    assert x.shape is not None
    if x.shape[0] != 1:
        raise UnsupportedOperatorError(f"{imp.where(n)}: {n.op_type} over a batch of {x.shape[0]} merged from "
                                       "other axes; supported: a batch of 1")
    return imp.reshape(f"{x.name}/batched", x, x.shape[1:])


def _padded_input(imp: Importer, n: onnx.NodeProto, dims: int, fill: float) -> tuple[Node, tuple[int, ...]]:
    """The input of a Conv/MaxPool and the spatial pads of a Pad node it reads and folds (zeros when none).
    A Pad that fills with another value, or pads the batch or channel axes, stays a node of its own."""
    name = n.input[0]
    pending = imp.pads.get(name) if name not in imp.values else None
    if pending is not None and imp.batched[pending.x] and pending.value == fill \
            and len(pending.pads) == 2 * (dims + 2) and imp.consumers.get(name, 0) == 1:
        rank = dims + 2
        if not any(pending.pads[a] or pending.pads[rank + a] for a in (0, 1)):
            pads = pending.pads[2:rank] + pending.pads[rank + 2:]
            return imp.values[pending.x], tuple(pads)
    return _feature_map(imp, n, 0, dims), (0,) * 2 * dims


def _node_pads(imp: Importer, n: onnx.NodeProto, x: Node, extra: tuple[int, ...], kernel: tuple[int, ...],
               stride: tuple[int, ...], dil: tuple[int, ...]) -> tuple[int, ...]:
    """Begin-then-end pads of Conv/pooling node ``n``: its ``pads`` (or ``auto_pad`` SAME) plus ``extra``."""
    a = imp.attrs(n)
    pads = tuple(int(p) for p in a.get("pads", [0] * len(extra)))
    auto = imp.text(a.get("auto_pad", b"NOTSET"))
    if auto not in ("NOTSET", "VALID"):
        if any(extra):
            raise UnsupportedOperatorError(f"{imp.where(n)}: a Pad before a {n.op_type} with auto_pad {auto}")
        assert x.shape is not None
        pads = same_pads(x.shape[1:], kernel, stride, dil, upper=auto == "SAME_UPPER")
    if len(pads) != len(extra):
        raise ModelImportError(f"{imp.where(n)}: {len(pads)} pads for {len(extra) // 2} spatial axes")
    return tuple(p + e for p, e in zip(pads, extra, strict=True))


def _conv(imp: Importer, n: onnx.NodeProto) -> None:
    w = imp.const(n, 1)
    assert w is not None
    a = imp.attrs(n)
    dims = w.ndim - 2
    if dims not in (1, 2):
        raise UnsupportedOperatorError(f"{imp.where(n)}: only 1-D and 2-D convolutions are supported")
    kernel = tuple(int(k) for k in a.get("kernel_shape", w.shape[2:]))
    stride = tuple(int(s) for s in a.get("strides", [1] * dims))
    dil = tuple(int(d) for d in a.get("dilations", [1] * dims))
    x, extra = _padded_input(imp, n, dims, 0.0)
    pads = _node_pads(imp, n, x, extra, kernel, stride, dil)
    groups = int(a.get("group", 1))
    attrs = ConvAttrs(w.shape[1] * groups, w.shape[0], kernel, stride, pads, dil, groups)
    node = imp.emit(n, OpKind.CONV, [x], attrs, {"weight": w, "bias": imp.const(n, 2, required=False)},
                    batched=True, name=param_name(n.input[1]))
    if "channel_sparsity_hist" in a:  # fpgaConvNet layout: [channel][zeros], C_in x (K*K+1)
        try:
            node.annotate(ChannelSparsity.from_onnx_attribute(
                a["channel_sparsity_hist"], attrs.in_channels, attrs.kernel_size, source=imp.source))
        except ValueError as exc:
            raise ModelImportError(f"{imp.where(n)}: {exc}") from None


def _conv_transpose(imp: Importer, n: onnx.NodeProto) -> None:
    w = imp.const(n, 1)
    assert w is not None
    a = imp.attrs(n)
    dims = w.ndim - 2
    if dims not in (1, 2):
        raise UnsupportedOperatorError(f"{imp.where(n)}: only 1-D and 2-D transposed convolutions are supported")
    x = _feature_map(imp, n, 0, dims)
    assert x.shape is not None
    kernel = tuple(int(k) for k in a.get("kernel_shape", w.shape[2:]))
    stride = tuple(int(s) for s in a.get("strides", [1] * dims))
    dil = tuple(int(d) for d in a.get("dilations", [1] * dims))
    out_pad = tuple(int(p) for p in a.get("output_padding", [0] * dims))
    pads = tuple(int(p) for p in a.get("pads", [0] * 2 * dims))
    auto = imp.text(a.get("auto_pad", b"NOTSET"))
    if "output_shape" in a or auto in ("SAME_UPPER", "SAME_LOWER"):
        want = [int(s) for s in a["output_shape"]][-dims:] if "output_shape" in a else \
            [x.shape[1 + i] * stride[i] for i in range(dims)]
        totals = [stride[i] * (x.shape[1 + i] - 1) + out_pad[i] + (kernel[i] - 1) * dil[i] + 1 - want[i]
                  for i in range(dims)]
        if any(t < 0 for t in totals):
            raise ModelImportError(f"{imp.where(n)}: output_shape {want} is larger than the transposed conv gives")
        upper = auto != "SAME_LOWER"
        pads = tuple([t // 2 if upper else t - t // 2 for t in totals] + [t - t // 2 if upper else t // 2 for t in totals])
    groups = int(a.get("group", 1))
    attrs = ConvTransposeAttrs(w.shape[0], w.shape[1] * groups, kernel, stride, pads, out_pad, dil, groups)
    imp.emit(n, OpKind.CONV_TRANSPOSE, [x], attrs, {"weight": w, "bias": imp.const(n, 2, required=False)},
             batched=True, name=param_name(n.input[1]))


def _gemm(imp: Importer, n: onnx.NodeProto) -> None:
    a = imp.attrs(n)
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    if not imp.is_const(n.input[1]):
        raise UnsupportedOperatorError(f"{imp.where(n)}: Gemm of two activations; supported: a constant B (a "
                                       "linear layer)")
    w = imp.consts[n.input[1]]
    w = w if a.get("transB", 0) else w.T
    if alpha != 1.0:
        w = w * np.float32(alpha)
    x = imp.act(n)
    name = n.input[0]
    if a.get("transA", 0):
        if imp.batched[name]:
            raise UnsupportedOperatorError(f"{imp.where(n)}: Gemm with transA=1 on a batched input")
        x = imp.node(f"{n.name or n.output[0]}/transA", OpKind.TRANSPOSE, [x], TransposeAttrs((1, 0)))
    c = imp.const(n, 2, required=False)
    bias = None
    if c is not None:
        c = c * np.float32(beta)
        if c.size == w.shape[0] and (c.ndim == 1 or c.shape[-1] == w.shape[0]):
            bias, c = c.reshape(-1), None
    node = imp.node(param_name(n.input[1]) or n.name or n.output[0], OpKind.LINEAR, [x],
                    LinearAttrs(w.shape[1], w.shape[0]), {"weight": w, "bias": bias})
    if c is not None:  # a full C matrix: added after the product
        node = imp.node(f"{node.name}/C", OpKind.ADD, [node, imp.constant_value(f"{node.name}/C_value", c)])
    imp.bind(n, node, imp.batched[name] and not a.get("transA", 0))


def _matmul(imp: Importer, n: onnx.NodeProto) -> None:
    a_name, b_name = n.input[0], n.input[1]
    if imp.is_const(b_name) and imp.consts[b_name].ndim == 2 and not imp.is_const(a_name) and imp.rank(a_name) >= 1:
        w = imp.consts[b_name].T
        imp.emit(n, OpKind.LINEAR, [imp.act(n)], LinearAttrs(w.shape[1], w.shape[0]), {"weight": w},
                 batched=imp.batched[a_name], name=param_name(b_name))
        return
    names = [a_name, b_name]
    for i, name in enumerate(names):  # a batch axis that is a matrix axis: the operand is a plain matrix
        if not imp.is_const(name) and imp.batched[name] and imp.rank(name) <= 2:
            alias = f"{name}#matrix"
            imp.values[alias] = imp.reshape(f"{imp.act(n, i).name}/matrix", imp.act(n, i), imp.shape(name))
            imp.batched[alias] = False
            names[i] = alias
    nodes, batched = imp.operands(n, names, lead=2)
    imp.emit(n, OpKind.MATMUL, nodes, batched=batched)


def _einsum_terms(imp: Importer, n: onnx.NodeProto) -> tuple[list[str], str]:
    """The equation's terms with '...' spelled out in letters, and its output (implicit output made explicit)."""
    equation = imp.text(imp.attrs(n)["equation"]).replace(" ", "")
    lhs, arrow, out = equation.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(n.input):
        raise ModelImportError(f"{imp.where(n)}: equation {equation!r} for {len(n.input)} operands")
    free = [c for c in string.ascii_letters if c not in equation]
    ell_rank = max((imp.rank(x) - len(t.replace("...", "")) for t, x in zip(terms, n.input, strict=True)
                    if "..." in t), default=0)
    ell = "".join(free[:ell_rank])
    spelled = []
    for t, x in zip(terms, n.input, strict=True):
        if "..." in t:
            k = imp.rank(x) - len(t.replace("...", ""))
            t = t.replace("...", ell[ell_rank - k:] if k else "")
        spelled.append(t)
    if arrow:
        out = out.replace("...", ell)
    else:
        counts = {c: "".join(spelled).count(c) for c in "".join(spelled)}
        out = ell + "".join(sorted(c for c, k in counts.items() if k == 1 and c not in ell))
    if any(not t.isalpha() for t in spelled if t) or (out and not out.isalpha()):
        raise ModelImportError(f"{imp.where(n)}: cannot read equation {equation!r}")
    return spelled, out


def _einsum(imp: Importer, n: onnx.NodeProto) -> None:
    terms, out = _einsum_terms(imp, n)
    acts = [i for i, x in enumerate(n.input) if not imp.is_const(x)]
    firsts = {terms[i][:1] for i in acts}
    b = next(iter(firsts)) if len(firsts) == 1 else ""
    batched = bool(b) and all(imp.batched[n.input[i]] for i in acts) and out[:1] == b and \
        all(b not in terms[i] for i in range(len(terms)) if i not in acts)
    nodes = []
    for i, x in enumerate(n.input):
        if imp.is_const(x):
            nodes.append(imp.constant(x, strip_batch=False))
            continue
        node = imp.act(n, i)
        if batched:
            terms[i] = terms[i][1:]
        elif imp.batched[x]:
            node = imp.reshape(f"{node.name}/batched", node, imp.shape(x))
        nodes.append(node)
    out = out[1:] if batched else out
    imp.emit(n, OpKind.EINSUM, nodes, EinsumAttrs(",".join(terms) + "->" + out), batched=batched)


def _batchnorm(imp: Importer, n: onnx.NodeProto) -> None:
    """Folded into the Conv/Gemm before it when that is used only here; else a per-channel affine layer."""
    if len([o for o in n.output if o]) > 1 or int(imp.attrs(n).get("training_mode", 0)):
        raise UnsupportedOperatorError(f"{imp.where(n)}: BatchNormalization in training mode")
    prev = imp.act(n)
    gamma, beta, mean, var = (np.asarray(imp.const(n, i), dtype=np.float64) for i in range(1, 5))
    eps = float(imp.attrs(n).get("epsilon", 1e-5))
    name = n.input[0]
    if prev.op in (OpKind.CONV, OpKind.LINEAR) and not prev.users and imp.consumers.get(name, 0) == 1 \
            and prev not in imp.graph.outputs:
        w, b = fold_batchnorm(prev.params["weight"], prev.bias, gamma, beta, mean, var, eps)
        prev.params["weight"], prev.params["bias"] = w, b
        imp.bind(n, prev, imp.batched[name])
        return
    axis = imp.ir_axis(n, name, 1 if imp.rank(name) > 1 else 0)
    if axis is None:
        raise UnsupportedOperatorError(f"{imp.where(n)}: BatchNormalization of a rank-1 input")
    scale = gamma / np.sqrt(var + eps)
    imp.emit(n, OpKind.AFFINE, [prev], AffineAttrs(axis), {"weight": scale, "bias": beta - mean * scale},
             batched=imp.batched[name], name=param_name(n.input[1]) or None)


def _layernorm(imp: Importer, n: onnx.NodeProto) -> None:
    if len([o for o in n.output if o]) > 1:
        raise UnsupportedOperatorError(f"{imp.where(n)}: LayerNormalization's mean and inverse-deviation outputs")
    a = imp.attrs(n)
    name = n.input[0]
    rank = imp.rank(name)
    axis = int(a.get("axis", -1))
    if not -rank <= axis < rank:
        raise ModelImportError(f"{imp.where(n)}: axis {axis} for rank {rank}")
    x = imp.act(n)
    ir_rank = len(x.shape or ())
    axis = max(axis % rank - rank, -ir_rank)  # trailing axes: the same counted from the end, with or without batch
    imp.emit(n, OpKind.LAYERNORM, [x], LayerNormAttrs(axis, float(a.get("epsilon", 1e-5))),
             {"weight": imp.const(n, 1), "bias": imp.const(n, 2, required=False)}, batched=imp.batched[name],
             name=param_name(n.input[1]) if n.input[1].endswith(".weight") else None)


def _group_norm(imp: Importer, n: onnx.NodeProto) -> None:
    """InstanceNormalization (a group per channel) and GroupNormalization: a layer norm over each group's
    channels and positions (the channels viewed as (groups, C/groups * positions)), then a per-channel
    scale and shift (an affine layer, left out when it is the identity)."""
    a = imp.attrs(n)
    x = _feature_map(imp, n, 0, imp.rank(n.input[0]) - 2) if imp.rank(n.input[0]) >= 3 else imp.act(n)
    assert x.shape is not None
    channels = x.shape[0]
    groups = channels if n.op_type == "InstanceNormalization" else int(a["num_groups"])
    if groups < 1 or channels % groups:
        raise ModelImportError(f"{imp.where(n)}: {groups} groups for {channels} channels")
    scale = np.asarray(imp.const(n, 1), dtype=np.float32).reshape(-1)
    bias = np.asarray(imp.const(n, 2), dtype=np.float32).reshape(-1)
    if n.op_type == "GroupNormalization" and imp.opset < 21 and scale.size == groups:  # opset 18: per group
        scale, bias = np.repeat(scale, channels // groups), np.repeat(bias, channels // groups)
    if scale.size != channels or bias.size != channels:
        raise ModelImportError(f"{imp.where(n)}: scale/bias of {scale.size}/{bias.size} values for {channels} channels")
    label = n.name or n.output[0]
    grouped = imp.reshape(f"{label}/groups", x, (groups, math.prod(x.shape) // groups))
    norm = imp.node(label, OpKind.LAYERNORM, [grouped], LayerNormAttrs(-1, float(a.get("epsilon", 1e-5))))
    out = imp.reshape(f"{label}/channels", norm, x.shape)
    if np.any(scale != 1) or np.any(bias != 0):
        out = imp.node(f"{label}/affine", OpKind.AFFINE, [out], AffineAttrs(0), {"weight": scale, "bias": bias})
    imp.bind(n, out, True)


def _prelu(imp: Importer, n: onnx.NodeProto) -> None:
    slope = np.asarray(imp.const(n, 1), dtype=np.float32)
    name = n.input[0]
    if imp.batched[name] and slope.ndim == imp.rank(name):
        if slope.shape[0] != 1:
            raise ModelImportError(f"{imp.where(n)}: slope {slope.shape} varies along the batch axis")
        slope = slope.reshape(slope.shape[1:])
    imp.emit(n, OpKind.PRELU, [imp.act(n)], None, {"slope": slope}, batched=imp.batched[name])


def _pool(imp: Importer, n: onnx.NodeProto) -> None:
    a = imp.attrs(n)
    kernel = tuple(int(k) for k in a["kernel_shape"])
    dims = len(kernel)
    if dims not in (1, 2):
        raise UnsupportedOperatorError(f"{imp.where(n)}: only 1-D and 2-D pooling is supported")
    if any(int(d) != 1 for d in a.get("dilations", [1] * dims)):
        raise UnsupportedOperatorError(f"{imp.where(n)}: dilated pooling is not supported")
    if len([o for o in n.output if o]) > 1:
        raise UnsupportedOperatorError(f"{imp.where(n)}: MaxPool's indices output is not supported")
    stride = tuple(int(s) for s in a.get("strides", [1] * dims))
    if n.op_type == "MaxPool":
        x, extra = _padded_input(imp, n, dims, -math.inf)
    else:
        x, extra = _feature_map(imp, n, 0, dims), (0,) * 2 * dims
    pads = _node_pads(imp, n, x, extra, kernel, stride, (1,) * dims)
    attrs = PoolAttrs(kernel, stride, pads, bool(a.get("ceil_mode", 0)), bool(a.get("count_include_pad", 0)))
    imp.emit(n, OpKind.MAXPOOL if n.op_type == "MaxPool" else OpKind.AVGPOOL, [x], attrs, batched=True)


def _global_avgpool(imp: Importer, n: onnx.NodeProto) -> None:
    dims = imp.rank(n.input[0]) - 2
    imp.emit(n, OpKind.GLOBAL_AVGPOOL, [_feature_map(imp, n, 0, dims)], GlobalPoolAttrs(keepdims=True), batched=True)


def _resize(imp: Importer, n: onnx.NodeProto) -> None:
    a = imp.attrs(n)
    name = n.input[0]
    src = imp.shape(name)
    if n.op_type == "Upsample" or imp.opset < 11:
        scales = a.get("scales") if "scales" in a else imp.const(n, 1)
        sizes = None
    else:
        scales = imp.const(n, 2, required=False)
        sizes = imp.const(n, 3, required=False)
    axes = [int(ax) % len(src) for ax in a.get("axes", range(len(src)))]
    out = list(src)
    if sizes is not None and np.asarray(sizes).size:
        for ax, s in zip(axes, np.asarray(sizes).reshape(-1), strict=True):
            out[ax] = int(s)
        factors = [out[i] / src[i] for i in range(len(src))]
    elif scales is not None and np.asarray(scales).size:
        factors = [1.0] * len(src)
        for ax, s in zip(axes, np.asarray(scales, dtype=np.float64).reshape(-1), strict=True):
            factors[ax] = float(s)
            out[ax] = int(math.floor(src[ax] * float(s)))
    else:
        raise ModelImportError(f"{imp.where(n)}: neither scales nor sizes")
    if out[0] != src[0] or (len(src) > 1 and out[1] != src[1]) or any(d < 1 for d in out):
        raise UnsupportedOperatorError(f"{imp.where(n)}: resizes {src} to {tuple(out)}; only the spatial axes "
                                       "(after batch and channels) may change")
    mode = imp.text(a.get("mode", b"nearest"))
    coord = imp.text(a.get("coordinate_transformation_mode", b"half_pixel" if imp.opset >= 11 else b"asymmetric"))
    nearest = imp.text(a.get("nearest_mode", b"round_prefer_floor"))
    upscale = all(f >= 1 and float(f).is_integer() for f in factors[2:])
    if mode == "nearest" and ((coord == "asymmetric" and nearest == "floor") or
                              (upscale and coord != "tf_crop_and_resize")):
        ir_mode = ResizeMode.NEAREST
    elif mode == "linear" and coord in ("half_pixel", "pytorch_half_pixel") and not int(a.get("antialias", 0)):
        ir_mode = ResizeMode.LINEAR
    elif mode == "linear" and coord == "align_corners":
        ir_mode = ResizeMode.LINEAR_ALIGN_CORNERS
    else:
        raise UnsupportedOperatorError(
            f"{imp.where(n)}: Resize mode {mode!r} with coordinate_transformation_mode {coord!r}"
            f"{' and nearest_mode ' + repr(nearest) if mode == 'nearest' else ''}; supported: nearest as PyTorch "
            "does it (asymmetric + floor, or integer up-scaling), linear with half_pixel / pytorch_half_pixel / "
            "align_corners")
    x = _feature_map(imp, n, 0, len(src) - 2)
    imp.emit(n, OpKind.RESIZE, [x], ResizeAttrs(tuple(out[2:]), ir_mode), batched=True)


NN_HANDLERS: dict[str, Handler] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Einsum": _einsum,
    "BatchNormalization": _batchnorm,
    "LayerNormalization": _layernorm,
    "InstanceNormalization": _group_norm,
    "GroupNormalization": _group_norm,
    "PRelu": _prelu,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": _global_avgpool,
    "Resize": _resize,
    "Upsample": _resize,
}
