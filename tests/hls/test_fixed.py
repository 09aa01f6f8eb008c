"""FixedPoint: ap_fixed semantics (truncation, wrap, saturation, rounding) against hand-worked values."""

import numpy as np
import pytest

from accelflow.errors import ConfigError
from accelflow.hls import FixedPoint, OverflowMode, RoundingMode, parse_fixed


def test_spelling_and_range() -> None:
    fp = FixedPoint(16, 6)
    assert fp.to_hls() == "ap_fixed<16,6>"
    assert fp.fractional == 10 and fp.lsb == 2**-10
    assert fp.min_value == -32.0 and fp.max_value == 32.0 - 2**-10
    assert FixedPoint(8, 3, signed=False).to_hls() == "ap_ufixed<8,3>"
    assert FixedPoint(8, 3, rounding="AP_RND", overflow="AP_SAT").to_hls() == "ap_fixed<8,3,AP_RND,AP_SAT>"


def test_truncation_is_floor_and_overflow_wraps() -> None:
    fp = FixedPoint(4, 2)  # values -2 .. 1.75 step 0.25
    x = np.array([0.3, -0.3, 1.75, 2.0, -2.25, 1.99])
    np.testing.assert_array_equal(fp.quantize(x), [0.25, -0.5, 1.75, -2.0, 1.75, 1.75])


def test_saturation_and_rounding() -> None:
    fp = FixedPoint(4, 2, rounding=RoundingMode.RND, overflow=OverflowMode.SAT)
    np.testing.assert_array_equal(
        fp.quantize(np.array([0.3, 0.375, -0.4, 5.0, -5.0])), [0.25, 0.5, -0.5, 1.75, -2.0]
    )


def test_requantize_matches_quantize_of_values() -> None:
    rng = np.random.default_rng(0)
    src = FixedPoint(20, 8)
    codes = src.to_int(rng.normal(0, 20, 500))
    for dst in (FixedPoint(10, 4), FixedPoint(24, 10), FixedPoint(6, 6), FixedPoint(12, 2)):
        via_codes = dst.requantize(codes, src.fractional).astype(np.float64) * dst.lsb
        np.testing.assert_array_equal(via_codes, dst.quantize(codes * src.lsb))


def test_parse_round_trip() -> None:
    for text in ("ap_fixed<16,6>", "ap_ufixed<8,0>", "ap_fixed<10,-2,AP_RND,AP_SAT>"):
        assert parse_fixed(text).to_hls() == text
    assert parse_fixed("fixed<16,6,TRN,WRAP,0>") == FixedPoint(16, 6)
    with pytest.raises(ConfigError, match="not a fixed-point type"):
        parse_fixed("float")
    with pytest.raises(ConfigError):
        FixedPoint(0, 0)
