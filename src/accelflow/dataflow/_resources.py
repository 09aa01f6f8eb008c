"""Resource records and the primitive cost models every module cost is built from.

All LUT/FF numbers here are **our** estimates (REFERENCE section 3 says the original fitted linear
models to synthesis results, which are not available offline). They are derived bottom-up from the
structure of a Xilinx UltraScale+ slice, one primitive at a time, and every coefficient is
non-negative, so no module cost can go negative (a known defect of the original model):

========================  =====================================  ====================================
primitive                 LUTs                                   FFs
========================  =====================================  ====================================
register, b bits          0                                      b
adder/subtractor, b bits  b (one LUT6 + carry-chain bit per bit)  b (registered output)
m:1 multiplexer, b bits   b * ceil((m-1)/3) (LUT6 = 4:1 mux)     b (registered output)
counter, b bits           b                                      b
zero detect, b bits       ceil(b/6) (6-input AND per LUT)        1
comparator, b bits        b (carry-chain compare)                1
SRL FIFO, depth<=32       b * ceil(depth/32) (SRLC32E)           b
LUTRAM, depth x b         b * ceil(depth/64) (RAM64X1S)          b
========================  =====================================  ====================================

Memories of 1,024 bits or more go to 18 Kb block RAM, using the best of the BRAM18 aspect ratios
(1x16384, 2x8192, 4x4096, 9x2048, 18x1024, 36x512); smaller ones to LUTRAM (REFERENCE section 3).
An UltraRAM is 72 x 4096 bits.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, fields

__all__ = [
    "Resources",
    "ResourceKind",
    "dsp_per_mac",
    "bram18_for",
    "uram_for",
    "memory",
    "register",
    "adder",
    "mux",
    "counter",
    "zero_detect",
    "comparator",
    "fifo",
    "CONTROL",
    "LUTRAM_MAX_BITS",
    "bits_for",
]

#: Memories smaller than this go to LUTRAM instead of block RAM.
LUTRAM_MAX_BITS = 1024
#: (width, depth) aspect ratios of one 18 Kb block RAM.
BRAM18_ASPECTS: tuple[tuple[int, int], ...] = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))
URAM_WIDTH, URAM_DEPTH = 72, 4096


class ResourceKind(enum.StrEnum):
    """A resource a design can run out of; ``BANDWIDTH`` is off-chip memory bandwidth.
    ``PARALLELISM`` means none binds: the slowest layer is already fully unfolded."""

    DSP = "dsp"
    LUT = "lut"
    FF = "ff"
    BRAM18 = "bram18"
    URAM = "uram"
    BANDWIDTH = "bandwidth"
    PARALLELISM = "parallelism"


@dataclass(frozen=True)
class Resources:
    """FPGA resources of a module, layer or design; adds with ``+`` and scales with ``* int``."""

    dsp: int = 0
    lut: int = 0
    ff: int = 0
    bram18: int = 0
    uram: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.dsp + other.dsp,
            self.lut + other.lut,
            self.ff + other.ff,
            self.bram18 + other.bram18,
            self.uram + other.uram,
        )

    def __mul__(self, n: int) -> Resources:
        return Resources(self.dsp * n, self.lut * n, self.ff * n, self.bram18 * n, self.uram * n)

    __rmul__ = __mul__

    def get(self, kind: ResourceKind) -> int:
        return int(getattr(self, kind.value))

    def as_dict(self) -> dict[str, int]:
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) < 0:
                raise ValueError(f"negative resource {f.name}={getattr(self, f.name)}")


def bits_for(n: int) -> int:
    """Bits of a counter that counts to ``n`` (at least 1)."""
    return max(1, math.ceil(math.log2(max(n, 2))))


def dsp_per_mac(data_bits: int, weight_bits: int) -> float:
    """DSP slices per multiplier (REFERENCE formula): ceil(d/18)*ceil(w/27), halved when both widths
    are <= 8 (two products packed per DSP), quartered when both are <= 4."""
    base = math.ceil(data_bits / 18) * math.ceil(weight_bits / 27)
    if data_bits <= 4 and weight_bits <= 4:
        return base / 4
    if data_bits <= 8 and weight_bits <= 8:
        return base / 2
    return float(base)


def bram18_for(depth: int, width: int) -> int:
    """18 Kb block RAMs for one ``depth`` x ``width`` memory, best aspect ratio."""
    if depth <= 0 or width <= 0:
        return 0
    return min(math.ceil(width / w) * math.ceil(depth / d) for w, d in BRAM18_ASPECTS)


def uram_for(depth: int, width: int) -> int:
    if depth <= 0 or width <= 0:
        return 0
    return math.ceil(width / URAM_WIDTH) * math.ceil(depth / URAM_DEPTH)


def memory(depth: int, width: int) -> Resources:
    """One memory: LUTRAM under 1,024 bits, otherwise block RAM."""
    if depth <= 0 or width <= 0:
        return Resources()
    if depth * width < LUTRAM_MAX_BITS:
        return Resources(lut=width * math.ceil(depth / 64), ff=width)
    return Resources(bram18=bram18_for(depth, width))


def register(bits: int) -> Resources:
    return Resources(ff=bits)


def adder(bits: int, n: int = 1) -> Resources:
    return Resources(lut=bits * n, ff=bits * n)


def mux(inputs: int, bits: int) -> Resources:
    if inputs <= 1:
        return Resources()
    return Resources(lut=bits * math.ceil((inputs - 1) / 3), ff=bits)


def counter(limit: int) -> Resources:
    b = bits_for(limit)
    return Resources(lut=b, ff=b)


def zero_detect(bits: int) -> Resources:
    return Resources(lut=math.ceil(bits / 6), ff=1)


def comparator(bits: int) -> Resources:
    return Resources(lut=bits, ff=1)


def fifo(depth: int, bits: int) -> Resources:
    """A stream FIFO: shift registers up to 32 deep, otherwise a memory."""
    if depth <= 32:
        return Resources(lut=bits * math.ceil(depth / 32), ff=bits)
    return memory(depth, bits) + Resources(lut=2 * bits_for(depth), ff=2 * bits_for(depth))


#: Valid/ready handshake and a small state machine per module (ours: 3-state FSM, 2 handshake regs).
CONTROL = Resources(lut=12, ff=8)
