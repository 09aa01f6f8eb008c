"""The IR back to PyTorch: an ONNX file becomes a module computing what the original PyTorch model did,
with the convs and the ReLUs that feed them as submodules, as HASS expects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from accelflow.frontends import export_onnx, from_onnx, from_pytorch, to_torch
from accelflow.hass import conv_input_activations
from accelflow.zoo import create


def _randomised(name: str) -> nn.Module:
    """A zoo model with random BatchNorm statistics, so folding BatchNorm into the convs is exercised."""
    torch.manual_seed(0)
    model = create(name).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model


@pytest.mark.parametrize("name", ["resnet8", "mobilenet_v2_tiny", "mobilenet_v3_tiny", "lenet5"])
def test_onnx_round_trip_computes_the_original(name: str, tmp_path: Path) -> None:
    """PyTorch -> ONNX (torch's exporter) -> IR -> PyTorch agrees with the original to float rounding, on a
    batch size the file was not exported with; residual adds, squeeze-excitation products, hard-swish and
    pools all convert, and the ReLU -> conv links HASS searches are the original's."""
    model = _randomised(name)
    path = export_onnx(model, (1, 28, 28), tmp_path / f"{name}.onnx")
    back = to_torch(from_onnx(path))
    x = torch.randn(5, 1, 28, 28)
    with torch.no_grad():
        np.testing.assert_allclose(back(x).numpy(), model(x).numpy(), atol=2e-5, rtol=1e-5)
    assert not back.training
    convs = [m for m in back.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == sum(isinstance(m, nn.Conv2d) for m in model.modules())
    assert len(conv_input_activations(back)) == len(conv_input_activations(model))


def test_the_fx_importer_route_converts_too() -> None:
    """No ONNX in between: the torch.fx importer's graph converts back to the same function."""
    model = _randomised("resnet8")
    back = to_torch(from_pytorch(model, (1, 28, 28)))
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        np.testing.assert_allclose(back(x).numpy(), model(x).numpy(), atol=2e-5, rtol=1e-5)
