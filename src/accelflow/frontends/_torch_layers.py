"""IR nodes that :func:`accelflow.frontends.to_torch` turns into submodules (:data:`MODULES`): layers with
weights, activations and pools, including the layers PyTorch lacks in the IR's form.

Their ``forward`` never branches on a tensor's shape, so the converted module can be traced again with
``torch.fx`` (HASS does, to find the activations that feed each conv).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from accelflow.errors import UnsupportedOperatorError
from accelflow.ir import (
    AffineAttrs,
    AlphaAttrs,
    ConvAttrs,
    ConvTransposeAttrs,
    GeluAttrs,
    HardSigmoidAttrs,
    LayerNormAttrs,
    Node,
    OpKind,
    PoolAttrs,
    ThresholdAttrs,
)
from accelflow.zoo.layers import PadConv2d, PadMaxPool2d, ThresholdReLU

__all__ = ["Affine", "ConvTransposeCropped", "HardSigmoid", "PReLU", "TokenEmbedding", "MODULES"]


# ------------------------------------------------------------------------------------------------ layers


class HardSigmoid(nn.Module):
    """``clip(alpha * x + beta, 0, 1)`` for any ONNX alpha/beta (``nn.Hardsigmoid`` is alpha 1/6, beta 1/2)."""

    def __init__(self, alpha: float, beta: float) -> None:
        super().__init__()
        self.alpha, self.beta = float(alpha), float(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x * self.alpha + self.beta, 0.0, 1.0)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}"


class Affine(nn.Module):
    """``x * weight + bias`` with 1-D ``weight`` and ``bias`` along ``axis`` of an input with ``rank`` axes
    (both counted without the batch axis): an inference-mode BatchNorm that no conv or linear layer absorbed."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, axis: int, rank: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone())
        self.bias = nn.Parameter(bias.detach().clone())
        self.axis = axis % rank
        self.shape = tuple(-1 if i == self.axis else 1 for i in range(rank))  # weight against x without batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.reshape(self.shape) + self.bias.reshape(self.shape)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, axis={self.axis}"


class PReLU(nn.Module):
    """``x if x > 0 else slope * x`` with a learned ``weight`` (the slope) of any shape that broadcasts against
    the input's non-batch axes, right-aligned (``nn.PReLU`` only has one slope per channel)."""

    def __init__(self, slope: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(slope.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 0, x, x * self.weight)


class TokenEmbedding(nn.Embedding):
    """:class:`torch.nn.Embedding` that accepts ids of any numeric type (the IR's ids may come out of a cast)."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return super().forward(ids.long())


class ConvTransposeCropped(nn.Module):
    """Transposed convolution (1-D or 2-D) with begin and end padding that may differ and any output padding:
    the full transposed convolution, ``output_padding`` zeros appended at the end of each spatial axis, then
    ``pads`` (begins, then ends, as ONNX writes them) cropped off, then the bias. ``nn.ConvTranspose2d``
    takes equal pads only, and an output padding smaller than the stride or dilation."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, stride: tuple[int, ...],
                 pads: tuple[int, ...], output_padding: tuple[int, ...], dilation: tuple[int, ...],
                 groups: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())
        self.stride, self.pads, self.output_padding = tuple(stride), tuple(pads), tuple(output_padding)
        self.dilation, self.groups = tuple(dilation), int(groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.stride)
        conv = F.conv_transpose1d if n == 1 else F.conv_transpose2d
        y = conv(x, self.weight, None, self.stride, 0, 0, self.groups, self.dilation)
        widths: list[int] = []
        for i in reversed(range(n)):  # F.pad lists the last axis first
            widths += [-self.pads[i], self.output_padding[i] - self.pads[n + i]]
        y = F.pad(y, widths)
        return y if self.bias is None else y + self.bias.reshape(-1, *([1] * n))

    def extra_repr(self) -> str:
        return (f"{self.weight.shape[0]}, {self.weight.shape[1] * self.groups}, kernel={tuple(self.weight.shape[2:])}, "
                f"stride={self.stride}, pads={self.pads}, output_padding={self.output_padding}")


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array).copy())


def _rank(node: Node) -> int:
    assert node.shape is not None
    return len(node.shape)


# ------------------------------------------------------------------------------------- IR nodes as modules


def _symmetric(padding: tuple[int, ...], n: int) -> tuple[int, ...] | None:
    """The per-axis pad when begin and end pads are equal, else None."""
    begin, end = padding[:n], padding[n:]
    return tuple(begin) if begin == end else None


def _unequal(node: Node, what: str) -> UnsupportedOperatorError:
    return UnsupportedOperatorError(f"node {node.name!r}: unequal begin/end padding {node.attrs.padding} "  # type: ignore[union-attr]
                                    f"of a {what} has no PyTorch module; unequal pads convert for 2-D convs "
                                    "and 2-D max pooling without ceil mode")


def _load(module: nn.Module, node: Node) -> nn.Module:
    """Copy ``node``'s weight and bias into ``module``'s (same number of elements) and return it."""
    with torch.no_grad():
        for role in ("weight", "bias"):
            target = getattr(module, role, None)
            if role in node.params and isinstance(target, torch.Tensor):
                target.copy_(_tensor(node.params[role]).reshape(target.shape))
    return module


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
    return _load(conv, node)


def _conv_transpose(node: Node) -> nn.Module:
    a = node.attrs
    assert isinstance(a, ConvTransposeAttrs)
    pad = _symmetric(a.padding, a.spatial_dims)
    if pad is not None and all(op < max(s, d) for op, s, d in zip(a.output_padding, a.stride, a.dilation, strict=True)):
        cls = nn.ConvTranspose1d if a.spatial_dims == 1 else nn.ConvTranspose2d
        return _load(cls(a.in_channels, a.out_channels, a.kernel, stride=a.stride, padding=pad,
                         output_padding=a.output_padding, groups=a.groups, bias=node.bias is not None,
                         dilation=a.dilation), node)
    bias = None if node.bias is None else _tensor(node.bias)
    return ConvTransposeCropped(_tensor(node.params["weight"]), bias, a.stride, a.padding, a.output_padding,
                                  a.dilation, a.groups)


def _linear(node: Node) -> nn.Module:
    out_features, in_features = node.params["weight"].shape
    return _load(nn.Linear(in_features, out_features, bias=node.bias is not None), node)


def _embedding(node: Node) -> nn.Module:
    vocab, dim = node.params["weight"].shape
    return _load(TokenEmbedding(vocab, dim), node)


def _layernorm(node: Node) -> nn.Module:
    a = node.attrs
    assert isinstance(a, LayerNormAttrs) and node.inputs[0].shape is not None
    normalized = tuple(node.inputs[0].shape[a.axis :])  # the axes from ``axis`` (without batch) on
    affine = node.weight is not None or node.bias is not None
    norm = nn.LayerNorm(normalized, eps=a.epsilon, elementwise_affine=affine, bias=node.bias is not None)
    with torch.no_grad():  # the IR's scale and shift broadcast to the normalised axes
        if node.weight is not None:
            norm.weight.copy_(_tensor(np.broadcast_to(node.weight, normalized)))
        if node.bias is not None:
            norm.bias.copy_(_tensor(np.broadcast_to(node.bias, normalized)))
    return norm


def _affine(node: Node) -> nn.Module:
    a = node.attrs
    assert isinstance(a, AffineAttrs)
    return Affine(_tensor(node.params["weight"]), _tensor(node.params["bias"]), a.axis, _rank(node.inputs[0]))


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
    return HardSigmoid(a.alpha, a.beta)


def _gelu(node: Node) -> nn.Module:
    assert isinstance(node.attrs, GeluAttrs)
    return nn.GELU(approximate="tanh" if node.attrs.approximate else "none")


def _alpha(node: Node) -> float:
    assert isinstance(node.attrs, AlphaAttrs)
    return float(node.attrs.alpha)


#: Operators that become submodules: layers with weights, activations and pools (what HASS, the training
#: loop and the compression passes look for).
MODULES: dict[OpKind, Callable[[Node], nn.Module]] = {
    OpKind.CONV: _conv,
    OpKind.CONV_TRANSPOSE: _conv_transpose,
    OpKind.LINEAR: _linear,
    OpKind.EMBEDDING: _embedding,
    OpKind.LAYERNORM: _layernorm,
    OpKind.AFFINE: _affine,
    OpKind.PRELU: lambda node: PReLU(_tensor(node.params["slope"])),
    OpKind.RELU: lambda node: nn.ReLU(),
    OpKind.RELU6: lambda node: nn.ReLU6(),
    OpKind.THRESHOLD_RELU: _threshold,
    OpKind.HARDSWISH: lambda node: nn.Hardswish(),
    OpKind.HARDSIGMOID: _hardsigmoid,
    OpKind.SIGMOID: lambda node: nn.Sigmoid(),
    OpKind.SILU: lambda node: nn.SiLU(),
    OpKind.GELU: _gelu,
    OpKind.LEAKY_RELU: lambda node: nn.LeakyReLU(_alpha(node)),
    OpKind.ELU: lambda node: nn.ELU(_alpha(node)),
    OpKind.SOFTPLUS: lambda node: nn.Softplus(),
    OpKind.TANH: lambda node: nn.Tanh(),
    OpKind.MAXPOOL: _pool,
    OpKind.AVGPOOL: _pool,
}
