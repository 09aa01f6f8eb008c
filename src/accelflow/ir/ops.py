"""Operator kinds of the network IR and their typed attribute records.

Shapes in the IR never include the batch dimension: a 2-D convolution's output is ``(C, H, W)``, a 1-D
convolution's ``(C, L)``, a linear layer's ``(F,)``. Axes in attribute records count from the first
non-batch dimension (axis 0 = channels).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "OpKind",
    "Attrs",
    "ConvAttrs",
    "LinearAttrs",
    "PoolAttrs",
    "GlobalPoolAttrs",
    "ThresholdAttrs",
    "HardSigmoidAttrs",
    "ConcatAttrs",
    "ReshapeAttrs",
    "SoftmaxAttrs",
    "COMPUTE_OPS",
    "ACTIVATION_OPS",
]


class OpKind(enum.StrEnum):
    """What a node computes. The value is the spelling used in reports and JSON."""

    INPUT = "input"
    CONV = "conv"  # 1-D or 2-D convolution, incl. grouped/depthwise; BatchNorm folded in
    LINEAR = "linear"  # y = x W^T + b with constant W (Gemm, MatMul with a constant)
    MATMUL = "matmul"  # product of two activations
    RELU = "relu"
    RELU6 = "relu6"
    THRESHOLD_RELU = "threshold_relu"  # x if x > t else 0, optionally clipped
    HARDSWISH = "hardswish"
    HARDSIGMOID = "hardsigmoid"
    SIGMOID = "sigmoid"
    SILU = "silu"
    MAXPOOL = "maxpool"
    AVGPOOL = "avgpool"
    GLOBAL_AVGPOOL = "global_avgpool"
    ADD = "add"
    MUL = "mul"
    CONCAT = "concat"
    FLATTEN = "flatten"
    RESHAPE = "reshape"
    SOFTMAX = "softmax"


#: Operators that carry weights and multiply-accumulate work.
COMPUTE_OPS = frozenset({OpKind.CONV, OpKind.LINEAR, OpKind.MATMUL})
#: Element-wise activation functions of a single input.
ACTIVATION_OPS = frozenset(
    {
        OpKind.RELU,
        OpKind.RELU6,
        OpKind.THRESHOLD_RELU,
        OpKind.HARDSWISH,
        OpKind.HARDSIGMOID,
        OpKind.SIGMOID,
        OpKind.SILU,
    }
)


class Attrs:
    """Marker base of attribute records (frozen dataclasses)."""


@dataclass(frozen=True)
class ConvAttrs(Attrs):
    """Convolution over ``len(kernel)`` spatial dims (1 or 2).

    ``padding`` holds begin pads then end pads per spatial dim, as ONNX does: ``(top, left, bottom,
    right)`` for 2-D, ``(left, right)`` for 1-D.
    """

    in_channels: int
    out_channels: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int = 1

    def __post_init__(self) -> None:
        n = len(self.kernel)
        if n not in (1, 2):
            raise ValueError(f"convolution must be 1-D or 2-D, got kernel {self.kernel}")
        if len(self.stride) != n or len(self.dilation) != n or len(self.padding) != 2 * n:
            raise ValueError(f"inconsistent convolution attributes {self}")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"channels {self.in_channels}->{self.out_channels} not divisible by groups {self.groups}")

    @property
    def spatial_dims(self) -> int:
        return len(self.kernel)

    @property
    def kernel_size(self) -> int:
        """Number of taps of one kernel slice (K*K for 2-D)."""
        return math.prod(self.kernel)

    @property
    def is_depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.in_channels


@dataclass(frozen=True)
class LinearAttrs(Attrs):
    in_features: int
    out_features: int


@dataclass(frozen=True)
class PoolAttrs(Attrs):
    """Max or average pooling window; ``padding`` as in :class:`ConvAttrs`."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    ceil_mode: bool = False
    count_include_pad: bool = False


@dataclass(frozen=True)
class GlobalPoolAttrs(Attrs):
    """Average over all spatial dims; ``keepdims`` keeps them as size 1 (for squeeze-excitation)."""

    keepdims: bool = False


@dataclass(frozen=True)
class ThresholdAttrs(Attrs):
    """Thresholded ReLU: ``x if x > threshold else 0``, then ``min(., clip)`` if clip is set."""

    threshold: float = 0.0
    clip: float | None = None

    def __post_init__(self) -> None:
        # Values are float32 at run time and in ONNX: keep the float32-rounded value so both import
        # routes agree exactly.
        object.__setattr__(self, "threshold", float(np.float32(self.threshold)))
        if self.clip is not None:
            object.__setattr__(self, "clip", float(np.float32(self.clip)))


@dataclass(frozen=True)
class HardSigmoidAttrs(Attrs):
    """``max(0, min(1, alpha * x + beta))``; PyTorch uses alpha=1/6, beta=0.5."""

    alpha: float = 1.0 / 6.0
    beta: float = 0.5


@dataclass(frozen=True)
class ConcatAttrs(Attrs):
    axis: int = 0


@dataclass(frozen=True)
class ReshapeAttrs(Attrs):
    """Target shape without batch; at most one -1."""

    shape: tuple[int, ...]


@dataclass(frozen=True)
class SoftmaxAttrs(Attrs):
    axis: int = -1
