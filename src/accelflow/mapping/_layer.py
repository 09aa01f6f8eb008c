"""The GEMM view of a layer (SCALE-Sim's view): per group, A = (npx x window), B = (window x filters)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from accelflow.errors import ConfigError
from accelflow.ir import ConvAttrs, GlobalPoolAttrs, LinearAttrs, Node, OpKind, PoolAttrs

__all__ = ["LayerShape", "UnsupportedOnArchError", "layer_shape", "GEMM_OPS", "ELEMENTWISE_OPS", "POOL_OPS"]

GEMM_OPS = frozenset({OpKind.CONV, OpKind.LINEAR, OpKind.MATMUL})
POOL_OPS = frozenset({OpKind.MAXPOOL, OpKind.AVGPOOL, OpKind.GLOBAL_AVGPOOL})
ELEMENTWISE_OPS = frozenset({OpKind.ADD, OpKind.MUL})


class UnsupportedOnArchError(ConfigError):
    """The layer's operator cannot be mapped onto this architecture."""


@dataclass(frozen=True)
class LayerShape:
    """Sizes of one layer. For GEMM-like layers, per group: ``npx`` output positions (rows of A),
    ``window`` reduction length (in_channels/groups x taps), ``filters`` output channels; for pooling and
    element-wise layers ``channels``, ``npx`` output positions and ``taps`` (window size)."""

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

    @property
    def in_channels(self) -> int:
        """Input channels per group (window / taps)."""
        return self.window // self.taps


def layer_shape(node: Node) -> LayerShape:
    if node.shape is None:
        raise ConfigError(f"node {node.name!r} has no shape: run propagate_shapes first")
    out = node.shape
    in_elems = sum(math.prod(s) for s in node.input_shapes())
    out_elems = math.prod(out)
    common = dict(name=node.name, op=node.op, in_elems=in_elems, out_elems=out_elems)
    if node.op is OpKind.CONV:
        a = node.attrs
        assert isinstance(a, ConvAttrs)
        npx = math.prod(out[1:])
        cin_g, f_g = a.in_channels // a.groups, a.out_channels // a.groups
        macs = npx * a.out_channels * cin_g * a.kernel_size
        return LayerShape(groups=a.groups, npx=npx, window=cin_g * a.kernel_size, filters=f_g, taps=a.kernel_size,
                          channels=a.out_channels, macs=macs, weight_elems=a.out_channels * cin_g * a.kernel_size,
                          **common)  # type: ignore[arg-type]  # fmt: skip
    if node.op is OpKind.LINEAR:
        a = node.attrs
        assert isinstance(a, LinearAttrs)
        npx = math.prod(out[:-1]) if len(out) > 1 else 1
        return LayerShape(npx=npx, window=a.in_features, filters=a.out_features, channels=a.out_features,
                          macs=npx * a.in_features * a.out_features, weight_elems=a.in_features * a.out_features,
                          **common)  # type: ignore[arg-type]  # fmt: skip
    if node.op is OpKind.MATMUL:
        (sa, sb) = node.input_shapes()[:2]
        k, f = sa[-1], sb[-1]
        npx = math.prod(out[:-1]) if len(out) > 1 else 1
        return LayerShape(npx=npx, window=k, filters=f, channels=f, macs=npx * k * f, weight_elems=k * f,
                          **common)  # type: ignore[arg-type]  # fmt: skip
    if node.op in POOL_OPS:
        ch = out[0]
        if node.op is OpKind.GLOBAL_AVGPOOL:
            assert isinstance(node.attrs, GlobalPoolAttrs | None)
            taps = math.prod(node.input_shapes()[0][1:])
            npx = 1
        else:
            assert isinstance(node.attrs, PoolAttrs)
            taps = math.prod(node.attrs.kernel)
            npx = math.prod(out[1:])
        return LayerShape(npx=npx, taps=taps, channels=ch, **common)  # type: ignore[arg-type]
    if node.op in ELEMENTWISE_OPS:
        ch = out[0] if out else 1
        return LayerShape(npx=max(1, out_elems // ch), channels=ch, **common)  # type: ignore[arg-type]
    raise UnsupportedOnArchError(f"layer {node.name!r}: operator {node.op.value!r} has no loop-kernel mapping")
