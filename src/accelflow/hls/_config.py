"""Typed configuration of an hls4ml design: per-layer precision, reuse factor, strategy, I/O type."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from accelflow.errors import AccelflowError, ConfigError
from accelflow.hls._fixed import FixedPoint

__all__ = [
    "HlsError",
    "ReportParseError",
    "IOType",
    "Strategy",
    "Backend",
    "LayerPrecision",
    "HlsConfig",
    "DEFAULT_FIXED",
    "uniform_precision",
]

#: hls4ml's default type, the "unoptimised 16-bit" baseline of MetaML.
DEFAULT_FIXED = FixedPoint(16, 6)


class HlsError(AccelflowError):
    """hls4ml conversion, compilation or C simulation failed (message says which step and why)."""


class ReportParseError(AccelflowError):
    """A Vivado/Vitis report file is missing fields or is not in a known format (message names the file)."""


class IOType(enum.StrEnum):
    PARALLEL = "io_parallel"  # all values of a tensor in registers (MLPs, tiny CNNs)
    STREAM = "io_stream"  # one pixel (all channels) per cycle through FIFOs (CNNs)


class Strategy(enum.StrEnum):
    LATENCY = "Latency"  # fully unrolled, weights in registers/LUTs
    RESOURCE = "Resource"  # weights in BRAM, multipliers reused reuse_factor times


class Backend(enum.StrEnum):
    VITIS = "Vitis"
    VIVADO = "Vivado"


@dataclass(frozen=True)
class LayerPrecision:
    """Fixed-point types of one layer. Compute layers (dense/conv) set all four; activation and pooling
    layers set only ``result`` (``weight``/``bias``/``accum`` stay None)."""

    result: FixedPoint
    weight: FixedPoint | None = None
    bias: FixedPoint | None = None
    accum: FixedPoint | None = None

    def items(self) -> tuple[tuple[str, FixedPoint], ...]:
        """(hls4ml precision key, type) pairs that are set."""
        pairs = (("result", self.result), ("weight", self.weight), ("bias", self.bias), ("accum", self.accum))
        return tuple((k, v) for k, v in pairs if v is not None)


def uniform_precision(
    layer_names: list[str],
    compute: set[str],
    fixed: FixedPoint = DEFAULT_FIXED,
    accum: FixedPoint | None = None,
) -> dict[str, LayerPrecision]:
    """Every layer at ``fixed`` (the hls4ml 'model' granularity baseline); compute layers get weight, bias
    and result ``fixed`` and accumulator ``accum`` (default: ``fixed``, as hls4ml's model-level default)."""
    out: dict[str, LayerPrecision] = {}
    for name in layer_names:
        if name in compute:
            out[name] = LayerPrecision(result=fixed, weight=fixed, bias=fixed, accum=accum or fixed)
        else:
            out[name] = LayerPrecision(result=fixed)
    return out


@dataclass(frozen=True)
class HlsConfig:
    """How to build an hls4ml project. Constructing one does no work.

    ``precision`` maps IR node names (``layers.fc1``; the input node is ``x``) to :class:`LayerPrecision`;
    layers not listed get ``default_precision`` for every type (accumulators too: never 'auto').
    ``reuse_factor`` is one int or a per-layer mapping (missing layers: 1). ``clock_mhz`` sets the clock
    period given to HLS.
    """

    part: str = "xcu250-figd2104-2L-e"
    clock_mhz: float = 200.0
    io_type: IOType = IOType.PARALLEL
    strategy: Strategy = Strategy.LATENCY
    backend: Backend = Backend.VITIS
    reuse_factor: int | Mapping[str, int] = 1
    default_precision: FixedPoint = DEFAULT_FIXED
    precision: Mapping[str, LayerPrecision] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "io_type", IOType(self.io_type))
            object.__setattr__(self, "strategy", Strategy(self.strategy))
            object.__setattr__(self, "backend", Backend(self.backend))
        except ValueError as exc:
            raise ConfigError(f"HlsConfig: {exc}") from exc
        if self.clock_mhz <= 0:
            raise ConfigError(f"HlsConfig.clock_mhz must be > 0, got {self.clock_mhz}")
        rfs = self.reuse_factor.values() if isinstance(self.reuse_factor, Mapping) else [self.reuse_factor]
        if any(int(r) < 1 for r in rfs):
            raise ConfigError(f"HlsConfig.reuse_factor must be >= 1, got {self.reuse_factor}")

    @property
    def clock_period_ns(self) -> float:
        return 1000.0 / self.clock_mhz

    def reuse_for(self, layer: str) -> int:
        if isinstance(self.reuse_factor, Mapping):
            return int(self.reuse_factor.get(layer, 1))
        return int(self.reuse_factor)

    def precision_for(self, layer: str, compute: bool) -> LayerPrecision:
        if layer in self.precision:
            return self.precision[layer]
        d = self.default_precision
        return LayerPrecision(result=d, weight=d, bias=d, accum=d) if compute else LayerPrecision(result=d)
