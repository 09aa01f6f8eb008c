"""Write a corpus of deliberately broken ONNX files (plus the valid model they derive from).

usage: .venv/bin/python benchmarks/fuzz_corpus/make_corpus.py [OUT_DIR]   (default: this directory)

Every file but ``valid.onnx``, ``keras_style_pads.onnx`` (a tf2onnx-style CNN: unequal pads, a Pad
node, auto_pad SAME) and ``transformer.onnx`` (a GPT-style block on token ids) is broken in one named way: truncated bytes, wrong opset, missing
initializers, dynamic shapes, unsupported ops, cycles, bad attribute types, mismatched shapes, empty graph,
and a few more. The importer must reject each with an ``accelflow.errors.AccelflowError`` (or import it, for
the cases the IR can legitimately handle); nothing here is checked with ``onnx.checker``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

Mutation = Callable[[onnx.ModelProto], onnx.ModelProto | bytes]


def valid_model(opset: int = 17) -> onnx.ModelProto:
    """Conv(1->4, 3x3) -> Relu -> MaxPool 2x2 -> Flatten -> Gemm(36->10) on a 1x8x8 input."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.standard_normal((10, 36)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.standard_normal(10).astype(np.float32), "b2"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c"], "conv", kernel_shape=[3, 3], strides=[1, 1], pads=[0, 0, 0, 0]),
        helper.make_node("Relu", ["c"], ["r"], "relu"),
        helper.make_node("MaxPool", ["r"], ["p"], "pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], "flatten", axis=1),
        helper.make_node("Gemm", ["f", "w2", "b2"], ["y"], "fc", transB=1),
    ]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="accelflow-fuzz")


def keras_style_model(pad_mode: str = "constant", pad_feeds: str = "conv2") -> onnx.ModelProto:
    """A 1x28x28 CNN as tf2onnx writes one: a stride-2 conv with one more pad at the end, an auto_pad
    SAME_UPPER max pool, an explicit zero Pad node before a valid conv, an auto_pad SAME_UPPER conv, then
    GAP and a classifier. ``pad_mode`` / ``pad_feeds`` break it (a reflect Pad; the Pad read by a Relu)."""
    rng = np.random.default_rng(0)

    def init(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)

    inits = [init("conv1.weight", (8, 1, 3, 3)), init("conv1.bias", (8,)),
             init("conv2.weight", (8, 8, 3, 3)), init("conv3.weight", (12, 8, 3, 3)),
             init("fc.weight", (10, 12)), init("fc.bias", (10,)),
             numpy_helper.from_array(np.array([0, 0, 1, 0, 0, 0, 2, 1], np.int64), "pad_amounts")]
    nodes = [
        helper.make_node("Conv", ["x", "conv1.weight", "conv1.bias"], ["c1"], "conv1", kernel_shape=[3, 3],
                         strides=[2, 2], pads=[0, 0, 1, 1]),                        # 28 -> 14
        helper.make_node("Relu", ["c1"], ["r1"], "relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], "pool1", kernel_shape=[3, 3], strides=[2, 2],
                         auto_pad="SAME_UPPER"),                                    # 14 -> 7
        helper.make_node("Pad", ["p1", "pad_amounts"], ["padded"], "zero_pad", mode=pad_mode),  # 7 -> 10x9
        helper.make_node("Conv", ["padded" if pad_feeds == "conv2" else "p1", "conv2.weight"], ["c2"], "conv2",
                         kernel_shape=[3, 3], strides=[1, 1]),                      # 10x9 -> 8x7
        helper.make_node("Relu", ["c2" if pad_feeds == "conv2" else "padded"], ["r2"], "relu2"),
        helper.make_node("Conv", ["r2", "conv3.weight"], ["c3"], "conv3", kernel_shape=[3, 3], strides=[2, 2],
                         auto_pad="SAME_UPPER"),                                    # 8x7 -> 4x4
        helper.make_node("Relu", ["c3"], ["r3"], "relu3"),
        helper.make_node("GlobalAveragePool", ["r3"], ["g"], "gap"),
        helper.make_node("Flatten", ["g"], ["f"], "flatten"),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], "fc", transB=1),
    ]
    graph = helper.make_graph(nodes, "keras_style",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 28, 28])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="accelflow-fuzz")


def transformer_model() -> onnx.ModelProto:
    """A one-block GPT-style decoder on 8 int64 token ids, as torch's exporters write one: an embedding Gather,
    a position constant, LayerNormalization, a fused q/k/v MatMul split in three, heads by Reshape/Transpose,
    Q K^T with a causal mask and Softmax, the context product, a decomposed GELU (Div/Erf/Add/Mul), residual
    adds, and a Shape -> Gather -> Concat -> Reshape chain on an activation (the TorchScript exporter's)."""
    rng = np.random.default_rng(0)
    d, heads, seq, vocab = 8, 2, 8, 16

    def init(name: str, value: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(value, name)

    mask = np.triu(np.full((seq, seq), -1e9, np.float32), 1).reshape(1, 1, seq, seq)
    inits = [init("wte", rng.standard_normal((vocab, d)).astype(np.float32)),
             init("wpe", rng.standard_normal((1, seq, d)).astype(np.float32)),
             init("ln.weight", np.ones(d, np.float32)), init("ln.bias", np.zeros(d, np.float32)),
             init("qkv.weight", rng.standard_normal((d, 3 * d)).astype(np.float32)),
             init("qkv.bias", rng.standard_normal(3 * d).astype(np.float32)),
             init("split", np.array([d, d, d], np.int64)),
             init("heads", np.array([1, seq, heads, d // heads], np.int64)),
             init("scale", np.array(np.sqrt(d // heads), np.float32)), init("mask", mask),
             init("proj.weight", rng.standard_normal((d, d)).astype(np.float32)),
             init("fc.weight", rng.standard_normal((d, 2 * d)).astype(np.float32)),
             init("sqrt2", np.array(np.sqrt(2), np.float32)), init("one", np.array(1, np.float32)),
             init("half", np.array(0.5, np.float32)), init("zero", np.array(0, np.int64)),
             init("axis0", np.array([0], np.int64)), init("minus1", np.array([-1], np.int64)),
             init("seq", np.array([seq], np.int64)),
             init("out.weight", rng.standard_normal((2 * d, vocab)).astype(np.float32))]
    n = helper.make_node
    nodes = [
        n("Gather", ["wte", "ids"], ["emb"], "wte", axis=0), n("Add", ["emb", "wpe"], ["h"], "pos"),
        n("LayerNormalization", ["h", "ln.weight", "ln.bias"], ["hn"], "ln", axis=-1, epsilon=1e-5),
        n("MatMul", ["hn", "qkv.weight"], ["qkv0"], "qkv"), n("Add", ["qkv0", "qkv.bias"], ["qkv1"], "qkv_bias"),
        n("Split", ["qkv1", "split"], ["q", "k", "v"], "split", axis=2),
        n("Reshape", ["q", "heads"], ["q4"], "q_heads"), n("Transpose", ["q4"], ["qt"], "q_t", perm=[0, 2, 1, 3]),
        n("Reshape", ["k", "heads"], ["k4"], "k_heads"), n("Transpose", ["k4"], ["kt"], "k_t", perm=[0, 2, 3, 1]),
        n("Reshape", ["v", "heads"], ["v4"], "v_heads"), n("Transpose", ["v4"], ["vt"], "v_t", perm=[0, 2, 1, 3]),
        n("MatMul", ["qt", "kt"], ["s"], "scores"), n("Div", ["s", "scale"], ["ss"], "scale"),
        n("Add", ["ss", "mask"], ["sm"], "mask"), n("Softmax", ["sm"], ["p"], "softmax", axis=-1),
        n("MatMul", ["p", "vt"], ["ctx"], "context"), n("Transpose", ["ctx"], ["ct"], "ctx_t", perm=[0, 2, 1, 3]),
        n("Shape", ["ct"], ["shape"], "shape"), n("Gather", ["shape", "zero"], ["batch"], "batch", axis=0),
        n("Unsqueeze", ["batch", "axis0"], ["b1"], "b1"), n("Concat", ["b1", "seq", "minus1"], ["target"],
                                                                "target", axis=0),
        n("Reshape", ["ct", "target"], ["merged"], "merge"),
        n("MatMul", ["merged", "proj.weight"], ["att"], "proj"), n("Add", ["att", "h"], ["r1"], "residual1"),
        n("MatMul", ["r1", "fc.weight"], ["f"], "fc"), n("Div", ["f", "sqrt2"], ["fa"], "gelu_div"),
        n("Erf", ["fa"], ["fe"], "gelu_erf"), n("Add", ["fe", "one"], ["fp"], "gelu_add"),
        n("Mul", ["f", "fp"], ["fm"], "gelu_mul"), n("Mul", ["fm", "half"], ["g"], "gelu_half"),
        n("MatMul", ["g", "out.weight"], ["y"], "lm_head"),
    ]
    graph = helper.make_graph(nodes, "gpt_block", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, seq])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, seq, vocab])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="accelflow-fuzz")


def _copy(m: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(m)
    return out


def _node(m: onnx.ModelProto, name: str) -> onnx.NodeProto:
    return next(n for n in m.graph.node if n.name == name)


def _set_attr(m: onnx.ModelProto, node: str, attr: onnx.AttributeProto) -> onnx.ModelProto:
    n = _node(m, node)
    kept = [a for a in n.attribute if a.name != attr.name]
    del n.attribute[:]
    n.attribute.extend([*kept, attr])
    return m


def _drop_init(m: onnx.ModelProto, name: str) -> onnx.ModelProto:
    kept = [t for t in m.graph.initializer if t.name != name]
    del m.graph.initializer[:]
    m.graph.initializer.extend(kept)
    return m


def _replace_init(m: onnx.ModelProto, name: str, arr: np.ndarray) -> onnx.ModelProto:
    _drop_init(m, name).graph.initializer.append(numpy_helper.from_array(arr, name))
    return m


def _dims(m: onnx.ModelProto, dims: list[int | str]) -> onnx.ModelProto:
    shape = m.graph.input[0].type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        dim = shape.dim.add()
        if isinstance(d, str):
            dim.dim_param = d
        else:
            dim.dim_value = d
    return m


def _op(m: onnx.ModelProto, node: str, op_type: str, domain: str = "") -> onnx.ModelProto:
    n = _node(m, node)
    n.op_type, n.domain = op_type, domain
    return m


def _rewire(m: onnx.ModelProto, node: str, index: int, value: str) -> onnx.ModelProto:
    _node(m, node).input[index] = value
    return m


def _empty_graph(m: onnx.ModelProto) -> onnx.ModelProto:
    del m.graph.node[:]
    del m.graph.initializer[:]
    return m


def _no_io(m: onnx.ModelProto) -> onnx.ModelProto:
    del m.graph.node[:]
    del m.graph.input[:]
    del m.graph.output[:]
    del m.graph.initializer[:]
    return m


def _two_node_cycle(m: onnx.ModelProto) -> onnx.ModelProto:
    _rewire(m, "relu", 0, "f")  # relu reads flatten's output, which (via pool) depends on relu
    return m


def _dup_outputs(m: onnx.ModelProto) -> onnx.ModelProto:
    _node(m, "relu").output[0] = "c"  # two producers of "c"
    _rewire(m, "pool", 0, "c")
    return m


CASES: dict[str, Mutation] = {
    "truncated_10.onnx": lambda m: m.SerializeToString()[:10],
    "truncated_half.onnx": lambda m: (lambda b: b[: len(b) // 2])(m.SerializeToString()),
    "truncated_minus1.onnx": lambda m: m.SerializeToString()[:-1],
    "zero_bytes.onnx": lambda m: b"",
    "random_bytes.onnx": lambda m: np.random.default_rng(1).integers(0, 256, 2048, dtype=np.uint8).tobytes(),
    "text_file.onnx": lambda m: b"this is not an onnx model\n",
    "bitflip.onnx": lambda m: (lambda b: b[:40] + bytes([b[40] ^ 0xFF]) + b[41:])(m.SerializeToString()),
    "opset_1.onnx": lambda m: valid_model(opset=1),
    "opset_99.onnx": lambda m: valid_model(opset=99),
    "no_opset.onnx": lambda m: (lambda c: (c.ClearField("opset_import"), c)[1])(_copy(m)),
    "missing_conv_weight.onnx": lambda m: _drop_init(m, "w1"),
    "missing_gemm_bias.onnx": lambda m: _drop_init(m, "b2"),
    "dynamic_batch.onnx": lambda m: _dims(m, ["N", 1, 8, 8]),
    "dynamic_spatial.onnx": lambda m: _dims(m, [1, 1, "H", "W"]),
    "no_input_shape.onnx": lambda m: (m.graph.input[0].type.tensor_type.ClearField("shape"), m)[1],
    "rank_1_input.onnx": lambda m: _dims(m, [64]),
    "zero_dim_input.onnx": lambda m: _dims(m, [1, 1, 0, 8]),
    "negative_dim_input.onnx": lambda m: _dims(m, [1, 1, -8, 8]),
    "unsupported_lstm.onnx": lambda m: _op(m, "relu", "LSTM"),
    "unsupported_custom_domain.onnx": lambda m: _op(m, "relu", "MyOp", "com.example"),
    "unknown_op_type.onnx": lambda m: _op(m, "pool", "NotAnOperator"),
    "self_cycle.onnx": lambda m: _rewire(m, "relu", 0, "r"),
    "two_node_cycle.onnx": _two_node_cycle,
    "dangling_input.onnx": lambda m: _rewire(m, "fc", 0, "nowhere"),
    "duplicate_producer.onnx": _dup_outputs,
    "attr_kernel_float.onnx": lambda m: _set_attr(m, "conv", helper.make_attribute("kernel_shape", [3.0, 3.0])),
    "attr_kernel_string.onnx": lambda m: _set_attr(m, "conv", helper.make_attribute("kernel_shape", "3x3")),
    "attr_strides_zero.onnx": lambda m: _set_attr(m, "conv", helper.make_attribute("strides", [0, 0])),
    "attr_strides_negative.onnx": lambda m: _set_attr(m, "pool", helper.make_attribute("strides", [-2, -2])),
    "attr_pads_negative.onnx": lambda m: _set_attr(m, "conv", helper.make_attribute("pads", [-5, -5, -5, -5])),
    "attr_pads_short.onnx": lambda m: _set_attr(m, "conv", helper.make_attribute("pads", [1])),
    "attr_group_bad.onnx": lambda m: _set_attr(m, "conv", helper.make_attribute("group", 3)),
    "attr_group_zero.onnx": lambda m: _set_attr(m, "conv", helper.make_attribute("group", 0)),
    "attr_axis_tensor.onnx": lambda m: _set_attr(m, "flatten", helper.make_attribute(
        "axis", numpy_helper.from_array(np.array([1], dtype=np.int64)))),
    "attr_transb_string.onnx": lambda m: _set_attr(m, "fc", helper.make_attribute("transB", "yes")),
    "pool_kernel_too_large.onnx": lambda m: _set_attr(m, "pool", helper.make_attribute("kernel_shape", [20, 20])),
    "conv_weight_wrong_channels.onnx": lambda m: _replace_init(m, "w1", np.ones((4, 3, 3, 3), np.float32)),
    "conv_weight_rank2.onnx": lambda m: _replace_init(m, "w1", np.ones((4, 9), np.float32)),
    "conv_bias_wrong_len.onnx": lambda m: _replace_init(m, "b1", np.ones(7, np.float32)),
    "gemm_weight_mismatch.onnx": lambda m: _replace_init(m, "w2", np.ones((10, 35), np.float32)),
    "gemm_weight_scalar.onnx": lambda m: _replace_init(m, "w2", np.ones((), np.float32)),
    "weight_int_dtype.onnx": lambda m: _replace_init(m, "w1", np.ones((4, 1, 3, 3), np.int64)),
    "weight_nan.onnx": lambda m: _replace_init(m, "w1", np.full((4, 1, 3, 3), np.nan, np.float32)),
    "empty_graph.onnx": _empty_graph,
    "no_inputs_outputs.onnx": _no_io,
    "output_not_produced.onnx": lambda m: (m.graph.output.__getitem__(0).__setattr__("name", "zzz"), m)[1],
}


def write_corpus(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "valid.onnx"]
    paths[0].write_bytes(valid_model().SerializeToString())
    for name, model in (("keras_style_pads.onnx", keras_style_model()),  # valid: unequal pads, a Pad node
                        ("transformer.onnx", transformer_model()),  # valid: attention, layer norm, GELU
                        ("pad_reflect.onnx", keras_style_model(pad_mode="reflect")),
                        ("pad_into_relu.onnx", keras_style_model(pad_feeds="relu2"))):
        (out / name).write_bytes(model.SerializeToString())
        paths.append(out / name)
    for name, mutate in CASES.items():
        result = mutate(_copy(valid_model()))
        data = result if isinstance(result, bytes) else result.SerializeToString()
        (out / name).write_bytes(data)
        paths.append(out / name)
    return paths


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
    written = write_corpus(target)
    print(f"wrote {len(written)} files to {target}")
