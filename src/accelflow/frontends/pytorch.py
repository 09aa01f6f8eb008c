"""Import a PyTorch ``nn.Module`` into the IR by symbolic tracing (torch.fx).

The route is independent of the ONNX importer: it reads the module tree and fx graph directly, so the
two importers cross-check each other. BatchNorm is folded into the preceding conv/linear; Dropout and
Identity are removed.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from accelflow.errors import ModelImportError, UnsupportedOperatorError
from accelflow.ir import (
    ConcatAttrs,
    ConvAttrs,
    GlobalPoolAttrs,
    Graph,
    HardSigmoidAttrs,
    LinearAttrs,
    Node,
    OpKind,
    PoolAttrs,
    ReshapeAttrs,
    SoftmaxAttrs,
    ThresholdAttrs,
    canonicalize,
    fold_batchnorm,
)
from accelflow.zoo.layers import PadConv2d, PadMaxPool2d, ThresholdReLU, symbolic_trace

__all__ = ["from_pytorch", "SUPPORTED_MODULES", "SUPPORTED_FUNCTIONS"]


def _np(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().numpy().astype(np.float32).copy()


def _tuple(v: int | Sequence[int], n: int) -> tuple[int, ...]:
    return tuple(int(x) for x in v) if isinstance(v, (tuple, list)) else (int(v),) * n


class _Importer:
    def __init__(self, gm: torch.fx.GraphModule, name: str) -> None:
        self.gm = gm
        self.modules = dict(gm.named_modules())
        self.graph = Graph(name)
        self.env: dict[torch.fx.Node, Node | None] = {}

    # -- helpers -------------------------------------------------------------------------------
    def arg(self, fx_node: Any, where: str) -> Node:
        if not isinstance(fx_node, torch.fx.Node) or self.env.get(fx_node) is None:
            raise UnsupportedOperatorError(f"node {where!r}: only tensor operands are supported, got {fx_node!r}")
        node = self.env[fx_node]
        assert node is not None
        return node

    def add(self, fx_node: torch.fx.Node, op: OpKind, inputs: list[Node], attrs: Any = None,
            params: dict[str, np.ndarray] | None = None) -> Node:
        name = self.graph.unique_name(str(fx_node.target) if fx_node.op == "call_module" else fx_node.name)
        return self.graph.add_node(name, op, inputs, attrs, {k: v for k, v in (params or {}).items() if v is not None})

    @staticmethod
    def out_shape(fx_node: torch.fx.Node) -> tuple[int, ...]:
        meta = fx_node.meta.get("tensor_meta")
        if meta is None:
            raise ModelImportError(f"node {fx_node.name!r}: no shape recorded by shape propagation")
        return tuple(int(d) for d in meta.shape[1:])

    # -- modules -------------------------------------------------------------------------------
    def conv(self, n: torch.fx.Node, m: nn.Module) -> Node:
        assert isinstance(m, (nn.Conv1d, nn.Conv2d))
        dims = 1 if isinstance(m, nn.Conv1d) else 2
        if m.padding_mode != "zeros":
            raise UnsupportedOperatorError(f"node {n.target!r}: padding_mode {m.padding_mode!r}; only 'zeros'")
        if isinstance(m, PadConv2d):
            pads = m.pads
        elif isinstance(m.padding, str):
            if m.padding == "valid":
                pads = (0,) * (2 * dims)
            else:  # 'same', stride 1
                total = [m.dilation[i] * (m.kernel_size[i] - 1) for i in range(dims)]
                pads = tuple(t // 2 for t in total) + tuple(t - t // 2 for t in total)
        else:
            pads = _tuple(m.padding, dims) * 2
        attrs = ConvAttrs(m.in_channels, m.out_channels, _tuple(m.kernel_size, dims), _tuple(m.stride, dims),
                          pads, _tuple(m.dilation, dims), m.groups)
        return self.add(n, OpKind.CONV, [self.arg(n.args[0], n.name)], attrs,
                        {"weight": _np(m.weight), "bias": _np(m.bias)})

    def batchnorm(self, n: torch.fx.Node, m: nn.Module) -> Node:
        assert isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))
        prev = self.arg(n.args[0], n.name)
        if prev.op not in (OpKind.CONV, OpKind.LINEAR) or len(prev.users) != 0 or n.args[0].users.keys() != {n}:
            raise UnsupportedOperatorError(
                f"node {n.target!r}: BatchNorm must directly follow a conv/linear used only by it (it is folded)"
            )
        assert m.running_mean is not None and m.running_var is not None
        gamma = _np(m.weight) if m.affine else np.ones(m.num_features, np.float32)
        beta = _np(m.bias) if m.affine else np.zeros(m.num_features, np.float32)
        w, b = fold_batchnorm(prev.params["weight"], prev.bias, gamma, beta,  # type: ignore[arg-type]
                              _np(m.running_mean), _np(m.running_var), m.eps)  # type: ignore[arg-type]
        prev.params["weight"], prev.params["bias"] = w, b
        return prev

    def pool(self, n: torch.fx.Node, m: nn.Module) -> Node:
        dims = 1 if isinstance(m, (nn.MaxPool1d, nn.AvgPool1d)) else 2
        if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)) and _tuple(m.dilation, dims) != (1,) * dims:
            raise UnsupportedOperatorError(f"node {n.target!r}: dilated max pooling is not supported")
        kernel = _tuple(m.kernel_size, dims)
        stride = _tuple(m.stride if m.stride is not None else m.kernel_size, dims)
        pads = m.pads if isinstance(m, PadMaxPool2d) else _tuple(m.padding, dims) * 2
        attrs = PoolAttrs(kernel, stride, pads, bool(m.ceil_mode),
                          bool(getattr(m, "count_include_pad", False)))
        op = OpKind.MAXPOOL if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)) else OpKind.AVGPOOL
        return self.add(n, op, [self.arg(n.args[0], n.name)], attrs)

    def adaptive(self, n: torch.fx.Node, m: nn.Module) -> Node:
        size = m.output_size  # type: ignore[attr-defined]
        if any(s != 1 for s in _tuple(size, 1)):
            raise UnsupportedOperatorError(f"node {n.target!r}: adaptive pooling only to output size 1")
        return self.add(n, OpKind.GLOBAL_AVGPOOL, [self.arg(n.args[0], n.name)], GlobalPoolAttrs(keepdims=True))

    def module(self, n: torch.fx.Node) -> Node | None:
        m = self.modules[str(n.target)]
        if isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity)):
            return self.arg(n.args[0], n.name)
        if isinstance(m, ThresholdReLU):
            attrs = ThresholdAttrs(float(m.threshold), None if m.clip is None else float(m.clip))
            return self.add(n, OpKind.THRESHOLD_RELU, [self.arg(n.args[0], n.name)], attrs)
        for types, handler in _MODULE_TABLE:
            if isinstance(m, types):
                return handler(self, n, m)
        raise UnsupportedOperatorError(
            f"node {n.target!r}: module {type(m).__name__} is not supported; supported: "
            f"{', '.join(sorted(SUPPORTED_MODULES))}"
        )

    # -- functions and methods -----------------------------------------------------------------
    def function(self, n: torch.fx.Node, target: Any) -> Node | None:
        key = target if callable(target) else str(target)
        if n.op == "call_method":
            key = f"Tensor.{target}"
        if key in ("Tensor.size", "Tensor.dim") or target is getattr:
            return None  # shape queries; the shape is known from propagation
        handler = _FUNCTION_TABLE.get(key)
        if handler is None:
            label = key if isinstance(key, str) else getattr(key, "__name__", repr(key))
            raise UnsupportedOperatorError(
                f"node {n.name!r}: function {label} is not supported; supported modules: "
                f"{', '.join(sorted(SUPPORTED_MODULES))}; functions: {', '.join(sorted(SUPPORTED_FUNCTIONS))}"
            )
        return handler(self, n)

    def run(self, input_shape: tuple[int, ...]) -> Graph:
        for n in self.gm.graph.nodes:
            if n.op == "placeholder":
                self.env[n] = self.graph.add_input(n.name, input_shape)
            elif n.op == "call_module":
                self.env[n] = self.module(n)
            elif n.op in ("call_function", "call_method"):
                self.env[n] = self.function(n, n.target)
            elif n.op == "output":
                outs = n.args[0] if isinstance(n.args[0], (tuple, list)) else [n.args[0]]
                self.graph.set_outputs([self.arg(o, "output") for o in outs])
            else:
                raise UnsupportedOperatorError(f"node {n.name!r}: fx op {n.op!r} ({n.target}) is not supported")
        return canonicalize(self.graph)


def _unary(op: OpKind, attrs: Any = None) -> Callable[[_Importer, torch.fx.Node], Node]:
    return lambda imp, n: imp.add(n, op, [imp.arg(n.args[0], n.name)], attrs)


def _binary(op: OpKind) -> Callable[[_Importer, torch.fx.Node], Node]:
    return lambda imp, n: imp.add(n, op, [imp.arg(n.args[0], n.name), imp.arg(n.args[1], n.name)])


def _cat(imp: _Importer, n: torch.fx.Node) -> Node:
    dim = int(n.kwargs.get("dim", n.args[1] if len(n.args) > 1 else 0))
    return imp.add(n, OpKind.CONCAT, [imp.arg(a, n.name) for a in n.args[0]], ConcatAttrs(dim - 1 if dim > 0 else dim))


def _flatten(imp: _Importer, n: torch.fx.Node) -> Node:
    start = int(n.kwargs.get("start_dim", n.args[1] if len(n.args) > 1 else 0))
    if start not in (1,):
        raise UnsupportedOperatorError(f"node {n.name!r}: flatten must start at dim 1 (keep the batch)")
    return imp.add(n, OpKind.FLATTEN, [imp.arg(n.args[0], n.name)])


def _reshape(imp: _Importer, n: torch.fx.Node) -> Node:
    return imp.add(n, OpKind.RESHAPE, [imp.arg(n.args[0], n.name)], ReshapeAttrs(imp.out_shape(n)))


def _mean(imp: _Importer, n: torch.fx.Node) -> Node:
    x = imp.arg(n.args[0], n.name)
    dims = n.kwargs.get("dim", n.args[1] if len(n.args) > 1 else None)
    keep = bool(n.kwargs.get("keepdim", n.args[2] if len(n.args) > 2 else False))
    rank = len(imp.out_shape(n.args[0])) + 1  # IR shapes are not propagated yet; fx's shape pass ran
    spatial = set(range(2, rank))
    got = {d % rank for d in (_tuple(dims, 1) if dims is not None else ())}
    if got != spatial:
        raise UnsupportedOperatorError(f"node {n.name!r}: mean only over all spatial dims {sorted(spatial)}")
    return imp.add(n, OpKind.GLOBAL_AVGPOOL, [x], GlobalPoolAttrs(keepdims=keep))


def _softmax(imp: _Importer, n: torch.fx.Node) -> Node:
    dim = int(n.kwargs.get("dim", n.args[1] if len(n.args) > 1 else -1))
    return imp.add(n, OpKind.SOFTMAX, [imp.arg(n.args[0], n.name)], SoftmaxAttrs(dim - 1 if dim > 0 else dim))


def _adaptive_fn(imp: _Importer, n: torch.fx.Node) -> Node:
    size = n.kwargs.get("output_size", n.args[1] if len(n.args) > 1 else None)
    if any(s != 1 for s in _tuple(size, 1)):  # type: ignore[arg-type]
        raise UnsupportedOperatorError(f"node {n.name!r}: adaptive pooling only to output size 1")
    return imp.add(n, OpKind.GLOBAL_AVGPOOL, [imp.arg(n.args[0], n.name)], GlobalPoolAttrs(keepdims=True))


def _linear_module(imp: _Importer, n: torch.fx.Node, m: nn.Module) -> Node:
    assert isinstance(m, nn.Linear)
    return imp.add(n, OpKind.LINEAR, [imp.arg(n.args[0], n.name)], LinearAttrs(m.in_features, m.out_features),
                   {"weight": _np(m.weight), "bias": _np(m.bias)})


def _softmax_module(imp: _Importer, n: torch.fx.Node, m: nn.Module) -> Node:
    dim = -1 if m.dim is None else int(m.dim)  # type: ignore[attr-defined]
    return imp.add(n, OpKind.SOFTMAX, [imp.arg(n.args[0], n.name)], SoftmaxAttrs(dim - 1 if dim > 0 else dim))


def _threshold_module(imp: _Importer, n: torch.fx.Node, m: nn.Module) -> Node:
    assert isinstance(m, nn.Threshold)
    if m.value != 0:
        raise UnsupportedOperatorError(f"node {n.target!r}: nn.Threshold must replace with 0, got {m.value}")
    return imp.add(n, OpKind.THRESHOLD_RELU, [imp.arg(n.args[0], n.name)], ThresholdAttrs(float(m.threshold)))


def _flatten_module(imp: _Importer, n: torch.fx.Node, m: nn.Module) -> Node:
    assert isinstance(m, nn.Flatten)
    if m.start_dim != 1 or m.end_dim != -1:
        raise UnsupportedOperatorError(f"node {n.target!r}: nn.Flatten must flatten dims 1..-1")
    return imp.add(n, OpKind.FLATTEN, [imp.arg(n.args[0], n.name)])


def _act_module(op: OpKind, attrs: Any = None) -> Callable[[_Importer, torch.fx.Node, nn.Module], Node]:
    return lambda imp, n, m: imp.add(n, op, [imp.arg(n.args[0], n.name)], attrs)


_MODULE_TABLE: list[tuple[type | tuple[type, ...], Callable[[_Importer, torch.fx.Node, Any], Node]]] = [
    ((nn.Conv1d, nn.Conv2d), _Importer.conv),
    (nn.Linear, _linear_module),
    ((nn.BatchNorm1d, nn.BatchNorm2d), _Importer.batchnorm),
    (nn.ReLU, _act_module(OpKind.RELU)),
    (nn.ReLU6, _act_module(OpKind.RELU6)),
    (nn.Hardswish, _act_module(OpKind.HARDSWISH)),
    (nn.Hardsigmoid, _act_module(OpKind.HARDSIGMOID, HardSigmoidAttrs())),
    (nn.Sigmoid, _act_module(OpKind.SIGMOID)),
    (nn.SiLU, _act_module(OpKind.SILU)),
    (nn.Threshold, _threshold_module),
    ((nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d), _Importer.pool),
    ((nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d), _Importer.adaptive),
    (nn.Flatten, _flatten_module),
    (nn.Softmax, _softmax_module),
]

SUPPORTED_MODULES = frozenset(
    {t.__name__ for types, _ in _MODULE_TABLE for t in (types if isinstance(types, tuple) else (types,))}
    | {"Dropout", "Dropout1d", "Dropout2d", "Identity", "ThresholdReLU"}
)

_FUNCTION_TABLE: dict[Any, Callable[[_Importer, torch.fx.Node], Node]] = {
    operator.add: _binary(OpKind.ADD),
    torch.add: _binary(OpKind.ADD),
    "Tensor.add": _binary(OpKind.ADD),
    operator.mul: _binary(OpKind.MUL),
    torch.mul: _binary(OpKind.MUL),
    "Tensor.mul": _binary(OpKind.MUL),
    torch.matmul: _binary(OpKind.MATMUL),
    operator.matmul: _binary(OpKind.MATMUL),
    torch.cat: _cat,
    torch.flatten: _flatten,
    "Tensor.flatten": _flatten,
    "Tensor.view": _reshape,
    "Tensor.reshape": _reshape,
    torch.reshape: _reshape,
    "Tensor.mean": _mean,
    torch.mean: _mean,
    F.relu: _unary(OpKind.RELU),
    torch.relu: _unary(OpKind.RELU),
    "Tensor.relu": _unary(OpKind.RELU),
    F.relu6: _unary(OpKind.RELU6),
    F.hardswish: _unary(OpKind.HARDSWISH),
    F.hardsigmoid: _unary(OpKind.HARDSIGMOID, HardSigmoidAttrs()),
    torch.sigmoid: _unary(OpKind.SIGMOID),
    F.sigmoid: _unary(OpKind.SIGMOID),
    "Tensor.sigmoid": _unary(OpKind.SIGMOID),
    F.silu: _unary(OpKind.SILU),
    F.adaptive_avg_pool2d: _adaptive_fn,
    F.adaptive_avg_pool1d: _adaptive_fn,
    torch.softmax: _softmax,
    F.softmax: _softmax,
    "Tensor.softmax": _softmax,
    F.dropout: lambda imp, n: imp.arg(n.args[0], n.name),
}

SUPPORTED_FUNCTIONS = frozenset(
    k if isinstance(k, str) else f"{getattr(k, '__module__', '') or ''}.{k.__name__}".lstrip(".")
    for k in _FUNCTION_TABLE
)


def from_pytorch(model: nn.Module, input_shape: Sequence[int], name: str | None = None) -> Graph:
    """Trace ``model`` (in eval mode) for one input of ``input_shape`` (without batch) into the IR."""
    model = model.eval()
    shape = tuple(int(d) for d in input_shape)
    try:
        gm = symbolic_trace(model)  # keeps ThresholdReLU / PadConv2d / PadMaxPool2d whole
    except Exception as exc:  # fx raises many types for untraceable code
        raise ModelImportError(f"cannot trace {type(model).__name__} with torch.fx: {exc}") from exc
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(torch.zeros(1, *shape))
    except Exception as exc:
        raise ModelImportError(f"{type(model).__name__} does not run on input shape {shape}: {exc}") from exc
    return _Importer(gm, name or type(model).__name__).run(shape)
