"""Reference executor: runs the IR on numpy arrays (batch dimension first).

It is the independent check of the importers (it must reproduce PyTorch to 1e-4) and the engine behind
activation statistics; it favours clarity over speed but stays vectorised (im2col by strided views).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from accelflow.ir.graph import Graph, Node
from accelflow.ir.interpret import Rule, conv_output_size, interpret
from accelflow.ir.ops import (
    AffineAttrs,
    AlphaAttrs,
    CastAttrs,
    ClipAttrs,
    ConcatAttrs,
    ConvAttrs,
    ConvTransposeAttrs,
    CumsumAttrs,
    DType,
    EinsumAttrs,
    ExpandAttrs,
    GatherAttrs,
    GeluAttrs,
    GlobalPoolAttrs,
    HardSigmoidAttrs,
    InputAttrs,
    LayerNormAttrs,
    OpKind,
    PadAttrs,
    PoolAttrs,
    ReduceAttrs,
    ReshapeAttrs,
    ResizeAttrs,
    ResizeMode,
    SliceAttrs,
    SoftmaxAttrs,
    ThresholdAttrs,
    TransposeAttrs,
)

__all__ = ["execute", "EXEC_RULES", "conv_windows"]

Array = np.ndarray


def _as_2d(x: Array, n_spatial: int) -> Array:
    """View a 1-D feature map (N, C, L) as 2-D (N, C, 1, L)."""
    return x[:, :, None, :] if n_spatial == 1 else x


def _pads_2d(padding: tuple[int, ...], n_spatial: int) -> tuple[int, int, int, int]:
    if n_spatial == 1:
        return 0, padding[0], 0, padding[1]
    return padding[0], padding[1], padding[2], padding[3]


def conv_windows(
    x: Array,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
    dilation: tuple[int, int] = (1, 1),
    fill: float = 0.0,
    out_hw: tuple[int, int] | None = None,
) -> Array:
    """Sliding windows of a (N, C, H, W) tensor: returns (N, C, Ho, Wo, kh, kw), padding with ``fill``."""
    top, left, bottom, right = pads
    kh, kw = kernel
    if out_hw is not None:  # ceil-mode pooling may need extra end padding
        need_h = (out_hw[0] - 1) * stride[0] + dilation[0] * (kh - 1) + 1
        need_w = (out_hw[1] - 1) * stride[1] + dilation[1] * (kw - 1) + 1
        bottom = max(bottom, need_h - x.shape[2] - top)
        right = max(right, need_w - x.shape[3] - left)
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=fill)
    span_h, span_w = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    win = sliding_window_view(xp, (span_h, span_w), axis=(2, 3))
    win = win[:, :, :: stride[0], :: stride[1], :: dilation[0], :: dilation[1]]
    if out_hw is not None:
        win = win[:, :, : out_hw[0], : out_hw[1]]
    return win


def _conv2d(x: Array, w: Array, stride: tuple[int, int], pads: tuple[int, int, int, int],
            dil: tuple[int, int], groups: int) -> Array:
    """(N, C, H, W) convolved with (F, C/groups, kh, kw) -> (N, F, Ho, Wo), float32."""
    kernel = (int(w.shape[2]), int(w.shape[3]))
    win = conv_windows(x, kernel, stride, pads, dil)
    batch, channels, ho, wo = win.shape[:4]
    g, filters = groups, int(w.shape[0])
    win = win.reshape(batch, g, channels // g, ho, wo, *kernel)
    wg = w.reshape(g, filters // g, channels // g, *kernel)
    if g == 1:
        out = np.tensordot(win[:, 0], wg[0], axes=([1, 4, 5], [1, 2, 3]))  # (N, Ho, Wo, F)
        out = out.transpose(0, 3, 1, 2)
    else:
        out = np.einsum("ngchwij,gfcij->ngfhw", win, wg, optimize=True).reshape(batch, filters, ho, wo)
    return out.astype(np.float32, copy=False)


def _spatial_2d(values: tuple[int, ...], n: int, fill: int) -> tuple[int, int]:
    return (fill, values[0]) if n == 1 else (values[0], values[1])


def _conv(node: Node, xs: list[Array]) -> Array:
    a = node.attrs
    assert isinstance(a, ConvAttrs)
    n = a.spatial_dims
    w = node.params["weight"]
    w = w[:, :, None, :] if n == 1 else w
    out = _conv2d(_as_2d(xs[0], n), w, _spatial_2d(a.stride, n, 1), _pads_2d(a.padding, n),
                  _spatial_2d(a.dilation, n, 1), a.groups)
    if node.bias is not None:
        out = out + node.bias.reshape(1, -1, 1, 1)
    return out[:, :, 0, :] if n == 1 else out


def _conv_transpose(node: Node, xs: list[Array]) -> Array:
    """As a stride-1 convolution of the input with ``stride - 1`` zeros between elements and the kernel
    flipped, channels swapped per group."""
    a = node.attrs
    assert isinstance(a, ConvTransposeAttrs)
    n, g = a.spatial_dims, a.groups
    x = _as_2d(xs[0], n)
    w = node.params["weight"]  # (C_in, C_out/g, *k)
    w = w[:, :, None, :] if n == 1 else w
    stride, dil = _spatial_2d(a.stride, n, 1), _spatial_2d(a.dilation, n, 1)
    kernel = (int(w.shape[2]), int(w.shape[3]))
    begin = _pads_2d(a.padding, n)[:2]
    end = _pads_2d(a.padding, n)[2:]
    extra = _spatial_2d(a.output_padding, n, 0)
    batch, channels, h, wd = x.shape
    up = np.zeros((batch, channels, (h - 1) * stride[0] + 1, (wd - 1) * stride[1] + 1), dtype=np.float32)
    up[:, :, :: stride[0], :: stride[1]] = x
    lo = [dil[i] * (kernel[i] - 1) - begin[i] for i in range(2)]
    hi = [dil[i] * (kernel[i] - 1) - end[i] + extra[i] for i in range(2)]
    up = np.pad(up, ((0, 0), (0, 0), (max(lo[0], 0), max(hi[0], 0)), (max(lo[1], 0), max(hi[1], 0))))
    up = up[:, :, max(-lo[0], 0): up.shape[2] - max(-hi[0], 0), max(-lo[1], 0): up.shape[3] - max(-hi[1], 0)]
    cin_g, cout_g = channels // g, int(w.shape[1])
    wf = w.reshape(g, cin_g, cout_g, *kernel)[..., ::-1, ::-1].transpose(0, 2, 1, 3, 4)
    out = _conv2d(np.ascontiguousarray(up), wf.reshape(g * cout_g, cin_g, *kernel), (1, 1), (0, 0, 0, 0), dil, g)
    if node.bias is not None:
        out = out + node.bias.reshape(1, -1, 1, 1)
    return out[:, :, 0, :] if n == 1 else out


def _pool(node: Node, xs: list[Array]) -> Array:
    a = node.attrs
    assert isinstance(a, PoolAttrs)
    n = len(a.kernel)
    x = _as_2d(xs[0], n)
    kernel = (1, a.kernel[0]) if n == 1 else (a.kernel[0], a.kernel[1])
    stride = (1, a.stride[0]) if n == 1 else (a.stride[0], a.stride[1])
    pads = _pads_2d(a.padding, n)
    out_hw = tuple(
        conv_output_size(x.shape[2 + i], kernel[i], stride[i], pads[i] + pads[i + 2], 1, a.ceil_mode) for i in range(2)
    )
    if node.op is OpKind.MAXPOOL:
        out = conv_windows(x, kernel, stride, pads, fill=-np.inf, out_hw=out_hw).max(axis=(-2, -1))
    else:
        total = conv_windows(x, kernel, stride, pads, out_hw=out_hw).sum(axis=(-2, -1))
        if a.count_include_pad:
            count = np.full(out_hw, kernel[0] * kernel[1], dtype=np.float32)
        else:
            ones = np.ones((1, 1, *x.shape[2:]), dtype=np.float32)
            count = conv_windows(ones, kernel, stride, pads, out_hw=out_hw).sum(axis=(-2, -1))[0, 0]
        out = total / count
    out = out.astype(np.float32, copy=False)
    return out[:, :, 0, :] if n == 1 else out


def _global_avgpool(node: Node, xs: list[Array]) -> Array:
    a = node.attrs
    assert isinstance(a, GlobalPoolAttrs)
    axes = tuple(range(2, xs[0].ndim))
    return xs[0].mean(axis=axes, keepdims=a.keepdims)


def _threshold(node: Node, xs: list[Array]) -> Array:
    a = node.attrs
    assert isinstance(a, ThresholdAttrs)
    y = np.where(xs[0] > a.threshold, xs[0], np.float32(0))
    return np.minimum(y, np.float32(a.clip)) if a.clip is not None else y


def _hardsigmoid(node: Node, xs: list[Array]) -> Array:
    a = node.attrs
    assert isinstance(a, HardSigmoidAttrs)
    return np.clip(xs[0] * np.float32(a.alpha) + np.float32(a.beta), 0, 1)


def _softmax(node: Node, xs: list[Array]) -> Array:
    a = node.attrs
    assert isinstance(a, SoftmaxAttrs)
    axis = a.axis if a.axis < 0 else a.axis + 1
    z = xs[0] - xs[0].max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def _linear(node: Node, xs: list[Array]) -> Array:
    y = xs[0] @ node.params["weight"].T
    return y + node.bias if node.bias is not None else y


def _sigmoid(x: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-x))


def _reshape(node: Node, xs: list[Array]) -> Array:
    assert isinstance(node.attrs, ReshapeAttrs) and node.shape is not None
    return xs[0].reshape(xs[0].shape[0], *node.shape)


def _aligned(xs: list[Array]) -> list[Array]:
    """Operands with the same number of axes: the batch axis first, the others right-aligned (size-1 axes
    inserted after the batch), so NumPy broadcasting matches the IR's shapes without batch."""
    rank = max(x.ndim for x in xs)
    return [x.reshape(x.shape[0], *([1] * (rank - x.ndim)), *x.shape[1:]) for x in xs]


def _binary(fn: np.ufunc) -> Rule[Array]:
    def rule(node: Node, xs: list[Array]) -> Array:
        a, b = _aligned(xs)
        return fn(a, b)

    return rule


def _matmul(node: Node, xs: list[Array]) -> Array:
    x, y = xs
    vx, vy = x.ndim == 2, y.ndim == 2  # 1-D operands without batch: vectors, as in NumPy
    x = x[:, None, :] if vx else x
    y = y[:, :, None] if vy else y
    out = np.matmul(*_aligned([x, y]))
    if vx and vy:
        return out[..., 0, 0]
    return out[..., 0, :] if vx else out[..., 0] if vy else out


def _einsum(node: Node, xs: list[Array]) -> Array:
    a = node.attrs
    assert isinstance(a, EinsumAttrs)
    terms, out = a.terms
    equation = ",".join(f"...{t}" for t in terms) + f"->...{out}"  # the batch axis broadcasts as '...'
    return np.einsum(equation, *xs, optimize=True).astype(np.float32, copy=False)


def _ax(axis: int) -> int:
    """An IR axis (without batch) as an array axis (with it)."""
    return axis + 1 if axis >= 0 else axis


def _layernorm(node: Node, xs: list[Array]) -> Array:
    a = node.attrs
    assert isinstance(a, LayerNormAttrs)
    x = xs[0].astype(np.float32, copy=False)
    axes = tuple(range(_ax(a.axis) % x.ndim, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=axes, keepdims=True)
    y = centred / np.sqrt(var + np.float32(a.epsilon))
    if node.weight is not None:
        y = y * node.weight
    return y + node.bias if node.bias is not None else y


def _affine(node: Node, xs: list[Array]) -> Array:
    a = node.attrs
    assert isinstance(a, AffineAttrs)
    x = xs[0]
    ax = _ax(a.axis) % x.ndim
    shape = [1] * x.ndim
    shape[ax] = -1
    return x * node.params["weight"].reshape(shape) + node.params["bias"].reshape(shape)


def _erf(x: Array) -> Array:
    from scipy.special import erf  # scipy is a dependency of scikit-learn

    return erf(x).astype(x.dtype, copy=False)


def _gelu(node: Node, xs: list[Array]) -> Array:
    a = node.attrs
    assert isinstance(a, GeluAttrs)
    x = xs[0]
    if a.approximate:
        return np.float32(0.5) * x * (1 + np.tanh(np.float32(np.sqrt(2 / np.pi)) * (x + np.float32(0.044715) * x**3)))
    return np.float32(0.5) * x * (1 + _erf(x / np.float32(np.sqrt(2))))


def _alpha(node: Node) -> np.float32:
    assert isinstance(node.attrs, AlphaAttrs)
    return np.float32(node.attrs.alpha)


def _clip(node: Node, xs: list[Array]) -> Array:
    a = node.attrs
    assert isinstance(a, ClipAttrs)
    y = xs[0]
    if a.lo is not None:
        y = np.maximum(y, np.asarray(a.lo, dtype=y.dtype))
    if a.hi is not None:
        y = np.minimum(y, np.asarray(a.hi, dtype=y.dtype))
    return y


def _reduce(fn: str) -> Rule[Array]:
    def rule(node: Node, xs: list[Array]) -> Array:
        a = node.attrs
        assert isinstance(a, ReduceAttrs)
        axes = tuple(_ax(ax) % xs[0].ndim for ax in a.axes)
        return getattr(np, fn)(xs[0], axis=axes, keepdims=a.keepdims)

    return rule


def _transpose(node: Node, xs: list[Array]) -> Array:
    a = node.attrs
    assert isinstance(a, TransposeAttrs)
    return xs[0].transpose(0, *(p + 1 for p in a.perm))


def _slice(node: Node, xs: list[Array]) -> Array:
    a = node.attrs
    assert isinstance(a, SliceAttrs)
    index: list[slice] = [slice(None)] * xs[0].ndim
    for ax, start, end, step in zip(a.axes, a.starts, a.ends, a.steps, strict=True):
        index[ax + 1] = slice(start, end, step)
    return xs[0][tuple(index)]


def _gather(node: Node, xs: list[Array]) -> Array:
    a = node.attrs
    assert isinstance(a, GatherAttrs)
    return np.take(xs[0], node.params["indices"].astype(np.int64), axis=_ax(a.axis) % xs[0].ndim)


def _expand(node: Node, xs: list[Array]) -> Array:
    assert isinstance(node.attrs, ExpandAttrs) and node.shape is not None
    (x,) = _aligned([xs[0], np.empty((1, *node.shape), dtype=np.bool_)])[:1]
    return np.broadcast_to(x, (x.shape[0], *node.shape)).copy()


def _pad(node: Node, xs: list[Array]) -> Array:
    a = node.attrs
    assert isinstance(a, PadAttrs)
    n = len(a.pads) // 2
    widths = [(0, 0)] + [(a.pads[i], a.pads[n + i]) for i in range(n)]
    return np.pad(xs[0], widths, constant_values=np.asarray(a.value, dtype=xs[0].dtype))


def _resize(node: Node, xs: list[Array]) -> Array:
    """Separable resampling of each spatial axis (PyTorch's nearest, and linear with half-pixel centres or
    aligned corners)."""
    a = node.attrs
    assert isinstance(a, ResizeAttrs)
    y = xs[0]
    for i, out in enumerate(a.size):
        ax = i + 2
        size = y.shape[ax]
        dst = np.arange(out, dtype=np.float64)
        if a.mode is ResizeMode.NEAREST:
            y = np.take(y, np.minimum(np.floor(dst * size / out).astype(np.int64), size - 1), axis=ax)
            continue
        if a.mode is ResizeMode.LINEAR_ALIGN_CORNERS:
            src = dst * ((size - 1) / (out - 1)) if out > 1 else np.zeros_like(dst)
        else:
            src = np.clip((dst + 0.5) * size / out - 0.5, 0, size - 1)
        lo = np.floor(src).astype(np.int64)
        hi = np.minimum(lo + 1, size - 1)
        frac = (src - lo).astype(np.float32)
        shape = [1] * y.ndim
        shape[ax] = out
        y = np.take(y, lo, axis=ax) * (1 - frac.reshape(shape)) + np.take(y, hi, axis=ax) * frac.reshape(shape)
    return y.astype(xs[0].dtype, copy=False)


def _concat(node: Node, xs: list[Array]) -> Array:
    a = node.attrs
    assert isinstance(a, ConcatAttrs)
    batch = max(x.shape[0] for x in xs)
    xs = [np.broadcast_to(x, (batch, *x.shape[1:])) if x.shape[0] != batch else x for x in xs]
    return np.concatenate(xs, axis=a.axis + 1 if a.axis >= 0 else a.axis)


def _cast(node: Node, xs: list[Array]) -> Array:
    assert isinstance(node.attrs, CastAttrs)
    return xs[0].astype(node.attrs.dtype.value)


def _where(node: Node, xs: list[Array]) -> Array:
    cond, x, y = _aligned(xs)
    return np.where(cond.astype(bool), x, y)


def _prelu(node: Node, xs: list[Array]) -> Array:
    x = xs[0]
    slope = node.params["slope"]
    return np.where(x > 0, x, x * slope.reshape(1, *slope.shape)).astype(x.dtype, copy=False)


def _cumsum(node: Node, xs: list[Array]) -> Array:
    a = node.attrs
    assert isinstance(a, CumsumAttrs)
    ax = _ax(a.axis) % xs[0].ndim
    x = np.flip(xs[0], ax) if a.reverse else xs[0]
    out = np.cumsum(x, axis=ax, dtype=x.dtype)
    if a.exclusive:
        out = out - x
    return np.flip(out, ax) if a.reverse else out


EXEC_RULES: dict[OpKind, Rule[Array]] = {
    OpKind.CONV: _conv,
    OpKind.LINEAR: _linear,
    OpKind.MATMUL: _matmul,
    OpKind.RELU: lambda node, xs: np.maximum(xs[0], np.float32(0)),
    OpKind.RELU6: lambda node, xs: np.clip(xs[0], 0, 6),
    OpKind.THRESHOLD_RELU: _threshold,
    OpKind.HARDSWISH: lambda node, xs: xs[0] * np.clip(xs[0] + 3, 0, 6) / 6,
    OpKind.HARDSIGMOID: _hardsigmoid,
    OpKind.SIGMOID: lambda node, xs: _sigmoid(xs[0]),
    OpKind.SILU: lambda node, xs: xs[0] * _sigmoid(xs[0]),
    OpKind.MAXPOOL: _pool,
    OpKind.AVGPOOL: _pool,
    OpKind.GLOBAL_AVGPOOL: _global_avgpool,
    OpKind.ADD: _binary(np.add),
    OpKind.MUL: _binary(np.multiply),
    OpKind.SUB: _binary(np.subtract),
    OpKind.DIV: _binary(np.divide),
    OpKind.POW: _binary(np.power),
    OpKind.MAX: _binary(np.maximum),
    OpKind.MIN: _binary(np.minimum),
    OpKind.EQUAL: _binary(np.equal),
    OpKind.LESS: _binary(np.less),
    OpKind.GREATER: _binary(np.greater),
    OpKind.AND: _binary(np.logical_and),
    OpKind.OR: _binary(np.logical_or),
    OpKind.WHERE: _where,
    OpKind.CONCAT: _concat,
    OpKind.FLATTEN: lambda node, xs: xs[0].reshape(xs[0].shape[0], -1),
    OpKind.RESHAPE: _reshape,
    OpKind.SOFTMAX: _softmax,
    OpKind.CONSTANT: lambda node, xs: node.params["value"][None],
    OpKind.CONV_TRANSPOSE: _conv_transpose,
    OpKind.EINSUM: _einsum,
    OpKind.EMBEDDING: lambda node, xs: node.params["weight"][xs[0].astype(np.int64)],
    OpKind.LAYERNORM: _layernorm,
    OpKind.AFFINE: _affine,
    OpKind.GELU: _gelu,
    OpKind.LEAKY_RELU: lambda node, xs: np.where(xs[0] > 0, xs[0], xs[0] * _alpha(node)),
    OpKind.ELU: lambda node, xs: np.where(xs[0] > 0, xs[0], _alpha(node) * np.expm1(np.minimum(xs[0], 0))),
    OpKind.PRELU: _prelu,
    OpKind.CLIP: _clip,
    OpKind.SOFTPLUS: lambda node, xs: np.logaddexp(np.float32(0), xs[0]),
    OpKind.TANH: lambda node, xs: np.tanh(xs[0]),
    OpKind.ERF: lambda node, xs: _erf(xs[0]),
    OpKind.EXP: lambda node, xs: np.exp(xs[0]),
    OpKind.LOG: lambda node, xs: np.log(xs[0]),
    OpKind.SQRT: lambda node, xs: np.sqrt(xs[0]),
    OpKind.RECIPROCAL: lambda node, xs: np.reciprocal(xs[0]),
    OpKind.NEG: lambda node, xs: np.negative(xs[0]),
    OpKind.ABS: lambda node, xs: np.abs(xs[0]),
    OpKind.SIN: lambda node, xs: np.sin(xs[0]),
    OpKind.COS: lambda node, xs: np.cos(xs[0]),
    OpKind.NOT: lambda node, xs: np.logical_not(xs[0]),
    OpKind.ISNAN: lambda node, xs: np.isnan(xs[0]),
    OpKind.CAST: _cast,
    OpKind.REDUCE_MEAN: _reduce("mean"),
    OpKind.REDUCE_SUM: _reduce("sum"),
    OpKind.REDUCE_MAX: _reduce("max"),
    OpKind.REDUCE_MIN: _reduce("min"),
    OpKind.TRANSPOSE: _transpose,
    OpKind.SLICE: _slice,
    OpKind.GATHER: _gather,
    OpKind.EXPAND: _expand,
    OpKind.PAD: _pad,
    OpKind.RESIZE: _resize,
    OpKind.CUMSUM: _cumsum,
}


def execute(
    graph: Graph, inputs: Mapping[str, Array] | Array, *, keep: bool = False
) -> list[Array] | dict[Node, Array]:
    """Run the graph. ``inputs`` maps input names to batched arrays (or one array for one input).

    Returns the outputs in graph-output order, or every node's value when ``keep`` is true.
    """
    if isinstance(inputs, np.ndarray):
        if len(graph.inputs) != 1:
            raise ValueError(f"graph {graph.name!r} has {len(graph.inputs)} inputs: pass a mapping")
        inputs = {graph.inputs[0].name: inputs}
    dtypes = {n.name: n.attrs.dtype.value if isinstance(n.attrs, InputAttrs) else DType.FLOAT32.value
              for n in graph.inputs}
    feeds = {k: np.asarray(v, dtype=dtypes.get(k, "float32")) for k, v in inputs.items()}
    values = interpret(graph, EXEC_RULES, feeds)
    if keep:
        return values
    return [values[n] for n in graph.outputs]
