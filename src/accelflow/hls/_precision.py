"""HLS-level quantisation: per-layer ap_fixed<W,I> from profiled ranges, then fractional-bit reduction
under an accuracy tolerance checked by the bit-accurate emulator and confirmed by hls4ml C simulation."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from torch import nn

from accelflow.data import Splits
from accelflow.errors import ConfigError
from accelflow.frontends import from_pytorch
from accelflow.hls._config import HlsConfig, IOType, LayerPrecision
from accelflow.hls._convert import HlsProject, convert, csim_accuracy, torch_predict
from accelflow.hls._emulate import check_emulated, emulate
from accelflow.hls._fixed import FixedPoint
from accelflow.hls._profile import LayerRanges, integer_bits, profile_ranges
from accelflow.ir import COMPUTE_OPS, Graph, OpKind

__all__ = ["PrecisionConfig", "PrecisionTrial", "PrecisionResult", "auto_precision", "precisions_from_ranges"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrecisionConfig:
    """HLS-level precision search; constructing one does no work.

    ``tolerance_relative``: accepted relative accuracy loss of the fixed-point design against the float
    model (0.04 = 4 %). ``margin_bits``: extra integer bits over the profiled range of results and
    accumulators. ``start_fractional``/``min_fractional``: the bisection range of fractional bits per
    layer. ``calibration_samples``: training samples used to profile ranges; ``eval_samples``: validation
    samples scoring each candidate. ``confirm``: compile the final design with hls4ml and measure it with C
    simulation (``outdir`` holds the project cache).
    """

    tolerance_relative: float = 0.04
    margin_bits: int = 1
    start_fractional: int = 12
    min_fractional: int = 0
    calibration_samples: int = 2000
    eval_samples: int = 2000
    confirm: bool = True
    io_type: IOType = IOType.PARALLEL
    outdir: Path = Path("build/hls")
    csim_samples: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.tolerance_relative < 1.0:
            raise ConfigError(f"tolerance_relative must be in [0, 1), got {self.tolerance_relative}")
        if not 0 <= self.min_fractional <= self.start_fractional <= 32:
            raise ConfigError(
                f"need 0 <= min_fractional <= start_fractional <= 32, got {self.min_fractional}, {self.start_fractional}"
            )
        object.__setattr__(self, "io_type", IOType(self.io_type))
        object.__setattr__(self, "outdir", Path(self.outdir))


@dataclass(frozen=True)
class PrecisionTrial:
    """One emulated candidate: which layer/type changed, to how many fractional bits, and the accuracy."""

    layer: str
    kind: str
    fractional: int
    accuracy: float
    accepted: bool


@dataclass(frozen=True)
class PrecisionResult:
    """Outcome of :func:`auto_precision`.

    Accuracies in [0, 1] on the first ``eval_samples`` validation samples: ``reference_accuracy`` of the
    float model, ``emulated_accuracy`` of the chosen design by the numpy emulator, ``csim_accuracy`` of the
    same design by hls4ml C simulation (None without ``confirm``); ``csim_test_accuracy`` on the test split
    (first ``csim_samples``). ``project`` is the compiled design (None without ``confirm``).
    """

    precisions: dict[str, LayerPrecision]
    ranges: dict[str, LayerRanges]
    reference_accuracy: float
    emulated_accuracy: float
    csim_accuracy: float | None
    csim_test_accuracy: float | None
    trials: tuple[PrecisionTrial, ...]
    project: HlsProject | None
    seconds: float


Knob = tuple[str, str]  # (layer name, "result" | "weight" | "accum")


def _knobs(graph: Graph) -> list[Knob]:
    knobs: list[Knob] = []
    for node in graph:
        if node.op is OpKind.INPUT:
            knobs.append((node.name, "result"))
        elif node.op in COMPUTE_OPS:
            knobs += [(node.name, "weight"), (node.name, "result"), (node.name, "accum")]
    return knobs


def precisions_from_ranges(
    graph: Graph, ranges: dict[str, LayerRanges], fractional: dict[Knob, int], margin_bits: int = 1
) -> dict[str, LayerPrecision]:
    """Per-layer types: integer bits from ``ranges`` (+``margin_bits`` for results and accumulators; weights
    and biases are known exactly), fractional bits from ``fractional`` (keys as :func:`_knobs`).

    Accumulators keep every product bit (``F_acc = F_in + F_w``, as hls4ml's 'auto' accumulator but with
    integer bits from data instead of the worst case) unless an ``(layer, "accum")`` entry asks for fewer
    fractional bits, in which case every product is truncated to the accumulator's LSB as in hls4ml.
    Activation, pooling and reshape layers pass their input type through.
    """
    out: dict[str, LayerPrecision] = {}
    for node in graph:
        r = ranges[node.name]
        if node.op is OpKind.INPUT:
            f = fractional[(node.name, "result")]
            i = max(integer_bits(r.output_max, margin_bits), 1 - f)
            out[node.name] = LayerPrecision(result=FixedPoint(i + f, i))
        elif node.op in COMPUTE_OPS:
            x_type = out[node.inputs[0].name].result
            fw, fr = fractional[(node.name, "weight")], fractional[(node.name, "result")]
            # small weights/biases can need fewer integer bits than minus the fractional bits: keep >= 1 bit
            iw = max(integer_bits(r.weight_max, 0), 1 - fw)
            ib = max(integer_bits(r.bias_max, 0), 1 - max(fw, fr))
            ir_ = max(integer_bits(r.output_max, margin_bits), 1 - fr)
            fa = min(x_type.fractional + fw, fractional.get((node.name, "accum"), 1 << 30))
            ia = max(integer_bits(r.accum_max, margin_bits), ir_, 1 - fa)
            out[node.name] = LayerPrecision(
                result=FixedPoint(ir_ + fr, ir_),
                weight=FixedPoint(iw + fw, iw),
                bias=FixedPoint(ib + max(fw, fr), ib),
                accum=FixedPoint(ia + fa, ia),
            )
        else:
            out[node.name] = LayerPrecision(result=out[node.inputs[0].name].result)
    return out


def _accuracy(graph: Graph, precisions: dict[str, LayerPrecision], x: np.ndarray, y: np.ndarray) -> float:
    return float((emulate(graph, precisions, x).argmax(axis=1) == y).mean())


def auto_precision(
    model: nn.Module,
    input_shape: tuple[int, ...],
    splits: Splits,
    config: PrecisionConfig = PrecisionConfig(),
) -> PrecisionResult:
    """Choose per-layer ``ap_fixed<W,I>`` types for ``model`` (see module doc).

    Phase 1 bisects one common number of fractional bits for every layer within half the tolerance; phase 2
    goes greedily layer by
    layer (input, then weights, result and accumulator of every dense/conv layer) and finds the smallest number
    of fractional bits in ``[min_fractional, start_fractional]`` keeping the emulated accuracy at or above
    ``reference * (1 - tolerance_relative)`` is found by bisection, the other layers held at their current
    widths. Integer bits come from profiling first, because wrap-around makes accuracy non-monotone in
    integer bits.
    """
    t0 = time.perf_counter()
    graph = from_pytorch(model.eval(), input_shape)
    check_emulated(graph, "the HLS precision search (bit-accurate emulator)")
    ranges = profile_ranges(graph, splits.train.x[: config.calibration_samples])
    xv, yv = splits.val.x[: config.eval_samples], splits.val.y[: config.eval_samples]
    reference = float((torch_predict(model, xv).argmax(axis=1) == yv).mean())
    target = reference * (1.0 - config.tolerance_relative)
    knobs = _knobs(graph)
    frac = {k: config.start_fractional if k[1] != "accum" else 1 << 30 for k in knobs}
    trials: list[PrecisionTrial] = []

    # phase 1 spends only half of the tolerance, leaving the rest for the per-layer phase
    uniform_target = reference * (1.0 - config.tolerance_relative / 2.0)

    def _uniform_ok(candidate: dict[Knob, int], f: int) -> bool:
        acc = _accuracy(graph, precisions_from_ranges(graph, ranges, candidate, config.margin_bits), xv, yv)
        trials.append(PrecisionTrial("*", "uniform", f, acc, acc >= uniform_target))
        return acc >= uniform_target

    def ok(candidate: dict[Knob, int], knob: Knob) -> bool:
        acc = _accuracy(graph, precisions_from_ranges(graph, ranges, candidate, config.margin_bits), xv, yv)
        accepted = acc >= target
        trials.append(PrecisionTrial(knob[0], knob[1], candidate[knob], acc, accepted))
        return accepted

    if not ok(frac, knobs[0]):
        log.warning(
            "start precision (%d fractional bits) already misses the tolerance", config.start_fractional
        )
    # phase 1: one common number of fractional bits for every layer (balanced starting point)
    lo, hi = config.min_fractional, config.start_fractional
    while lo < hi:
        mid = (lo + hi) // 2
        uniform = {k: (mid if k[1] != "accum" else v) for k, v in frac.items()}
        if _uniform_ok(uniform, mid):
            hi = mid
        else:
            lo = mid + 1
    frac = {k: (hi if k[1] != "accum" else v) for k, v in frac.items()}
    log.info("precision: %d fractional bits everywhere meets the tolerance", hi)
    # phase 2: greedy per-layer reduction from there
    for knob in knobs:
        lo, hi = config.min_fractional, frac[knob]
        if knob[1] == "accum":  # start from the exact accumulator of the current input/weight types
            hi = precisions_from_ranges(graph, ranges, frac, config.margin_bits)[knob[0]].accum.fractional  # type: ignore[union-attr]
        while lo < hi:
            mid = (lo + hi) // 2
            if ok({**frac, knob: mid}, knob):
                hi = mid
            else:
                lo = mid + 1
        frac[knob] = hi
        log.info("precision %s %s: %d fractional bits", knob[0], knob[1], hi)
    precisions = precisions_from_ranges(graph, ranges, frac, config.margin_bits)
    emulated = _accuracy(graph, precisions, xv, yv)
    project = None
    csim_val = csim_test = None
    if config.confirm:
        project = convert(
            model, input_shape, HlsConfig(io_type=config.io_type, precision=precisions), config.outdir
        )
        csim_val = csim_accuracy(project, replace(splits.val, x=xv, y=yv))
        csim_test = csim_accuracy(project, splits.test, limit=config.csim_samples)
        if abs(csim_val - emulated) > 1e-9:
            log.warning(
                "emulator (%.4f) and hls4ml C-sim (%.4f) disagree on %s", emulated, csim_val, project.path
            )
    return PrecisionResult(
        precisions,
        ranges,
        reference,
        emulated,
        csim_val,
        csim_test,
        tuple(trials),
        project,
        time.perf_counter() - t0,
    )
