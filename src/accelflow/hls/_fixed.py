"""Fixed-point types as typed records, and bit-accurate numpy quantisation matching ``ap_fixed``.

A :class:`FixedPoint` is turned into the C++ spelling (``ap_fixed<16,6>``) only at the hls4ml boundary
(:meth:`FixedPoint.to_hls`). :meth:`FixedPoint.quantize` reproduces Xilinx ``ap_fixed`` semantics for the
two modes hls4ml uses by default: truncation towards minus infinity (AP_TRN) and two's-complement
wrap-around on overflow (AP_WRAP); AP_RND (round half up) and AP_SAT (saturate) are also provided.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

import numpy as np

from accelflow.errors import ConfigError

__all__ = ["RoundingMode", "OverflowMode", "FixedPoint", "parse_fixed"]


class RoundingMode(enum.StrEnum):
    """``ap_fixed`` quantisation mode (what happens to bits below the LSB)."""

    TRN = "AP_TRN"  # floor (towards minus infinity): the ap_fixed and hls4ml default
    RND = "AP_RND"  # round half towards plus infinity


class OverflowMode(enum.StrEnum):
    """``ap_fixed`` overflow mode (what happens above the MSB)."""

    WRAP = "AP_WRAP"  # two's-complement wrap-around: the ap_fixed and hls4ml default
    SAT = "AP_SAT"  # clamp to the representable range


@dataclass(frozen=True, order=True)
class FixedPoint:
    """``ap_fixed<width, integer>`` (signed) or ``ap_ufixed`` (``signed=False``).

    ``width`` is the total number of bits, ``integer`` the bits left of the binary point including the sign
    bit (it may be negative or exceed ``width``, as in ap_fixed). Resolution is ``2 ** -fractional``.
    """

    width: int
    integer: int
    signed: bool = True
    rounding: RoundingMode = RoundingMode.TRN
    overflow: OverflowMode = OverflowMode.WRAP

    def __post_init__(self) -> None:
        if not 1 <= self.width <= 128:
            raise ConfigError(f"fixed-point width must be in 1..128 bits, got {self.width}")
        object.__setattr__(self, "rounding", RoundingMode(self.rounding))
        object.__setattr__(self, "overflow", OverflowMode(self.overflow))

    @property
    def fractional(self) -> int:
        """Bits right of the binary point."""
        return self.width - self.integer

    @property
    def lsb(self) -> float:
        """Value of one least-significant bit."""
        return float(2.0**-self.fractional)

    @property
    def min_value(self) -> float:
        return -(2.0 ** (self.integer - 1)) if self.signed else 0.0

    @property
    def max_value(self) -> float:
        top = self.integer - 1 if self.signed else self.integer
        return 2.0**top - self.lsb

    def with_fractional(self, fractional: int) -> FixedPoint:
        """Same integer bits, ``fractional`` bits after the point."""
        return FixedPoint(self.integer + fractional, self.integer, self.signed, self.rounding, self.overflow)

    def to_hls(self) -> str:
        """C++ spelling for hls4ml, e.g. ``ap_fixed<16,6>`` (modes written only when not the defaults)."""
        base = "ap_fixed" if self.signed else "ap_ufixed"
        if self.rounding is RoundingMode.TRN and self.overflow is OverflowMode.WRAP:
            return f"{base}<{self.width},{self.integer}>"
        return f"{base}<{self.width},{self.integer},{self.rounding.value},{self.overflow.value}>"

    def __str__(self) -> str:
        return self.to_hls()

    # --- bit-accurate arithmetic ---------------------------------------------------------------------------
    def to_int(self, x: np.ndarray) -> np.ndarray:
        """Quantise real values to this type's integer code (int64, value = code * lsb)."""
        scaled = np.asarray(x, dtype=np.float64) * (2.0**self.fractional)
        codes = np.floor(scaled + 0.5) if self.rounding is RoundingMode.RND else np.floor(scaled)
        return self.wrap_int(codes.astype(np.int64))

    def wrap_int(self, codes: np.ndarray) -> np.ndarray:
        """Apply the overflow mode to integer codes already at this type's scale."""
        codes = np.asarray(codes, dtype=np.int64)
        lo = -(1 << (self.width - 1)) if self.signed else 0
        hi = (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1
        if self.overflow is OverflowMode.SAT:
            return np.clip(codes, lo, hi)
        span = 1 << self.width
        return ((codes - lo) % span) + lo

    def requantize(self, codes: np.ndarray, from_fractional: int) -> np.ndarray:
        """Convert integer codes with ``from_fractional`` fractional bits into this type (ap_fixed cast)."""
        codes = np.asarray(codes, dtype=np.int64)
        shift = from_fractional - self.fractional
        if shift > 0:
            if self.rounding is RoundingMode.RND:
                codes = codes + (1 << (shift - 1))
            codes = codes >> shift  # arithmetic shift = floor
        elif shift < 0:
            codes = codes << (-shift)
        return self.wrap_int(codes)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Real values after a round trip through this type (float64)."""
        return self.to_int(x).astype(np.float64) * self.lsb


_FIXED_RE = re.compile(
    r"^\s*(ap_)?(u?)fixed<\s*(\d+)\s*,\s*(-?\d+)\s*(?:,\s*(\w+)\s*)?(?:,\s*(\w+)\s*)?(?:,\s*\d+\s*)?>\s*$"
)


def parse_fixed(text: str) -> FixedPoint:
    """Parse ``ap_fixed<W,I[,Q,O]>`` / ``fixed<...>`` / ``ap_ufixed<...>`` (as hls4ml prints them)."""
    m = _FIXED_RE.match(text)
    if m is None:
        raise ConfigError(f"not a fixed-point type: {text!r}; expected e.g. 'ap_fixed<16,6>'")
    rnd = (m.group(5) or "TRN").upper()
    ovf = (m.group(6) or "WRAP").upper()
    rnd = rnd if rnd.startswith("AP_") else f"AP_{rnd}"
    ovf = ovf if ovf.startswith("AP_") else f"AP_{ovf}"
    try:
        return FixedPoint(
            int(m.group(3)), int(m.group(4)), m.group(2) != "u", RoundingMode(rnd), OverflowMode(ovf)
        )
    except ValueError as exc:
        raise ConfigError(f"unsupported rounding/overflow mode in {text!r}: {exc}") from exc
