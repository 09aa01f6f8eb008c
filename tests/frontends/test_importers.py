"""Both import routes (torch.export and ONNX) give the same IR for every zoo model; the executor agrees
with PyTorch."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from accelflow.errors import ModelImportError, UnsupportedOperatorError
from accelflow.frontends import export_onnx, from_onnx, from_pytorch, load_model
from accelflow.ir import Attrs, Graph, LayerCost, OpKind, execute, network_cost
from accelflow.zoo import create, names, spec

# ImageNet-size models are imported and executed at a reduced input to keep the suite fast (the CNNs are
# fully convolutional; ViT-Tiny is built for 64x64, GPT-2 small read at 64 tokens); MAC counts are checked at
# the published input size below.
EXEC_SHAPE = {"resnet18": (3, 64, 64), "resnet50": (3, 64, 64), "mobilenet_v2": (3, 64, 64),
              "mobilenet_v3_large": (3, 64, 64), "mobilenet_v3_small": (3, 64, 64), "shufflenet_v2": (3, 64, 64),
              "convnext_tiny": (3, 64, 64), "vit_tiny": (3, 64, 64), "gpt2_small": (64,)}
OPTIONS = {"vit_tiny": {"input_size": 64}}


def _signature(graph):
    costs = network_cost(graph)
    return [(n.op, n.shape, costs[n].macs, tuple(sorted(n.params))) for n in graph if n.op is not OpKind.INPUT]


def assert_same_ir(a: Graph, b: Graph, atol: float = 1e-5) -> None:
    """Same operators in the same order, with the same shapes, MACs, attributes (floats to 1e-6) and
    parameters (to ``atol``)."""
    assert _signature(a) == _signature(b)
    for x, y in zip(a, b, strict=True):
        assert type(x.attrs) is type(y.attrs), (x.name, x.attrs, y.attrs)
        if isinstance(x.attrs, Attrs):
            for f in dataclasses.fields(x.attrs):  # type: ignore[arg-type]
                u, v = getattr(x.attrs, f.name), getattr(y.attrs, f.name)
                assert u == pytest.approx(v, rel=1e-6) if isinstance(u, float) else u == v, (x.name, x.attrs, y.attrs)
        for role in x.params:
            np.testing.assert_allclose(x.params[role], y.params[role], atol=atol, rtol=0, err_msg=f"{x.name}:{role}")


def _example(name: str, shape: tuple[int, ...], batch: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    if spec(name).input_dtype == "int64":
        return rng.integers(0, 1000, size=(batch, *shape))
    return rng.normal(size=(batch, *shape)).astype(np.float32)


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx")


#: Zoo models whose route check takes more than half a minute (GPT-2 small: 124 M parameters, 1,024 tokens).
_SLOW = {"gpt2_small"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in _SLOW else n for n in names()])
def test_routes_agree_and_executor_matches_pytorch(name, onnx_dir):
    info = spec(name)
    model = create(name, **OPTIONS.get(name, {}))
    shape = EXEC_SHAPE.get(name, info.input_shape)
    via_export = from_pytorch(model, shape, name=name, input_dtype=info.input_dtype)
    via_onnx = from_onnx(export_onnx(model, shape, onnx_dir / f"{name}.onnx", dtype=info.input_dtype))
    assert_same_ir(via_export, via_onnx)

    x = _example(name, shape, batch=2)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    out = execute(via_export, x)[0]
    assert out.shape == ref.shape
    scale = max(1.0, float(np.abs(ref).max()))
    assert float(np.abs(out - ref).max()) <= 1e-4 * scale


@pytest.mark.parametrize("name", [n for n in names() if spec(n).reference_macs])
def test_published_mac_counts(name):
    info = spec(name)
    total = sum(network_cost(load_model(f"zoo:{name}")).values(), LayerCost())
    assert abs(total.macs - info.reference_macs) / info.reference_macs < 0.02


def test_macs_against_published_figures_explicitly():
    macs = {n: sum(network_cost(load_model(f"zoo:{n}")).values(), LayerCost()).macs
            for n in ("resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small")}
    assert 1.80e9 < macs["resnet18"] < 1.84e9
    assert 4.0e9 < macs["resnet50"] < 4.2e9
    assert 295e6 < macs["mobilenet_v2"] < 305e6
    assert 210e6 < macs["mobilenet_v3_large"] < 225e6
    assert 54e6 < macs["mobilenet_v3_small"] < 60e6


class _Unsupported(nn.Module):
    def forward(self, x):
        return torch.cumsum(x, dim=1)


def test_unsupported_pytorch_op_names_node_and_lists_supported():
    with pytest.raises(UnsupportedOperatorError, match=r"node 'cumsum' .*aten\.cumsum is not supported; supported: "
                                                       r".*aten\.convolution") as info:
        from_pytorch(_Unsupported(), (4,))
    assert "\n" not in str(info.value)


def test_unsupported_onnx_op_names_file_node_and_lists_supported(tmp_path):
    node = onnx.helper.make_node("Round", ["x"], ["y"], name="my_round")
    graph = onnx.helper.make_graph(
        [node], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
    )
    path = tmp_path / "round.onnx"
    onnx.save(onnx.helper.make_model(graph), path)
    with pytest.raises(UnsupportedOperatorError, match=r"round.onnx.*my_round.*Round.*supported: .*Conv"):
        from_onnx(path)


def test_malformed_and_dynamic_onnx_are_rejected(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00not a model")
    with pytest.raises(ModelImportError, match="bad.onnx"):
        from_onnx(bad)
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", "C"])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", "C"])],
    )
    dyn = tmp_path / "dyn.onnx"
    onnx.save(onnx.helper.make_model(graph), dyn)
    with pytest.raises(ModelImportError, match="static shape"):
        from_onnx(dyn)


def test_thresholded_relu_and_dropout_import(tmp_path):
    from accelflow.zoo import ThresholdReLU

    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), ThresholdReLU(0.3, clip=6.0)).eval()
    g = from_pytorch(model, (4,))
    assert [n.op for n in g][1:] == [OpKind.LINEAR, OpKind.THRESHOLD_RELU]
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_allclose(execute(g, x)[0], model(torch.from_numpy(x)).detach().numpy(), atol=1e-6)
    via_onnx = from_onnx(export_onnx(model, (4,), tmp_path / "th.onnx"))
    assert _signature(via_onnx) == _signature(g)
    assert via_onnx.find(OpKind.THRESHOLD_RELU)[0].attrs == g.find(OpKind.THRESHOLD_RELU)[0].attrs


def test_sparsity_attribute_round_trips_through_onnx(tmp_path):
    """fpgaConvNet's channel_sparsity_hist Conv attribute is read into ChannelSparsity annotations."""
    from accelflow.ir import ChannelSparsity
    from accelflow.sparsity import export_sparsity_onnx

    model = create("lenet5")
    rng = np.random.default_rng(0)
    hists = {}
    for name, cin in (("features.conv1", 1), ("features.conv2", 6)):
        h = rng.random((cin, 26))
        hists[name] = h / h.sum(axis=1, keepdims=True)
    path = export_sparsity_onnx(model, spec("lenet5").input_shape, hists, tmp_path / "sparse.onnx")
    graph = from_onnx(path)
    for node in graph.find(OpKind.CONV):
        record = node.annotation(ChannelSparsity)
        assert record is not None
        np.testing.assert_allclose(record.hist, hists[node.name], atol=1e-6)

    proto = onnx.load(str(path))
    conv = next(n for n in proto.graph.node if n.op_type == "Conv")
    attr = next(a for a in conv.attribute if a.name == "channel_sparsity_hist")
    attr.floats[:] = [0.5] * len(attr.floats)
    onnx.save(proto, str(tmp_path / "bad.onnx"))
    with pytest.raises(ModelImportError, match="bad.onnx.*channel_sparsity_hist"):
        from_onnx(tmp_path / "bad.onnx")
