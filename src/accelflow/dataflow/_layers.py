"""Hardware models of one layer: legal foldings, cycles per image and resources.

Three kinds cover the IR: :class:`ConvLayer` (convolution; linear = 1x1 convolution on a 1x1 map or per
pixel/token; :class:`ConvTransposeLayer` in sub-pixel form), :class:`PoolLayer` (max/average pooling) and
:class:`~accelflow.dataflow.StreamLayer` and its kinds (activations, element-wise arithmetic, global
pooling, concat, norms, reductions, re-ordering, selection, padding, resizing). Each is a frozen record of
the shapes it needs; cost methods are pure functions of a :class:`~accelflow.dataflow.Folding`. Module
costs are built from the primitives of :mod:`accelflow.dataflow._resources` (see docs/dataflow.md for the
derivation).
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from accelflow.dataflow._folding import Folding, divisors
from accelflow.dataflow._lockstep import SampledLockStep, WindowSample
from accelflow.dataflow._resources import (
    CONTROL,
    Resources,
    adder,
    bits_for,
    bram18_for,
    comparator,
    counter,
    dsp_per_mac,
    fifo,
    memory,
    mux,
    register,
    uram_for,
    zero_detect,
)
from accelflow.dataflow._sparse import (
    LockStep,
    expected_max_stream_cycles,
    expected_window_cycles,
    max_stream_cycles,
    snake_streams,
    window_cycle_variance,
)
from accelflow.errors import ConfigError
from accelflow.ir import OpKind

__all__ = [
    "LayerModel",
    "ConvLayer",
    "ConvTransposeLayer",
    "PoolLayer",
    "WeightMemory",
    "SPARSE_MIN",
    "STREAM_FIFO_DEPTH",
]

#: Layers whose mean zero-product fraction is below this are built dense (REFERENCE section 3).
SPARSE_MIN = 0.10
#: Depth of the FIFO on every output stream (ours: one SRL32 per bit).
STREAM_FIFO_DEPTH = 32
#: Register stages from a layer's first input to its first output, on top of its window fill (ours).
PIPELINE_STAGES = 8


@dataclass(frozen=True)
class WeightMemory:
    """``arrays`` independent weight memories of ``depth`` x ``width`` bits (one per MAC lane)."""

    arrays: int = 0
    depth: int = 0
    width: int = 0

    @property
    def bits(self) -> int:
        return self.arrays * self.depth * self.width

    def on_chip(self) -> Resources:
        """LUTRAM under 1,024 bits per array, else BRAM18."""
        return memory(self.depth, self.width) * self.arrays

    def in_uram(self) -> Resources:
        return Resources(uram=uram_for(self.depth, self.width) * self.arrays)

    def bram18(self) -> int:
        return bram18_for(self.depth, self.width) * self.arrays


@dataclass(frozen=True, eq=False)
class LayerModel(ABC):
    """Common fields: the IR node name and op, data widths, and stream geometry."""

    name: str
    op: OpKind
    data_bits: int
    weight_bits: int

    sparse: bool = False
    sparsity: float = 0.0
    #: names of the hardware layers feeding this one (through flatten/reshape)
    producers: tuple[str, ...] = ()

    @abstractmethod
    def options(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """Legal values of (coarse_in, coarse_out, coarse_group, fine), each increasing."""

    @abstractmethod
    def cycles(self, f: Folding) -> float:
        """Clock cycles to process one image at folding ``f``."""

    @abstractmethod
    def resources(self, f: Folding) -> Resources:
        """DSP/LUT/FF/BRAM of the layer's modules, excluding its weight memory."""

    def weights(self, f: Folding) -> WeightMemory:
        return WeightMemory()

    def fill_cycles(self, f: Folding) -> float:
        """Cycles from the layer's first input to its first output (its share of the pipeline depth)."""
        return float(PIPELINE_STAGES)

    @property
    def tied_coarse(self) -> bool:
        """True when coarse_in and coarse_out must be equal (one set of streams through the layer)."""
        return False

    def is_legal(self, f: Folding) -> bool:
        if f.dense:  # only a conv carrying sparsity has a dense alternative (ConvLayer)
            return False
        ci, co, cg, fi = self.options()
        ok = f.coarse_in in ci and f.coarse_out in co and f.coarse_group in cg and f.fine in fi
        return ok and (not self.tied_coarse or f.coarse_in == f.coarse_out)

    def minimal(self) -> Folding:
        return Folding(1, 1, 1, 1)

    def maximal(self) -> Folding:
        ci, co, cg, fi = self.options()
        return Folding(ci[-1], co[-1], cg[-1], fi[-1])

    def is_maximal(self, f: Folding) -> bool:
        """``f`` unfolds the layer fully (more resources cannot make it faster)."""
        return f == self.maximal()

    def alternatives(self, f: Folding) -> list[Folding]:
        """The foldings of the layer's other implementation (none but a sparse conv's dense one)."""
        return []

    def all_foldings(self) -> list[Folding]:
        ci, co, cg, fi = self.options()
        if self.tied_coarse:
            return [Folding(c, c, g, n) for c in ci for g in cg for n in fi]
        return [Folding(a, b, g, n) for a in ci for b in co for g in cg for n in fi]

    def neighbours(self, f: Folding, up: bool = True) -> list[Folding]:
        """Foldings one legal step up (or down) in a single factor."""
        out = []
        ci, co, cg, fi = self.options()
        for axis, values in enumerate((ci, co, cg, fi)):
            cur = (f.coarse_in, f.coarse_out, f.coarse_group, f.fine)[axis]
            idx = values.index(cur)
            nxt = idx + 1 if up else idx - 1
            if not 0 <= nxt < len(values):
                continue
            v = values[nxt]
            parts = [f.coarse_in, f.coarse_out, f.coarse_group, f.fine]
            parts[axis] = v
            if self.tied_coarse and axis in (0, 1):
                if axis == 1:
                    continue
                parts[1] = v
            out.append(Folding(*parts))
        return out

    def out_fifo(self, streams: int) -> Resources:
        return fifo(STREAM_FIFO_DEPTH, self.data_bits) * streams


@dataclass(frozen=True, eq=False)
class ConvLayer(LayerModel):
    """Convolution (or a linear layer as a 1x1 convolution on a 1x1 map) with optional sparsity.

    Geometry: ``channels`` (C) -> ``filters`` (F) in ``groups``; kernel ``kh`` x ``kw``; maps
    ``h_in`` x ``w_in`` -> ``h_out`` x ``w_out``. ``hist`` (C, K*K+1) is the per-channel zero-product
    histogram used when ``sparse``; ``windows`` the sampled window zero patterns that
    ``lockstep=LockStep.SAMPLED`` needs.
    """

    channels: int = 1
    filters: int = 1
    groups: int = 1
    kh: int = 1
    kw: int = 1
    h_in: int = 1
    w_in: int = 1
    h_out: int = 1
    w_out: int = 1
    padded: bool = False
    has_bias: bool = True
    hist: np.ndarray | None = None
    lockstep: LockStep = LockStep.MEAN
    windows: WindowSample | None = field(default=None, repr=False)
    _window_cycles: np.ndarray | None = field(default=None, repr=False)
    _window_var: np.ndarray | None = field(default=None, repr=False)
    _memo: dict[tuple[int, int, int], float] = field(default_factory=dict, repr=False)
    _sampled: SampledLockStep | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.sparse and self.hist is not None and self._window_cycles is None:
            object.__setattr__(self, "_window_cycles", expected_window_cycles(self.hist))
        if self.sparse and self.hist is not None and self.lockstep is LockStep.EXPECTED_MAX:
            object.__setattr__(self, "_window_var", window_cycle_variance(self.hist))
        if self.sparse and self.hist is not None and self.lockstep is LockStep.SAMPLED:
            object.__setattr__(self, "_sampled", self._checked_windows().lockstep_model())

    def _checked_windows(self) -> WindowSample:
        w = self.windows
        if w is None:
            raise ConfigError(
                f"layer {self.name!r}: lockstep='sampled' needs sampled window zero patterns (a WindowSample "
                "annotation: accelflow.sparsity.measure_sparsity(..., window_positions=N) or a .windows.npz "
                "file beside the ONNX); use lockstep='mean' without them"
            )
        want = (self.channels, self.filters, self.kernel_size, self.groups)
        if (w.channels, w.filters, w.kernel_taps, w.groups) != want:
            raise ConfigError(
                f"layer {self.name!r}: window sample is (channels, filters, taps, groups) = "
                f"{(w.channels, w.filters, w.kernel_taps, w.groups)}, the layer is {want}"
            )
        return w

    @property
    def kernel_size(self) -> int:
        return self.kh * self.kw

    # -- the dense alternative of a sparse conv (Folding.dense) ------------------------------
    @cached_property
    def dense_variant(self) -> ConvLayer:
        """This conv built without zero skipping: what a ``Folding(..., dense=True)`` costs. Only the vector
        dots' cycles and resources differ (:meth:`compute_cycles`, :meth:`resources`)."""
        return dataclasses.replace(self, sparse=False, hist=None, lockstep=LockStep.MEAN, windows=None,
                                   _window_cycles=None, _window_var=None, _memo={})  # fmt: skip

    def is_legal(self, f: Folding) -> bool:
        if f.dense:
            return self.sparse and self.dense_variant.is_legal(f.plain)
        return super().is_legal(f)

    def is_maximal(self, f: Folding) -> bool:
        return self.dense_variant.is_maximal(f.plain) if f.dense else super().is_maximal(f)

    def all_foldings(self) -> list[Folding]:
        """The sparse foldings and, for a sparse conv, the dense alternatives."""
        own = super().all_foldings()
        return own + [g.as_dense() for g in self.dense_variant.all_foldings()] if self.sparse else own

    def alternatives(self, f: Folding) -> list[Folding]:
        """Every folding of the other implementation: the sparse ones for a dense-built ``f``, the dense
        ones (``dense=True``) otherwise; none for a conv without sparsity."""
        if not self.sparse:
            return []
        return super().all_foldings() if f.dense else [g.as_dense() for g in self.dense_variant.all_foldings()]

    def neighbours(self, f: Folding, up: bool = True) -> list[Folding]:
        """One legal step in one factor, keeping the implementation (sparse or dense)."""
        if f.dense:
            return [g.as_dense() for g in self.dense_variant.neighbours(f.plain, up)]
        return super().neighbours(f, up)

    def options(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        kk = self.kernel_size
        fine = tuple(range(1, kk + 1)) if self.sparse else divisors(kk)
        return (
            divisors(self.channels // self.groups),
            divisors(self.filters // self.groups),
            divisors(self.groups),
            fine,
        )

    # -- cycles --------------------------------------------------------------------------------
    def compute_cycles(self, f: Folding) -> float:
        """Cycles of the vector dots alone (no data-movement floor)."""
        if f.dense:
            return self.dense_variant.compute_cycles(f.plain)
        cg_filters = self.filters // self.groups
        positions = self.h_out * self.w_out
        if not self.sparse or self._window_cycles is None:
            # dense: H_out*W_out*(C/groups)*K*K*F / (fine*ci*co*cg); rows*cols, never rows*rows
            per_window = math.ceil(self.kernel_size / f.fine)
            windows = positions * (self.channels // self.groups) * self.filters
            return windows * per_window / (f.coarse_in * f.coarse_out * f.coarse_group)
        streams = f.coarse_in * f.coarse_group
        per_unit = cg_filters / f.coarse_out  # windows per channel per position in one unit
        if self._sampled is not None:  # mean over sampled positions of the exact lock-step maximum
            key = (f.fine, streams, f.coarse_out)
            hit = self._memo.get(key)
            if hit is None:
                dealing = snake_streams(self._window_cycles[:, f.fine - 1], streams)
                hit = self._sampled.cycles(f.fine, dealing, f.coarse_out)
                self._memo[key] = hit
            return positions * hit
        if self._window_var is not None:  # expected max over lock-stepped streams, per position
            key = (f.fine, streams, f.coarse_out)
            hit = self._memo.get(key)
            if hit is None:
                hit = expected_max_stream_cycles(
                    self._window_cycles[:, f.fine - 1], self._window_var[:, f.fine - 1], streams, per_unit
                )
                self._memo[key] = hit
            return positions * hit
        key = (f.fine, streams, 0)
        slowest = self._memo.get(key)
        if slowest is None:
            slowest = max_stream_cycles(self._window_cycles[:, f.fine - 1], streams)
            self._memo[key] = slowest
        return positions * per_unit * slowest

    def movement_cycles(self, f: Folding) -> float:
        """One word per cycle per stream in and out: H_in*W_in*C/streams_in, H_out*W_out*F/streams_out."""
        cin = self.h_in * self.w_in * self.channels / (f.coarse_in * f.coarse_group)
        cout = self.h_out * self.w_out * self.filters / (f.coarse_out * f.coarse_group)
        return max(cin, cout)

    def cycles(self, f: Folding) -> float:
        return max(self.compute_cycles(f), self.movement_cycles(f))

    def fill_cycles(self, f: Folding) -> float:
        if self.h_out <= 1:
            return self.cycles(f) + PIPELINE_STAGES  # a 1x1 map (linear) emits after reading everything
        return self.cycles(f) * min(1.0, self.kh / self.h_out) + PIPELINE_STAGES

    # -- resources -----------------------------------------------------------------------------
    def weights(self, f: Folding) -> WeightMemory:
        total = self.filters * (self.channels // self.groups) * self.kernel_size
        return WeightMemory(f.lanes, math.ceil(total / f.lanes), self.weight_bits)

    def resources(self, f: Folding) -> Resources:
        if f.dense:
            return self.dense_variant.resources(f.plain)
        d, w, kk = self.data_bits, self.weight_bits, self.kernel_size
        cg_ch, cg_f = self.channels // self.groups, self.filters // self.groups
        acc = d + w + bits_for(cg_ch * kk)
        n_in = f.coarse_in * f.coarse_group
        n_dot = f.coarse_in * f.coarse_out * f.coarse_group
        n_out = f.coarse_out * f.coarse_group
        ch_per_stream = self.channels // n_in
        total = Resources(dsp=math.ceil(f.lanes * dsp_per_mac(d, w)))
        per_in = Resources()
        if self.padded:  # pad: row/col counters and a zero-insertion mux
            per_in += counter(self.w_in + self.kw) + counter(self.h_in + self.kh) + mux(2, d) + CONTROL
        if kk > 1:  # sliding window: (kh-1) line buffers + the K*K window registers
            per_in += memory(self.w_in * ch_per_stream, d) * (self.kh - 1) + register(kk * d)
            per_in += counter(self.w_in) + counter(self.h_in) + counter(ch_per_stream) + CONTROL
        if f.coarse_out > 1:  # fork: one register stage, ready AND-tree over the branches
            per_in += register(kk * d) + Resources(lut=f.coarse_out)
        total += per_in * n_in
        total += self._vector_dot(f, acc) * n_dot
        if cg_ch // f.coarse_in > 1:  # accumulate partial sums of F/co filters over C/ci channels
            buf = memory(cg_f // f.coarse_out * (self.groups // f.coarse_group), acc)
            total += (adder(acc) + buf + counter(cg_ch // f.coarse_in) + CONTROL) * n_dot
        per_out = Resources(lut=d, ff=d)  # glue: round/saturate to d bits
        if f.coarse_in > 1:
            per_out += adder(acc, f.coarse_in - 1) + CONTROL
        if self.has_bias:
            per_out += adder(d) + memory(cg_f // f.coarse_out * (self.groups // f.coarse_group), d)
        total += per_out * n_out
        return total + self.out_fifo(n_out)

    def _vector_dot(self, f: Folding, acc: int) -> Resources:
        d, w, kk, n = self.data_bits, self.weight_bits, self.kernel_size, f.fine
        r = adder(acc, n - 1) + CONTROL  # adder tree over the fine lanes
        if self.sparse:
            # zero detect of every product, prefix count of non-zeros, a KK:1 crossbar per lane that
            # packs non-zero (activation, weight) pairs, the window/weight registers and an accumulator
            r += (zero_detect(d) + zero_detect(w)) * kk
            r += Resources(lut=kk * bits_for(kk + 1), ff=bits_for(kk + 1))
            r += mux(kk, d + w) * n + register(kk * (d + w)) + adder(acc)
        elif kk // n > 1:  # serialise the window over K*K/fine cycles and accumulate
            r += mux(kk // n, d) * n + adder(acc)
        return r


@dataclass(frozen=True, eq=False)
class ConvTransposeLayer(ConvLayer):
    """A transposed convolution in sub-pixel form: ``phases`` = stride_h x stride_w convolutions of
    ``kh x kw = ceil(K/stride)`` taps each, run on the input map, whose outputs interleave into the
    ``h_out x w_out`` map (no multiplications by inserted zeros).

    Cycles and DSPs are the conv's formulas on the output map (``H_out*W_out*(C/groups)*kh*kw*F / lanes``:
    every output pixel is one phase's window); the weight memory holds all phases' taps
    (``F*(C/groups)*kh*kw*phases`` words), and each input stream keeps one more line buffer so an input
    row's windows can be replayed for the ``stride_h`` output rows they feed.
    """

    phases: int = 1

    def weights(self, f: Folding) -> WeightMemory:
        total = self.filters * (self.channels // self.groups) * self.kernel_size * self.phases
        return WeightMemory(f.lanes, math.ceil(total / f.lanes), self.weight_bits)

    def resources(self, f: Folding) -> Resources:
        base = super().resources(f)
        if self.phases == 1:
            return base
        n_in = f.coarse_in * f.coarse_group
        replay = memory(self.w_in * (self.channels // n_in), self.data_bits) + counter(self.phases)
        return base + replay * n_in


@dataclass(frozen=True, eq=False)
class PoolLayer(LayerModel):
    """Max or average pooling over ``channels`` channels with ``coarse`` parallel streams."""

    channels: int = 1
    kh: int = 1
    kw: int = 1
    h_in: int = 1
    w_in: int = 1
    h_out: int = 1
    w_out: int = 1
    padded: bool = False

    @property
    def tied_coarse(self) -> bool:
        return True

    def options(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        c = divisors(self.channels)
        return c, c, (1,), (1,)

    def cycles(self, f: Folding) -> float:
        return max(self.h_in * self.w_in, self.h_out * self.w_out) * self.channels / f.coarse_in

    def fill_cycles(self, f: Folding) -> float:
        return self.cycles(f) * min(1.0, self.kh / max(self.h_out, 1)) + PIPELINE_STAGES

    def resources(self, f: Folding) -> Resources:
        d, kk = self.data_bits, self.kh * self.kw
        per = register(kk * d) + memory(self.w_in * self.channels // f.coarse_in, d) * (self.kh - 1)
        per += counter(self.w_in) + counter(self.h_in) + CONTROL
        if self.padded:
            per += mux(2, d) + counter(self.w_in + self.kw)
        if self.op is OpKind.MAXPOOL:
            per += (comparator(d) + mux(2, d)) * (kk - 1)
        else:  # average: adder tree then a multiply by 1/(K*K)
            per += adder(d + bits_for(kk), kk - 1) + Resources(dsp=math.ceil(dsp_per_mac(d, d)))
        return per * f.coarse_in + self.out_fifo(f.coarse_in)
