"""Element-wise and reduction layers: activations, residual add, squeeze-excitation mul, global pool."""

from __future__ import annotations

import math
from dataclasses import dataclass

from accelflow.dataflow._folding import Folding, divisors
from accelflow.dataflow._layers import PIPELINE_STAGES, LayerModel
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
)
from accelflow.ir import OpKind

__all__ = ["StreamLayer", "LOOKUP_DEPTH"]

#: Entries of the lookup table approximating sigmoid/SiLU/exp (ours).
LOOKUP_DEPTH = 1024


@dataclass(frozen=True, eq=False)
class StreamLayer(LayerModel):
    """A layer reading ``elements`` words per image over ``coarse`` streams (coarse divides ``channels``).

    ``buffer_words`` is the skip-connection FIFO of a two-input add/mul (the words that wait for the
    other branch; the whole map for squeeze-excitation). ``reduce_to`` is the output words of a
    global pool (one per channel).
    """

    channels: int = 1
    elements: int = 1
    buffer_words: int = 0
    inputs: int = 1

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

    def resources(self, f: Folding) -> Resources:
        d, c = self.data_bits, f.coarse_in
        mult = Resources(dsp=math.ceil(dsp_per_mac(d, d)))
        op = self.op
        if op is OpKind.RELU:
            per = mux(2, d)
        elif op in (OpKind.RELU6, OpKind.THRESHOLD_RELU):
            per = comparator(d) * 2 + mux(3, d)
        elif op in (OpKind.HARDSWISH, OpKind.HARDSIGMOID):  # clamp(x+3, 0, 6) (* x) / 6
            per = adder(d) + comparator(d) * 2 + mux(3, d) + mult * (2 if op is OpKind.HARDSWISH else 1)
        elif op in (OpKind.SIGMOID, OpKind.SILU, OpKind.SOFTMAX):  # table lookup (+ multiply)
            per = memory(LOOKUP_DEPTH, d) + mult + adder(d)
            if op is OpKind.SOFTMAX:
                per += adder(d + bits_for(self.channels)) + mult
        elif op is OpKind.ADD:
            per = adder(d)
        elif op is OpKind.MUL:
            per = mult + Resources(lut=d, ff=d)
        elif op is OpKind.GLOBAL_AVGPOOL:
            acc = d + bits_for(max(self.elements // max(self.channels, 1), 1))
            per = adder(acc) + memory(self.channels // c, acc) + mult + counter(self.elements // self.channels)
        elif op is OpKind.CONCAT:
            per = mux(self.inputs, d)
        else:
            per = Resources(lut=d, ff=d)
        per += CONTROL
        if self.buffer_words:
            per += fifo(math.ceil(self.buffer_words / c), d)
        return per * c + self.out_fifo(c)
