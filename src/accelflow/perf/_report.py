"""Frozen performance reports that add layer by layer."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Mode", "LayerPerf", "PerfReport"]


class Mode(enum.StrEnum):
    FULL = "full"  # every instruction through the dependency graph
    FAST = "fast"  # same engine, periodic steady state extrapolated
    ROOFLINE = "roofline"  # max(compute, memory) from peak numbers
    REGRESSION = "regression"  # model trained on FULL results of the other layers


@dataclass(frozen=True)
class LayerPerf:
    """Latency of one layer. ``utilisation`` = MACs / (cycles x peak MACs per cycle), 0 for no MACs."""

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

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "op": self.op, "cycles": self.cycles, "instructions": self.instructions,
                "iterations_evaluated": self.iterations_evaluated, "utilisation": self.utilisation}  # fmt: skip


@dataclass(frozen=True)
class PerfReport:
    """Latency of a network (layers run one after the other). ``report + report`` concatenates layers."""

    mode: Mode
    layers: tuple[LayerPerf, ...] = ()
    wall_seconds: float = 0.0
    arch: str = ""
    skipped: tuple[str, ...] = field(default=(), compare=False)

    @property
    def total_cycles(self) -> int:
        return sum(lp.cycles for lp in self.layers)

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

    def __add__(self, other: PerfReport) -> PerfReport:
        if not isinstance(other, PerfReport):
            return NotImplemented
        if self.layers and other.layers and self.mode is not other.mode:
            raise ValueError(f"cannot add a {self.mode.value} report to a {other.mode.value} report")
        return PerfReport(
            self.mode if self.layers else other.mode, self.layers + other.layers,
            self.wall_seconds + other.wall_seconds, self.arch or other.arch, self.skipped + other.skipped,
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
            "layers": [lp.as_dict() for lp in self.layers],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)
