"""Frozen performance reports that add layer by layer."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any

from accelflow.mapping import LayerKind
from accelflow.perf._baselines import Bound, RooflineTerms

__all__ = ["Mode", "LayerPerf", "PerfReport"]


class Mode(enum.StrEnum):
    FULL = "full"  # every instruction through the dependency graph
    FAST = "fast"  # same engine, periodic steady state extrapolated
    ROOFLINE = "roofline"  # max(compute, memory) from peak numbers
    REGRESSION = "regression"  # model trained on FULL results of the other layers


@dataclass(frozen=True)
class LayerPerf:
    """Latency of one layer. ``utilisation`` = MACs / (cycles x peak MACs per cycle) for GEMM layers, vector
    operations / (cycles x the vector unit's peak) for vector layers, 0 for free layers. ``roofline`` holds
    the layer's roofline terms whatever the mode, so :attr:`bound` says which roof limits it."""

    name: str
    op: str
    cycles: int
    instructions: int
    iterations_evaluated: int
    utilisation: float
    instructions_evaluated: int = 0
    macs: int = 0
    map_applications: int = 0  # FAST: straight-line segments applied as max-plus maps (not evaluated)
    instructions_applied: int = 0  # FAST: dynamic instructions whose times those applications gave
    kind: LayerKind = LayerKind.GEMM
    roofline: RooflineTerms = RooflineTerms()

    @property
    def bound(self) -> Bound | None:
        """Compute- or memory-bound by the roofline terms; None for a free layer (it takes no time)."""
        return None if self.kind is LayerKind.FREE else self.roofline.bound

    def seconds(self, clock_mhz: float) -> float:
        return self.cycles / (clock_mhz * 1e6)

    def as_dict(self, clock_mhz: float = 1000.0) -> dict[str, Any]:
        bound = self.bound
        return {"name": self.name, "op": self.op, "cycles": self.cycles, "instructions": self.instructions,
                "iterations_evaluated": self.iterations_evaluated, "utilisation": self.utilisation,
                "seconds": self.seconds(clock_mhz), "kind": self.kind.value,
                "bound": None if bound is None else bound.value}  # fmt: skip


@dataclass(frozen=True)
class PerfReport:
    """Latency of a network (layers run one after the other). ``report + report`` concatenates layers.

    ``layers`` lists every node of the network: timed layers (GEMM, vector) and free ones (views, fused
    activations: 0 cycles). ``skipped`` names layers left untimed because the architecture cannot run them
    (only with ``estimate(..., unsupported="skip")``; empty on the shipped templates)."""

    mode: Mode
    layers: tuple[LayerPerf, ...] = ()
    wall_seconds: float = 0.0
    arch: str = ""
    skipped: tuple[str, ...] = field(default=(), compare=False)
    clock_mhz: float = 1000.0

    @property
    def total_cycles(self) -> int:
        return sum(lp.cycles for lp in self.layers)

    @property
    def seconds(self) -> float:
        """Latency at the architecture's clock (``clock_mhz``)."""
        return self.total_cycles / (self.clock_mhz * 1e6)

    @property
    def non_gemm_share(self) -> float:
        """Share of the cycles spent in vector layers (everything but the GEMMs)."""
        total = self.total_cycles
        return sum(lp.cycles for lp in self.layers if lp.kind is LayerKind.VECTOR) / total if total else 0.0

    @property
    def roofline(self) -> RooflineTerms:
        return sum((lp.roofline for lp in self.layers), RooflineTerms())

    @property
    def bound(self) -> Bound:
        """The network's roofline bound: its memory term summed over the layers against its compute term
        (i.e. the network's bytes per operation against the machine balance)."""
        return self.roofline.bound

    @property
    def memory_bound_share(self) -> float:
        """Share of the cycles spent in memory-bound layers."""
        total = self.total_cycles
        return sum(lp.cycles for lp in self.layers if lp.bound is Bound.MEMORY) / total if total else 0.0

    @property
    def instructions_total(self) -> int:
        return sum(lp.instructions for lp in self.layers)

    @property
    def instructions_evaluated(self) -> int:
        return sum(lp.instructions_evaluated for lp in self.layers)

    @property
    def iterations_evaluated(self) -> int:
        return sum(lp.iterations_evaluated for lp in self.layers)

    @property
    def map_applications(self) -> int:
        return sum(lp.map_applications for lp in self.layers)

    @property
    def instructions_applied(self) -> int:
        return sum(lp.instructions_applied for lp in self.layers)

    def timed(self) -> tuple[LayerPerf, ...]:
        """The layers that take time (GEMM and vector layers)."""
        return tuple(lp for lp in self.layers if lp.kind is not LayerKind.FREE)

    def __add__(self, other: PerfReport) -> PerfReport:
        if not isinstance(other, PerfReport):
            return NotImplemented
        if self.layers and other.layers and self.mode is not other.mode:
            raise ValueError(f"cannot add a {self.mode.value} report to a {other.mode.value} report")
        if self.layers and other.layers and self.clock_mhz != other.clock_mhz:
            raise ValueError(f"cannot add reports at {self.clock_mhz} MHz and {other.clock_mhz} MHz")
        return PerfReport(
            self.mode if self.layers else other.mode, self.layers + other.layers,
            self.wall_seconds + other.wall_seconds, self.arch or other.arch, self.skipped + other.skipped,
            self.clock_mhz if self.layers else other.clock_mhz,
        )  # fmt: skip

    def layer(self, name: str) -> LayerPerf:
        return next(lp for lp in self.layers if lp.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_cycles": self.total_cycles,
            "mode": self.mode.value,
            "instructions_total": self.instructions_total,
            "instructions_evaluated": self.instructions_evaluated,
            "iterations_evaluated": self.iterations_evaluated,
            "wall_seconds": self.wall_seconds,
            "arch": self.arch,
            "clock_mhz": self.clock_mhz,
            "seconds": self.seconds,
            "non_gemm_share": self.non_gemm_share,
            "bound": self.bound.value,
            "memory_bound_share": self.memory_bound_share,
            "skipped": list(self.skipped),
            "layers": [lp.as_dict(self.clock_mhz) for lp in self.layers],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)
