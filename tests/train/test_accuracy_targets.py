"""Accuracy targets of the default recipes on full Fashion-MNIST (slow: minutes of CPU training each).

Trained from scratch into a temporary cache so the numbers are measured, not loaded. Measured on 2 CPU
cores (see DEFAULT_RECIPES): LeNet-5 90.25% test accuracy, ResNet-8 91.13%, the tiny ViT (vit_nano)
87.18%.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from accelflow.train import CACHE_ENV, cached_model

pytestmark = pytest.mark.slow


@pytest.mark.timeout(3600)
@pytest.mark.parametrize(("zoo_name", "target"), [("lenet5", 0.88), ("resnet8", 0.90), ("vit_nano", 0.85)])
def test_default_recipe_reaches_target(
    zoo_name: str, target: float, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    model, info = cached_model(zoo_name, "fashion_mnist", progress=False)
    logging.getLogger(__name__).info("%s: test accuracy %.4f", zoo_name, info.test_accuracy)
    assert not info.hit
    assert info.test_accuracy >= target
    assert info.val_accuracy >= target - 0.02
