"""Stages that move or select words without arithmetic on them (beyond interpolation).

* :class:`ReorderLayer`: a transpose that changes the order of the stream (a channel shuffle re-orders
  the C words of each pixel); a transpose that only renames axes (``(C, H, W) <-> (H, W, C)`` around a
  per-pixel layer) is no stage at all (:mod:`accelflow.dataflow._layout`).
* :class:`SelectLayer`: slice and gather with constant indices (a channel split, a crop, the class token).
* :class:`PadLayer`: constant padding no conv absorbed (fpgaConvNet's pad module on its own).
* :class:`BroadcastLayer`: an expand of an activation (repeats held words).
* :class:`ResizeLayer`: nearest or (bi)linear resampling of the map (decoders' upsampling).

All fold like the other stream layers: ``coarse`` parallel streams, one word per cycle per stream in
and out, so a stage takes ``max(words in, words out) / coarse`` cycles per image.
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
from accelflow.dataflow._stream import StreamLayer

__all__ = ["ReorderLayer", "SelectLayer", "PadLayer", "BroadcastLayer", "ResizeLayer"]


@dataclass(frozen=True, eq=False)
class ReorderLayer(StreamLayer):
    """Re-orders the stream in blocks of ``block`` words (no arithmetic).

    Each block is written in arrival order into a ping-pong buffer and read out in the new order while the
    next block is written, so the stage runs at full rate and emits a block ``block / coarse`` cycles after
    it starts reading it. Words may change stream, so each output stream reads the ``coarse`` banks
    through a ``coarse``:1 multiplexer.
    """

    block: int = 1

    def fill_cycles(self, f: Folding) -> float:
        return math.ceil(self.block / f.coarse_in) + PIPELINE_STAGES

    def resources(self, f: Folding) -> Resources:
        d, c = self.data_bits, f.coarse_in
        words = math.ceil(self.block / c)
        per = memory(2 * words, d) + mux(c, d) + counter(words) * 2 + CONTROL
        return per * c + self.out_fifo(c)


@dataclass(frozen=True, eq=False)
class SelectLayer(StreamLayer):
    """Forwards the words whose indices lie in the selection and drops the others.

    Every input word is read (``elements / coarse`` cycles); per stream one index counter and two
    comparators per selected axis of size ``dims[i]``; a gather with ``index_words`` constant indices
    keeps them in a small table and compares against the current one.
    """

    dims: tuple[int, ...] = ()
    index_words: int = 0

    def resources(self, f: Folding) -> Resources:
        c = f.coarse_in
        per = CONTROL
        for size in self.dims:
            per += counter(size) + comparator(bits_for(size)) * 2
        if self.index_words:
            bits = bits_for(max(self.dims, default=2))
            per += memory(self.index_words, bits) + counter(self.index_words)
        return per * c + self.out_fifo(c)


@dataclass(frozen=True, eq=False)
class PadLayer(StreamLayer):
    """Inserts the pad value around the map: ``out_elements / coarse`` cycles; per stream a counter per
    padded axis (sizes ``dims``) and a 2:1 multiplexer between the input and the pad value (the conv's
    pad module)."""

    out_elements: int = 1
    dims: tuple[int, ...] = ()

    def cycles(self, f: Folding) -> float:
        return max(self.elements, self.out_elements) / f.coarse_in

    def resources(self, f: Folding) -> Resources:
        d, c = self.data_bits, f.coarse_in
        per = mux(2, d) + CONTROL
        for size in self.dims:
            per += counter(size)
        return per * c + self.out_fifo(c)


@dataclass(frozen=True, eq=False)
class BroadcastLayer(StreamLayer):
    """Repeats its input to a larger shape: holds ``hold`` words (the block that is repeated) and emits
    ``out_elements`` words."""

    out_elements: int = 1
    hold: int = 1

    def cycles(self, f: Folding) -> float:
        return max(self.elements, self.out_elements) / f.coarse_in

    def fill_cycles(self, f: Folding) -> float:
        return math.ceil(self.hold / f.coarse_in) + PIPELINE_STAGES

    def resources(self, f: Folding) -> Resources:
        d, c = self.data_bits, f.coarse_in
        words = math.ceil(self.hold / c)
        per = memory(words, d) + counter(words) + counter(max(self.out_elements // max(self.hold, 1), 1)) + CONTROL
        return per * c + self.out_fifo(c)


@dataclass(frozen=True, eq=False)
class ResizeLayer(StreamLayer):
    """Nearest or (bi)linear resampling of a ``(C, h_in, w_in)`` map to ``(C, h_out, w_out)``.

    Nearest: each input row is held in a line buffer (``w_in * C / coarse`` words per stream) and replayed
    for every output row that maps to it. Linear: two input rows are held and every output word is two
    linear interpolations (horizontal, then vertical: a subtraction, a multiply and an addition each); the
    interpolation weights of the output rows and columns come from a shared table. Cycles:
    ``max(words in, words out) / coarse``; the first output waits for one (nearest) or two (linear) input
    rows.
    """

    h_in: int = 1
    w_in: int = 1
    h_out: int = 1
    w_out: int = 1
    linear: bool = False

    @property
    def rows_held(self) -> int:
        return 2 if self.linear else 1

    def cycles(self, f: Folding) -> float:
        out = self.h_out * self.w_out * self.channels
        return max(self.elements, out) / f.coarse_in

    def fill_cycles(self, f: Folding) -> float:
        return math.ceil(self.rows_held * self.w_in * self.channels / f.coarse_in) + PIPELINE_STAGES

    def resources(self, f: Folding) -> Resources:
        d, c = self.data_bits, f.coarse_in
        row = self.w_in * math.ceil(self.channels / c)
        per = memory(row, d) * self.rows_held + counter(self.h_out) + counter(self.w_out) + counter(self.channels // c)
        per += CONTROL
        shared = Resources()
        if self.linear:
            per += Resources(dsp=math.ceil(dsp_per_mac(d, d))) * 2 + adder(d, 4)
            shared = memory(self.h_out + self.w_out, d)
        return per * c + shared + self.out_fifo(c)
