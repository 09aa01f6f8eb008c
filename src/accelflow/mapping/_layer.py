"""The per-layer view the mappers work on: a GEMM (SCALE-Sim's view), a vector pass, or nothing (a view).

GEMM layers, per group: A = (npx x window) times B = (window x filters). Convolutions, linear layers, products
of two activations (MATMUL with batch dimensions, EINSUM) and transposed convolutions all take this form:

* MATMUL ``(..., M, K) x (..., K, N)``: the broadcast batch dimensions become groups (as in a grouped
  convolution: attention's heads), ``M`` -> npx, ``K`` -> window, ``N`` -> filters. When B has no batch
  dimensions of its own (one B shared by every batch entry) they fold into npx instead.
* EINSUM (two operands): letters in both operands and the output -> groups; letters not in the output ->
  window (the reduction); letters only A and the output have -> npx; only B and the output -> filters.
* CONV_TRANSPOSE, the scatter (col2im) view: every input position (npx = input positions) times the
  weights (window = in_channels/groups, filters = out_channels/groups x taps) gives taps partial outputs
  that are added into the output; the overlap-add is not timed separately (it is a pure placement when
  stride >= kernel, the usual up-sampling case). This view keeps the MACs of :mod:`accelflow.ir.cost`
  (no multiplications by inserted zeros, unlike the zero-insertion view).

B is the weights, or the second activation of a product (the K/V operand of attention); its elements are
``weight_elems`` (so in decode the K/V cache reads are B-operand traffic), ``in_elems`` counts A only.

Vector layers (element-wise, normalisation, softmax, reductions, pooling, embedding lookups, resize and the
data movements that are not views): ``channels x npx`` output elements, ``taps`` vector operations per output
element (:data:`accelflow.ir.VECTOR_COST`; pooling one per window tap; a reduction one per input element,
plus one per output for a mean; an embedding lookup 0: memory traffic only).

Free layers cost nothing: pure views (reshape, flatten, slice, gather with constant indices, expand, concat,
constants, a transpose that keeps the innermost axis: the consumer's DMA reads them with strides) and
activations fused into their producer's output stage (decided per graph by :func:`workload`).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from accelflow.errors import ConfigError
from accelflow.ir import (
    ACTIVATION_OPS,
    BINARY_OPS,
    NORM_OPS,
    REDUCE_OPS,
    UNARY_OPS,
    VECTOR_COST,
    ConvAttrs,
    ConvTransposeAttrs,
    EinsumAttrs,
    GlobalPoolAttrs,
    LinearAttrs,
    Node,
    OpKind,
    PoolAttrs,
    ResizeAttrs,
    ResizeMode,
    TransposeAttrs,
)

__all__ = [
    "LayerKind",
    "LayerShape",
    "UnsupportedOnArchError",
    "layer_shape",
    "GEMM_OPS",
    "ELEMENTWISE_OPS",
    "POOL_OPS",
    "VIEW_OPS",
]

GEMM_OPS = frozenset({OpKind.CONV, OpKind.LINEAR, OpKind.MATMUL, OpKind.EINSUM, OpKind.CONV_TRANSPOSE})
POOL_OPS = frozenset({OpKind.MAXPOOL, OpKind.AVGPOOL, OpKind.GLOBAL_AVGPOOL})
#: Element-wise operators with their own (older) kernels on UltraTrail's OPU and Plasticine's PCUs.
ELEMENTWISE_OPS = frozenset({OpKind.ADD, OpKind.MUL})
#: Operators that only name data differently: the consumer reads them with offsets and strides.
VIEW_OPS = frozenset(
    {OpKind.INPUT, OpKind.CONSTANT, OpKind.FLATTEN, OpKind.RESHAPE, OpKind.SLICE, OpKind.GATHER, OpKind.EXPAND,
     OpKind.CONCAT}
)  # fmt: skip


class UnsupportedOnArchError(ConfigError):
    """The layer's operator cannot be mapped onto this architecture."""


class LayerKind(enum.StrEnum):
    """Where a layer's time goes. The value is the spelling in reports and JSON."""

    GEMM = "gemm"  # on the MAC array
    VECTOR = "vector"  # on the vector unit (or the template's equivalent), with its memory traffic
    FREE = "free"  # a view, or an activation fused into its producer: no time


@dataclass(frozen=True)
class LayerShape:
    """Sizes of one layer. GEMM layers, per group: ``npx`` output positions (rows of A), ``window``
    reduction length (in_channels/groups x taps), ``filters`` output channels. Vector layers: ``channels``
    x ``npx`` output elements and ``taps`` vector operations per output element. Element counts are for one
    sample: ``in_elems`` the input (A) operand(s), ``weight_elems`` the weights or B operand."""

    name: str
    op: OpKind
    groups: int = 1
    npx: int = 1
    window: int = 1
    filters: int = 1
    taps: int = 1
    channels: int = 1
    macs: int = 0
    in_elems: int = 0
    out_elems: int = 0
    weight_elems: int = 0
    kind: LayerKind = LayerKind.GEMM

    @property
    def in_channels(self) -> int:
        """Input channels per group (window / taps)."""
        return self.window // self.taps

    @property
    def elements(self) -> int:
        """Output elements a vector layer produces (channels x npx)."""
        return self.channels * self.npx

    @property
    def vector_ops(self) -> int:
        """Vector-unit operations of a vector layer (0 for GEMM and free layers)."""
        return self.elements * self.taps if self.kind is LayerKind.VECTOR else 0


def _prod(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def _common(node: Node) -> dict[str, object]:
    assert node.shape is not None
    in_elems = sum(_prod(s) for s in node.input_shapes())
    return dict(name=node.name, op=node.op, in_elems=in_elems, out_elems=_prod(node.shape))


# -- GEMM layers ------------------------------------------------------------------------------------------
def _conv(node: Node) -> LayerShape:
    a = node.attrs
    assert isinstance(a, ConvAttrs) and node.shape is not None
    npx = _prod(node.shape[1:])
    cin_g, f_g = a.in_channels // a.groups, a.out_channels // a.groups
    macs = npx * a.out_channels * cin_g * a.kernel_size
    return LayerShape(groups=a.groups, npx=npx, window=cin_g * a.kernel_size, filters=f_g, taps=a.kernel_size,
                      channels=a.out_channels, macs=macs, weight_elems=a.out_channels * cin_g * a.kernel_size,
                      **_common(node))  # type: ignore[arg-type]  # fmt: skip


def _linear(node: Node) -> LayerShape:
    a = node.attrs
    assert isinstance(a, LinearAttrs) and node.shape is not None
    out = node.shape
    npx = _prod(out[:-1]) if len(out) > 1 else 1
    return LayerShape(npx=npx, window=a.in_features, filters=a.out_features, channels=a.out_features,
                      macs=npx * a.in_features * a.out_features, weight_elems=a.in_features * a.out_features,
                      **_common(node))  # type: ignore[arg-type]  # fmt: skip


def _gemm(node: Node, groups: int, npx: int, window: int, filters: int) -> LayerShape:
    """A product of two operands (A = inputs[0], B = inputs[1]) in its GEMM view."""
    sa, sb = node.input_shapes()[:2]
    return LayerShape(groups=groups, npx=npx, window=window, filters=filters, channels=groups * filters,
                      macs=groups * npx * window * filters, weight_elems=_prod(sb),
                      **{**_common(node), "in_elems": _prod(sa)})  # type: ignore[arg-type]  # fmt: skip


def _matmul(node: Node) -> LayerShape:
    sa, sb = node.input_shapes()[:2]
    m = sa[-2] if len(sa) > 1 else 1
    n = sb[-1] if len(sb) > 1 else 1
    batch = _prod(tuple(np.broadcast_shapes(sa[:-2], sb[:-2])))
    if _prod(sb[:-2]) == 1:  # one B for every batch entry: a single GEMM over all rows of A
        return _gemm(node, 1, batch * m, sa[-1], n)
    return _gemm(node, batch, m, sa[-1], n)


def _einsum(node: Node) -> LayerShape:
    a = node.attrs
    assert isinstance(a, EinsumAttrs)
    terms, out = a.terms
    shapes = node.input_shapes()
    if len(terms) == 1:  # a permutation or reduction of one operand: a vector pass
        return _vector(node, max(1, -(-_prod(shapes[0]) // max(1, _prod(node.shape or ())))))
    if len(terms) != 2:
        raise UnsupportedOnArchError(f"layer {node.name!r}: einsum {a.equation!r} of {len(terms)} operands has no GEMM "
                                     "view; only products of two operands are mapped (split it into pairwise products)")  # fmt: skip
    ta, tb = terms
    size_a, size_b = dict(zip(ta, shapes[0], strict=True)), dict(zip(tb, shapes[1], strict=True))
    groups = npx = window = filters = 1
    for letter in dict.fromkeys(ta + tb):
        sa, sb = size_a.get(letter), size_b.get(letter)
        size = max(sa or 1, sb or 1)
        if letter not in out:
            window *= size  # contracted (or summed over one operand)
        elif sa is not None and sb is not None and sb > 1 and sa > 1:
            groups *= size
        elif sa is not None and (sb is None or sb == 1):
            npx *= size
        else:
            filters *= size
    return _gemm(node, groups, npx, window, filters)


def _conv_transpose(node: Node) -> LayerShape:
    a = node.attrs
    assert isinstance(a, ConvTransposeAttrs)
    x = node.input_shapes()[0]
    k = _prod(a.kernel)
    cin_g, f_g = a.in_channels // a.groups, a.out_channels // a.groups
    return LayerShape(groups=a.groups, npx=_prod(x[1:]), window=cin_g, filters=f_g * k, channels=a.out_channels,
                      macs=_prod(x) * f_g * k, weight_elems=a.in_channels * f_g * k,
                      **_common(node))  # type: ignore[arg-type]  # fmt: skip


# -- vector layers ------------------------------------------------------------------------------------------
def _vector(node: Node, taps: int, weight_elems: int = 0) -> LayerShape:
    assert node.shape is not None
    out = node.shape
    ch = out[0] if out else 1
    return LayerShape(npx=max(1, _prod(out) // max(1, ch)), channels=ch, taps=taps, weight_elems=weight_elems,
                      kind=LayerKind.VECTOR, **_common(node))  # type: ignore[arg-type]  # fmt: skip


def _pool(node: Node) -> LayerShape:
    assert node.shape is not None
    ch = node.shape[0]
    if node.op is OpKind.GLOBAL_AVGPOOL:
        assert isinstance(node.attrs, GlobalPoolAttrs | None)
        taps, npx = _prod(node.input_shapes()[0][1:]), 1
    else:
        assert isinstance(node.attrs, PoolAttrs)
        taps, npx = _prod(node.attrs.kernel), _prod(node.shape[1:])
    return LayerShape(npx=npx, taps=taps, channels=ch, kind=LayerKind.VECTOR, **_common(node))  # type: ignore[arg-type]


def _elementwise(node: Node) -> LayerShape:
    params = sum(int(p.size) for p in node.params.values())
    return _vector(node, VECTOR_COST.get(node.op, 1), params)


def _reduce(node: Node) -> LayerShape:
    """One operation per input element (an add or a compare), plus the division of a mean."""
    per_out = -(-_prod(node.input_shapes()[0]) // max(1, _prod(node.shape or ())))
    return _vector(node, per_out + (1 if node.op is OpKind.REDUCE_MEAN else 0))


def _embedding(node: Node) -> LayerShape:
    """A gather of table rows: the ids and the rows it reads, the rows it writes; no arithmetic."""
    assert node.shape is not None
    shape = _vector(node, 0)
    return dataclasses.replace(shape, in_elems=shape.in_elems + _prod(node.shape))


def _resize(node: Node) -> LayerShape:
    a = node.attrs
    assert isinstance(a, ResizeAttrs)
    # nearest: one copy per output element; (bi)linear: 2^d - 1 lerps (a multiply and an add each)
    return _vector(node, 1 if a.mode is ResizeMode.NEAREST else 2 * (2 ** len(a.size) - 1))


def _transpose(node: Node) -> LayerShape:
    a = node.attrs
    assert isinstance(a, TransposeAttrs)
    if a.perm[-1] == len(a.perm) - 1:  # rows stay contiguous: a strided read by the consumer
        return LayerShape(kind=LayerKind.FREE, **_common(node))  # type: ignore[arg-type]
    return _vector(node, 1)  # the innermost axis moves: one pass through the vector unit's registers


def _free(node: Node) -> LayerShape:
    return LayerShape(kind=LayerKind.FREE, **_common(node))  # type: ignore[arg-type]


_RULES: dict[OpKind, Callable[[Node], LayerShape]] = {
    OpKind.CONV: _conv,
    OpKind.LINEAR: _linear,
    OpKind.MATMUL: _matmul,
    OpKind.EINSUM: _einsum,
    OpKind.CONV_TRANSPOSE: _conv_transpose,
    **{op: _pool for op in POOL_OPS},
    **{op: _elementwise for op in ACTIVATION_OPS | UNARY_OPS | BINARY_OPS | NORM_OPS},
    OpKind.SOFTMAX: _elementwise,
    OpKind.WHERE: _elementwise,
    OpKind.CUMSUM: _elementwise,  # a running sum: one addition per element
    **{op: _reduce for op in REDUCE_OPS},
    OpKind.EMBEDDING: _embedding,
    OpKind.RESIZE: _resize,
    OpKind.PAD: lambda node: _vector(node, 1),  # a copy into the larger buffer
    OpKind.TRANSPOSE: _transpose,
    **{op: _free for op in VIEW_OPS},
}


def layer_shape(node: Node) -> LayerShape:
    """The view of one node on its own (activations as vector passes; :func:`workload` fuses them)."""
    if node.shape is None:
        raise ConfigError(f"node {node.name!r} has no shape: run propagate_shapes first")
    rule = _RULES.get(node.op)
    if rule is None:
        raise UnsupportedOnArchError(f"layer {node.name!r}: operator {node.op.value!r} has no loop-kernel mapping")
    return rule(node)
