"""The HASS / uniform decomposition of benchmarks/bench_hass.py on points that follow a known law."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_hass import decompose  # noqa: E402


def _point(z: float, factor: float = 1.0, slope: float = 0.7) -> dict[str, float]:
    return {"zero_products": z, "throughput_images_per_s": 1000.0 * factor * (1.0 / (1.0 - z)) ** slope}


def test_recovers_the_law_and_splits_the_ratio() -> None:
    """Points on T = 1000 (1 / (1 - z))^0.7 give slope 0.7 and R^2 1; a HASS design with 20% more
    throughput than the law at its zero count splits into the law's count ratio and a 1.2x placement."""
    rng = np.random.default_rng(0)
    trials = [_point(float(z)) for z in rng.uniform(0.1, 0.8, 60)]
    uniform, hass = _point(0.5), _point(0.6, factor=1.2)
    entry = {"trials_list": trials, "uniform_grid": [uniform], "uniform": uniform, "hass": hass}
    d = decompose(entry)
    assert d is not None
    assert d["slope"] == pytest.approx(0.7, abs=0.02) and d["r2"] > 0.99
    assert d["count"] == pytest.approx((0.5 / 0.4) ** 0.7, rel=0.02)
    assert d["placement"] == pytest.approx(1.2, rel=0.02)
    assert d["count"] * d["placement"] == pytest.approx(d["hass_vs_uniform"], rel=1e-12)


def test_needs_points_and_both_designs() -> None:
    assert decompose({"trials_list": [_point(0.2)], "uniform": _point(0.2), "hass": _point(0.3)}) is None
    assert decompose({"trials_list": [_point(z) for z in (0.1, 0.2, 0.3)], "uniform": _point(0.2)}) is None
