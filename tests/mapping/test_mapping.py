"""Layer -> loop-nest mappings: GEMM views (convolutions, batched products, einsum, transposed convolutions),
vector kernels, instruction counts, printing, views, architectures without a vector unit, tiling overrides."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from accelflow.arch import ceil_div, template
from accelflow.errors import ConfigError
from accelflow.frontends import from_pytorch
from accelflow.ir import (
    VECTOR_COST,
    ConvTransposeAttrs,
    EinsumAttrs,
    Graph,
    LayerNormAttrs,
    Node,
    OpKind,
    ReduceAttrs,
    SoftmaxAttrs,
    TransposeAttrs,
    layer_cost,
    propagate_shapes,
)
from accelflow.mapping import (
    Instr,
    LayerKind,
    Loop,
    UnsupportedOnArchError,
    iteration_sizes,
    layer_shape,
    map_layer,
)

ARCHS = {
    "systolic": template("systolic", rows=4, cols=4),
    "gemmini": template("gemmini"),
    "gemmini_rows": template("gemmini", row_granularity=1),
    "ultratrail": template("ultratrail"),
    "plasticine": template("plasticine"),
}


def _nodes():
    torch.manual_seed(0)
    g2 = from_pytorch(nn.Sequential(nn.Conv2d(6, 20, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(20, 20, 3, groups=20),
                                    nn.Flatten(), nn.Linear(20 * 5 * 5, 10)), (6, 14, 14))  # fmt: skip
    g1 = from_pytorch(nn.Sequential(nn.Conv1d(5, 12, 9, stride=2, padding=4)), (5, 30))
    return g2.compute_nodes() + g1.compute_nodes()


def _flatten_node():
    g = from_pytorch(nn.Sequential(nn.Flatten()), (2, 3))
    return g.find(OpKind.FLATTEN)[0]


def _enumerate(block, env) -> int:
    total = 0
    for it in block:
        if isinstance(it, Instr):
            total += 1
        else:
            full, tile, rem = iteration_sizes(it, env)
            sizes = [tile] * full + ([rem] if rem else [])
            for k, size in enumerate(sizes):
                total += _enumerate(it.body, {**env, it.var: k, f"{it.var}_size": size})
    return total


@pytest.mark.parametrize("arch_name", sorted(ARCHS))
def test_instruction_count_matches_enumeration(arch_name: str) -> None:
    for node in _nodes():
        nest = map_layer(node, ARCHS[arch_name])
        assert nest.instruction_count() == _enumerate(nest.body, nest.env) > 0


def test_gemm_view_of_conv_depthwise_and_conv1d() -> None:
    conv, dw, fc, c1 = _nodes()
    s = layer_shape(conv)
    assert (s.npx, s.window, s.filters, s.groups) == (7 * 7, 6 * 9, 20, 1)
    s = layer_shape(dw)
    assert (s.npx, s.window, s.filters, s.groups) == (5 * 5, 9, 1, 20)
    s = layer_shape(fc)
    assert (s.npx, s.window, s.filters) == (1, 500, 10)
    s = layer_shape(c1)
    assert (s.npx, s.window, s.filters, s.taps) == (15, 45, 12, 9)
    # systolic ws folds: ceil(window/rows) * ceil(filters/cols) folds of 5 instructions per group
    nest = map_layer(dw, ARCHS["systolic"])
    assert nest.instruction_count() == 20 * ceil_div(9, 4) * 1 * 5


def test_mapping_prints_a_loop_nest() -> None:
    text = str(map_layer(_nodes()[0], ARCHS["gemmini"]))
    assert "for j in" in text and "for k in" in text and "compute n=ii_size" in text and "mvout" in text


def test_pooling_everywhere_and_tiling_overrides() -> None:
    g = from_pytorch(nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2)), (3, 8, 8))
    pool = g.find(OpKind.MAXPOOL)[0]
    # the systolic template's vector unit: one chunk (load, 4 operations per output element, store)
    nest = map_layer(pool, ARCHS["systolic"])
    assert nest.instruction_count() == 3 and "vop" in str(nest) and "k=taps" in str(nest)
    assert map_layer(pool, ARCHS["ultratrail"]).instruction_count() == 1
    with pytest.raises(UnsupportedOnArchError, match="free"):  # a view has no loop nest
        map_layer(_flatten_node(), ARCHS["gemmini"])
    conv = g.compute_nodes()[0]
    small = map_layer(conv, ARCHS["gemmini"], {"ti": 1})
    assert dict(small.tiling)["ti"] == 1
    with pytest.raises(ConfigError, match="no tile option"):
        map_layer(conv, ARCHS["gemmini"], {"px": 4})
    with pytest.raises(ConfigError, match="accumulator rows"):
        map_layer(conv, ARCHS["gemmini"], {"ti": 10_000})
    loops = [it for it in small.body if isinstance(it, Loop)]
    assert loops and loops[0].var == "j"


# -- GEMM views of products of activations, and vector kernels ---------------------------------------------------
def _product(op: OpKind, shapes: list[tuple[int, ...]], attrs=None, params=None) -> Node:
    g = Graph("t")
    ins = [g.add_input(f"x{i}", s) for i, s in enumerate(shapes)]
    node = g.add_node("y", op, ins, attrs, params)
    g.set_outputs([node])
    propagate_shapes(g)
    return node


@pytest.mark.parametrize("shapes, view", [
    ([(4, 6, 8), (4, 8, 5)], (4, 6, 8, 5)),  # attention-like: heads -> groups
    ([(3, 6, 8), (8, 5)], (1, 18, 8, 5)),  # one B for every batch entry: batch folds into npx
    ([(2, 1, 6, 8), (1, 3, 8, 5)], (6, 6, 8, 5)),  # broadcast batch dims
    ([(6, 8), (8,)], (1, 6, 8, 1)),  # matrix-vector
])
def test_matmul_gemm_view(shapes, view) -> None:
    node = _product(OpKind.MATMUL, shapes)
    s = layer_shape(node)
    assert (s.groups, s.npx, s.window, s.filters) == view
    assert s.macs == layer_cost(node).macs and s.kind is LayerKind.GEMM
    assert (s.in_elems, s.weight_elems) == (math.prod(shapes[0]), math.prod(shapes[1]))  # B counted once, as B


@pytest.mark.parametrize("equation, shapes, view", [
    ("hqd,hkd->hqk", [(2, 3, 4), (2, 5, 4)], (2, 3, 4, 5)),  # QK^T
    ("hqk,hkd->hqd", [(2, 3, 5), (2, 5, 4)], (2, 3, 5, 4)),  # AV
    ("bij,jk->bik", [(3, 6, 8), (8, 5)], (1, 18, 8, 5)),
    ("i,i->", [(7,), (7,)], (1, 1, 7, 1)),
])
def test_einsum_gemm_view(equation: str, shapes, view) -> None:
    node = _product(OpKind.EINSUM, shapes, EinsumAttrs(equation))
    s = layer_shape(node)
    assert (s.groups, s.npx, s.window, s.filters) == view and s.macs == layer_cost(node).macs


def test_conv_transpose_scatter_view_keeps_the_ir_macs() -> None:
    attrs = ConvTransposeAttrs(4, 6, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), (1, 1), groups=2)
    node = _product(OpKind.CONV_TRANSPOSE, [(4, 5, 5)], attrs, {"weight": np.zeros((4, 3, 3, 3), np.float32)})
    s = layer_shape(node)
    # every input position x (in_channels / groups) x (out_channels / groups x taps), per group
    assert (s.groups, s.npx, s.window, s.filters) == (2, 25, 2, 27)
    assert s.macs == layer_cost(node).macs == 4 * 25 * 3 * 9 and s.weight_elems == 4 * 3 * 9


def _vector_nodes() -> list[Node]:
    return [
        _product(OpKind.SOFTMAX, [(2, 3, 700)], SoftmaxAttrs(-1)),
        _product(OpKind.LAYERNORM, [(5, 48)], LayerNormAttrs(), {"weight": np.ones(48, np.float32), "bias": np.zeros(48, np.float32)}),
        _product(OpKind.EMBEDDING, [(6,)], None, {"weight": np.zeros((30, 16), np.float32)}),
        _product(OpKind.REDUCE_MEAN, [(4, 300)], ReduceAttrs((1,), keepdims=False)),
        _product(OpKind.TRANSPOSE, [(3, 20, 30)], TransposeAttrs((0, 2, 1))),
        _product(OpKind.SUB, [(3, 20, 30), (30,)]),
    ]


@pytest.mark.parametrize("arch_name", sorted(ARCHS))
def test_vector_kernels_count_and_cost(arch_name: str) -> None:
    softmax, norm, emb, mean, move, sub = (layer_shape(n) for n in _vector_nodes())
    assert (softmax.kind, softmax.elements, softmax.taps) == (LayerKind.VECTOR, 4200, VECTOR_COST[OpKind.SOFTMAX])
    assert norm.taps == VECTOR_COST[OpKind.LAYERNORM] and norm.weight_elems == 96
    assert emb.taps == 0 and emb.in_elems == 6 + 6 * 16  # the ids and the rows read; the table is not streamed
    assert mean.taps == 301 and mean.elements == 4  # one operation per input element, plus the division
    assert move.taps == 1 and sub.in_elems == 1800 + 30
    for node in _vector_nodes():
        for tiles in ({}, {"ve": 256}):
            nest = map_layer(node, ARCHS[arch_name], tiles)
            assert nest.instruction_count() == _enumerate(nest.body, nest.env) > 0


def test_a_view_is_free_and_a_transpose_of_rows_is_free() -> None:
    keep = layer_shape(_product(OpKind.TRANSPOSE, [(3, 20, 30)], TransposeAttrs((1, 0, 2))))
    assert keep.kind is LayerKind.FREE and layer_shape(_flatten_node()).kind is LayerKind.FREE


def test_an_architecture_without_a_vector_unit_says_what_is_missing() -> None:
    from accelflow.arch import load_architecture
    from tests.perf._transformers import gemmini_without_vector_unit

    arch = load_architecture(gemmini_without_vector_unit())
    with pytest.raises(UnsupportedOnArchError, match="no unit with the operation 'vop'"):
        map_layer(_vector_nodes()[0], arch)
