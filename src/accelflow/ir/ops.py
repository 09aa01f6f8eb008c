"""Operator kinds of the network IR and their typed attribute records.

Shapes in the IR never include the batch dimension: a 2-D convolution's output is ``(C, H, W)``, a 1-D
convolution's ``(C, L)``, a linear layer's ``(F,)``, a transformer's hidden states ``(S, D)`` and its
attention scores ``(heads, S, S)``. Axes in attribute records count from the first non-batch dimension
(axis 0 = channels, or tokens); negative axes count from the end.

At run time every value carries a leading batch axis. Operators that combine several inputs (element-wise
arithmetic, :attr:`OpKind.WHERE`, :attr:`OpKind.MATMUL`, :attr:`OpKind.CONCAT`) broadcast the batch axis on
its own and the other axes right-aligned, as NumPy does. A :attr:`OpKind.CONSTANT` node's value has batch 1.
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
    "DType",
    "InputAttrs",
    "CastAttrs",
    "TransposeAttrs",
    "SliceAttrs",
    "GatherAttrs",
    "ExpandAttrs",
    "PadAttrs",
    "ReduceAttrs",
    "LayerNormAttrs",
    "AffineAttrs",
    "GeluAttrs",
    "AlphaAttrs",
    "ClipAttrs",
    "EinsumAttrs",
    "ResizeMode",
    "ResizeAttrs",
    "ConvTransposeAttrs",
    "CumsumAttrs",
    "COMPUTE_OPS",
    "ACTIVATION_OPS",
    "UNARY_OPS",
    "BINARY_OPS",
    "BOOLEAN_OPS",
    "REDUCE_OPS",
    "NORM_OPS",
    "LAYOUT_OPS",
    "VECTOR_COST",
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
    # -- added for modern CNNs, vision transformers and language models ---------------------------------
    CONSTANT = "constant"  # a constant tensor (params["value"], shape without batch); cls tokens, masks
    CONV_TRANSPOSE = "conv_transpose"  # 1-D or 2-D transposed convolution
    EINSUM = "einsum"  # a product of two activations given by an equation (batch letter removed)
    EMBEDDING = "embedding"  # table lookup: integer ids -> rows of params["weight"] (vocab, dim); 0 MACs
    LAYERNORM = "layernorm"  # normalise over the trailing axes from ``axis`` on, then weight/bias
    AFFINE = "affine"  # per-channel scale and shift (a BatchNorm that follows no conv/linear)
    GELU = "gelu"
    LEAKY_RELU = "leaky_relu"
    ELU = "elu"
    PRELU = "prelu"  # max(0, x) + slope * min(0, x), params["slope"] broadcast like an operand
    CLIP = "clip"  # min(max(x, lo), hi), either bound optional
    SOFTPLUS = "softplus"
    TANH = "tanh"
    ERF = "erf"
    EXP = "exp"
    LOG = "log"
    SQRT = "sqrt"
    RECIPROCAL = "reciprocal"
    NEG = "neg"
    ABS = "abs"
    SIN = "sin"
    COS = "cos"
    NOT = "not"
    ISNAN = "isnan"
    CAST = "cast"
    SUB = "sub"
    DIV = "div"
    POW = "pow"
    MAX = "max"
    MIN = "min"
    EQUAL = "equal"
    LESS = "less"
    GREATER = "greater"
    AND = "and"
    OR = "or"
    WHERE = "where"  # where(cond, x, y), broadcasting like the binary operators
    REDUCE_MEAN = "reduce_mean"
    REDUCE_SUM = "reduce_sum"
    REDUCE_MAX = "reduce_max"
    REDUCE_MIN = "reduce_min"
    TRANSPOSE = "transpose"
    SLICE = "slice"
    GATHER = "gather"  # select along one axis with constant indices (params["indices"], int64)
    EXPAND = "expand"  # broadcast to a larger shape
    PAD = "pad"  # constant padding that no conv or pool absorbed
    RESIZE = "resize"  # nearest or (bi)linear up/down-sampling of the spatial axes
    CUMSUM = "cumsum"  # running sum along one axis (RoBERTa's position ids from its padding mask)


#: Operators that carry multiply-accumulate work (weights, or two activations).
COMPUTE_OPS = frozenset({OpKind.CONV, OpKind.LINEAR, OpKind.MATMUL, OpKind.EINSUM, OpKind.CONV_TRANSPOSE})
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
        OpKind.GELU,
        OpKind.LEAKY_RELU,
        OpKind.ELU,
        OpKind.PRELU,
        OpKind.CLIP,
        OpKind.SOFTPLUS,
        OpKind.TANH,
    }
)
#: Element-wise functions of one input that are not activations (math, logic, casts).
UNARY_OPS = frozenset(
    {OpKind.ERF, OpKind.EXP, OpKind.LOG, OpKind.SQRT, OpKind.RECIPROCAL, OpKind.NEG, OpKind.ABS, OpKind.SIN,
     OpKind.COS, OpKind.NOT, OpKind.ISNAN, OpKind.CAST}
)  # fmt: skip
#: Element-wise operators of two inputs that broadcast (batch axis apart, other axes right-aligned).
BINARY_OPS = frozenset(
    {OpKind.ADD, OpKind.MUL, OpKind.SUB, OpKind.DIV, OpKind.POW, OpKind.MAX, OpKind.MIN, OpKind.EQUAL,
     OpKind.LESS, OpKind.GREATER, OpKind.AND, OpKind.OR}
)  # fmt: skip
#: Operators whose result is boolean.
BOOLEAN_OPS = frozenset({OpKind.EQUAL, OpKind.LESS, OpKind.GREATER, OpKind.AND, OpKind.OR, OpKind.NOT, OpKind.ISNAN})
#: Reductions over a set of axes.
REDUCE_OPS = frozenset({OpKind.REDUCE_MEAN, OpKind.REDUCE_SUM, OpKind.REDUCE_MAX, OpKind.REDUCE_MIN})
#: Normalisations with learned per-channel parameters.
NORM_OPS = frozenset({OpKind.LAYERNORM, OpKind.AFFINE})
#: Operators that only move or select data: no arithmetic.
LAYOUT_OPS = frozenset(
    {OpKind.FLATTEN, OpKind.RESHAPE, OpKind.TRANSPOSE, OpKind.SLICE, OpKind.GATHER, OpKind.EXPAND, OpKind.CONCAT,
     OpKind.PAD, OpKind.CONSTANT}
)  # fmt: skip

#: Vector-unit operations per output element of the operators that do no multiply-accumulate work (ours, a
#: documented convention): one per element-wise operation, a transcendental function counted as the few
#: operations of its usual polynomial/lookup evaluation, softmax as max, subtract, exp, sum and divide, a
#: layer norm as mean, subtract, square, mean, rsqrt, scale and shift. Pooling counts one per window tap
#: (see the performance model). Operators not listed cost one operation per output element.
VECTOR_COST: dict[OpKind, int] = {
    OpKind.SOFTMAX: 5,
    OpKind.LAYERNORM: 7,
    OpKind.AFFINE: 2,
    OpKind.GELU: 4,
    OpKind.SILU: 3,
    OpKind.SIGMOID: 2,
    OpKind.HARDSWISH: 3,
    OpKind.HARDSIGMOID: 2,
    OpKind.TANH: 2,
    OpKind.ERF: 2,
    OpKind.EXP: 2,
    OpKind.LOG: 2,
    OpKind.SOFTPLUS: 3,
    OpKind.ELU: 3,
    OpKind.SIN: 2,
    OpKind.COS: 2,
    OpKind.SQRT: 2,
    OpKind.RECIPROCAL: 2,
    OpKind.DIV: 2,
    OpKind.POW: 2,
}


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


class DType(enum.StrEnum):
    """Element type of a graph input, a constant or a cast. The value is NumPy's spelling."""

    FLOAT32 = "float32"
    INT64 = "int64"
    BOOL = "bool"


@dataclass(frozen=True)
class InputAttrs(Attrs):
    """Element type of a graph input: float32 features, or int64 token ids for language models."""

    dtype: DType = DType.FLOAT32


@dataclass(frozen=True)
class CastAttrs(Attrs):
    dtype: DType


@dataclass(frozen=True)
class TransposeAttrs(Attrs):
    """Output axis ``i`` is input axis ``perm[i]`` (axes without batch)."""

    perm: tuple[int, ...]

    def __post_init__(self) -> None:
        if sorted(self.perm) != list(range(len(self.perm))):
            raise ValueError(f"transpose perm {self.perm} is not a permutation of 0..{len(self.perm) - 1}")


@dataclass(frozen=True)
class SliceAttrs(Attrs):
    """``x[starts[i]:ends[i]:steps[i]]`` on ``axes[i]``; axes non-negative, starts/ends already clamped to
    ``0..size`` (steps positive)."""

    axes: tuple[int, ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    steps: tuple[int, ...]

    def __post_init__(self) -> None:
        n = len(self.axes)
        if len(self.starts) != n or len(self.ends) != n or len(self.steps) != n or len(set(self.axes)) != n:
            raise ValueError(f"inconsistent slice attributes {self}")
        if any(s < 1 for s in self.steps) or any(a < 0 for a in self.axes):
            raise ValueError(f"slice steps must be >= 1 and axes >= 0, got {self}")


@dataclass(frozen=True)
class GatherAttrs(Attrs):
    """Select along ``axis`` with the constant ``params["indices"]`` (a scalar index removes the axis)."""

    axis: int


@dataclass(frozen=True)
class ExpandAttrs(Attrs):
    """Broadcast to ``shape`` (without batch; NumPy broadcasting, right-aligned)."""

    shape: tuple[int, ...]


@dataclass(frozen=True)
class PadAttrs(Attrs):
    """Constant padding: ``pads`` holds begin pads then end pads per axis (without batch), as ONNX does."""

    pads: tuple[int, ...]
    value: float = 0.0

    def __post_init__(self) -> None:
        if len(self.pads) % 2 or any(p < 0 for p in self.pads):
            raise ValueError(f"pads {self.pads} must be non-negative begin and end pads per axis")


@dataclass(frozen=True)
class ReduceAttrs(Attrs):
    """Reduce over ``axes`` (without batch, non-negative, sorted); ``keepdims`` keeps them as size 1."""

    axes: tuple[int, ...]
    keepdims: bool = True


@dataclass(frozen=True)
class LayerNormAttrs(Attrs):
    """Normalise over the axes from ``axis`` to the last (negative: from the end), then ``* weight +
    bias`` (optional params shaped like those axes)."""

    axis: int = -1
    epsilon: float = 1e-5


@dataclass(frozen=True)
class AffineAttrs(Attrs):
    """``x * weight + bias`` with 1-D ``weight``/``bias`` along ``axis`` (inference-mode BatchNorm)."""

    axis: int = 0


@dataclass(frozen=True)
class GeluAttrs(Attrs):
    """GELU; ``approximate`` selects the tanh form (GPT-2's "gelu_new") over the erf form."""

    approximate: bool = False


@dataclass(frozen=True)
class AlphaAttrs(Attrs):
    """The slope of LeakyReLU, or the scale of ELU's negative part."""

    alpha: float = 0.01


@dataclass(frozen=True)
class ClipAttrs(Attrs):
    lo: float | None = None
    hi: float | None = None


@dataclass(frozen=True)
class EinsumAttrs(Attrs):
    """An einsum equation over the operands without their batch axes, with an explicit output
    (``"hqd,hkd->hqk"``); the batch axis is carried apart, as for every operator."""

    equation: str

    @property
    def terms(self) -> tuple[list[str], str]:
        lhs, _, out = self.equation.partition("->")
        return lhs.split(","), out


class ResizeMode(enum.StrEnum):
    NEAREST = "nearest"  # PyTorch's nearest: source index floor(dst * in / out)
    LINEAR = "linear"  # (bi)linear with half-pixel centres (align_corners=False)
    LINEAR_ALIGN_CORNERS = "linear_align_corners"


@dataclass(frozen=True)
class ResizeAttrs(Attrs):
    """Resample the spatial axes (all but axis 0) to ``size``."""

    size: tuple[int, ...]
    mode: ResizeMode = ResizeMode.NEAREST


@dataclass(frozen=True)
class CumsumAttrs(Attrs):
    """Running sum along ``axis`` (without batch); ``exclusive`` leaves out the element itself, ``reverse``
    sums from the end."""

    axis: int
    exclusive: bool = False
    reverse: bool = False


@dataclass(frozen=True)
class ConvTransposeAttrs(Attrs):
    """Transposed convolution; ``padding`` as in :class:`ConvAttrs` (begins then ends, removed from the full
    output), ``output_padding`` added at the end of each spatial axis. Weight layout (C_in, C_out/groups, *k)."""

    in_channels: int
    out_channels: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int = 1

    def __post_init__(self) -> None:
        n = len(self.kernel)
        if n not in (1, 2) or len(self.stride) != n or len(self.dilation) != n or len(self.padding) != 2 * n \
                or len(self.output_padding) != n:
            raise ValueError(f"inconsistent transposed-convolution attributes {self}")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"channels {self.in_channels}->{self.out_channels} not divisible by groups {self.groups}")

    @property
    def spatial_dims(self) -> int:
        return len(self.kernel)
