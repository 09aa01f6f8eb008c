"""hls4ml designs without Vivado: typed fixed-point precision, conversion + bit-accurate C simulation,
a numpy emulator of hls4ml's arithmetic, HLS-level precision search, a resource/latency estimator and
parsers for real Vivado/Vitis reports.

Example::

    from accelflow.frontends import from_pytorch
    from accelflow.hls import (FixedPoint, HlsConfig, IOType, PrecisionConfig, auto_precision, convert,
                               csim_accuracy, estimate_resources)

    res = auto_precision(model, (64,), splits, PrecisionConfig(tolerance_relative=0.02))
    res.csim_accuracy, res.precisions["layers.fc1"].weight      # e.g. FixedPoint(width=7, integer=1)
    est = estimate_resources(from_pytorch(model, (64,)), res.precisions)
    est.total.dsp, est.total.lut

    proj = convert(model, (64,), HlsConfig(io_type=IOType.PARALLEL, precision=res.precisions), "build/hls")
    csim_accuracy(proj, splits.test)
"""

from accelflow.hls._config import (
    DEFAULT_FIXED,
    Backend,
    HlsConfig,
    HlsError,
    IOType,
    LayerPrecision,
    ReportParseError,
    Strategy,
    uniform_precision,
)
from accelflow.hls._convert import HlsProject, convert, csim_accuracy, csim_predict, hls_layer_name
from accelflow.hls._emulate import EMULATED_OPS, emulate, hls_weight_codes
from accelflow.hls._fixed import FixedPoint, OverflowMode, RoundingMode, parse_fixed
from accelflow.hls._precision import (
    PrecisionConfig,
    PrecisionResult,
    PrecisionTrial,
    auto_precision,
    precisions_from_ranges,
)
from accelflow.hls._profile import LayerRanges, integer_bits, profile_ranges
from accelflow.hls._report import (
    SynthesisReport,
    parse_csynth_rpt,
    parse_csynth_xml,
    parse_utilization_rpt,
    parse_vivado_report,
)
from accelflow.hls._resources import (
    LayerResources,
    ResourceEstimate,
    ResourceModel,
    csd_digits,
    estimate_resources,
)

__all__ = [
    "DEFAULT_FIXED",
    "EMULATED_OPS",
    "Backend",
    "FixedPoint",
    "HlsConfig",
    "HlsError",
    "HlsProject",
    "IOType",
    "LayerPrecision",
    "LayerRanges",
    "LayerResources",
    "OverflowMode",
    "PrecisionConfig",
    "PrecisionResult",
    "PrecisionTrial",
    "ReportParseError",
    "ResourceEstimate",
    "ResourceModel",
    "RoundingMode",
    "Strategy",
    "SynthesisReport",
    "auto_precision",
    "convert",
    "csd_digits",
    "csim_accuracy",
    "csim_predict",
    "emulate",
    "estimate_resources",
    "hls_layer_name",
    "hls_weight_codes",
    "integer_bits",
    "parse_csynth_rpt",
    "parse_csynth_xml",
    "parse_fixed",
    "parse_utilization_rpt",
    "parse_vivado_report",
    "precisions_from_ranges",
    "profile_ranges",
    "uniform_precision",
]
