"""Profiling and the HLS-level precision search (emulator inner loop; C-sim confirmation is in the bench)."""

import numpy as np
from torch import nn

from accelflow.data import Splits
from accelflow.frontends import from_pytorch
from accelflow.hls import PrecisionConfig, auto_precision, integer_bits, profile_ranges
from accelflow.ir import COMPUTE_OPS, execute


def test_integer_bits() -> None:
    assert integer_bits(0.9, 0) == 1  # sign bit only: ap_fixed<W,1> holds [-1, 1)
    assert integer_bits(1.0, 0) == 2
    assert integer_bits(5.3, 0) == 4 and integer_bits(5.3, 1) == 5
    assert integer_bits(5.3, 0, signed=False) == 3


def test_profile_bounds_every_value(digits: tuple[nn.Module, Splits]) -> None:
    model, splits = digits
    graph = from_pytorch(model, (64,))
    x = splits.train.x[:300]
    ranges = profile_ranges(graph, x)
    values = execute(graph, x, keep=True)
    for node in graph:
        r = ranges[node.name]
        assert np.abs(values[node]).max() <= r.output_max + 1e-6
        if node.op in COMPUTE_OPS:
            assert r.accum_max >= r.output_max - 1e-6  # sum |x||w| + |b| bounds |sum x w + b|
            assert r.weight_max == float(np.abs(node.weight).max())


def test_auto_precision_meets_tolerance(digits: tuple[nn.Module, Splits]) -> None:
    model, splits = digits
    cfg = PrecisionConfig(tolerance_relative=0.02, confirm=False, calibration_samples=500)
    res = auto_precision(model, (64,), splits, cfg)
    assert res.emulated_accuracy >= res.reference_accuracy * (1 - cfg.tolerance_relative)
    assert res.project is None and res.csim_accuracy is None
    compute = [p for name, p in res.precisions.items() if name.startswith("layers.fc")]
    assert all(p.weight is not None and p.weight.width < 16 for p in compute)
    assert all(p.accum is not None and p.result.integer <= p.accum.integer for p in compute)
    # every accepted trial met the target, every rejected one missed it
    target = res.reference_accuracy * (1 - cfg.tolerance_relative)
    assert all((t.accuracy >= target) == t.accepted for t in res.trials if t.layer != "*")


def test_tiny_ranges_with_few_fractional_bits_give_valid_types(digits: tuple[nn.Module, Splits]) -> None:
    """Values far below the LSB used to give zero-width types (ap_fixed<0,-2>); now at least 1 bit."""
    from dataclasses import replace

    from accelflow.hls import precisions_from_ranges
    from accelflow.hls._precision import _knobs

    model, splits = digits
    graph = from_pytorch(model, (64,))
    ranges = profile_ranges(graph, splits.train.x[:100])
    tiny = {
        k: replace(r, weight_max=0.01, bias_max=0.003, output_max=0.01, accum_max=0.01)
        for k, r in ranges.items()
    }
    frac = {k: 1 for k in _knobs(graph)}
    for name, p in precisions_from_ranges(graph, tiny, frac).items():
        for fp in (p.result, p.weight, p.bias, p.accum):
            assert fp is None or fp.width >= 1, (name, fp)
        if p.weight is not None:
            assert p.weight.fractional == 1  # resolution as asked
