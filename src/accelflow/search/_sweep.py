"""Architecture sweeps: latency of a network against an area proxy over template parameters.

The objective is a frozen, picklable record (:class:`ArchSweep`), so it runs on any executor; each worker
process loads the network once. Both objectives are minimised: total cycles from :func:`accelflow.perf.estimate`
and an area proxy (:class:`AreaProxy`) that only ranks designs.

>>> sweep = ArchSweep("zoo:lenet5", "systolic")
>>> out = sweep({"rows": 8, "cols": 8})
>>> out.attrs["pes"], out.attrs["sram_kb"]
(64, 192.125)
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

from accelflow.arch import Architecture, template
from accelflow.ir import Graph
from accelflow.search._optimize import Outcome
from accelflow.search._pareto import pareto_front

__all__ = ["AreaProxy", "ArchSweep", "SweepPoint", "sweep_points"]

Value = int | str | None


@dataclass(frozen=True)
class AreaProxy:
    """Area proxy in mm^2: MAC units x per-MAC area + on-chip storage KB x per-KB area.

    The constants are ours, order-of-magnitude figures for an int8 MAC PE with its registers and for
    single-port SRAM in a 28 nm-class process. The proxy ranks designs of one template; it is not an
    area estimate and is not comparable across templates with different storage organisations.
    """

    mm2_per_mac: float = 0.0015
    mm2_per_kb: float = 0.012

    def pes(self, arch: Architecture) -> int:
        return int(arch.peak_macs_per_cycle)

    def sram_kb(self, arch: Architecture) -> float:
        return sum(s.size_bytes for s in arch.storages) / 1024

    def __call__(self, arch: Architecture) -> float:
        return self.pes(arch) * self.mm2_per_mac + self.sram_kb(arch) * self.mm2_per_kb


@functools.lru_cache(maxsize=4)
def _graph(model: str, input_shape: tuple[int, ...] | None) -> Graph:
    from accelflow.frontends import load_model

    return load_model(model, input_shape)


@dataclass(frozen=True)
class ArchSweep:
    """Objective ``params -> (cycles, area_mm2)`` for ``model`` on the shipped ``template_name`` with the
    swept ``params`` and the ``fixed`` options; ``mode`` is an :class:`accelflow.perf.Mode` value."""

    model: str
    template_name: str
    mode: str = "fast"
    fixed: tuple[tuple[str, Value], ...] = ()
    input_shape: tuple[int, ...] | None = None
    area: AreaProxy = field(default_factory=AreaProxy)

    def arch(self, params: Mapping[str, Value]) -> Architecture:
        return template(self.template_name, **{**dict(self.fixed), **params})

    def __call__(self, params: Mapping[str, Value]) -> Outcome:
        from accelflow.perf import Mode, estimate

        start, cpu = time.perf_counter(), time.process_time()
        arch = self.arch(params)
        report = estimate(_graph(self.model, self.input_shape), arch, Mode(self.mode))
        area = self.area(arch)
        attrs = {"cycles": report.total_cycles, "area_mm2": area, "pes": self.area.pes(arch),
                 "sram_kb": self.area.sram_kb(arch), "skipped": list(report.skipped),
                 "eval_seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu}
        return Outcome((float(report.total_cycles), area), attrs)

    def describe(self) -> dict[str, Any]:
        return {"model": self.model, "template": self.template_name, "mode": self.mode,
                "fixed": dict(self.fixed), "area_proxy": asdict(self.area)}


@dataclass(frozen=True)
class SweepPoint:
    """One evaluated design: its parameters, cycles, area proxy and whether it is on the Pareto front."""

    trial: int
    params: Mapping[str, Value]
    cycles: int
    area_mm2: float
    pes: int
    sram_kb: float
    pareto: bool

    def to_dict(self) -> dict[str, Any]:
        return {"trial": self.trial, "params": dict(self.params), "cycles": self.cycles,
                "area_mm2": round(self.area_mm2, 6), "pes": self.pes, "sram_kb": self.sram_kb,
                "pareto": self.pareto}


def sweep_points(study: optuna.Study, names: Sequence[str] | None = None) -> list[SweepPoint]:
    """Completed designs of a sweep study, one per parameter set (the first completed), sorted by cycles."""
    seen: dict[tuple[Any, ...], optuna.trial.FrozenTrial] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        key = tuple(sorted(t.params.items()))
        seen.setdefault(key, t)
    trials = list(seen.values())
    front = set(pareto_front([(t.values[0], t.values[1]) for t in trials]))
    pts = [SweepPoint(t.number, {k: t.params[k] for k in (names or sorted(t.params))}, int(t.user_attrs["cycles"]),
                      float(t.user_attrs["area_mm2"]), int(t.user_attrs["pes"]), float(t.user_attrs["sram_kb"]),
                      i in front) for i, t in enumerate(trials)]
    return sorted(pts, key=lambda p: (p.cycles, p.area_mm2))
