"""The IR back to PyTorch: every operator converts and the module computes what the reference executor
computes; an ONNX file becomes a module computing what the original PyTorch model did, with the convs and
the ReLUs that feed them as submodules, as HASS expects."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from accelflow.errors import UnsupportedOperatorError
from accelflow.frontends import export_onnx, from_onnx, from_pytorch, to_torch
from accelflow.frontends.ir_to_torch import SUPPORTED_OPS
from accelflow.hass import conv_input_activations
from accelflow.ir import (
    AffineAttrs,
    AlphaAttrs,
    Attrs,
    CastAttrs,
    ClipAttrs,
    ConcatAttrs,
    ConvAttrs,
    ConvTransposeAttrs,
    CumsumAttrs,
    DType,
    EinsumAttrs,
    ExpandAttrs,
    GatherAttrs,
    GeluAttrs,
    GlobalPoolAttrs,
    Graph,
    HardSigmoidAttrs,
    InputAttrs,
    LayerNormAttrs,
    LinearAttrs,
    Node,
    OpKind,
    PadAttrs,
    PoolAttrs,
    ReduceAttrs,
    ReshapeAttrs,
    ResizeAttrs,
    ResizeMode,
    SliceAttrs,
    SoftmaxAttrs,
    ThresholdAttrs,
    TransposeAttrs,
    execute,
    propagate_shapes,
)
from accelflow.zoo import create, spec, symbolic_trace
from tests.frontends.test_onnx_ops import I64, N, _model
from tests.frontends.test_onnx_ops import F as F32

RNG = np.random.default_rng(0)
BATCH = 3


def _rand(*shape: int, positive: bool = False) -> np.ndarray:
    x = RNG.standard_normal(shape).astype(np.float32)
    return np.abs(x) + np.float32(0.5) if positive else x


class _Net:
    """A hand-built IR graph: ``input``, ``op`` and ``const`` add nodes, ``graph`` finishes it."""

    def __init__(self, name: str) -> None:
        self.g = Graph(name)

    def input(self, name: str, *shape: int, dtype: DType = DType.FLOAT32) -> Node:
        node = self.g.add_input(name, shape)
        node.attrs = InputAttrs(dtype)
        return node

    def op(self, op: OpKind, inputs: list[Node], attrs: Attrs | None = None, **params: np.ndarray) -> Node:
        return self.g.add_node(self.g.unique_name(op.value), op, inputs, attrs, params=params)

    def const(self, value: np.ndarray) -> Node:
        return self.op(OpKind.CONSTANT, [], value=np.asarray(value))

    def graph(self, *outputs: Node) -> Graph:
        self.g.set_outputs(list(outputs))
        propagate_shapes(self.g)
        self.g.check()
        return self.g


# --------------------------------------------------------------------------------------- one case per op


def _layers() -> Graph:
    """conv (symmetric and unequal pads), pools, global pooling, flatten, linear; 1-D conv and pool."""
    n = _Net("layers")
    x = n.input("x", 3, 9, 9)
    c = n.op(OpKind.CONV, [x], ConvAttrs(3, 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)), weight=_rand(4, 3, 3, 3),
             bias=_rand(4))
    r = n.op(OpKind.RELU, [c])
    d = n.op(OpKind.CONV, [r], ConvAttrs(4, 4, (3, 3), (2, 2), (0, 0, 1, 1), (1, 1), groups=4),
             weight=_rand(4, 1, 3, 3))
    m = n.op(OpKind.MAXPOOL, [d], PoolAttrs((2, 2), (1, 1), (0, 0, 1, 1)))
    a = n.op(OpKind.AVGPOOL, [m], PoolAttrs((3, 3), (2, 2), (1, 1, 1, 1), count_include_pad=True))
    gp = n.op(OpKind.GLOBAL_AVGPOOL, [a], GlobalPoolAttrs(keepdims=True))
    f = n.op(OpKind.FLATTEN, [gp])
    fc = n.op(OpKind.LINEAR, [f], LinearAttrs(4, 5), weight=_rand(5, 4), bias=_rand(5))
    s = n.input("s", 2, 12)
    c1 = n.op(OpKind.CONV, [s], ConvAttrs(2, 3, (3,), (1,), (1, 1), (2,)), weight=_rand(3, 2, 3))
    p1 = n.op(OpKind.AVGPOOL, [c1], PoolAttrs((2,), (2,), (0, 0), ceil_mode=True))
    m1 = n.op(OpKind.MAXPOOL, [p1], PoolAttrs((2,), (1,), (1, 1)))
    return n.graph(fc, m1)


ACTIVATIONS: dict[OpKind, Attrs | None] = {
    OpKind.RELU: None, OpKind.RELU6: None, OpKind.THRESHOLD_RELU: ThresholdAttrs(0.3, clip=1.0),
    OpKind.HARDSWISH: None, OpKind.HARDSIGMOID: HardSigmoidAttrs(0.3, 0.4), OpKind.SIGMOID: None,
    OpKind.SILU: None, OpKind.GELU: GeluAttrs(approximate=True), OpKind.LEAKY_RELU: AlphaAttrs(0.2),
    OpKind.ELU: AlphaAttrs(0.7), OpKind.SOFTPLUS: None, OpKind.TANH: None, OpKind.ERF: None, OpKind.EXP: None,
    OpKind.NEG: None, OpKind.ABS: None, OpKind.SIN: None, OpKind.COS: None,
}  # fmt: skip


def _elementwise() -> Graph:
    """Every element-wise function of one input, each its own output; GELU in both forms."""
    n = _Net("elementwise")
    x = n.input("x", 4, 6)
    outs = [n.op(op, [x], attrs) for op, attrs in ACTIVATIONS.items()]
    outs.append(n.op(OpKind.GELU, [x], GeluAttrs(approximate=False)))
    pos = n.op(OpKind.ADD, [n.op(OpKind.ABS, [x]), n.const(np.float32(0.5))])
    outs += [n.op(op, [pos]) for op in (OpKind.LOG, OpKind.SQRT, OpKind.RECIPROCAL)]
    outs += [n.op(OpKind.CLIP, [x], ClipAttrs(lo, hi)) for lo, hi in ((-0.5, 0.25), (-0.5, None), (None, 0.3))]
    outs.append(n.op(OpKind.PRELU, [x], slope=_rand(6)))
    return n.graph(*outs)


def _binary() -> Graph:
    """Arithmetic of activations of different ranks and of constants with batch 1."""
    n = _Net("binary")
    x, y = n.input("x", 2, 3, 4), n.input("y", 3, 1)
    outs = []
    for op in (OpKind.ADD, OpKind.SUB, OpKind.MUL, OpKind.MAX, OpKind.MIN):
        outs.append(n.op(op, [n.op(op, [x, y]), n.const(_rand(4))]))
    outs.append(n.op(OpKind.DIV, [y, n.const(_rand(2, 1, 4, positive=True))]))
    outs.append(n.op(OpKind.POW, [n.op(OpKind.ABS, [x]), n.const(np.float32(1.5))]))
    return n.graph(*outs)


def _logic() -> Graph:
    """Comparisons, boolean logic and selection; boolean and float outputs."""
    n = _Net("logic")
    x, z = n.input("x", 5, 3), n.input("z", 3)
    g = n.op(OpKind.GREATER, [x, z])
    lt = n.op(OpKind.LESS, [x, n.const(np.float32(0.2))])
    e = n.op(OpKind.EQUAL, [g, lt])
    o = n.op(OpKind.OR, [g, lt])
    a = n.op(OpKind.AND, [n.op(OpKind.NOT, [e]), o])
    w = n.op(OpKind.WHERE, [a, x, n.const(np.float32(-1.0))])
    nan = n.op(OpKind.ISNAN, [n.op(OpKind.LOG, [x])])
    return n.graph(w, a, nan)


def _casts() -> Graph:
    """int64 input cast to float and back, to bool."""
    n = _Net("casts")
    ids = n.input("ids", 4, 3, dtype=DType.INT64)
    f = n.op(OpKind.CAST, [ids], CastAttrs(DType.FLOAT32))
    h = n.op(OpKind.MUL, [f, n.const(np.float32(0.5))])
    i = n.op(OpKind.CAST, [h], CastAttrs(DType.INT64))
    b = n.op(OpKind.CAST, [i], CastAttrs(DType.BOOL))
    return n.graph(h, i, b)


def _layout() -> Graph:
    """The vision-transformer head: class token concatenated, expand, slice, gather, transpose, reshape, pad."""
    n = _Net("layout")
    x = n.input("x", 5, 4)
    cls = n.const(_rand(1, 4))
    t = n.op(OpKind.CONCAT, [cls, x], ConcatAttrs(0))
    ex = n.op(OpKind.EXPAND, [n.const(_rand(4))], ExpandAttrs((2, 6, 4)))
    both = n.op(OpKind.ADD, [ex, t])
    s = n.op(OpKind.SLICE, [both], SliceAttrs((1, 2), (1, 0), (6, 4), (2, 3)))
    first = n.op(OpKind.GATHER, [t], GatherAttrs(0), indices=np.array(0, np.int64))
    picks = n.op(OpKind.GATHER, [t], GatherAttrs(-1), indices=np.array([[3, -1], [0, 0]], np.int64))
    tr = n.op(OpKind.TRANSPOSE, [both], TransposeAttrs((2, 0, 1)))
    rs = n.op(OpKind.RESHAPE, [tr], ReshapeAttrs((8, -1)))
    pd = n.op(OpKind.PAD, [x], PadAttrs((1, 0, 2, 3), value=0.5))
    cat = n.op(OpKind.CONCAT, [x, x], ConcatAttrs(-1))
    return n.graph(s, first, picks, rs, pd, cat)


def _products() -> Graph:
    """matmul of two activations, of a vector and a matrix, of operands of different ranks, with a
    constant; einsum; softmax on two axes."""
    n = _Net("products")
    q, k = n.input("q", 2, 5, 4), n.input("k", 2, 5, 4)
    kt = n.op(OpKind.TRANSPOSE, [k], TransposeAttrs((0, 2, 1)))
    scores = n.op(OpKind.MATMUL, [q, kt])
    p = n.op(OpKind.SOFTMAX, [scores], SoftmaxAttrs(-1))
    out = n.op(OpKind.MATMUL, [p, k])
    v = n.input("v", 4)
    qv = n.op(OpKind.MATMUL, [q, v])  # (2, 5, 4) @ (4,)
    vq = n.op(OpKind.MATMUL, [v, kt])  # (4,) @ (2, 4, 5)
    m = n.op(OpKind.MATMUL, [n.op(OpKind.GATHER, [q], GatherAttrs(0), indices=np.array(1, np.int64)),
                             n.const(_rand(3, 4, 2))])  # (5, 4) @ (3, 4, 2)
    e = n.op(OpKind.EINSUM, [q, k], EinsumAttrs("hqd,hkd->hqk"))
    s0 = n.op(OpKind.SOFTMAX, [e], SoftmaxAttrs(1))
    return n.graph(out, qv, vq, m, s0)


def _reductions() -> Graph:
    n = _Net("reductions")
    x = n.input("x", 3, 4, 5)
    ops = ((OpKind.REDUCE_MEAN, (2,), True), (OpKind.REDUCE_SUM, (0, 2), False), (OpKind.REDUCE_MAX, (1,), False),
           (OpKind.REDUCE_MIN, (0, 1, 2), True))
    return n.graph(*(n.op(op, [x], ReduceAttrs(axes, keep)) for op, axes, keep in ops))


def _norms() -> Graph:
    """layer norm over the last axis and over two axes, with and without scale/shift; affine on channels and
    on the last axis."""
    n = _Net("norms")
    x = n.input("x", 3, 4, 5)
    a = n.op(OpKind.LAYERNORM, [x], LayerNormAttrs(-1, 1e-5), weight=_rand(5), bias=_rand(5))
    b = n.op(OpKind.LAYERNORM, [x], LayerNormAttrs(1, 1e-6), weight=_rand(4, 5))
    c = n.op(OpKind.LAYERNORM, [x], LayerNormAttrs(-2))
    d = n.op(OpKind.AFFINE, [x], AffineAttrs(0), weight=_rand(3), bias=_rand(3))
    e = n.op(OpKind.AFFINE, [x], AffineAttrs(-1), weight=_rand(5), bias=_rand(5))
    return n.graph(a, b, c, d, e)


def _tokens() -> Graph:
    """A language model's front: int64 ids, embedding, position constant, layer norm, linear head."""
    n = _Net("tokens")
    ids = n.input("ids", 6, dtype=DType.INT64)
    e = n.op(OpKind.EMBEDDING, [ids], weight=_rand(10, 8))
    h = n.op(OpKind.ADD, [e, n.const(_rand(6, 8))])
    h = n.op(OpKind.LAYERNORM, [h], LayerNormAttrs(-1), weight=_rand(8), bias=_rand(8))
    logits = n.op(OpKind.LINEAR, [h], LinearAttrs(8, 10), weight=_rand(10, 8))
    return n.graph(logits, h)


def _resampling() -> Graph:
    n = _Net("resampling")
    x = n.input("x", 2, 4, 5)
    outs = [n.op(OpKind.RESIZE, [x], ResizeAttrs(size, mode)) for size, mode in
            (((8, 10), ResizeMode.NEAREST), ((8, 15), ResizeMode.LINEAR), ((3, 9), ResizeMode.LINEAR),
             ((7, 6), ResizeMode.LINEAR_ALIGN_CORNERS))]
    return n.graph(*outs)


def _conv_transpose() -> Graph:
    """Equal pads with output padding (a PyTorch module); unequal pads, output padding >= stride, groups and
    dilation (cropped); 1-D."""
    n = _Net("conv_transpose")
    x = n.input("x", 4, 5, 5)
    a = n.op(OpKind.CONV_TRANSPOSE, [x], ConvTransposeAttrs(4, 6, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), (1, 1)),
             weight=_rand(4, 6, 3, 3), bias=_rand(6))
    b = n.op(OpKind.CONV_TRANSPOSE, [x], ConvTransposeAttrs(4, 6, (3, 3), (2, 1), (1, 0, 0, 2), (2, 0), (1, 2),
                                                            groups=2), weight=_rand(4, 3, 3, 3), bias=_rand(6))
    s = n.input("s", 2, 7)
    c = n.op(OpKind.CONV_TRANSPOSE, [s], ConvTransposeAttrs(2, 3, (4,), (3,), (2, 1), (0,), (1,)),
             weight=_rand(2, 3, 4))
    return n.graph(a, b, c)


def _running_sums() -> Graph:
    """Running sums forward, exclusive and reversed, on float and on int64 values."""
    n = _Net("running_sums")
    x = n.input("x", 3, 4)
    ids = n.input("ids", 6, dtype=DType.INT64)
    outs = [n.op(OpKind.CUMSUM, [x], CumsumAttrs(axis, exclusive, reverse))
            for axis, exclusive, reverse in ((0, False, False), (1, True, False), (-1, False, True))]
    return n.graph(*outs, n.op(OpKind.CUMSUM, [ids], CumsumAttrs(0)))


CASES: dict[str, Callable[[], Graph]] = {f.__name__.strip("_"): f for f in (
    _layers, _elementwise, _binary, _logic, _casts, _layout, _products, _reductions, _norms, _tokens, _resampling,
    _conv_transpose, _running_sums)}  # fmt: skip


def _feeds(graph: Graph, batch: int = BATCH) -> dict[str, np.ndarray]:
    feeds = {}
    for node in graph.inputs:
        assert node.shape is not None
        if isinstance(node.attrs, InputAttrs) and node.attrs.dtype is DType.INT64:
            feeds[node.name] = RNG.integers(0, 10, (batch, *node.shape)).astype(np.int64)
        else:
            feeds[node.name] = _rand(batch, *node.shape)
    return feeds


def _compare(graph: Graph, module: nn.Module, feeds: dict[str, np.ndarray], atol: float = 1e-5) -> None:
    want = execute(graph, feeds)
    with torch.no_grad():
        got = module(*(torch.from_numpy(feeds[n.name]) for n in graph.inputs))
    got = list(got) if isinstance(got, tuple) else [got]
    assert len(got) == len(want)
    for out, g, w in zip(graph.outputs, got, want, strict=True):
        g = g.numpy()
        assert g.shape == w.shape, f"{out.name}: {g.shape} != {w.shape}"
        if w.dtype == np.bool_ or np.issubdtype(w.dtype, np.integer):
            np.testing.assert_array_equal(g, w, err_msg=out.name)
        else:
            np.testing.assert_allclose(g, w, atol=atol, rtol=1e-5, err_msg=out.name)


@pytest.mark.parametrize("case", list(CASES))
def test_every_operator_computes_what_the_executor_computes(case: str) -> None:
    """... and the module traces again with torch.fx (HASS re-traces a model to find its conv inputs)."""
    graph = CASES[case]()
    module = to_torch(graph)
    feeds = _feeds(graph)
    _compare(graph, module, feeds)
    _compare(graph, symbolic_trace(module), feeds)


def test_the_cases_cover_every_operator() -> None:
    covered = {node.op for build in CASES.values() for node in build()}
    assert covered == set(OpKind)
    assert set(SUPPORTED_OPS) == set(OpKind) - {OpKind.INPUT}


def test_weight_layers_are_modules_named_after_their_nodes_and_constants_are_buffers() -> None:
    graph = _tokens()
    module = to_torch(graph)
    kinds = {name: type(m).__name__ for name, m in module.named_children()}
    assert kinds == {"embedding": "TokenEmbedding", "layernorm": "LayerNorm", "linear": "Linear"}
    assert [name for name, _ in module.named_buffers()] == ["constant"]
    assert {name for name, _ in module.named_parameters()} == {"embedding.weight", "layernorm.weight",
                                                               "layernorm.bias", "linear.weight"}
    calls = {n.op for n in module.graph.nodes}
    assert calls == {"placeholder", "call_module", "get_attr", "call_function", "output"}


def test_converted_module_copies_pickles_and_trains() -> None:
    graph = _norms()
    module = to_torch(graph)
    feeds = _feeds(graph)
    _compare(graph, copy.deepcopy(module), feeds)
    _compare(graph, pickle.loads(pickle.dumps(module)), feeds)
    out = module(torch.from_numpy(feeds["x"]))
    sum(o.sum() for o in out).backward()
    assert all(p.grad is not None for p in module.parameters())


def test_unsupported_padding_is_named() -> None:
    n = _Net("bad")
    x = n.input("x", 2, 8)
    c = n.op(OpKind.CONV, [x], ConvAttrs(2, 2, (3,), (1,), (0, 2), (1,)), weight=_rand(2, 2, 3))
    with pytest.raises(UnsupportedOperatorError, match="conv"):
        to_torch(n.graph(c))


# ------------------------------------------------------------------ ONNX files written by hand and by torch


ONNX_CASES: dict[str, tuple[list, dict, dict, tuple[str, ...]]] = {
    "attention_merged_batch": (
        [N("Reshape", ["q", "s3"], ["q3"]), N("Reshape", ["k", "s3"], ["k3"]),
         N("Transpose", ["k3"], ["kt"], perm=[0, 2, 1]), N("MatMul", ["q3", "kt"], ["s"]),
         N("Reshape", ["s", "s4"], ["y"])],
        {"q": ((1, 2, 5, 4), F32), "k": ((1, 2, 5, 4), F32)},
        {"s3": np.array([2, 5, 4], np.int64), "s4": np.array([1, 2, 5, 5], np.int64)}, ("y",)),
    "sdpa_mask_and_nan_guard": (
        [N("Add", ["x", "mask"], ["s"]), N("Softmax", ["s"], ["p"], axis=-1), N("IsNaN", ["p"], ["n"]),
         N("Where", ["n", "zero", "p"], ["y"])],
        {"x": ((1, 2, 4, 4), F32)},
        {"mask": np.triu(np.full((4, 4), -np.inf, np.float32), 1).reshape(1, 1, 4, 4), "zero": np.float32(0)},
        ("y",)),
    "split_two_outputs": (
        [N("Split", ["x", "sizes"], ["a", "b"], axis=2), N("Relu", ["a"], ["y"]), N("Neg", ["b"], ["z"])],
        {"x": ((1, 6, 8), F32)}, {"sizes": np.array([3, 5], np.int64)}, ("y", "z")),
    "embedding_of_token_ids": (
        [N("Gather", ["table", "ids"], ["e"], axis=0), N("Add", ["e", "pos"], ["y"])],
        {"ids": ((1, 6), I64)}, {"table": _rand(20, 8), "pos": _rand(1, 6, 8)}, ("y",)),
    "class_token_expand_concat": (
        [N("Expand", ["cls", "shape"], ["c"]), N("Concat", ["c", "x"], ["t"], axis=1),
         N("Expand", ["t", "big"], ["y"])],
        {"x": ((1, 5, 4), F32)},
        {"cls": _rand(1, 1, 4), "shape": np.array([1, 1, 4], np.int64), "big": np.array([1, 6, 4], np.int64)},
        ("y",)),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ONNX_CASES))
def test_imported_onnx_graphs_convert(case: str, tmp_path: Path) -> None:
    """Graphs as the ONNX importer builds them from exporter spellings (the models of test_onnx_ops)."""
    nodes, inputs, inits, outputs = ONNX_CASES[case]
    path = tmp_path / "m.onnx"
    import onnx

    onnx.save(_model(nodes, inputs, inits, list(outputs), 18), path)
    graph = from_onnx(path)
    _compare(graph, to_torch(graph), _feeds(graph))


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


@pytest.mark.parametrize(("name", "kwargs"), [("vit_nano", {}), ("convnext_nano", {}), ("bert_tiny", {"vocab_size": 100}),
                                              ("gpt2_tiny", {"vocab_size": 100})])
def test_transformers_round_trip(name: str, kwargs: dict[str, int], tmp_path: Path) -> None:
    """Zoo transformers and ConvNeXt through ONNX and back: layer norms, embeddings, attention products,
    class token and causal mask convert; a batch of 3 on a file exported with batch 1."""
    model = create(name, **kwargs)
    s = spec(name)
    path = export_onnx(model, s.input_shape, tmp_path / f"{name}.onnx", dtype=s.input_dtype)
    graph = from_onnx(path)
    back = to_torch(graph)
    if s.input_dtype == "int64":
        x = torch.randint(0, 100, (BATCH, *s.input_shape))
    else:
        x = torch.randn(BATCH, *s.input_shape)
    with torch.no_grad():
        want = model(x).numpy()
        np.testing.assert_allclose(back(x).numpy(), want, atol=1e-5, rtol=1e-5)
    _compare(graph, back, {graph.inputs[0].name: x.numpy()})
    assert conv_input_activations(back) == {}  # traceable; no conv is fed by a ReLU
    assert sum(isinstance(m, nn.Linear) for m in back.modules()) == sum(
        isinstance(m, nn.Linear) for m in model.modules()) + (name.startswith("gpt2"))  # the tied LM head


def test_the_fx_importer_route_converts_too() -> None:
    """No ONNX in between: the PyTorch importer's graph converts back to the same function."""
    model = _randomised("resnet8")
    back = to_torch(from_pytorch(model, (1, 28, 28)))
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        np.testing.assert_allclose(back(x).numpy(), model(x).numpy(), atol=2e-5, rtol=1e-5)
