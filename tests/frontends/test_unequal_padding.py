"""Unequal begin/end padding, as in ONNX files exported from Keras/TensorFlow ('SAME' with stride 2, and
ZeroPadding2D as a separate Pad node): imported, converted to PyTorch, measured and exported back.

The reference for what such a file computes is onnx's own ``ReferenceEvaluator``, independent of our
importer, our IR executor and our PyTorch conversion.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator
from torch import nn

from accelflow.dataflow import load_device, optimise_folding
from accelflow.errors import ConfigError, ModelImportError, UnsupportedOperatorError
from accelflow.frontends import export_onnx, from_onnx, from_pytorch, to_torch
from accelflow.hass import conv_input_activations
from accelflow.ir import ConvAttrs, Graph, OpKind, PoolAttrs, execute
from accelflow.sparsity import annotate_graph, brute_force_counts, measure_sparsity, zero_product_counts
from accelflow.zoo import PadConv2d, PadMaxPool2d

_spec = importlib.util.spec_from_file_location(
    "make_corpus", Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz_corpus" / "make_corpus.py")
assert _spec is not None and _spec.loader is not None
_CORPUS = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_CORPUS)


def _keras_style(path: Path, pad_mode: str = "constant", pad_feeds: str = "conv2") -> Path:
    """benchmarks/fuzz_corpus/make_corpus.py's tf2onnx-style CNN (a stride-2 conv with one more pad at the
    end, an auto_pad SAME_UPPER max pool, a zero Pad node before a valid conv, an auto_pad SAME_UPPER conv,
    GAP, classifier), written to ``path``."""
    model = _CORPUS.keras_style_model(pad_mode=pad_mode, pad_feeds=pad_feeds)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _images(n: int) -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 1, (n, 1, 28, 28)).astype(np.float32)


def test_keras_style_file_computes_what_onnx_says(tmp_path: Path) -> None:
    """IR and PyTorch module both agree with onnx's reference evaluator; unequal pads become PadConv2d /
    PadMaxPool2d, the Pad node is folded into conv2's pads, and HASS sees every ReLU -> conv link."""
    path = _keras_style(tmp_path / "keras.onnx")
    graph = from_onnx(path)
    convs = {n.name: n.attrs for n in graph.find(OpKind.CONV)}
    assert convs["conv1"].padding == (0, 0, 1, 1)
    assert convs["conv2"].padding == (1, 0, 2, 1)  # the Pad node, folded
    assert convs["conv3"].padding == (0, 0, 1, 1)  # SAME_UPPER on 8x7, stride 2: one at the end of each axis
    assert not [n for n in graph.nodes if n.name == "zero_pad"]
    assert graph.find(OpKind.MAXPOOL)[0].attrs.padding == (0, 0, 1, 1)  # SAME_UPPER on 14x14, stride 2

    x = _images(1)
    (want,) = ReferenceEvaluator(str(path)).run(None, {"x": x})
    np.testing.assert_allclose(execute(graph, x)[0], want, atol=1e-5, rtol=1e-5)
    module = to_torch(graph)
    with torch.no_grad():
        np.testing.assert_allclose(module(torch.from_numpy(x)).numpy(), want, atol=1e-5, rtol=1e-5)
    assert isinstance(module.get_submodule("conv1"), PadConv2d)
    assert isinstance(module.get_submodule("pool1"), PadMaxPool2d)
    assert conv_input_activations(module) == {"conv2": "relu1", "conv3": "relu2"}


def test_pytorch_route_and_torch_export_round_trip(tmp_path: Path) -> None:
    """The converted module imports back through torch.fx with the same pads, and torch's exporter (which
    writes PadConv2d as Pad + Conv) gives a file the importer reads back to the same function."""
    path = _keras_style(tmp_path / "keras.onnx")
    graph = from_onnx(path)
    module = to_torch(graph)
    again = from_pytorch(module, (1, 28, 28))
    assert {n.name: n.attrs.padding for n in again.find(OpKind.CONV)} == \
        {n.name: n.attrs.padding for n in graph.find(OpKind.CONV)}
    assert {n.name: n.attrs.padding for n in again.find(OpKind.MAXPOOL)} == {"pool1": (0, 0, 1, 1)}

    exported = export_onnx(module, (1, 28, 28), tmp_path / "exported.onnx")
    back = from_onnx(exported)
    x = _images(3)
    (want,) = ReferenceEvaluator(str(exported)).run(None, {"x": x})
    np.testing.assert_allclose(execute(back, x)[0], want, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        np.testing.assert_allclose(module(torch.from_numpy(x)).numpy(), want, atol=1e-5, rtol=1e-5)
    assert sorted(n.attrs.padding for n in back.find(OpKind.CONV)) == \
        sorted(n.attrs.padding for n in graph.find(OpKind.CONV))


def test_zero_products_count_the_unequal_padding() -> None:
    """A PadConv2d's histogram equals the brute-force count of a padding-free conv run on the input padded
    by hand (so the extra end row/column counts as zeros), at every window and filter."""
    torch.manual_seed(0)
    conv = PadConv2d(3, 4, 3, (0, 1, 2, 0), stride=2)
    with torch.no_grad():
        conv.weight.mul_((conv.weight.abs() > 0.1).float())  # some pruned weights
    x = torch.relu(torch.randn(2, 3, 9, 8))
    plain = nn.Conv2d(3, 4, 3, stride=2, padding=0)
    by_hand = F.pad(x, (1, 0, 0, 2))
    want = brute_force_counts(by_hand.numpy(), conv.weight.detach().numpy(), plain)
    got = zero_product_counts(x, conv.weight.detach(), conv)
    np.testing.assert_array_equal(got, want)
    out_h, out_w = conv(x).shape[-2:]
    assert got.sum() == 2 * out_h * out_w * 4 * 3  # images x positions x filters x channels


def test_measured_design_of_a_keras_style_file(tmp_path: Path) -> None:
    """Histograms measured on the converted module annotate the imported graph and fold on a device."""
    graph = from_onnx(_keras_style(tmp_path / "keras.onnx"))
    module = to_torch(graph)
    stats = measure_sparsity(module, [torch.from_numpy(_images(8))])
    annotate_graph(graph, stats)
    design = optimise_folding(graph, load_device("zc706"))
    assert design.throughput_images_per_s > 0
    assert stats["conv2"].hist.shape == (8, 10)
    # conv1 sees images with no zero pixel and unpruned weights: its only zeros are the padding, one row at
    # the bottom and one column at the right of the 14 x 14 outputs (3 zeros; 5 in the corner)
    per_image_filter = np.zeros(10, np.int64)
    per_image_filter[[0, 3, 5]] = 13 * 13, 13 + 13, 1
    np.testing.assert_array_equal(stats["conv1"].counts[0], 8 * 8 * per_image_filter)


def test_reflect_padding_is_named(tmp_path: Path) -> None:
    path = _keras_style(tmp_path / "bad.onnx", pad_mode="reflect", pad_feeds="conv2")
    with pytest.raises(UnsupportedOperatorError, match=r"node 'zero_pad' \(Pad\): Pad mode 'reflect'; only "
                                                       r"'constant' padding"):
        from_onnx(path)


def test_a_pad_nothing_folds_becomes_a_pad_node(tmp_path: Path) -> None:
    """A zero Pad read by a ReLU (which has no pads to fold it into) is a PAD node computing what
    onnxruntime computes."""
    path = _keras_style(tmp_path / "relu.onnx", pad_feeds="relu2")
    g = from_onnx(path)
    (pad,) = g.find(OpKind.PAD)
    assert pad.users[0].op is OpKind.RELU
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for x in _images(3):  # the file's batch is 1
        expected = session.run(None, {"x": x[None]})[0]
        np.testing.assert_allclose(execute(g, x[None])[0], expected, atol=1e-5)


def test_pads_on_the_channel_axis_are_refused(tmp_path: Path) -> None:
    path = _keras_style(tmp_path / "keras.onnx")
    model = onnx.load(path)
    amounts = next(t for t in model.graph.initializer if t.name == "pad_amounts")
    amounts.CopyFrom(numpy_helper.from_array(np.array([0, 1, 0, 0, 0, 0, 0, 0], np.int64), "pad_amounts"))
    onnx.save(model, path)
    with pytest.raises(ModelImportError, match=r"node 'conv2': conv expects \(8, ...2-D\), got \(9, 7, 7\)"):
        from_onnx(path)  # the padded channel is a channel too many for the conv that reads it


def _one_node_graph(op: OpKind, attrs: ConvAttrs | PoolAttrs, spatial: tuple[int, ...]) -> Graph:
    g = Graph("pads")
    x = g.add_input("x", (1, *spatial))
    params = {"weight": np.zeros((2, 1, *attrs.kernel), np.float32)} if op is OpKind.CONV else {}
    node = g.add_node("layer", op, [x], attrs, params)
    g.set_outputs([node])
    return g


@pytest.mark.parametrize(("op", "attrs", "spatial", "what"), [
    (OpKind.CONV, ConvAttrs(1, 2, (3,), (2,), (0, 1), (1,)), (8,), "1-D conv"),
    (OpKind.AVGPOOL, PoolAttrs((2, 2), (2, 2), (0, 0, 1, 1), False, False), (7, 7), "2-D avgpool"),
    (OpKind.MAXPOOL, PoolAttrs((2, 2), (2, 2), (0, 0, 1, 1), True, False), (7, 7), "2-D maxpool in ceil mode"),
])
def test_unequal_pads_without_a_module_are_named(op: OpKind, attrs: ConvAttrs | PoolAttrs,
                                                 spatial: tuple[int, ...], what: str) -> None:
    with pytest.raises(UnsupportedOperatorError, match=rf"node 'layer': unequal begin/end padding .* of a {what} "
                                                       r"has no PyTorch module"):
        to_torch(_one_node_graph(op, attrs, spatial))


def test_pad_layers_check_their_pads() -> None:
    with pytest.raises(ConfigError, match=r"pads \(1, 1\): expected four non-negative ints"):
        PadConv2d(1, 1, 3, (1, 1))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"pads \(0, -1, 0, 0\)"):
        PadMaxPool2d(2, 2, (0, -1, 0, 0))


@pytest.mark.parametrize(("amounts", "axes", "message"), [
    ([0, 0, 1, 0, 0, 0, 2], None, r"7 pads for 4 axes"),
    ([1, 1, 1, 1], [2, 6], r"axes \[2, 6\] for a rank-4 input"),
    ([1, 1, 1, 1], [2, 2], r"axes \[2, 2\] for a rank-4 input"),
    ([0, 0, -1, 0, 0, 0, 1, 1], None, r"negative pads \[0, 0, -1, 0, 0, 0, 1, 1\] \(cropping\); only padding"),
])
def test_malformed_pads_are_named(tmp_path: Path, amounts: list[int], axes: list[int] | None, message: str) -> None:
    """Pad amounts or axes that do not fit the input name the node (and never wrap around silently)."""
    path = _keras_style(tmp_path / "keras.onnx")
    model = onnx.load(path)
    pad = next(n for n in model.graph.node if n.op_type == "Pad")
    amounts_init = next(t for t in model.graph.initializer if t.name == "pad_amounts")
    amounts_init.CopyFrom(numpy_helper.from_array(np.array(amounts, np.int64), "pad_amounts"))
    if axes is not None:
        model.graph.initializer.append(numpy_helper.from_array(np.array(axes, np.int64), "pad_axes"))
        pad.input.extend(["", "pad_axes"])
    onnx.save(model, path)
    with pytest.raises(ModelImportError, match=rf"node 'zero_pad' \(Pad\): .*{message}"):
        from_onnx(path)
