"""Shared small trained model for the hls tests: the digits MLP (trained once, cached on disk)."""

import pytest
from torch import nn

from accelflow.data import Splits, load
from accelflow.train import cached_model


@pytest.fixture(scope="session")
def digits() -> tuple[nn.Module, Splits]:
    model, _ = cached_model("digits_mlp", "digits")
    return model, load("digits")
