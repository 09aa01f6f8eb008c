"""The IR back to PyTorch: a :class:`torch.fx.GraphModule` that computes what the graph computes.

What it is for: an ONNX file (weights included) becomes a PyTorch module that can be run, thresholded and
fine-tuned, so `accelflow hass net.onnx` searches the network it describes. Weight layers, activations and
pools become submodules named after their IR nodes (``features.0.Conv`` -> ``features_0_Conv``), so the
HASS search space sees convs and the ReLUs that feed them exactly as in a hand-written model; everything
else is a function call. BatchNorm reaches the module folded into its conv, as the IR holds it.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from accelflow.errors import UnsupportedOperatorError
from accelflow.ir import (
    ConcatAttrs,
    ConvAttrs,
    GlobalPoolAttrs,
    Graph,
    HardSigmoidAttrs,
    Node,
    OpKind,
    PoolAttrs,
    SoftmaxAttrs,
    ThresholdAttrs,
)
from accelflow.zoo.layers import PadConv2d, PadMaxPool2d, ThresholdReLU

__all__ = ["to_torch"]


class _HardSigmoid(nn.Module):
    """``clip(alpha * x + beta, 0, 1)`` for any ONNX alpha/beta (``nn.Hardsigmoid`` is alpha 1/6, beta 1/2)."""

    def __init__(self, alpha: float, beta: float) -> None:
        super().__init__()
        self.alpha, self.beta = float(alpha), float(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x * self.alpha + self.beta, 0.0, 1.0)


def _symmetric(padding: tuple[int, ...], n: int) -> tuple[int, ...] | None:
    """The per-axis pad when begin and end pads are equal, else None."""
    begin, end = padding[:n], padding[n:]
    return tuple(begin) if begin == end else None


def _unequal(node: Node, what: str) -> UnsupportedOperatorError:
    return UnsupportedOperatorError(f"node {node.name!r}: unequal begin/end padding {node.attrs.padding} "  # type: ignore[union-attr]
                                    f"of a {what} has no PyTorch module; unequal pads convert for 2-D convs "
                                    "and 2-D max pooling without ceil mode")


def _conv(node: Node) -> nn.Module:
    a = node.attrs
    assert isinstance(a, ConvAttrs)
    pad = _symmetric(a.padding, a.spatial_dims)
    conv: nn.Conv1d | nn.Conv2d
    if pad is not None:
        cls = nn.Conv1d if a.spatial_dims == 1 else nn.Conv2d
        conv = cls(a.in_channels, a.out_channels, a.kernel, stride=a.stride, dilation=a.dilation, groups=a.groups,
                   padding=pad, bias=node.bias is not None)
    elif a.spatial_dims == 2:  # e.g. TensorFlow 'SAME' with stride 2: one more row/column at the end
        conv = PadConv2d(a.in_channels, a.out_channels, a.kernel, a.padding, stride=a.stride,  # type: ignore[arg-type]
                         dilation=a.dilation, groups=a.groups, bias=node.bias is not None)
    else:
        raise _unequal(node, "1-D conv")
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(node.params["weight"]).reshape(conv.weight.shape))
        if node.bias is not None:
            conv.bias.copy_(torch.from_numpy(node.bias))
    return conv


def _linear(node: Node) -> nn.Module:
    out_features, in_features = node.params["weight"].shape
    linear = nn.Linear(in_features, out_features, bias=node.bias is not None)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(node.params["weight"]))
        if node.bias is not None:
            linear.bias.copy_(torch.from_numpy(node.bias))
    return linear


def _pool(node: Node) -> nn.Module:
    a = node.attrs
    assert isinstance(a, PoolAttrs)
    n = len(a.kernel)
    pad = _symmetric(a.padding, n)
    if pad is None:
        if node.op is not OpKind.MAXPOOL or n != 2 or a.ceil_mode:
            raise _unequal(node, f"{n}-D {node.op.value}" + (" in ceil mode" if a.ceil_mode else ""))
        return PadMaxPool2d(a.kernel, a.stride, a.padding)  # type: ignore[arg-type]
    if node.op is OpKind.MAXPOOL:
        return (nn.MaxPool1d if n == 1 else nn.MaxPool2d)(a.kernel, a.stride, pad, ceil_mode=a.ceil_mode)
    return (nn.AvgPool1d if n == 1 else nn.AvgPool2d)(a.kernel, a.stride, pad, ceil_mode=a.ceil_mode,
                                                      count_include_pad=a.count_include_pad)


def _threshold(node: Node) -> nn.Module:
    a = node.attrs
    assert isinstance(a, ThresholdAttrs)
    return ThresholdReLU(a.threshold, a.clip)


def _hardsigmoid(node: Node) -> nn.Module:
    a = node.attrs
    assert isinstance(a, HardSigmoidAttrs)
    return _HardSigmoid(a.alpha, a.beta)


#: Operators that become submodules (what HASS and the training loop look for).
_MODULES: dict[OpKind, Callable[[Node], nn.Module]] = {
    OpKind.CONV: _conv,
    OpKind.LINEAR: _linear,
    OpKind.RELU: lambda node: nn.ReLU(),
    OpKind.RELU6: lambda node: nn.ReLU6(),
    OpKind.THRESHOLD_RELU: _threshold,
    OpKind.HARDSWISH: lambda node: nn.Hardswish(),
    OpKind.HARDSIGMOID: _hardsigmoid,
    OpKind.SIGMOID: lambda node: nn.Sigmoid(),
    OpKind.SILU: lambda node: nn.SiLU(),
    OpKind.MAXPOOL: _pool,
    OpKind.AVGPOOL: _pool,
}


def _dim(axis: int) -> int:
    """An IR axis (without batch) as a torch dimension (with it)."""
    return axis + 1 if axis >= 0 else axis


def _call(g: torch.fx.Graph, node: Node, args: list[torch.fx.Node]) -> torch.fx.Node:
    """The function call computing a parameter-free ``node``."""
    a = node.attrs
    if node.op is OpKind.ADD:
        return g.call_function(operator.add, (args[0], args[1]))
    if node.op is OpKind.MUL:
        return g.call_function(operator.mul, (args[0], args[1]))
    if node.op is OpKind.MATMUL:
        return g.call_function(torch.matmul, (args[0], args[1]))
    if node.op is OpKind.FLATTEN:
        return g.call_function(torch.flatten, (args[0], 1))
    if node.op is OpKind.RESHAPE:
        assert node.shape is not None
        return g.call_function(torch.reshape, (args[0], (-1, *node.shape)))
    if node.op is OpKind.CONCAT:
        assert isinstance(a, ConcatAttrs)
        return g.call_function(torch.cat, (tuple(args),), {"dim": _dim(a.axis)})
    if node.op is OpKind.SOFTMAX:
        assert isinstance(a, SoftmaxAttrs)
        return g.call_function(F.softmax, (args[0],), {"dim": _dim(a.axis)})
    if node.op is OpKind.GLOBAL_AVGPOOL:
        assert isinstance(a, GlobalPoolAttrs) and node.inputs[0].shape is not None
        dims = tuple(range(2, 1 + len(node.inputs[0].shape)))
        return g.call_function(torch.mean, (args[0], dims), {"keepdim": a.keepdims})
    raise UnsupportedOperatorError(f"node {node.name!r}: operator {node.op.value!r} has no PyTorch conversion; "
                                   f"supported: {', '.join(sorted(o.value for o in (*_MODULES, *_CALLS)))}")


_CALLS = (OpKind.ADD, OpKind.MUL, OpKind.MATMUL, OpKind.FLATTEN, OpKind.RESHAPE, OpKind.CONCAT, OpKind.SOFTMAX,
          OpKind.GLOBAL_AVGPOOL)


def _module_name(name: str, taken: set[str]) -> str:
    """A submodule name from an IR node name: identifier characters only, unique."""
    base = re.sub(r"\W", "_", name).strip("_") or "node"
    base = f"n_{base}" if base[0].isdigit() else base
    out, k = base, 1
    while out in taken:
        k += 1
        out = f"{base}_{k}"
    taken.add(out)
    return out


def to_torch(graph: Graph) -> torch.fx.GraphModule:
    """A PyTorch module (eval mode) computing ``graph``: one positional input per graph input, in order; the
    output, or a tuple of them when the graph has several."""
    root = nn.Module()
    g = torch.fx.Graph()
    values: dict[Node, torch.fx.Node] = {}
    taken: set[str] = set()
    for node in graph:
        if node.op is OpKind.INPUT:
            values[node] = g.placeholder(_module_name(node.name, taken))
            continue
        args = [values[p] for p in node.inputs]
        make = _MODULES.get(node.op)
        if make is None:
            values[node] = _call(g, node, args)
            continue
        target = _module_name(node.name, taken)
        root.add_module(target, make(node))
        values[node] = g.call_module(target, tuple(args))
    outs = [values[o] for o in graph.outputs]
    g.output(outs[0] if len(outs) == 1 else tuple(outs))
    return torch.fx.GraphModule(root, g, class_name=re.sub(r"\W", "_", graph.name) or "Graph").eval()
