"""Stages that combine a group of words before they can emit: layer norm, softmax and reductions.

A group is the smallest innermost block of the stream that holds every word the operator combines
(:func:`~accelflow.dataflow._layout.group_words`): one pixel's C channels for a layer norm over channels,
one token's D features for a transformer's layer norm, the whole map for a global reduction. All of
them fold like the other stream layers: ``coarse`` parallel streams (coarse divides the words of one
pixel), each holding ``group / coarse`` words of every group, one word per cycle per stream, so a stage
takes ``elements / coarse`` cycles per image. Module costs use the primitives of
:mod:`accelflow.dataflow._resources`; see docs/dataflow.md for the table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from accelflow.dataflow._folding import Folding
from accelflow.dataflow._layers import PIPELINE_STAGES
from accelflow.dataflow._resources import (
    CONTROL,
    Resources,
    adder,
    bits_for,
    comparator,
    counter,
    dsp_per_mac,
    memory,
    mux,
)
from accelflow.dataflow._stream import LOOKUP_DEPTH, StreamLayer
from accelflow.ir import OpKind

__all__ = ["NormLayer", "ReduceLayer"]


@dataclass(frozen=True, eq=False)
class NormLayer(StreamLayer):
    """Layer norm or softmax over groups of ``group`` words (two passes over a buffered group).

    Pass 1 gathers the group's statistics while its words are written to a ping-pong buffer (layer norm:
    sum and sum of squares; softmax: running maximum and the running sum of exponentials, rescaled when
    the maximum grows); pass 2 reads the group back and normalises it (layer norm: ``(x - mean) * rstd *
    weight + bias``; softmax: ``exp(x - max) / sum``) while the next group is written. So the stage runs
    at one word per cycle per stream and emits a group ``group / coarse`` cycles after it starts reading
    it. The streams' partial statistics meet in adder (and comparator) trees; one shared unit turns them
    into mean and 1/sqrt(variance) (a lookup table) or 1/sum.
    """

    group: int = 1
    has_weight: bool = False
    has_bias: bool = False

    def fill_cycles(self, f: Folding) -> float:
        return math.ceil(self.group / f.coarse_in) + PIPELINE_STAGES

    def resources(self, f: Folding) -> Resources:
        d, w, c = self.data_bits, self.weight_bits, f.coarse_in
        per_group = math.ceil(self.group / c)
        acc = 2 * d + bits_for(self.group)
        mult = Resources(dsp=math.ceil(dsp_per_mac(d, d)))
        per = memory(2 * per_group, d) + counter(per_group) + CONTROL  # ping-pong group buffer
        if self.op is OpKind.LAYERNORM:
            per += mult + adder(acc, 2)  # x^2; sum and sum of squares
            per += adder(d) + mult  # x - mean, * rstd
            if self.has_weight:
                per += Resources(dsp=math.ceil(dsp_per_mac(d, w)))
            if self.has_bias:
                per += adder(d)
            # mean = sum / G, E[x^2] = sumsq / G, mean^2, their difference, rsqrt by table
            shared = adder(acc, 2 * (c - 1)) + mult * 3 + adder(acc) + memory(LOOKUP_DEPTH, d) + CONTROL
        else:  # softmax
            per += comparator(d) + mux(2, d) + adder(d, 2)  # running max; x - max (both passes)
            per += memory(LOOKUP_DEPTH, d) * 2 + mult * 2 + adder(acc)  # exp tables; rescale, normalise; sum
            shared = (comparator(d) + mux(2, d)) * (c - 1) + adder(acc, c - 1) + memory(LOOKUP_DEPTH, d) + CONTROL
        return per * c + shared + self.out_fifo(c)


@dataclass(frozen=True, eq=False)
class ReduceLayer(StreamLayer):
    """Sum, mean, maximum or minimum over some axes: accumulates as the words stream in.

    Each group of ``group`` words yields ``results`` outputs; every stream keeps one accumulator per
    result it works on (``results / coarse`` when the reduced axes are outside a pixel, e.g. a mean over
    the map per channel; all ``results`` and an adder tree across the streams when a pixel's channels are
    reduced, e.g. a mean over channels per pixel). A mean multiplies by 1/N once per result.
    """

    group: int = 1
    results: int = 1
    across: bool = False

    def fill_cycles(self, f: Folding) -> float:
        return math.ceil(self.group / f.coarse_in) + PIPELINE_STAGES

    def resources(self, f: Folding) -> Resources:
        d, c = self.data_bits, f.coarse_in
        reduced = max(self.group // max(self.results, 1), 1)
        acc = d + bits_for(reduced)
        combine = comparator(acc) + mux(2, acc) if self.op in (OpKind.REDUCE_MAX, OpKind.REDUCE_MIN) else adder(acc)
        words = self.results if self.across else math.ceil(self.results / c)
        per = combine + memory(words, acc) + counter(math.ceil(self.group / c)) + CONTROL
        outputs = 1 if self.across else c
        shared = combine * (c - 1) if self.across else Resources()
        if self.op is OpKind.REDUCE_MEAN:
            shared += Resources(dsp=math.ceil(dsp_per_mac(d, d))) * outputs
        return per * c + shared + self.out_fifo(outputs)
