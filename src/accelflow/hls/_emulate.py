"""Numpy bit-accurate emulator of hls4ml's dense/conv/ReLU/max-pool layers (Latency strategy).

An interpreter over the accelflow IR with one rule per operator. Values travel as int64 codes together with
their number of fractional bits. Arithmetic follows ``nnet_dense_latency.h``: every product
``data * weight`` is computed exactly and cast to ``accum_t``; the bias is cast to ``accum_t``; products are
added in ``accum_t``; the sum is cast to the layer's result type. Casts are AP_TRN (floor) and AP_WRAP
unless the types say otherwise. Weights go through hls4ml's text round trip (printed with as many decimals
as fractional bits, read back as double, truncated), and inputs are truncated from float to ``input_t``.
Wrapping accumulators commute with addition (arithmetic mod 2^W), so summation order does not matter and
int64 overflow of the matrix product is harmless for accumulators up to 64 bits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from accelflow.errors import ConfigError, UnsupportedOperatorError
from accelflow.hls._config import DEFAULT_FIXED, LayerPrecision
from accelflow.hls._fixed import FixedPoint, OverflowMode
from accelflow.ir import ConvAttrs, Graph, Node, OpKind, PoolAttrs, interpret
from accelflow.ir.execute import conv_windows

__all__ = ["Fixed", "emulate", "check_emulated", "hls_weight_codes", "EMULATED_OPS"]


@dataclass(frozen=True)
class Fixed:
    """A tensor of fixed-point codes: value = codes * 2**-fractional."""

    codes: np.ndarray
    fractional: int

    def values(self) -> np.ndarray:
        return self.codes.astype(np.float64) * 2.0**-self.fractional


def hls_weight_codes(w: np.ndarray, fp: FixedPoint) -> np.ndarray:
    """Integer codes of ``w`` in type ``fp`` exactly as hls4ml loads them (decimal text -> double -> cast)."""
    decimals = max(0, fp.fractional)
    flat = np.asarray(w, dtype=np.float32).ravel().tolist()
    text_values = np.array([float(f"{v:.{decimals}f}") for v in flat], dtype=np.float64)
    return fp.to_int(text_values).reshape(np.shape(w))


Precisions = Mapping[str, LayerPrecision]
Rule = Callable[[Node, list[Fixed]], Fixed]


def _result(node: Node, prec: Precisions) -> FixedPoint:
    lp = prec.get(node.name)
    return lp.result if lp is not None else DEFAULT_FIXED


def _compute_types(node: Node, prec: Precisions) -> tuple[FixedPoint, FixedPoint, FixedPoint, FixedPoint]:
    lp = prec.get(node.name)
    if lp is None or lp.weight is None or lp.bias is None or lp.accum is None:
        raise ConfigError(f"layer {node.name!r} needs weight, bias and accum types for emulation, got {lp}")
    if lp.accum.overflow is not OverflowMode.WRAP:
        raise ConfigError(f"layer {node.name!r}: only wrapping accumulators are emulated, got {lp.accum}")
    return lp.weight, lp.bias, lp.accum, lp.result


def _accumulate(x: np.ndarray, fx: int, w: np.ndarray, fw: int, acc: FixedPoint) -> np.ndarray:
    """sum_k cast<accum>(x[..., k] * w[k, j]) for x (M, K) and w (K, J) codes, in accum codes (unwrapped)."""
    shift = fx + fw - acc.fractional
    if shift <= 0:  # exact products: one integer matrix product, then scale up
        return (x @ w) << (-shift)
    # products lose bits: floor each product before adding (chunked to bound memory)
    out = np.empty((x.shape[0], w.shape[1]), dtype=np.int64)
    rows = max(1, 2_000_000 // max(1, w.size))
    for i in range(0, x.shape[0], rows):
        out[i : i + rows] = ((x[i : i + rows, :, None] * w[None, :, :]) >> shift).sum(axis=1)
    return out


def _dense_like(node: Node, xin: Fixed, cols: np.ndarray, prec: Precisions) -> tuple[np.ndarray, FixedPoint]:
    wt, bt, acc, _ = _compute_types(node, prec)
    w = node.params["weight"]
    wc = hls_weight_codes(w.reshape(w.shape[0], -1), wt).T  # (K, J)
    summed = _accumulate(cols, xin.fractional, wc, wt.fractional, acc)
    if node.bias is not None:
        b = acc.requantize(hls_weight_codes(node.bias, bt), bt.fractional)
        summed = summed + b[None, :]
    return acc.wrap_int(summed), acc


def _linear(prec: Precisions) -> Rule:
    def rule(node: Node, xs: list[Fixed]) -> Fixed:
        x = xs[0]
        acc_codes, acc = _dense_like(node, x, x.codes.reshape(x.codes.shape[0], -1), prec)
        res = _result(node, prec)
        return Fixed(res.requantize(acc_codes, acc.fractional), res.fractional)

    return rule


def _conv(prec: Precisions) -> Rule:
    def rule(node: Node, xs: list[Fixed]) -> Fixed:
        a = node.attrs
        assert isinstance(a, ConvAttrs)
        if a.spatial_dims != 2 or a.groups != 1 or a.dilation != (1, 1):
            raise UnsupportedOperatorError(
                f"emulator supports plain 2-D convolutions only, not {node.name}: {a}"
            )
        x = xs[0]
        pads = (a.padding[0], a.padding[1], a.padding[2], a.padding[3])
        win = conv_windows(x.codes, (a.kernel[0], a.kernel[1]), (a.stride[0], a.stride[1]), pads)
        n, c, ho, wo, kh, kw = win.shape
        cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * kh * kw)
        acc_codes, acc = _dense_like(node, x, cols, prec)
        res = _result(node, prec)
        out = res.requantize(acc_codes, acc.fractional).reshape(n, ho, wo, -1).transpose(0, 3, 1, 2)
        return Fixed(np.ascontiguousarray(out), res.fractional)

    return rule


def _relu(prec: Precisions) -> Rule:
    def rule(node: Node, xs: list[Fixed]) -> Fixed:
        res = _result(node, prec)
        return Fixed(res.requantize(np.maximum(xs[0].codes, 0), xs[0].fractional), res.fractional)

    return rule


def _maxpool(prec: Precisions) -> Rule:
    def rule(node: Node, xs: list[Fixed]) -> Fixed:
        a = node.attrs
        assert isinstance(a, PoolAttrs)
        if len(a.kernel) != 2 or any(a.padding):
            raise UnsupportedOperatorError(
                f"emulator supports unpadded 2-D max pooling only, not {node.name}"
            )
        lo = np.iinfo(np.int64).min
        win = conv_windows(
            xs[0].codes, (a.kernel[0], a.kernel[1]), (a.stride[0], a.stride[1]), (0, 0, 0, 0), fill=lo
        )
        res = _result(node, prec)
        return Fixed(res.requantize(win.max(axis=(4, 5)), xs[0].fractional), res.fractional)

    return rule


def _flatten(node: Node, xs: list[Fixed]) -> Fixed:
    return Fixed(xs[0].codes.reshape(xs[0].codes.shape[0], -1), xs[0].fractional)


#: Operators the emulator covers (what hls4ml maps to dense/conv/activation/pooling/reshape).
EMULATED_OPS = frozenset({OpKind.LINEAR, OpKind.CONV, OpKind.RELU, OpKind.MAXPOOL, OpKind.FLATTEN})


def check_emulated(graph: Graph, what: str = "emulator") -> None:
    """Raise :class:`UnsupportedOperatorError` naming the operators of ``graph`` outside :data:`EMULATED_OPS`
    (``what`` names the caller in the message)."""
    unsupported = {n.op for n in graph if n.op is not OpKind.INPUT and n.op not in EMULATED_OPS}
    if unsupported:
        raise UnsupportedOperatorError(
            f"{what} cannot run {sorted(o.value for o in unsupported)}; supported: "
            f"{sorted(o.value for o in EMULATED_OPS)} (MLPs and plain CNNs)"
        )


def emulate(graph: Graph, precisions: Precisions, x: np.ndarray, batch: int = 1000) -> np.ndarray:
    """Bit-accurate outputs (float64, (N, classes)) of the hls4ml design of ``graph`` with ``precisions``.

    ``precisions`` maps IR node names to types, the graph input included (``x`` for fx-traced models);
    compute layers need all four types. Missing activation/pool entries default to ``ap_fixed<16,6>``.
    """
    check_emulated(graph)
    rules: dict[OpKind, Rule] = {
        OpKind.LINEAR: _linear(precisions),
        OpKind.CONV: _conv(precisions),
        OpKind.RELU: _relu(precisions),
        OpKind.MAXPOOL: _maxpool(precisions),
        OpKind.FLATTEN: _flatten,
    }
    (inp,) = graph.inputs
    in_type = _result(inp, precisions)
    outs = []
    for i in range(0, len(x), batch):
        chunk = np.asarray(x[i : i + batch], dtype=np.float32)
        feed = {inp.name: Fixed(in_type.to_int(chunk), in_type.fractional)}
        values = interpret(graph, rules, feed)
        outs.append(values[graph.outputs[0]].values())
    return np.concatenate(outs)
