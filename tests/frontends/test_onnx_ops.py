"""Every operator the ONNX importer reads, on small hand-written graphs: the IR's executor must compute what
onnxruntime computes (within 1e-4), for the file's batch of 1 and, sample by sample, for a batch of 3."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from accelflow.frontends import from_onnx
from accelflow.ir import OpKind, execute

F, I64 = TensorProto.FLOAT, TensorProto.INT64
RNG = np.random.default_rng(0)


def _rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def _model(nodes: list[onnx.NodeProto], inputs: dict[str, tuple[tuple[int, ...], int]],
           inits: dict[str, np.ndarray], outputs: list[str], opset: int,
           shapes: dict[str, tuple[int, ...]] | None = None) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "ops",
        [helper.make_tensor_value_info(k, t, list(s)) for k, (s, t) in inputs.items()],
        [helper.make_tensor_value_info(o, F, (shapes or {}).get(o)) for o in outputs],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return onnx.shape_inference.infer_shapes(model, data_prop=True)  # output shapes, as exporters write them


def _feed(shape: tuple[int, ...], dtype: int) -> np.ndarray:
    if dtype == I64:
        return RNG.integers(0, 10, shape).astype(np.int64)
    return RNG.standard_normal(shape).astype(np.float32)


def check(tmp_path: Path, nodes: list[onnx.NodeProto], inputs: dict[str, tuple[tuple[int, ...], int]],
          inits: dict[str, np.ndarray] | None = None, outputs: tuple[str, ...] = ("y",), opset: int = 18,
          expect: OpKind | None = None, shapes: dict[str, tuple[int, ...]] | None = None) -> None:
    model = _model(nodes, inputs, dict(inits or {}), list(outputs), opset, shapes)
    onnx.checker.check_model(model)
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    graph = from_onnx(path)
    if expect is not None:
        assert graph.find(expect), f"no {expect.value} node in {graph}"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    samples = [{k: _feed(s, t) for k, (s, t) in inputs.items()} for _ in range(3)]
    batched = execute(graph, {k: np.concatenate([s[k] for s in samples]) for k in inputs})
    for i, sample in enumerate(samples):
        expected = session.run(list(outputs), sample)
        single = execute(graph, sample)
        for want, got, many in zip(expected, single, batched, strict=True):
            assert got.shape[1:] == want.shape[1:] or got.size == want.size, (got.shape, want.shape)
            np.testing.assert_allclose(np.asarray(got, dtype=want.dtype).reshape(want.shape), want, atol=1e-4,
                                       rtol=1e-4)
            np.testing.assert_allclose(np.asarray(many[i : i + 1], dtype=want.dtype).reshape(want.shape), want,
                                       atol=1e-4, rtol=1e-4)


N = helper.make_node
UNARY = ["Tanh", "Erf", "Exp", "Neg", "Abs", "Sin", "Cos", "Softplus", "Sigmoid", "Relu"]


@pytest.mark.parametrize("op", UNARY)
def test_unary(tmp_path: Path, op: str) -> None:
    check(tmp_path, [N(op, ["x"], ["y"])], {"x": ((1, 3, 5), F)})


@pytest.mark.parametrize("op", ["Sqrt", "Log", "Reciprocal"])
def test_unary_of_positive(tmp_path: Path, op: str) -> None:
    check(tmp_path, [N("Abs", ["x"], ["a"]), N("Add", ["a", "one"], ["p"]), N(op, ["p"], ["y"])],
          {"x": ((1, 4, 3), F)}, {"one": np.float32(1.0)})


@pytest.mark.parametrize(("op", "attrs"), [("LeakyRelu", {"alpha": 0.2}), ("Elu", {"alpha": 0.7}),
                                           ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}), ("HardSwish", {})])
def test_activations_with_attributes(tmp_path: Path, op: str, attrs: dict) -> None:
    check(tmp_path, [N(op, ["x"], ["y"], **attrs)], {"x": ((1, 2, 6), F)})


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(tmp_path: Path, approximate: str) -> None:
    check(tmp_path, [N("Gelu", ["x"], ["y"], approximate=approximate)], {"x": ((1, 7, 4), F)}, opset=20,
          expect=OpKind.GELU)


def test_prelu_per_channel(tmp_path: Path) -> None:
    check(tmp_path, [N("PRelu", ["x", "s"], ["y"])], {"x": ((1, 3, 4, 4), F)},
          {"s": np.array([0.1, 0.2, 0.3], np.float32).reshape(3, 1, 1)}, expect=OpKind.PRELU)


@pytest.mark.parametrize(("lo", "hi"), [(-1.0, 0.5), (-0.5, None), (None, 0.25)])
def test_clip_any_bounds(tmp_path: Path, lo: float | None, hi: float | None) -> None:
    inits = {k: np.float32(v) for k, v in (("lo", lo), ("hi", hi)) if v is not None}
    check(tmp_path, [N("Clip", ["x", "lo" if lo is not None else "", "hi" if hi is not None else ""], ["y"])],
          {"x": ((1, 10), F)}, inits)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min"])
def test_binary_of_two_activations_and_with_constants(tmp_path: Path, op: str) -> None:
    check(tmp_path, [N(op, ["x", "z"], ["a"]), N(op, ["a", "c"], ["b"]), N(op, ["k", "b"], ["y"])],
          {"x": ((1, 3, 4), F), "z": ((1, 1, 4), F)},
          {"c": _rand(4) + 3, "k": _rand(1, 3, 1) + 3})


def test_pow_and_comparisons_select_with_where(tmp_path: Path) -> None:
    nodes = [N("Pow", ["x", "two"], ["p"]), N("Greater", ["x", "z"], ["g"]), N("Less", ["x", "half"], ["l"]),
             N("Equal", ["g", "l"], ["e"]), N("Or", ["g", "l"], ["o"]), N("And", ["e", "o"], ["a"]),
             N("Not", ["a"], ["na"]), N("Where", ["na", "p", "x"], ["y"])]
    check(tmp_path, nodes, {"x": ((1, 5, 3), F), "z": ((1, 5, 3), F)},
          {"two": np.float32(2.0), "half": np.float32(0.5)}, expect=OpKind.WHERE)


def test_isnan_guard_after_softmax_and_a_constant_mask(tmp_path: Path) -> None:
    """What torch's exporter writes for scaled_dot_product_attention: scores + mask, softmax, NaN guard."""
    mask = np.triu(np.full((4, 4), -np.inf, np.float32), 1).reshape(1, 1, 4, 4)
    nodes = [N("Add", ["x", "mask"], ["s"]), N("Softmax", ["s"], ["p"], axis=-1), N("IsNaN", ["p"], ["n"]),
             N("Where", ["n", "zero", "p"], ["y"])]
    check(tmp_path, nodes, {"x": ((1, 2, 4, 4), F)}, {"mask": mask, "zero": np.float32(0)})


@pytest.mark.parametrize("axis", [1, 2, -1])
def test_softmax_on_any_axis(tmp_path: Path, axis: int) -> None:
    check(tmp_path, [N("Softmax", ["x"], ["y"], axis=axis)], {"x": ((1, 3, 4, 5), F)})


@pytest.mark.parametrize(("axis", "shape"), [(-1, (4,)), (-2, (3, 4)), (1, (3, 4))])
def test_layernorm(tmp_path: Path, axis: int, shape: tuple[int, ...]) -> None:
    check(tmp_path, [N("LayerNormalization", ["x", "w", "b"], ["y"], axis=axis, epsilon=1e-5)],
          {"x": ((1, 3, 4), F)}, {"w": _rand(*shape), "b": _rand(*shape)}, expect=OpKind.LAYERNORM)


def test_standalone_batchnorm_is_an_affine_layer(tmp_path: Path) -> None:
    c = 3
    inits = {"g": _rand(c), "b": _rand(c), "m": _rand(c), "v": np.abs(_rand(c)) + 0.5}
    check(tmp_path, [N("Relu", ["x"], ["r"]), N("BatchNormalization", ["r", "g", "b", "m", "v"], ["y"])],
          {"x": ((1, c, 4, 4), F)}, inits, expect=OpKind.AFFINE)


@pytest.mark.parametrize(("perm", "shape"), [([0, 2, 1, 3], (1, 3, 4, 5)), ([1, 0, 2], (1, 4, 5)),
                                             ([2, 0, 1], (1, 4, 5)), ([0, 3, 1, 2], (1, 2, 3, 4))])
def test_transpose_also_of_the_batch_axis(tmp_path: Path, perm: list[int], shape: tuple[int, ...]) -> None:
    check(tmp_path, [N("Transpose", ["x"], ["t"], perm=perm), N("Relu", ["t"], ["y"])], {"x": (shape, F)})


def test_slice_with_steps_and_negative_bounds(tmp_path: Path) -> None:
    inits = {"s": np.array([1, -7], np.int64), "e": np.array([5, -1], np.int64), "a": np.array([1, 2], np.int64),
             "st": np.array([2, 1], np.int64)}
    check(tmp_path, [N("Slice", ["x", "s", "e", "a", "st"], ["y"])], {"x": ((1, 6, 8), F)}, inits,
          expect=OpKind.SLICE)


def test_split_into_several_outputs(tmp_path: Path) -> None:
    nodes = [N("Split", ["x", "sizes"], ["a", "b"], axis=2), N("Relu", ["a"], ["y"]), N("Neg", ["b"], ["z"])]
    check(tmp_path, nodes, {"x": ((1, 6, 8), F)}, {"sizes": np.array([3, 5], np.int64)}, outputs=("y", "z"))


@pytest.mark.parametrize("index", [np.int64(2), np.array([0, 3, 3], np.int64), np.array(-1, np.int64)])
def test_gather_constant_indices(tmp_path: Path, index: np.ndarray) -> None:
    check(tmp_path, [N("Gather", ["x", "i"], ["y"], axis=1)], {"x": ((1, 5, 8), F)}, {"i": np.asarray(index)},
          expect=OpKind.GATHER)


def test_embedding_of_integer_token_ids(tmp_path: Path) -> None:
    nodes = [N("Gather", ["table", "ids"], ["e"], axis=0), N("Add", ["e", "pos"], ["y"])]
    check(tmp_path, nodes, {"ids": ((1, 6), I64)}, {"table": _rand(20, 8), "pos": _rand(1, 6, 8)},
          expect=OpKind.EMBEDDING)


def test_matmul_of_two_activations_and_merged_batch(tmp_path: Path) -> None:
    """Attention as torch's exporter writes it: heads merged with the batch of 1 for a 3-D matmul."""
    nodes = [N("Reshape", ["q", "s3"], ["q3"]), N("Reshape", ["k", "s3"], ["k3"]),
             N("Transpose", ["k3"], ["kt"], perm=[0, 2, 1]), N("MatMul", ["q3", "kt"], ["s"]),
             N("Reshape", ["s", "s4"], ["y"])]
    inits = {"s3": np.array([2, 5, 4], np.int64), "s4": np.array([1, 2, 5, 5], np.int64)}
    check(tmp_path, nodes, {"q": ((1, 2, 5, 4), F), "k": ((1, 2, 5, 4), F)}, inits, expect=OpKind.MATMUL)


def test_matmul_with_a_constant_of_rank_three(tmp_path: Path) -> None:
    check(tmp_path, [N("MatMul", ["x", "w"], ["y"])], {"x": ((1, 2, 3, 4), F)}, {"w": _rand(2, 4, 5)})


@pytest.mark.parametrize("equation", ["bhqd,bhkd->bhqk", "...ij,...jk->...ik", "bij,jk"])
def test_einsum(tmp_path: Path, equation: str) -> None:
    if equation == "bij,jk":
        check(tmp_path, [N("Einsum", ["x", "w"], ["y"], equation=equation)], {"x": ((1, 3, 4), F)},
              {"w": _rand(4, 5)}, expect=OpKind.EINSUM)
        return
    shapes = ((1, 2, 3, 4), (1, 2, 5, 4)) if equation.startswith("b") else ((1, 2, 3, 4), (1, 2, 4, 5))
    check(tmp_path, [N("Einsum", ["a", "b"], ["y"], equation=equation)], {"a": (shapes[0], F), "b": (shapes[1], F)},
          expect=OpKind.EINSUM)


@pytest.mark.parametrize(("op", "axes", "keep"), [("ReduceSum", [2], 1), ("ReduceMax", [1, 2], 0),
                                                  ("ReduceMean", [-1], 1), ("ReduceMin", [1], 0)])
def test_reductions(tmp_path: Path, op: str, axes: list[int], keep: int) -> None:
    check(tmp_path, [N(op, ["x", "axes"], ["y"], keepdims=keep)], {"x": ((1, 3, 4), F)},
          {"axes": np.array(axes, np.int64)})


def test_global_max_pool(tmp_path: Path) -> None:
    check(tmp_path, [N("GlobalMaxPool", ["x"], ["y"])], {"x": ((1, 3, 5, 5), F)})


@pytest.mark.parametrize(("mode", "coord", "scales"), [("nearest", "asymmetric", [1, 1, 2, 2]),
                                                       ("linear", "half_pixel", [1, 1, 2, 3]),
                                                       ("linear", "pytorch_half_pixel", [1, 1, 2, 2]),
                                                       ("linear", "align_corners", [1, 1, 2, 2])])
def test_resize(tmp_path: Path, mode: str, coord: str, scales: list[float]) -> None:
    node = N("Resize", ["x", "", "scales"], ["y"], mode=mode, coordinate_transformation_mode=coord,
             nearest_mode="floor")
    check(tmp_path, [node], {"x": ((1, 2, 4, 5), F)}, {"scales": np.array(scales, np.float32)},
          expect=OpKind.RESIZE)


@pytest.mark.parametrize(("stride", "pads", "out_pad", "group", "dil"), [
    (2, [1, 1, 1, 1], [1, 1], 1, 1), (2, [0, 0, 0, 0], [0, 0], 2, 1), (1, [1, 0, 1, 0], [0, 0], 1, 2)])
def test_conv_transpose(tmp_path: Path, stride: int, pads: list[int], out_pad: list[int], group: int,
                        dil: int) -> None:
    node = N("ConvTranspose", ["x", "w", "b"], ["y"], strides=[stride, stride], pads=pads, output_padding=out_pad,
             group=group, dilations=[dil, dil])
    check(tmp_path, [node], {"x": ((1, 4, 5, 5), F)}, {"w": _rand(4, 6 // group, 3, 3), "b": _rand(6)},
          expect=OpKind.CONV_TRANSPOSE)


def test_expand_and_concat_with_a_constant_token(tmp_path: Path) -> None:
    """ViT's class token: a constant expanded to the batch and concatenated before the patch tokens."""
    nodes = [N("Expand", ["cls", "shape"], ["c"]), N("Concat", ["c", "x"], ["t"], axis=1),
             N("Expand", ["t", "big"], ["y"])]
    inits = {"cls": _rand(1, 1, 4), "shape": np.array([1, 1, 4], np.int64), "big": np.array([1, 6, 4], np.int64)}
    check(tmp_path, nodes, {"x": ((1, 5, 4), F)}, inits)


def test_pad_with_a_value_before_a_conv_is_a_node(tmp_path: Path) -> None:
    nodes = [N("Pad", ["x", "pads", "value"], ["p"]), N("Conv", ["p", "w"], ["y"])]
    inits = {"pads": np.array([0, 0, 1, 2, 0, 0, 1, 0], np.int64), "value": np.float32(1.5), "w": _rand(2, 3, 3, 3)}
    check(tmp_path, nodes, {"x": ((1, 3, 5, 5), F)}, inits, expect=OpKind.PAD)


def test_cast_of_integer_input_flatten_and_squeeze(tmp_path: Path) -> None:
    nodes = [N("Cast", ["ids"], ["f"], to=F), N("Unsqueeze", ["f", "ax"], ["u"]), N("Flatten", ["u"], ["fl"], axis=2),
             N("Squeeze", ["fl", "ax"], ["y"])]
    check(tmp_path, nodes, {"ids": ((1, 3, 4), I64)}, {"ax": np.array([0], np.int64)}, expect=OpKind.CAST)


def test_constant_subgraph_on_shapes_is_folded(tmp_path: Path) -> None:
    """The legacy exporter's Shape -> Gather -> Unsqueeze -> Concat -> Reshape chain on an activation."""
    nodes = [N("Shape", ["x"], ["s"]), N("Gather", ["s", "zero"], ["b"], axis=0), N("Unsqueeze", ["b", "ax"], ["bu"]),
             N("Concat", ["bu", "minus1"], ["target"], axis=0), N("Reshape", ["x", "target"], ["y"])]
    inits = {"zero": np.array(0, np.int64), "ax": np.array([0], np.int64), "minus1": np.array([-1], np.int64)}
    check(tmp_path, nodes, {"x": ((1, 3, 4), F)}, inits)


def test_identity_on_a_shared_weight(tmp_path: Path) -> None:
    """The legacy exporter shares identical weights through Identity nodes on initializers."""
    nodes = [N("Identity", ["w"], ["w2"]), N("MatMul", ["x", "w"], ["a"]), N("MatMul", ["a", "w2"], ["y"])]
    check(tmp_path, nodes, {"x": ((1, 4), F)}, {"w": _rand(4, 4)}, expect=OpKind.LINEAR)


def test_decomposed_layernorm_becomes_one_node_with_its_scale_and_shift(tmp_path: Path) -> None:
    """ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div then * w + b, as older exporters and converters write it."""
    nodes = [N("ReduceMean", ["x", "ax"], ["m"]), N("Sub", ["x", "m"], ["d"]), N("Pow", ["d", "two"], ["p"]),
             N("ReduceMean", ["p", "ax"], ["v"]), N("Add", ["v", "eps"], ["ve"]), N("Sqrt", ["ve"], ["s"]),
             N("Div", ["d", "s"], ["n"]), N("Mul", ["n", "w"], ["nw"]), N("Add", ["nw", "b"], ["y"])]
    inits = {"ax": np.array([-1], np.int64), "two": np.float32(2), "eps": np.float32(1e-6), "w": _rand(8),
             "b": _rand(8)}
    check(tmp_path, nodes, {"x": ((1, 5, 8), F)}, inits, opset=18, expect=OpKind.LAYERNORM)
    graph = from_onnx(tmp_path / "m.onnx")
    assert [n.op for n in graph][1:] == [OpKind.LAYERNORM]
    (norm,) = graph.find(OpKind.LAYERNORM)
    assert norm.attrs.epsilon == pytest.approx(1e-6) and set(norm.params) == {"weight", "bias"}


@pytest.mark.parametrize("form", ["erf", "tanh"])
def test_decomposed_gelu_becomes_one_node(tmp_path: Path, form: str) -> None:
    if form == "erf":  # x * 0.5 * (1 + erf(x / sqrt(2))), as torch's dynamo exporter writes nn.GELU
        nodes = [N("Div", ["x", "sqrt2"], ["a"]), N("Erf", ["a"], ["e"]), N("Add", ["e", "one"], ["p"]),
                 N("Mul", ["half", "p"], ["h"]), N("Mul", ["x", "h"], ["y"])]
        inits = {"sqrt2": np.float32(np.sqrt(2)), "one": np.float32(1), "half": np.float32(0.5)}
    else:  # GPT-2's gelu_new: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
        nodes = [N("Mul", ["x", "half"], ["h"]), N("Pow", ["x", "three"], ["c"]), N("Mul", ["c", "k"], ["ck"]),
                 N("Add", ["x", "ck"], ["s"]), N("Mul", ["s", "r"], ["sr"]), N("Tanh", ["sr"], ["t"]),
                 N("Add", ["t", "one"], ["p"]), N("Mul", ["h", "p"], ["y"])]
        inits = {"half": np.float32(0.5), "three": np.float32(3), "k": np.float32(0.044715),
                 "r": np.float32(np.sqrt(2 / np.pi)), "one": np.float32(1)}
    check(tmp_path, nodes, {"x": ((1, 4, 6), F)}, inits, expect=OpKind.GELU)
    graph = from_onnx(tmp_path / "m.onnx")
    assert [n.op for n in graph][1:] == [OpKind.GELU]
    assert graph.find(OpKind.GELU)[0].attrs.approximate == (form == "tanh")


def test_a_near_miss_is_not_fused(tmp_path: Path) -> None:
    """0.6 instead of 0.5 is not GELU: the element-wise steps stay as they are."""
    nodes = [N("Div", ["x", "sqrt2"], ["a"]), N("Erf", ["a"], ["e"]), N("Add", ["e", "one"], ["p"]),
             N("Mul", ["half", "p"], ["h"]), N("Mul", ["x", "h"], ["y"])]
    inits = {"sqrt2": np.float32(np.sqrt(2)), "one": np.float32(1), "half": np.float32(0.6)}
    check(tmp_path, nodes, {"x": ((1, 4, 6), F)}, inits)
    assert not from_onnx(tmp_path / "m.onnx").find(OpKind.GELU)


@pytest.mark.parametrize("op", ["ReduceL2", "ReduceL1", "ReduceSumSquare", "ReduceLogSumExp"])
def test_composite_reductions(tmp_path: Path, op: str) -> None:
    """ConvNeXtV2's global response norm reads ReduceL2 over the spatial axes."""
    check(tmp_path, [N(op, ["x", "axes"], ["y"], keepdims=1)], {"x": ((1, 3, 4, 5), F)},
          {"axes": np.array([2, 3], np.int64)})


def test_instance_norm(tmp_path: Path) -> None:
    check(tmp_path, [N("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-5)], {"x": ((1, 3, 4, 5), F)},
          {"s": _rand(3), "b": _rand(3)}, expect=OpKind.LAYERNORM)


def test_group_norm_as_poolformer_exports_it(tmp_path: Path) -> None:
    """torch's legacy exporter writes GroupNorm(1, C) as Reshape, InstanceNormalization, Reshape, Mul, Add."""
    nodes = [N("Reshape", ["x", "flat"], ["r"]), N("InstanceNormalization", ["r", "one", "zero"], ["i"], epsilon=1e-5),
             N("Reshape", ["i", "back"], ["b"]), N("Mul", ["b", "w"], ["m"]), N("Add", ["m", "bias"], ["y"])]
    inits = {"flat": np.array([1, 1, -1], np.int64), "one": np.ones(1, np.float32), "zero": np.zeros(1, np.float32),
             "back": np.array([1, 4, 3, 3], np.int64), "w": _rand(4, 1, 1), "bias": _rand(4, 1, 1)}
    check(tmp_path, nodes, {"x": ((1, 4, 3, 3), F)}, inits, expect=OpKind.LAYERNORM)


@pytest.mark.parametrize("groups", [1, 2])
def test_group_normalization_op(tmp_path: Path, groups: int) -> None:
    check(tmp_path, [N("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=groups, epsilon=1e-5)],
          {"x": ((1, 4, 3, 3), F)}, {"s": _rand(4), "b": _rand(4)}, opset=21, expect=OpKind.LAYERNORM,
          shapes={"y": (1, 4, 3, 3)})  # onnx infers no shape for this function operator


@pytest.mark.parametrize(("exclusive", "reverse"), [(0, 0), (1, 0), (0, 1)])
def test_cumsum_of_a_mask_from_token_ids(tmp_path: Path, exclusive: int, reverse: int) -> None:
    """RoBERTa's position ids: cumsum(ids != pad) * (ids != pad) + pad, looked up in a position table."""
    nodes = [N("Equal", ["ids", "pad"], ["eq"]), N("Not", ["eq"], ["ne"]), N("Cast", ["ne"], ["m"], to=I64),
             N("CumSum", ["m", "axis"], ["c"], exclusive=exclusive, reverse=reverse), N("Mul", ["c", "m"], ["cm"]),
             N("Add", ["cm", "pad"], ["pos"]), N("Gather", ["table", "pos"], ["e"], axis=0),
             N("Relu", ["e"], ["y"])]
    inits = {"pad": np.array(1, np.int64), "axis": np.array(1, np.int64), "table": _rand(16, 4)}
    check(tmp_path, nodes, {"ids": ((1, 6), I64)}, inits, expect=OpKind.CUMSUM)


def test_an_unsupported_pattern_in_a_legacy_export_suggests_the_dynamo_exporter(tmp_path: Path) -> None:
    from accelflow.errors import UnsupportedOperatorError

    model = _model([N("Round", ["x"], ["y"], name="/m/Round")], {"x": ((1, 4), F)}, {}, ["y"], 17)
    model.producer_name = "pytorch"
    onnx.save(model, tmp_path / "legacy.onnx")
    with pytest.raises(UnsupportedOperatorError, match=r"operator Round is not supported.*TorchScript exporter; "
                                                       r"torch.onnx.export\(..., dynamo=True\)"):
        from_onnx(tmp_path / "legacy.onnx")


def test_gather_elements_from_a_one_row_table(tmp_path: Path) -> None:
    """RoBERTa's token types: a (1, 512) buffer gathered on axis 1 with position ids computed from the tokens."""
    nodes = [N("Add", ["ids", "one"], ["pos"]), N("GatherElements", ["types", "pos"], ["t"], axis=1),
             N("Gather", ["table", "t"], ["e"], axis=0), N("Relu", ["e"], ["y"])]
    inits = {"one": np.array(1, np.int64), "types": RNG.integers(0, 2, (1, 16)).astype(np.int64),
             "table": _rand(2, 4)}
    check(tmp_path, nodes, {"ids": ((1, 6), I64)}, inits, expect=OpKind.EMBEDDING)
