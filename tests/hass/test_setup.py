"""Building a search problem from a trained model and a data set: validation and hold-out sizes."""

from __future__ import annotations

import pytest

from accelflow.hass import HassError, problem


def test_default_sizes_shrink_to_a_small_validation_split(trained) -> None:
    """digits_image has 144 validation images: unset sizes split them 70/30 (disjoint), a set size keeps
    its value and the other takes the rest, and sizes beyond the split are refused with the numbers."""
    p = problem(trained, "digits_image", "zc706", validation_size=None, holdout_size=None)
    assert (len(p.evaluator.validation), len(p.holdout)) == (101, 43)
    p = problem(trained, "digits_image", "zc706", validation_size=None, holdout_size=20)
    assert (len(p.evaluator.validation), len(p.holdout)) == (124, 20)
    p = problem(trained, "digits_image", "zc706", validation_size=64, holdout_size=None)
    assert (len(p.evaluator.validation), len(p.holdout)) == (64, 80)
    with pytest.raises(HassError, match="digits_image has 144 validation images; asked for 1000 \\+ 0 hold-out"):
        problem(trained, "digits_image", "zc706", validation_size=1000)
    with pytest.raises(HassError, match="validation size must be >= 1"):
        problem(trained, "digits_image", "zc706", validation_size=0)
