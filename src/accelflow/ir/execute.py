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
    ConcatAttrs,
    ConvAttrs,
    GlobalPoolAttrs,
    HardSigmoidAttrs,
    OpKind,
    PoolAttrs,
    ReshapeAttrs,
    SoftmaxAttrs,
    ThresholdAttrs,
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


def _conv(node: Node, xs: list[Array]) -> Array:
    a = node.attrs
    assert isinstance(a, ConvAttrs)
    n = a.spatial_dims
    x = _as_2d(xs[0], n)
    w = node.params["weight"]
    w = w[:, :, None, :] if n == 1 else w
    kernel = (1, a.kernel[0]) if n == 1 else (a.kernel[0], a.kernel[1])
    stride = (1, a.stride[0]) if n == 1 else (a.stride[0], a.stride[1])
    dil = (1, a.dilation[0]) if n == 1 else (a.dilation[0], a.dilation[1])
    win = conv_windows(x, kernel, stride, _pads_2d(a.padding, n), dil)
    batch, _, ho, wo = win.shape[:4]
    g = a.groups
    win = win.reshape(batch, g, a.in_channels // g, ho, wo, *kernel)
    wg = w.reshape(g, a.out_channels // g, a.in_channels // g, *kernel)
    if g == 1:
        out = np.tensordot(win[:, 0], wg[0], axes=([1, 4, 5], [1, 2, 3]))  # (N, Ho, Wo, F)
        out = out.transpose(0, 3, 1, 2)
    else:
        out = np.einsum("ngchwij,gfcij->ngfhw", win, wg, optimize=True).reshape(batch, a.out_channels, ho, wo)
    if node.bias is not None:
        out = out + node.bias.reshape(1, -1, 1, 1)
    out = out.astype(np.float32, copy=False)
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


def _concat(node: Node, xs: list[Array]) -> Array:
    a = node.attrs
    assert isinstance(a, ConcatAttrs)
    return np.concatenate(xs, axis=a.axis + 1 if a.axis >= 0 else a.axis)


def _reshape(node: Node, xs: list[Array]) -> Array:
    assert isinstance(node.attrs, ReshapeAttrs) and node.shape is not None
    return xs[0].reshape(xs[0].shape[0], *node.shape)


EXEC_RULES: dict[OpKind, Rule[Array]] = {
    OpKind.CONV: _conv,
    OpKind.LINEAR: _linear,
    OpKind.MATMUL: lambda node, xs: xs[0] @ xs[1],
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
    OpKind.ADD: lambda node, xs: xs[0] + xs[1],
    OpKind.MUL: lambda node, xs: xs[0] * xs[1],
    OpKind.CONCAT: _concat,
    OpKind.FLATTEN: lambda node, xs: xs[0].reshape(xs[0].shape[0], -1),
    OpKind.RESHAPE: _reshape,
    OpKind.SOFTMAX: _softmax,
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
    feeds = {k: np.asarray(v, dtype=np.float32) for k, v in inputs.items()}
    values = interpret(graph, EXEC_RULES, feeds)
    if keep:
        return values
    return [values[n] for n in graph.outputs]
