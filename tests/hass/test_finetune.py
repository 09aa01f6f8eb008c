"""Fine-tuning keeps the pruning pattern and leaves the original model alone."""

from __future__ import annotations

import pytest
import torch

from accelflow.hass import FineTune, HassError, Thresholds


def test_finetune_keeps_masks(trained, digits) -> None:
    thr = Thresholds({"3": 0.05}, {"2": 0.1})
    before = trained[3].weight.detach().clone()
    pruned = thr.apply(trained)
    tuned = FineTune(digits.train, steps=5, batch_size=32)(trained, thr)
    assert not tuned.training
    assert torch.equal(trained[3].weight, before)  # original untouched
    zero = pruned[3].weight == 0
    assert bool(zero.any()) and bool((tuned[3].weight[zero] == 0).all())  # pruned weights stay pruned
    assert not torch.equal(tuned[0].weight, trained[0].weight)  # and the others did train


@pytest.mark.parametrize("kwargs", [{"steps": 0}, {"batch_size": 0}, {"lr": 0.0}])
def test_finetune_rejects_empty_recipes(digits, kwargs) -> None:
    with pytest.raises(HassError, match="steps >= 1, batch_size >= 1 and lr > 0"):
        FineTune(digits.train, **kwargs)
