"""Element-wise and reduction layers: activations, element-wise arithmetic, residual add, squeeze-excitation
mul, per-channel scale and shift, concat, global pool.

A :class:`StreamLayer` reads ``elements`` words per image over ``coarse`` streams (coarse divides the
``channels`` words of one pixel) and costs ``elements / coarse`` cycles. Its per-stream datapath depends on
the operator (one rule per op kind in :data:`DATAPATHS`); a constant operand (a per-channel scale or shift,
a PReLU slope, a layer scale) is a weight memory of ``weight_words`` words held on chip beside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from accelflow.dataflow._folding import Folding, divisors
from accelflow.dataflow._layers import PIPELINE_STAGES, LayerModel, WeightMemory
from accelflow.dataflow._resources import (
    CONTROL,
    Resources,
    adder,
    bits_for,
    comparator,
    counter,
    dsp_per_mac,
    fifo,
    memory,
    mux,
    register,
)
from accelflow.ir import OpKind

__all__ = ["StreamLayer", "LOOKUP_DEPTH", "DATAPATHS", "TABLE_OPS"]

#: Entries of the lookup table approximating sigmoid/SiLU/exp and the other transcendental functions (ours).
LOOKUP_DEPTH = 1024
#: Functions evaluated by a lookup table, a multiplier and an adder (interpolation, or x * f(x)).
TABLE_OPS = frozenset(
    {OpKind.SIGMOID, OpKind.SILU, OpKind.GELU, OpKind.TANH, OpKind.ERF, OpKind.EXP, OpKind.LOG, OpKind.SOFTPLUS,
     OpKind.SIN, OpKind.COS, OpKind.SQRT, OpKind.RECIPROCAL}
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class StreamLayer(LayerModel):
    """A layer reading ``elements`` words per image over ``coarse`` streams (coarse divides ``channels``).

    ``buffer_words`` is the skip-connection FIFO of a multi-input layer (the words that wait for the
    other branches; the whole map for squeeze-excitation). ``weight_words`` are the words of a constant
    operand (per-channel scale/shift, PReLU slope), split over the streams' banks when ``weight_split``
    (they vary along the channels), else repeated in every bank; a single word is a register.
    ``exponent`` is a constant scalar exponent of a power, ``bounds`` the number of bounds of a clip.
    """

    channels: int = 1
    elements: int = 1
    buffer_words: int = 0
    inputs: int = 1
    weight_words: int = 0
    weight_split: bool = True
    exponent: float | None = None
    bounds: int = 2

    @property
    def tied_coarse(self) -> bool:
        return True

    def options(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        c = divisors(self.channels)
        return c, c, (1,), (1,)

    def cycles(self, f: Folding) -> float:
        return self.elements / f.coarse_in

    def fill_cycles(self, f: Folding) -> float:
        if self.op is OpKind.GLOBAL_AVGPOOL:
            return self.cycles(f) + PIPELINE_STAGES  # emits after the whole map
        return float(PIPELINE_STAGES)

    def weights(self, f: Folding) -> WeightMemory:
        if self.weight_words <= 1:
            return WeightMemory()
        depth = math.ceil(self.weight_words / f.coarse_in) if self.weight_split else self.weight_words
        return WeightMemory(f.coarse_in, depth, self.weight_bits)

    def resources(self, f: Folding) -> Resources:
        c = f.coarse_in
        per = DATAPATHS.get(self.op, _default)(self, c) + CONTROL
        if self.weight_words == 1:
            per += register(self.weight_bits)
        if self.buffer_words:
            per += fifo(math.ceil(self.buffer_words / c), self.data_bits)
        return per * c + self.out_fifo(c)

    # -- datapath parts ----------------------------------------------------------------------------
    @property
    def multiplier(self) -> Resources:
        """One multiplier: by a weight when the layer has a constant operand, else of two data words."""
        other = self.weight_bits if self.weight_words else self.data_bits
        return Resources(dsp=math.ceil(dsp_per_mac(self.data_bits, other)))

    @property
    def table(self) -> Resources:
        """A function lookup table with interpolation: table, multiplier, adder."""
        d = self.data_bits
        return memory(LOOKUP_DEPTH, d) + Resources(dsp=math.ceil(dsp_per_mac(d, d))) + adder(d)


Datapath = Callable[[StreamLayer, int], Resources]


def _default(s: StreamLayer, c: int) -> Resources:
    return Resources(lut=s.data_bits, ff=s.data_bits)


def _hard(s: StreamLayer, c: int) -> Resources:  # clamp(x+3, 0, 6) (* x) / 6
    d = s.data_bits
    mult = Resources(dsp=math.ceil(dsp_per_mac(d, d)))
    return adder(d) + comparator(d) * 2 + mux(3, d) + mult * (2 if s.op is OpKind.HARDSWISH else 1)


def _global_pool(s: StreamLayer, c: int) -> Resources:
    d = s.data_bits
    acc = d + bits_for(max(s.elements // max(s.channels, 1), 1))
    mult = Resources(dsp=math.ceil(dsp_per_mac(d, d)))
    return adder(acc) + memory(s.channels // c, acc) + mult + counter(s.elements // s.channels)


def _leaky(s: StreamLayer, c: int) -> Resources:  # x if x > 0 else slope * x (ELU: alpha * (exp(x) - 1))
    slope = Resources(dsp=math.ceil(dsp_per_mac(s.data_bits, s.weight_bits)))
    r = comparator(s.data_bits) + mux(2, s.data_bits) + slope
    return r + s.table if s.op is OpKind.ELU else r


def _power(s: StreamLayer, c: int) -> Resources:
    n = s.exponent
    if n is not None and float(n).is_integer() and 2 <= n <= 4:  # x^2 (variance), x^3 (GELU's tanh form)
        return Resources(dsp=math.ceil(dsp_per_mac(s.data_bits, s.data_bits))) * (int(n) - 1)
    return s.table * 2  # exp(n * log x)


DATAPATHS: dict[OpKind, Datapath] = {
    OpKind.RELU: lambda s, c: mux(2, s.data_bits),
    OpKind.RELU6: lambda s, c: comparator(s.data_bits) * 2 + mux(3, s.data_bits),
    OpKind.THRESHOLD_RELU: lambda s, c: comparator(s.data_bits) * 2 + mux(3, s.data_bits),
    OpKind.CLIP: lambda s, c: comparator(s.data_bits) * s.bounds + mux(s.bounds + 1, s.data_bits),
    OpKind.HARDSWISH: _hard,
    OpKind.HARDSIGMOID: _hard,
    OpKind.LEAKY_RELU: _leaky,
    OpKind.PRELU: _leaky,
    OpKind.ELU: _leaky,
    **{op: (lambda s, c: s.table) for op in TABLE_OPS},
    OpKind.NEG: lambda s, c: adder(s.data_bits),
    OpKind.ABS: lambda s, c: adder(s.data_bits) + mux(2, s.data_bits),
    OpKind.ADD: lambda s, c: adder(s.data_bits),
    OpKind.SUB: lambda s, c: adder(s.data_bits),
    OpKind.MUL: lambda s, c: s.multiplier + Resources(lut=s.data_bits, ff=s.data_bits),
    OpKind.DIV: lambda s, c: s.table + s.multiplier,  # reciprocal table, then multiply
    OpKind.POW: _power,
    OpKind.MAX: lambda s, c: comparator(s.data_bits) + mux(2, s.data_bits),
    OpKind.MIN: lambda s, c: comparator(s.data_bits) + mux(2, s.data_bits),
    OpKind.EQUAL: lambda s, c: comparator(s.data_bits),
    OpKind.LESS: lambda s, c: comparator(s.data_bits),
    OpKind.GREATER: lambda s, c: comparator(s.data_bits),
    OpKind.WHERE: lambda s, c: mux(2, s.data_bits),
    OpKind.AFFINE: lambda s, c: s.multiplier + adder(s.data_bits),
    OpKind.GLOBAL_AVGPOOL: _global_pool,
    OpKind.CONCAT: lambda s, c: mux(s.inputs, s.data_bits),
}
