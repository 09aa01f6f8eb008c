"""The torch.export route on small real models that symbolic tracing could not read: shape assertions, Python
branches on static shapes, ``x[:, 0]``, ``permute``, ``chunk``/``split``, attention layers with and without
``batch_first``, a token model with int64 ids, a decoder with transposed convolutions and upsampling. Each
imports, executes within 1e-4 of PyTorch for a batch of 1 and of 3, and costs the MACs the ONNX route gives
for the same model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from accelflow.errors import ConfigError, ModelImportError
from accelflow.frontends import export_onnx, from_onnx, from_pytorch, load_model
from accelflow.frontends import pytorch as route
from accelflow.ir import (
    DType,
    Graph,
    InputAttrs,
    LayerCost,
    OpKind,
    ThresholdAttrs,
    execute,
    network_cost,
)
from accelflow.zoo import create, spec
from tests.frontends.test_importers import assert_same_ir


def _macs(graph: Graph) -> int:
    return sum(network_cost(graph).values(), LayerCost()).macs


def _inputs(shape: tuple[int, ...], batch: int, dtype: str, vocab: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(batch)
    if dtype == "int64":
        return torch.randint(0, vocab, (batch, *shape), generator=gen)
    return torch.randn(batch, *shape, generator=gen)


def check(model: nn.Module, shape: tuple[int, ...], tmp_path: Path, dtype: str = "float32",
          vocab: int = 100) -> Graph:
    """Import ``model``, run it on batches of 1 and 3 against PyTorch, and compare MACs with the ONNX route;
    reading its program decomposed into core ATen gives the same IR."""
    torch.manual_seed(0)
    model = model.eval()
    graph = from_pytorch(model, shape, input_dtype=dtype)
    ep = route._export(model, torch.zeros(1, *shape, dtype=torch.int64 if dtype == "int64" else torch.float32))
    assert_same_ir(graph, route._to_ir(route._lower(ep, "core", always=True), "core"), atol=0)
    for batch in (1, 3):
        x = _inputs(shape, batch, dtype, vocab)
        with torch.no_grad():
            want = model(x)
        wants = [w.numpy() for w in (want if isinstance(want, tuple) else (want,))]
        gots = execute(graph, x.numpy())
        assert len(gots) == len(wants)
        for got, ref in zip(gots, wants, strict=True):
            assert got.shape == ref.shape
            np.testing.assert_allclose(got, ref, atol=1e-4 * max(1.0, float(np.abs(ref).max())), rtol=0)
    via_onnx = from_onnx(export_onnx(model, shape, tmp_path / "model.onnx", dtype=dtype))
    assert _macs(graph) == _macs(via_onnx) > 0
    return graph


class ShapeChecks(nn.Module):
    """An assertion on the input shape and a Python branch on a static size (symbolic tracing fails on both)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1] == 3, "expects RGB images"
        if x.shape[-1] > 8:
            x = F.max_pool2d(x, 2)
        y = F.relu(self.conv(x))
        return self.fc(y.mean(dim=(2, 3)))


class FirstRow(nn.Module):
    """``permute`` to channels-last, then ``x[:, 0]`` (the first row) and a reduction over it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3, padding=1)
        self.fc = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x).permute(0, 2, 3, 1)  # (N, H, W, C)
        return self.fc(y[:, 0].amax(dim=1)) + y[:, 1:3, 2, :].sum(dim=1).mean(dim=-1, keepdim=True)


class Gated(nn.Module):
    """``chunk`` into a gated linear unit, ``split`` into unequal parts re-joined in the other order."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.fc(x).chunk(2, dim=-1)
        c, d = torch.split(x, [3, 5], dim=1)
        return a * torch.sigmoid(b) + torch.cat([d, c], dim=1)


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
        self.norm = nn.LayerNorm(16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.attn(x, x, x)  # the averaged attention weights are computed by torch, unused here
        return self.norm(x + y)


class Encoder(nn.Module):
    """A transformer encoder layer; with ``batch_first=False`` the batch is moved to axis 1 and back."""

    def __init__(self, batch_first: bool) -> None:
        super().__init__()
        self.batch_first = batch_first
        self.layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=batch_first)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.batch_first:
            return self.layer(x)
        return self.layer(x.transpose(0, 1)).transpose(0, 1)


class TokenModel(nn.Module):
    """Token ids -> embedding plus learned positions -> LayerNorm -> mean over tokens -> classifier."""

    def __init__(self, vocab: int = 100, dim: int = 16, tokens: int = 12) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(0.1 * torch.randn(1, tokens, dim))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.emb(ids) + self.pos[:, : ids.shape[1]])
        return self.head(F.gelu(h).mean(dim=1))


class Decoder(nn.Module):
    """Transposed convolutions (2-D and grouped), nearest and bilinear upsampling, and a 1-D branch."""

    def __init__(self) -> None:
        super().__init__()
        self.up1 = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
        self.up2 = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = nn.Conv2d(4, 4, 3, padding=1, groups=2)
        self.up3 = nn.Upsample(size=(30, 30), mode="bilinear", align_corners=False)
        self.up4 = nn.ConvTranspose2d(4, 2, 2, stride=2, groups=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up2(F.relu(self.up1(x)))
        return self.up4(self.up3(torch.tanh(self.conv(y))))


class Decoder1d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(6, 8, 3, padding=1)
        self.up = nn.ConvTranspose1d(8, 4, 4, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(F.leaky_relu(self.conv(x), 0.1))


def test_assertion_and_static_branch(tmp_path: Path) -> None:
    graph = check(ShapeChecks(), (3, 16, 16), tmp_path)
    assert [n.op for n in graph][1:] == [OpKind.MAXPOOL, OpKind.CONV, OpKind.RELU, OpKind.GLOBAL_AVGPOOL,
                                         OpKind.LINEAR]
    assert graph["conv"].op is OpKind.CONV and graph["fc"].op is OpKind.LINEAR  # named after the modules


def test_permute_and_first_row(tmp_path: Path) -> None:
    graph = check(FirstRow(), (4, 6, 5), tmp_path)
    assert graph.find(OpKind.TRANSPOSE) and graph.find(OpKind.GATHER)


def test_chunk_and_split(tmp_path: Path) -> None:
    graph = check(Gated(), (8,), tmp_path)
    assert len(graph.find(OpKind.SLICE)) == 4 and graph.find(OpKind.CONCAT)


def test_multihead_attention(tmp_path: Path) -> None:
    graph = check(Attention(), (10, 16), tmp_path)
    assert len(graph.find(OpKind.MATMUL)) == 2 and graph.find(OpKind.SOFTMAX)


@pytest.mark.parametrize("batch_first", [True, False], ids=["batch_first", "sequence_first"])
def test_transformer_encoder_layer(batch_first: bool, tmp_path: Path) -> None:
    graph = check(Encoder(batch_first), (7, 16), tmp_path)
    assert len(graph.find(OpKind.LAYERNORM)) == 2 and len(graph.find(OpKind.LINEAR)) == 4


def test_token_model_with_int64_ids(tmp_path: Path) -> None:
    graph = check(TokenModel(), (12,), tmp_path, dtype="int64")
    (ids,) = graph.inputs
    assert isinstance(ids.attrs, InputAttrs) and ids.attrs.dtype is DType.INT64
    assert [n.op for n in graph.find(OpKind.EMBEDDING, OpKind.LAYERNORM, OpKind.GELU)] == \
        [OpKind.EMBEDDING, OpKind.LAYERNORM, OpKind.GELU]
    assert graph["emb"].params["weight"].shape == (100, 16) and graph["norm"].op is OpKind.LAYERNORM


def test_transposed_convolutions_and_upsampling(tmp_path: Path) -> None:
    graph = check(Decoder(), (8, 5, 5), tmp_path)
    assert len(graph.find(OpKind.CONV_TRANSPOSE)) == 2 and len(graph.find(OpKind.RESIZE)) == 2
    check(Decoder1d(), (6, 9), tmp_path)


def test_threshold_relu_keeps_its_attributes_and_name() -> None:
    """HASS's thresholded activations (``where(x > t, x, 0)``, clipped for ReLU6) come out as THRESHOLD_RELU
    named after the module, with the float32 threshold and the clip."""
    from accelflow.zoo import ThresholdReLU

    model = nn.Sequential(nn.Conv2d(2, 4, 3), ThresholdReLU(0.3, clip=6.0), nn.Conv2d(4, 4, 1),
                          ThresholdReLU(0.1)).eval()
    graph = from_pytorch(model, (2, 6, 6))
    assert [n.op for n in graph][1:] == [OpKind.CONV, OpKind.THRESHOLD_RELU, OpKind.CONV, OpKind.THRESHOLD_RELU]
    assert graph["1"].attrs == ThresholdAttrs(0.3, 6.0) and graph["3"].attrs == ThresholdAttrs(0.1)
    x = torch.randn(3, 2, 6, 6)
    np.testing.assert_allclose(execute(graph, x.numpy())[0], model(x).detach().numpy(), atol=1e-6)


def test_batchnorm_folds_into_its_conv_else_is_affine() -> None:
    model = nn.Sequential(nn.BatchNorm1d(8), nn.Linear(8, 6), nn.BatchNorm1d(6), nn.ReLU()).eval()
    with torch.no_grad():
        for bn in (model[0], model[2]):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
    graph = from_pytorch(model, (8,))
    assert [n.op for n in graph][1:] == [OpKind.AFFINE, OpKind.LINEAR, OpKind.RELU]
    x = torch.randn(3, 8)
    np.testing.assert_allclose(execute(graph, x.numpy())[0], model(x).detach().numpy(), atol=1e-5)


class _HugeConstant(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.ones(9000, 8000).sum()


def test_folding_is_bounded_and_errors_are_one_line() -> None:
    with pytest.raises(ModelImportError, match=r"node 'ones' .*72,000,000 elements; at most 67,108,864"):
        from_pytorch(_HugeConstant(), (4,))
    with pytest.raises(ModelImportError, match=r"cannot export ShapeChecks .*\(1, 1, 16, 16\).*expects RGB") as info:
        from_pytorch(ShapeChecks(), (1, 16, 16))
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="input dtype 'int8'; supported: float32, int64"):
        from_pytorch(Gated(), (8,), input_dtype="int8")


def test_model_file_input_dtype(tmp_path: Path) -> None:
    path = tmp_path / "lm.py"
    path.write_text("import torch\nfrom torch import nn\nINPUT_SHAPE = (6,)\nINPUT_DTYPE = 'int64'\n"
                    "model = nn.Sequential(nn.Embedding(50, 8), nn.Flatten(), nn.Linear(48, 3))\n")
    graph = load_model(str(path))
    assert isinstance(graph.inputs[0].attrs, InputAttrs) and graph.inputs[0].attrs.dtype is DType.INT64
    assert [n.op for n in graph][1:] == [OpKind.EMBEDDING, OpKind.FLATTEN, OpKind.LINEAR]
    path.write_text("from torch import nn\nINPUT_DTYPE = 'text'\nmodel = nn.Linear(2, 2)\n")
    with pytest.raises(ModelImportError, match=r"lm.py: INPUT_DTYPE must be one of 'float32', 'int64', got 'text'"):
        load_model(str(path))


@pytest.mark.parametrize("name", ["lenet5", "resnet8", "mobilenet_v3_tiny", "tc_resnet8", "convnext_nano",
                                  "mobilenet_v2_tiny+threshold", "vit_nano", "bert_tiny", "gpt2_tiny"])
def test_reading_as_exported_equals_reading_core_aten(name: str) -> None:
    """Models made of operators the importer reads as exported (every zoo model) skip the decomposition into
    core ATen; reading their decomposed program gives the same IR, the layers' names included
    (``+threshold``: every ReLU6 made a clipped ThresholdReLU, as HASS does)."""
    from accelflow.zoo import replace_activations

    zoo_name, _, variant = name.partition("+")
    model = create(zoo_name)
    if variant:
        model = replace_activations(model, 0.05)
    info = spec(zoo_name)
    dtype = torch.int64 if info.input_dtype == "int64" else torch.float32
    ep = route._export(model, torch.zeros(1, *info.input_shape, dtype=dtype))
    assert route._lower(ep, name) is ep
    direct, decomposed = route._to_ir(ep, name), route._to_ir(route._lower(ep, name, always=True), name)
    assert_same_ir(direct, decomposed, atol=0)
    layers = [[n.name for n in g if n.params and n.op is not OpKind.CONSTANT] for g in (direct, decomposed)]
    assert layers[0] == layers[1]
