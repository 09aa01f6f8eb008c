"""FPGA resource and latency estimate of an hls4ml-style design without Vivado (our model, see
docs/hls-and-compression.md for the derivation and the cross-check).

Per dense/conv layer (Latency strategy, weights as constants of a fully unrolled kernel):

* products: one per weight whose code in the layer's weight type is non-zero; zero weights cost nothing.
  A weight that is +-2^k is a wire shift (0 DSP, 0 LUT).
* multipliers: ``ceil(products / reuse_factor)``; a multiplier is a DSP when both operand widths are at least
  ``dsp_min_bits`` (10: Vivado HLS builds narrower products in fabric), otherwise a shift-and-add network
  whose cost is ``(csd_digits(w) - 1)`` adders of ``data_width + span(w)`` bits, one LUT per bit (carry
  chain), where csd_digits is the number of non-zero canonical-signed-digit terms of the constant.
* accumulation: an adder tree of ``terms - 1`` adders per output of ``accum_width`` LUTs each (+1 for a
  non-zero bias).
* flip-flops: pipeline registers at every other adder-tree level, ``2/3 * terms`` partial sums of
  ``accum_width`` bits per output (terms = non-zero weights), plus one result register per output.
* BRAM18: weights when not fully partitioned (reuse_factor > 1 or Resource strategy):
  ``max(ceil(bits/18432), ceil(width_per_cycle/36))``; io_stream FIFOs between layers deeper than 32 words.
* latency (cycles): io_parallel dense ``1 + ceil(log2(n_in)) + reuse_factor``; io_stream conv processes one
  input pixel per ``reuse_factor`` cycles: ``H_in * W_in * reuse_factor + kernel pipeline depth``.

io_parallel convolutions replicate the kernel for every output pixel (``H_out*W_out`` copies).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from accelflow.errors import ConfigError
from accelflow.frontends import from_pytorch
from accelflow.hls._config import DEFAULT_FIXED, IOType, LayerPrecision, Strategy
from accelflow.hls._emulate import hls_weight_codes
from accelflow.hls._fixed import FixedPoint
from accelflow.ir import COMPUTE_OPS, ConvAttrs, Graph, Node, OpKind

__all__ = ["LayerResources", "ResourceEstimate", "ResourceModel", "estimate_resources", "csd_digits"]

BRAM18_BITS = 18 * 1024


@dataclass(frozen=True)
class ResourceModel:
    """Constants of the estimator (ours): DSP threshold in bits, FIFO depth above which a stream uses BRAM."""

    dsp_min_bits: int = 10
    fifo_bram_min_depth: int = 32


@dataclass(frozen=True)
class LayerResources:
    """Resources of one layer; ``+`` adds two records (latency adds: layers run one after the other)."""

    name: str = ""
    dsp: int = 0
    lut: int = 0
    ff: int = 0
    bram18: int = 0
    latency_cycles: int = 0
    products: int = 0  # non-zero, non-power-of-two products (multipliers before reuse)
    zero_weights: int = 0

    def __add__(self, other: LayerResources) -> LayerResources:
        return LayerResources(
            "+".join(n for n in (self.name, other.name) if n),
            self.dsp + other.dsp,
            self.lut + other.lut,
            self.ff + other.ff,
            self.bram18 + other.bram18,
            self.latency_cycles + other.latency_cycles,
            self.products + other.products,
            self.zero_weights + other.zero_weights,
        )


@dataclass(frozen=True)
class ResourceEstimate:
    """Per-layer and total resources of a design (see module doc for the model)."""

    layers: tuple[LayerResources, ...]
    total: LayerResources = field(init=False)

    def __post_init__(self) -> None:
        total = LayerResources("total")
        for layer in self.layers:
            total = total + layer
        object.__setattr__(self, "total", LayerResources("total", *_fields(total)[1:]))

    def __add__(self, other: ResourceEstimate) -> ResourceEstimate:
        return ResourceEstimate(self.layers + other.layers)

    def as_dict(self) -> dict[str, int]:
        t = self.total
        return {
            "dsp": t.dsp,
            "lut": t.lut,
            "ff": t.ff,
            "bram18": t.bram18,
            "latency_cycles": t.latency_cycles,
        }


def _fields(r: LayerResources) -> tuple[object, ...]:
    return (r.name, r.dsp, r.lut, r.ff, r.bram18, r.latency_cycles, r.products, r.zero_weights)


def csd_digits(codes: np.ndarray) -> np.ndarray:
    """Number of non-zero digits of the canonical signed-digit (NAF) form of each integer code."""
    x = np.abs(np.asarray(codes, dtype=np.int64))
    half = x >> 1
    return _popcount(half ^ (x + half))  # NAF digits (Arndt, "Matters Computational", sec. 1.23)


def _popcount(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64)
    count = np.zeros(x.shape, dtype=np.int64)
    while np.any(x):
        count += (x & np.uint64(1)).astype(np.int64)
        x = x >> np.uint64(1)
    return count


def _span_bits(codes: np.ndarray) -> np.ndarray:
    """Bits between the highest and lowest set bit of |code| (shift span of the constant), 0 for zero."""
    x = np.abs(np.asarray(codes, dtype=np.int64))
    hi = np.where(x > 0, np.floor(np.log2(np.maximum(x, 1))).astype(np.int64), 0)
    lo = np.where(x > 0, np.log2((x & -x).astype(np.float64) + (x == 0)).astype(np.int64), 0)
    return hi - lo + 1


def _types(
    node: Node, prec: Mapping[str, LayerPrecision]
) -> tuple[FixedPoint, FixedPoint, FixedPoint, FixedPoint]:
    lp = prec.get(node.name)
    d = DEFAULT_FIXED
    if lp is None:
        return d, d, d, d
    return lp.weight or d, lp.bias or d, lp.accum or d, lp.result


def _compute_layer(
    node: Node,
    x_type: FixedPoint,
    prec: Mapping[str, LayerPrecision],
    reuse: int,
    strategy: Strategy,
    io_type: IOType,
    model: ResourceModel,
) -> LayerResources:
    wt, bt, acc, res = _types(node, prec)
    w = node.params["weight"]
    wmat = w.reshape(w.shape[0], -1)  # (outputs, fan-in)
    codes = hls_weight_codes(wmat, wt)
    nz = codes != 0
    digits = csd_digits(codes)
    shifts = nz & (digits == 1)  # +-2^k: wiring only
    real = nz & ~shifts
    copies = 1
    n_in = wmat.shape[1]
    if node.op is OpKind.CONV and io_type is IOType.PARALLEL:
        assert node.shape is not None
        copies = int(np.prod(node.shape[1:]))  # one kernel instance per output pixel
    products = int(real.sum()) * copies
    use_dsp = wt.width >= model.dsp_min_bits and x_type.width >= model.dsp_min_bits
    multipliers = math.ceil(products / reuse)
    dsp = multipliers if use_dsp else 0
    mult_lut = 0 if use_dsp else int(((digits - 1) * (x_type.width + _span_bits(codes)))[real].sum()) * copies
    mult_lut = math.ceil(mult_lut / reuse)
    terms = nz.sum(axis=1) + (hls_weight_codes(node.bias, bt) != 0 if node.bias is not None else 0)
    adders = int(np.maximum(terms - 1, 0).sum()) * copies
    add_lut = math.ceil(adders * acc.width / reuse)
    levels = max(1, math.ceil(math.log2(max(2, n_in))))
    outputs = wmat.shape[0] * copies
    # registers at every other adder-tree level: terms/2 + terms/8 + ... ~ 2/3 * terms partial sums per
    # output (the DSP's own product register is inside the DSP; constant shift-add products are merged
    # into the first adder level), plus the result register
    ff = math.ceil(int(nz.sum()) * copies * acc.width * 2 / 3 / reuse) + outputs * res.width
    bram = 0
    if reuse > 1 or strategy is Strategy.RESOURCE:
        bits = int(w.size) * wt.width
        per_cycle = math.ceil(w.size / reuse) * wt.width
        bram = max(math.ceil(bits / BRAM18_BITS), math.ceil(per_cycle / 36))
    if node.op is OpKind.CONV and io_type is IOType.STREAM:
        a = node.attrs
        assert isinstance(a, ConvAttrs) and node.inputs[0].shape is not None
        pixels = int(np.prod(node.inputs[0].shape[1:]))
        latency = pixels * reuse + levels + 2
    else:
        latency = 1 + levels + reuse
    return LayerResources(node.name, dsp, mult_lut + add_lut, ff, bram, latency, products, int((~nz).sum()))


def _stream_fifo(node: Node, res: FixedPoint, model: ResourceModel) -> int:
    """BRAM18 of the FIFO carrying ``node``'s output in io_stream (depth = pixels, width = channels*bits)."""
    if node.shape is None or len(node.shape) < 3:
        return 0
    depth = int(np.prod(node.shape[1:]))
    if depth <= model.fifo_bram_min_depth:
        return 0
    width = node.shape[0] * res.width
    return math.ceil(width / 36) * math.ceil(depth / 512)


def estimate_resources(
    graph: Graph | nn.Module,
    precisions: Mapping[str, LayerPrecision],
    reuse_factor: int | Mapping[str, int] = 1,
    strategy: Strategy = Strategy.LATENCY,
    io_type: IOType = IOType.PARALLEL,
    model: ResourceModel = ResourceModel(),
    input_shape: Sequence[int] | None = None,
) -> ResourceEstimate:
    """Estimate DSP/LUT/FF/BRAM18 and latency of the hls4ml design of ``graph`` (weights as they are,
    zeros included) with per-layer ``precisions`` (IR node names; missing layers: ap_fixed<16,6>).

    ``graph`` may also be a PyTorch module, imported with ``input_shape`` (without batch).
    """
    if isinstance(graph, nn.Module):
        if input_shape is None:
            raise ConfigError("estimate_resources: pass input_shape when giving a PyTorch model")
        graph = from_pytorch(graph, tuple(input_shape))
    strategy, io_type = Strategy(strategy), IOType(io_type)
    layers: list[LayerResources] = []
    for node in graph:
        if node.op is OpKind.INPUT or node.op is OpKind.FLATTEN:
            continue
        rf = int(reuse_factor.get(node.name, 1)) if isinstance(reuse_factor, Mapping) else int(reuse_factor)
        if rf < 1:
            raise ConfigError(f"reuse factor of {node.name!r} must be >= 1, got {rf}")
        res = _types(node, precisions)[3]
        if node.op in COMPUTE_OPS:
            if node.op in (OpKind.MATMUL, OpKind.EINSUM):
                raise ConfigError(f"node {node.name!r} multiplies two activations (attention's Q K^T or scores x "
                                  "V): the hls4ml resource estimator covers MLPs and CNNs, not transformers")
            x_type = precisions.get(node.inputs[0].name, LayerPrecision(DEFAULT_FIXED)).result
            layer = _compute_layer(node, x_type, precisions, rf, strategy, io_type, model)
        else:
            # activations / pooling: one comparator (or mux) per value of result width, 1 cycle
            n = int(np.prod(node.shape)) if node.shape is not None else 0
            per_value = (
                n
                if io_type is IOType.PARALLEL
                else (node.shape[0] if node.shape and len(node.shape) == 3 else n)
            )
            lut = per_value * res.width
            if node.op is OpKind.MAXPOOL and node.inputs[0].shape is not None:
                lut *= 3  # 2x2 window: 3 comparators per output value
            latency = 1 if io_type is IOType.PARALLEL else int(np.prod(node.inputs[0].shape[1:] or (1,)))
            layer = LayerResources(node.name, 0, lut, per_value * res.width, 0, latency)
        if io_type is IOType.STREAM:
            layer = layer + LayerResources(bram18=_stream_fifo(node, res, model))
            layer = LayerResources(node.name, *_fields(layer)[1:])
        layers.append(layer)
    return ResourceEstimate(tuple(layers))
