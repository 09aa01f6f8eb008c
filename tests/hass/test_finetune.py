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


@pytest.mark.parametrize("kwargs", [{"distill": -0.1}, {"distill": 1.5}, {"temperature": 0.0}])
def test_finetune_rejects_bad_distillation(digits, kwargs) -> None:
    with pytest.raises(HassError, match="0 <= distill <= 1 and temperature > 0"):
        FineTune(digits.train, **kwargs)


def _kl_to(teacher: torch.nn.Module, student: torch.nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float(torch.nn.functional.kl_div(torch.log_softmax(student(x), 1), torch.log_softmax(teacher(x), 1),
                                                reduction="batchmean", log_target=True))


def test_distillation_pulls_the_pruned_model_towards_the_dense_one(trained, digits) -> None:
    """Pure distillation (no labels) can only learn from the teacher: on held-out images the pruned
    model's outputs must move towards the dense model's, and the teacher must stay as it was."""
    thr = Thresholds({"0": 0.2, "3": 0.1, "7": 0.1}, {"2": 0.3, "5": 0.3})
    x = torch.as_tensor(digits.val.x)
    before = trained[0].weight.detach().clone()
    pruned = thr.apply(trained)
    tuned = FineTune(digits.train, steps=60, batch_size=64, lr=2e-3, distill=1.0)(trained, thr)
    assert torch.equal(trained[0].weight, before) and not trained.training
    assert _kl_to(trained, tuned, x) < 0.1 * _kl_to(trained, pruned, x)
