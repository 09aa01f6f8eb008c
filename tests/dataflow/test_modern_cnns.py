"""Models users bring (ConvNeXt, DenseNet, ShuffleNetV2, RepVGG, SE with hard-swish, a decoder) fold onto the
dataflow accelerator through the ONNX route; a ViT is refused in one line naming its first attention product."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from accelflow.cli.main import main
from accelflow.dataflow import (
    ConvLayer,
    Folding,
    LayerModel,
    Method,
    NormLayer,
    PadLayer,
    PoolLayer,
    ReduceLayer,
    ReorderLayer,
    ResizeLayer,
    SelectLayer,
    StreamLayer,
    load_device,
    optimise_folding,
)
from accelflow.dataflow._build import build_layers
from accelflow.errors import UnsupportedOperatorError
from accelflow.frontends import export_onnx, from_onnx
from accelflow.ir import (
    ConvAttrs,
    DType,
    GeluAttrs,
    Graph,
    InputAttrs,
    Node,
    OpKind,
    PoolAttrs,
    layer_cost,
    propagate_shapes,
)

from .nets import FOLDABLE, NETS


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every test net exported once with torch's exporter."""
    root = tmp_path_factory.mktemp("nets")
    return {name: export_onnx(ctor(), shape, root / f"{name}.onnx") for name, (ctor, shape) in NETS.items()}


def _graph(onnx_files: dict[str, Path], name: str) -> Graph:
    return from_onnx(onnx_files[name])


def _by_name(layers: list[LayerModel]) -> dict[str, LayerModel]:
    return {layer.name: layer for layer in layers}


def _of(layers: list[LayerModel], op: OpKind) -> list[LayerModel]:
    return [layer for layer in layers if layer.op is op]


@pytest.mark.parametrize("name", FOLDABLE)
def test_every_cnn_folds_on_a_small_device_with_each_optimiser(onnx_files: dict[str, Path], name: str) -> None:
    graph = _graph(onnx_files, name)
    device = load_device("zc706")
    for method in (Method.GREEDY, Method.ANNEAL):
        design = optimise_folding(graph, device, method, iterations=600 if method is Method.ANNEAL else None)
        assert design.feasible and design.throughput_images_per_s > 0
        r, cap = design.resources, design.utilisation_cap
        assert r.dsp <= cap * device.dsp and r.lut <= cap * device.lut and r.bram18 <= cap * device.bram18
        for layer in design.layers:  # every stage reports a legal folding and positive cycles
            assert layer.cycles_per_image > 0
    # every layer, new kinds included: costs never negative, more folding never slower
    for layer in build_layers(graph):
        for fold in (layer.minimal(), layer.maximal()):
            res = layer.resources(fold)
            assert min(res.dsp, res.lut, res.ff, res.bram18, res.uram) >= 0 and res.lut > 0
        assert layer.cycles(layer.maximal()) <= layer.cycles(layer.minimal())


@pytest.mark.parametrize("name", ["shufflenet", "convnext"])
def test_greedy_reaches_the_exact_optimum_with_the_new_stages(onnx_files: dict[str, Path], name: str) -> None:
    graph, device = _graph(onnx_files, name), load_device("zc706")
    exact = optimise_folding(graph, device, Method.EXHAUSTIVE, utilisation=0.1)
    greedy = optimise_folding(graph, device, Method.GREEDY, utilisation=0.1)
    assert greedy.feasible and greedy.interval_cycles <= exact.interval_cycles / 0.95


@pytest.mark.parametrize("name", FOLDABLE)
def test_cli_json_within_the_device(onnx_files: dict[str, Path], name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dataflow", str(onnx_files[name]), "--device", "zc706", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["feasible"] and out["throughput_images_per_s"] > 0
    assert all(0 <= v <= out["utilisation_cap"] for v in out["utilisation"].values())
    assert {layer["op"] for layer in out["layers"]} >= {"conv"}


def test_convnext_channels_last_transposes_are_free_and_norm_and_mlp_are_per_pixel(onnx_files: dict[str, Path]) -> None:
    """The block's (C,H,W)->(H,W,C) permute, LayerNorm over channels, Linear-GELU-Linear, layer scale and
    permute back: the permutes rename the stream (no stage), the norm buffers one pixel's C words, the
    linears are 1x1 convs on the 8x8 map, the layer scale is a multiply by 16 weights."""
    graph = _graph(onnx_files, "convnext")
    layers = build_layers(graph)
    assert not _of(layers, OpKind.TRANSPOSE)
    norm = _by_name(layers)["block.norm"]
    assert isinstance(norm, NormLayer) and norm.group == 16 and norm.channels == 16
    f = Folding(4, 4)
    assert norm.cycles(f) == 8 * 8 * 16 / 4 and norm.fill_cycles(f) == 16 / 4 + 8
    assert norm.weights(f).arrays == 4 and norm.weights(f).depth == 4  # 16 weights over 4 banks
    # pass-1 x^2 and pass-2 x rstd and x weight per stream, 3 shared multipliers: (mean, E[x^2], mean^2)
    assert norm.resources(f).dsp == 4 * 3 + 3
    fc1 = next(layer for layer in _of(layers, OpKind.LINEAR) if isinstance(layer, ConvLayer) and layer.filters == 64)
    as_conv = _one_by_one_conv(16, 64, 8, 8)
    for fold in (Folding(), Folding(4, 8), Folding(16, 64)):
        assert fc1.cycles(fold) == as_conv.cycles(fold) and fc1.resources(fold) == as_conv.resources(fold)
        assert fc1.fill_cycles(fold) == as_conv.fill_cycles(fold)
    scale = _by_name(layers)["node_mul_1"]
    assert isinstance(scale, StreamLayer) and scale.weight_words == 16 and scale.buffer_words == 0
    residual = next(layer for layer in _of(layers, OpKind.ADD) if layer.producers == ("node_add_1", "node_mul_1"))
    assert isinstance(residual, StreamLayer) and residual.buffer_words == (7 + 1) * 8 * 16  # dwconv's 7 rows


def _one_by_one_conv(c: int, f: int, h: int, w: int) -> LayerModel:
    rng = np.random.default_rng(0)
    g = Graph("pw")
    x = g.add_input("x", (c, h, w))
    conv = g.add_node("pw", OpKind.CONV, [x], ConvAttrs(c, f, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
                      params={"weight": rng.standard_normal((f, c, 1, 1)).astype(np.float32),
                              "bias": rng.standard_normal(f).astype(np.float32)})  # fmt: skip
    g.set_outputs([conv])
    propagate_shapes(g)
    return build_layers(g)[0]


def test_channels_first_layer_norm_spelled_out_costs_per_pixel_buffers(onnx_files: dict[str, Path]) -> None:
    """timm's LayerNorm2d (mean over dim 1, subtract, square, mean, sqrt, divide, scale, shift): the means
    reduce a pixel's channels across the streams, the subtraction waits one pixel (C words) for its mean."""
    layers = _by_name(build_layers(_graph(onnx_files, "convnext")))
    mean = layers["node_mean"]
    assert isinstance(mean, ReduceLayer) and mean.across and mean.group == 16 and mean.results == 1
    sub = layers["node_sub"]
    assert isinstance(sub, StreamLayer) and sub.buffer_words == 16
    power = layers["node_pow_1"]
    assert isinstance(power, StreamLayer) and power.exponent == 2.0 and power.resources(Folding()).dsp == 1


def test_densenet_affine_and_concat_of_many_inputs(onnx_files: dict[str, Path]) -> None:
    layers = build_layers(_graph(onnx_files, "densenet"))
    affines = _of(layers, OpKind.AFFINE)
    assert len(affines) == 4  # each dense layer's norm1 and the final norm5
    first = affines[0]
    assert isinstance(first, StreamLayer) and first.weight_words == 2 * 16
    assert first.weights(Folding(4, 4)).depth == 8 and first.resources(Folding(4, 4)).dsp == 4
    last_concat = _of(layers, OpKind.CONCAT)[-1]
    assert isinstance(last_concat, StreamLayer) and last_concat.inputs == 4 and len(last_concat.producers) == 4
    assert last_concat.elements == 40 * 16 * 16 and last_concat.buffer_words > 0
    assert last_concat.options()[0] == (1, 2, 4, 8)  # streams divide every input's channels (16, 8, 8, 8)


def test_shufflenet_split_and_shuffle(onnx_files: dict[str, Path]) -> None:
    """chunk(2) is two slices of the channel stream; the shuffle's view-transpose-view is one re-order of
    each pixel's 16 channels (the views are free)."""
    layers = build_layers(_graph(onnx_files, "shufflenet"))
    shuffles = [layer for layer in layers if isinstance(layer, ReorderLayer)]
    assert len(shuffles) == 2 and not _of(layers, OpKind.RESHAPE)
    shuffle = shuffles[0]
    assert shuffle.block == 16 and shuffle.channels == 16
    f = Folding(4, 4)
    assert shuffle.cycles(f) == 16 * 8 * 8 / 4 and shuffle.fill_cycles(f) == 4 + 8
    assert shuffle.resources(f).dsp == 0
    splits = [layer for layer in layers if isinstance(layer, SelectLayer)]
    assert len(splits) == 4 and all(s.channels == 8 and s.cycles(Folding(8, 8)) == 16 * 8 * 8 / 8 for s in splits)


def test_repvgg_branches_add_with_skip_buffers(onnx_files: dict[str, Path]) -> None:
    layers = build_layers(_graph(onnx_files, "repvgg"))
    adds = [layer for layer in _of(layers, OpKind.ADD) if isinstance(layer, StreamLayer)]
    assert len(adds) == 4 and all(a.buffer_words > 0 for a in adds)
    assert len(_of(layers, OpKind.AFFINE)) == 2  # the identity branches' BatchNorm


def test_se_block_and_activations(onnx_files: dict[str, Path]) -> None:
    layers = build_layers(_graph(onnx_files, "se_hardswish"))
    ops = [layer.op for layer in layers]
    for op in (OpKind.HARDSWISH, OpKind.HARDSIGMOID, OpKind.LEAKY_RELU, OpKind.PRELU, OpKind.ELU, OpKind.CLIP):
        assert op in ops
    se = next(layer for layer in _of(layers, OpKind.MUL) if len(layer.producers) == 2)
    assert isinstance(se, StreamLayer) and se.buffer_words == 16 * 16 * 16  # the whole map waits for the SE scale
    scale = next(layer for layer in _of(layers, OpKind.MUL) if len(layer.producers) == 1)
    shift = _of(layers, OpKind.ADD)[0]
    prelu = _of(layers, OpKind.PRELU)[0]
    for layer in (scale, shift, prelu):  # per-channel constants are 8 weights, no skip buffer
        assert isinstance(layer, StreamLayer) and layer.weight_words == 8 and layer.buffer_words == 0
    assert scale.resources(Folding(2, 2)).dsp == 2 and shift.resources(Folding(2, 2)).dsp == 0


def test_decoder_conv_transpose_pad_resize(onnx_files: dict[str, Path]) -> None:
    graph = _graph(onnx_files, "decoder")
    layers = _by_name(build_layers(graph))
    up = layers["up"]
    assert isinstance(up, ConvLayer) and (up.kh, up.kw) == (2, 2)  # 4x4 stride 2: four phases of 2x2 taps
    macs = layer_cost(graph["up"]).macs
    f = Folding(4, 8, 1, 2)
    assert up.cycles(f) == macs / f.lanes
    assert up.weights(Folding()).depth == 8 * 16 * 4 * 4  # every phase's taps
    pad = next(layer for layer in layers.values() if isinstance(layer, PadLayer))
    assert pad.cycles(Folding(8, 8)) == 8 * 18 * 18 / 8
    nearest, bilinear = (layer for layer in layers.values() if isinstance(layer, ResizeLayer))
    assert not nearest.linear and bilinear.linear
    assert nearest.cycles(Folding(8, 8)) == 8 * 32 * 32 / 8 and bilinear.cycles(Folding(2, 2)) == 2 * 64 * 64 / 2
    assert nearest.resources(Folding()).dsp == 0 and bilinear.resources(Folding(2, 2)).dsp == 4


def test_a_pool_window_larger_than_the_map_covers_the_map() -> None:
    """Hugging Face's EfficientNet pools globally with AvgPool2d(1280, ceil_mode=True) on a 7x7 map: the
    window is the map (49 taps), not 1280 x 1280 taps of adder tree."""
    rng = np.random.default_rng(0)
    g = Graph("big_window")
    x = g.add_input("x", (3, 7, 7))
    conv = g.add_node("conv", OpKind.CONV, [x], ConvAttrs(3, 8, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
                      params={"weight": rng.standard_normal((8, 3, 1, 1)).astype(np.float32)})  # fmt: skip
    pool = g.add_node("pool", OpKind.AVGPOOL, [conv], PoolAttrs((1280, 1280), (1280, 1280), (0, 0, 0, 0), True))
    g.set_outputs([pool])
    propagate_shapes(g)
    layer = build_layers(g)[-1]
    assert _shape_of(pool) == (8, 1, 1) and isinstance(layer, PoolLayer) and (layer.kh, layer.kw) == (7, 7)
    assert layer.resources(Folding()).lut < 5_000


def _shape_of(node: Node) -> tuple[int, ...]:
    assert node.shape is not None
    return node.shape


def test_vit_is_refused_naming_its_first_attention_product(onnx_files: dict[str, Path],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    graph = _graph(onnx_files, "vit")
    first = next(n for n in graph if n.op is OpKind.MATMUL)
    with pytest.raises(UnsupportedOperatorError, match="matmul of two activations") as info:
        build_layers(graph)
    assert repr(first.name) in str(info.value)
    assert main(["dataflow", str(onnx_files["vit"]), "--device", "zc706", "--json"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert not captured.out and "\n" not in err and "Traceback" not in err
    assert first.name in err and "transformers" in err and "supported: CNNs" in err


def test_a_language_model_is_refused_at_its_token_embedding() -> None:
    g = Graph("lm")
    ids = g.add_input("ids", (8,))
    ids.attrs = InputAttrs(DType.INT64)
    wte = g.add_node("wte", OpKind.EMBEDDING, [ids], params={"weight": np.zeros((50, 16), np.float32)})
    g.set_outputs([g.add_node("act", OpKind.GELU, [wte], GeluAttrs())])
    propagate_shapes(g)
    with pytest.raises(UnsupportedOperatorError, match="node 'wte' \\(embedding\\): token ids index a table"):
        build_layers(g)


def test_a_transformer_without_attention_folds_token_by_token(onnx_files: dict[str, Path]) -> None:
    """Patch embedding -> tokens (a free transpose), class token concat (a 32-word constant), positional
    embedding (a 17 x 32 constant), per-token LayerNorm (G = D = 32) and MLP (1x1 convs on 17 tokens)."""
    layers = _by_name(build_layers(_graph(onnx_files, "token_mlp")))
    assert not any(layer.op is OpKind.TRANSPOSE for layer in layers.values())
    cat, pos = (layers[n] for n in ("node_cat", "node_add"))
    assert isinstance(cat, StreamLayer) and cat.weight_words == 32 and cat.elements == 17 * 32
    assert isinstance(pos, StreamLayer) and pos.weight_words == 17 * 32 and pos.buffer_words == 0
    norm = layers["norm1"]
    assert isinstance(norm, NormLayer) and norm.group == 32
    fc1 = next(layer for layer in layers.values() if isinstance(layer, ConvLayer) and layer.filters == 64)
    assert (fc1.h_out, fc1.w_out) == (17, 1) and fc1.cycles(Folding()) == 17 * 32 * 64


def test_stage_resources_follow_the_documented_formulas() -> None:
    """Spot checks of docs/dataflow.md's table at 16 bits."""
    reorder = ReorderLayer(name="t", op=OpKind.TRANSPOSE, data_bits=16, weight_bits=16, channels=64, elements=64 * 49,
                           block=64)  # fmt: skip
    # per stream: 2 x 16 words of LUTRAM (16 LUT, 16 FF), a 4:1 mux (16 LUT, 16 FF), 2 counters to 16 (4+4),
    # control (12, 8); plus a 32-deep output FIFO per stream (16, 16)
    assert reorder.resources(Folding(4, 4)).lut == 4 * (16 + 16 + 8 + 12) + 4 * 16
    big = ReorderLayer(name="t", op=OpKind.TRANSPOSE, data_bits=16, weight_bits=16, channels=64, elements=64,
                       block=4096)  # fmt: skip
    assert big.resources(Folding(1, 1)).bram18 == 8  # 8192 x 16 bits of ping-pong buffer
    norm = NormLayer(name="n", op=OpKind.SOFTMAX, data_bits=16, weight_bits=16, channels=10, elements=10, group=10)
    assert norm.resources(Folding()).dsp == 2 and norm.cycles(Folding(5, 5)) == 2
    mean = ReduceLayer(name="m", op=OpKind.REDUCE_MEAN, data_bits=16, weight_bits=16, channels=8, elements=8 * 64,
                       group=8 * 64, results=8)  # fmt: skip
    assert mean.resources(Folding(2, 2)).dsp == 2 and math.isclose(mean.cycles(Folding(2, 2)), 256)
