"""A tiny CNN trained on the 8x8 digits images in a few seconds, and its HASS evaluator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from accelflow.data import load
from accelflow.dataflow import load_device
from accelflow.hass import Evaluator, build_space


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )


@pytest.fixture(scope="session")
def digits():
    return load("digits_image")


@pytest.fixture(scope="session")
def trained(digits) -> nn.Module:
    """150 Adam steps (a plain loop: the full training loop evaluates every epoch, too slow for a fixture)."""
    model = tiny_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    model.train()
    for _ in range(150):
        idx = rng.integers(0, len(digits.train), 64)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(torch.as_tensor(digits.train.x[idx])), torch.as_tensor(digits.train.y[idx]))
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="session")
def evaluator(trained, digits) -> Evaluator:
    calib = digits.train.x[:64]
    return Evaluator(trained, (1, 8, 8), digits.val, calib, load_device("zc706"), build_space(trained, calib),
                     name="tiny_cnn", batch=64)
