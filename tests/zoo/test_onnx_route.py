"""The modern CNNs and transformers of the zoo on the ONNX route: each exports with both torch exporters
(``dynamo=True``, what :func:`accelflow.frontends.export_onnx` uses, and the TorchScript-based
``dynamo=False``), imports with :func:`accelflow.frontends.from_onnx`, executes within 1e-4 of PyTorch (int64
token ids for the language models, a batch of 2 on a file exported with batch 1), and costs as many MACs in
the IR as ``FlopCounterMode`` counts FLOPs / 2.

The fast checks run the small models as registered and small configurations of the big ones' classes;
every big model as registered (ShuffleNetV2, ConvNeXt-T and ViT-Ti at 224x224, GPT-2 with its full
vocabulary, GPT-2 small) is checked too, marked slow.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from accelflow.frontends import export_onnx, from_onnx
from accelflow.ir import LayerCost, OpKind, execute, network_cost
from accelflow.zoo import create, spec

#: (zoo name, options, input shape) of the fast checks: the small models as registered, ShuffleNetV2 in a
#: narrow, shallow configuration and GPT-2 with a smaller vocabulary (same layers, faster exports).
FAST: list[tuple[str, dict[str, Any], tuple[int, ...]]] = [
    ("shufflenet_v2", {"stage_repeats": (1, 2, 1), "stage_channels": (16, 32, 64), "last_channels": 64},
     (3, 64, 64)),
    ("convnext_nano", {}, (1, 28, 28)),
    ("vit_nano", {}, (1, 28, 28)),
    ("bert_tiny", {}, (128,)),
    ("gpt2_tiny", {"vocab_size": 4096}, (128,)),
]
#: Every new model as registered, at the zoo's input shape; GPT-2 small at 64 tokens (124 M weights either way).
FULL: list[tuple[str, dict[str, Any], tuple[int, ...]]] = [
    ("shufflenet_v2", {}, (3, 224, 224)),
    ("convnext_tiny", {}, (3, 224, 224)),
    ("vit_tiny", {}, (3, 224, 224)),
    ("gpt2_tiny", {}, (128,)),
    ("gpt2_small", {}, (64,)),
]


def _perturbed(model: nn.Module) -> nn.Module:
    """``model`` with noise on every weight and random BatchNorm statistics, so that layer-norm scales, layer
    scales, biases and folded BatchNorm all matter to the output."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5, generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
    return model.eval()


def _input(name: str, shape: tuple[int, ...], batch: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    if spec(name).input_dtype == "int64":
        return torch.randint(0, 1000, (batch, *shape), generator=gen)
    return torch.randn(batch, *shape, generator=gen)


def _legacy_export(model: nn.Module, x: torch.Tensor, path: Path) -> Path:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=18)
    return path


def _check(name: str, options: dict[str, Any], shape: tuple[int, ...], dynamo: bool, tmp_path: Path) -> None:
    model = _perturbed(create(name, **options))
    x = _input(name, shape, batch=2)
    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        model(x[:1])
    with torch.no_grad():
        want = model(x).numpy()
    path = tmp_path / f"{name}.onnx"
    if dynamo:
        export_onnx(model, shape, path, dtype=spec(name).input_dtype)
    else:
        _legacy_export(model, x[:1], path)
    graph = from_onnx(path)
    assert graph.inputs[0].shape == shape

    (got,) = execute(graph, x.numpy())
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)

    macs = sum(network_cost(graph).values(), LayerCost()).macs
    assert 2 * macs == flops.get_total_flops()
    if spec(name).family in ("vit", "lm"):
        assert graph.find(OpKind.LAYERNORM) and graph.find(OpKind.SOFTMAX) and graph.find(OpKind.MATMUL)


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "legacy"])
@pytest.mark.parametrize(("name", "options", "shape"), FAST, ids=[c[0] for c in FAST])
def test_imports_executes_and_costs_as_pytorch(name: str, options: dict[str, Any], shape: tuple[int, ...],
                                               dynamo: bool, tmp_path: Path) -> None:
    _check(name, options, shape, dynamo, tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "legacy"])
@pytest.mark.parametrize(("name", "options", "shape"), FULL, ids=[c[0] for c in FULL])
def test_full_size_imports_executes_and_costs_as_pytorch(name: str, options: dict[str, Any],
                                                         shape: tuple[int, ...], dynamo: bool,
                                                         tmp_path: Path) -> None:
    _check(name, options, shape, dynamo, tmp_path)


def test_token_models_import_with_an_int64_input(tmp_path: Path) -> None:
    from accelflow.ir import DType, InputAttrs

    path = export_onnx(create("bert_tiny", vocab_size=64), (16,), tmp_path / "b.onnx", dtype="int64")
    (ids,) = from_onnx(path).inputs
    assert ids.shape == (16,) and isinstance(ids.attrs, InputAttrs) and ids.attrs.dtype is DType.INT64
