"""HLS-level tasks wrapping :mod:`accelflow.hls`: per-layer ap_fixed search, hls4ml conversion with C
simulation, the hls4ml-style resource estimator and the Vivado/Vitis report parser."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from accelflow.flow.state import DesignState, HardwareTarget, MetricKey, StateField
from accelflow.flow.task import Task, TaskContext, param
from accelflow.hls import (
    HlsConfig,
    PrecisionConfig,
    auto_precision,
    convert,
    csim_accuracy,
    emulate,
    estimate_resources,
    parse_vivado_report,
    uniform_precision,
)
from accelflow.ir import COMPUTE_OPS

__all__ = ["QuantizeHls", "Hls4mlConvert", "EmulateHls", "EstimateResources", "ParseReport", "hls_config"]

log = logging.getLogger(__name__)


def hls_config(state: DesignState, target: HardwareTarget | None = None) -> HlsConfig:
    """The :class:`accelflow.hls.HlsConfig` of a design state (target + per-layer precision)."""
    t = target or state.target
    return HlsConfig(part=t.part, clock_mhz=t.clock_mhz, io_type=t.io_type.value,
                     strategy=t.strategy.value.capitalize(), backend=t.backend,
                     reuse_factor=t.reuse_factor, precision=dict(state.precision or {}))


def _build_dir(ctx: TaskContext, shared: str) -> Path:
    """hls4ml projects are cached by content key; a shared directory lets identical designs reuse builds."""
    return Path(shared) if shared else ctx.path("hls")


@dataclass
class QuantizeHls(Task):
    """HLS-level QUANTIZATION: per-layer ``ap_fixed<W,I>`` (integer bits from profiling, fractional bits
    reduced while the bit-accurate emulated accuracy stays within ``tolerance`` (relative) of the float
    model), optionally confirmed by hls4ml C simulation. Records ``quant.*`` and the chosen precision."""

    name = "quantize"
    needs = (StateField.MODEL, StateField.DATASET)
    produces = (StateField.PRECISION, MetricKey("quant", "accuracy"), MetricKey("quant", "reference_accuracy"))

    tolerance: float = param(0.04, low=0.0, high=0.5, help="relative accuracy loss allowed (0.04 = 4 %)")
    margin_bits: int = param(1, low=0, high=8)
    start_fractional: int = param(12, low=0, high=32)
    calibration_samples: int = param(2000, low=1)
    eval_samples: int = param(2000, low=1)
    confirm: bool = param(False, help="also compile with hls4ml and record the C-sim accuracy")
    build_dir: str = param("", help="shared hls4ml build cache directory (default: the task's own)")

    def run(self, state: DesignState, ctx: TaskContext) -> DesignState:
        assert state.model is not None and state.input_shape is not None
        cfg = PrecisionConfig(tolerance_relative=self.tolerance, margin_bits=self.margin_bits,
                              start_fractional=self.start_fractional,
                              calibration_samples=self.calibration_samples, eval_samples=self.eval_samples,
                              confirm=self.confirm, io_type=state.target.io_type.value,
                              outdir=_build_dir(ctx, self.build_dir))
        result = auto_precision(state.model, state.input_shape, state.splits(), cfg)
        values = {"accuracy": result.emulated_accuracy, "reference_accuracy": result.reference_accuracy,
                  "trials": float(len(result.trials)), "seconds": result.seconds}
        if result.csim_accuracy is not None:
            values["csim_accuracy"] = result.csim_accuracy
        out = state.evolve(precision=dict(result.precisions)).with_metrics("quant", **values)
        if result.project is not None:
            out = out.with_artefact("hls_project", result.project.path)
        return out


@dataclass
class Hls4mlConvert(Task):
    """HLS4ML conversion: write and compile the hls4ml project (per-layer precision from the state, target
    io type / strategy / reuse factor) and measure its bit-accurate C-simulation accuracy on the test split.
    Records ``hls_csim.accuracy`` and the ``hls_project`` artefact."""

    name = "hls4ml"
    needs = (StateField.MODEL, StateField.DATASET)
    produces = (StateField.HLS_PROJECT, MetricKey("hls_csim", "accuracy"))

    csim_samples: int = param(0, low=0, help="test samples for C simulation (0 = the whole test split)")
    io_type: str = param("", choices=("", "io_parallel", "io_stream"), help="override the target's io type")
    reuse_factor: int = param(0, low=0, help="override the target's reuse factor (0 = keep)")
    build_dir: str = param("", help="shared hls4ml build cache directory (default: the task's own)")

    def run(self, state: DesignState, ctx: TaskContext) -> DesignState:
        assert state.model is not None and state.input_shape is not None
        changes: dict[str, object] = {}
        if self.io_type:
            changes["io_type"] = self.io_type
        if self.reuse_factor:
            changes["reuse_factor"] = self.reuse_factor
        target = HardwareTarget.model_validate({**state.target.model_dump(), **changes})
        project = convert(state.model, state.input_shape, hls_config(state, target), _build_dir(ctx, self.build_dir))
        acc = csim_accuracy(project, state.splits().test, limit=self.csim_samples or None)
        return (state.evolve(target=target).with_artefact("hls_project", project.path)
                .with_metrics("hls_csim", accuracy=acc, compile_seconds=project.compile_seconds))


@dataclass
class EstimateResources(Task):
    """RESOURCE estimation without Vivado: DSP/LUT/FF/BRAM18 and latency of the hls4ml design from the
    per-layer widths, reuse factor, strategy and the actual non-zero weights (``accelflow.hls`` estimator).
    Records them under the stage ``stage`` (``resources`` by default; ``baseline`` for a reference design)."""

    name = "estimate"
    needs = (StateField.MODEL,)

    stage: str = param("resources", help="metrics stage to write")

    @property  # type: ignore[override]
    def produces(self) -> tuple[MetricKey, ...]:  # the stage is a parameter
        return tuple(MetricKey(self.stage, k) for k in ("dsp", "lut", "ff", "bram18", "latency_cycles"))

    def run(self, state: DesignState, ctx: TaskContext) -> DesignState:
        t = state.target
        est = estimate_resources(state.graph(), dict(state.precision or {}), reuse_factor=t.reuse_factor,
                                 strategy=t.strategy.value.capitalize(), io_type=t.io_type.value)
        return state.with_metrics(self.stage, **{k: float(v) for k, v in est.as_dict().items()})


@dataclass
class EmulateHls(Task):
    """Accuracy of the fixed-point design on the test split by the numpy emulator of hls4ml's arithmetic
    (bit-accurate for the supported layers; seconds instead of a g++ build). Records ``hls_emu.accuracy``."""

    name = "emulate"
    needs = (StateField.MODEL, StateField.DATASET)
    produces = (MetricKey("hls_emu", "accuracy"),)

    samples: int = param(0, low=0, help="test samples (0 = all)")

    def run(self, state: DesignState, ctx: TaskContext) -> DesignState:
        test = state.splits().test
        n = self.samples or len(test)
        graph = state.graph()
        # layers without a chosen type run at hls4ml's default ap_fixed<16,6> (accumulators too), as in C-sim
        precision = uniform_precision([node.name for node in graph],
                                      {node.name for node in graph if node.op in COMPUTE_OPS})
        precision.update(state.precision or {})
        y = emulate(graph, precision, test.x[:n])
        return state.with_metrics("hls_emu", accuracy=float((y.argmax(axis=1) == test.y[:n]).mean()))


@dataclass
class ParseReport(Task):
    """REPORT parsing for users with Vivado/Vitis: read a csynth XML/RPT or utilisation report and record
    its resources (and latency when present) under ``synth``."""

    name = "parse_report"
    produces = (MetricKey("synth", "dsp"), MetricKey("synth", "lut"), MetricKey("synth", "ff"),
                MetricKey("synth", "bram18"))

    path: str = param("", help="report file (csynth.xml, csynth.rpt or vivado_synth.rpt)")

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("parse_report needs 'path', the report file to read")

    def run(self, state: DesignState, ctx: TaskContext) -> DesignState:
        rep = parse_vivado_report(self.path)
        values = {"dsp": rep.dsp, "lut": rep.lut, "ff": rep.ff, "bram18": rep.bram18, "uram": rep.uram}
        for k in ("latency_max_cycles", "interval_max_cycles", "estimated_clock_ns"):
            v = getattr(rep, k)
            if v is not None:
                values[k] = v
        return state.with_metrics("synth", **{k: float(v) for k, v in values.items()}).with_artefact(
            "hls_report", rep.source)
