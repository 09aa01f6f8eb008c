"""The stream layout decides which layout operators are free and how large norm groups and re-order blocks are."""

from __future__ import annotations

import numpy as np

from accelflow.dataflow import stream_layouts
from accelflow.dataflow._layout import broadcast_axes, group_words, reorder_words, stream_order, vector_words
from accelflow.ir import (
    ConvAttrs,
    Graph,
    LayerNormAttrs,
    OpKind,
    ReshapeAttrs,
    TransposeAttrs,
    propagate_shapes,
)


def test_orders_vectors_and_groups() -> None:
    assert stream_order((16, 8, 8), 1) == (1, 2, 0)  # rows, columns, channels
    assert stream_order((8, 8, 16), 0) == (0, 1, 2)  # channels-last is row-major
    assert stream_order((2, 8, 8, 8), 2) == (2, 3, 0, 1)  # channels split in (g, C/g)
    assert vector_words((16, 8, 8), 1) == 16 and vector_words((8, 8, 16), 0) == 16 and vector_words((10,), 0) == 10
    assert group_words((16, 8, 8), 1, (0,)) == 16  # a pixel's channels
    assert group_words((16, 8, 8), 1, (1, 2)) == 16 * 8 * 8  # a global reduction holds the map
    assert group_words((17, 32), 0, (1,)) == 32  # a token's features
    assert broadcast_axes((16, 1, 1), (16, 8, 8)) == (1, 2) and broadcast_axes((8,), (4, 4, 8)) == (0, 1)


def test_reorder_words() -> None:
    assert reorder_words((16, 8, 8), 1, (1, 2, 0), 0) == 0  # (C,H,W) -> (H,W,C): a renaming
    assert reorder_words((8, 8, 16), 0, (2, 0, 1), 1) == 0  # and back
    assert reorder_words((2, 8, 8, 8), 2, (1, 0, 2, 3), 2) == 16  # channel shuffle: one pixel's channels
    assert reorder_words((16, 8, 6), 1, (0, 2, 1), 1) == 16 * 8 * 6  # swapping rows and columns: the whole map
    assert reorder_words((1, 16, 8, 8), 2, (1, 0, 2, 3), 2) == 0  # moving a unit axis changes nothing


def test_layouts_of_a_channels_last_block_and_a_shuffle() -> None:
    rng = np.random.default_rng(0)
    g = Graph("layout")
    x = g.add_input("x", (8, 6, 6))
    conv = g.add_node("conv", OpKind.CONV, [x], ConvAttrs(8, 8, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
                      params={"weight": rng.standard_normal((8, 8, 1, 1)).astype(np.float32)})  # fmt: skip
    last = g.add_node("to_last", OpKind.TRANSPOSE, [conv], TransposeAttrs((1, 2, 0)))
    norm = g.add_node("norm", OpKind.LAYERNORM, [last], LayerNormAttrs(-1))
    first = g.add_node("to_first", OpKind.TRANSPOSE, [norm], TransposeAttrs((2, 0, 1)))
    split = g.add_node("split", OpKind.RESHAPE, [first], ReshapeAttrs((2, 4, 6, 6)))
    swap = g.add_node("swap", OpKind.TRANSPOSE, [split], TransposeAttrs((1, 0, 2, 3)))
    merge = g.add_node("merge", OpKind.RESHAPE, [swap], ReshapeAttrs((8, 6, 6)))
    scale = g.add_node("scale", OpKind.CONSTANT, [], params={"value": np.ones((8, 1, 1), np.float32)})
    mul = g.add_node("mul", OpKind.MUL, [merge, scale])
    g.set_outputs([mul])
    propagate_shapes(g)
    lay = {n.name: v for n, v in stream_layouts(g).items()}
    assert lay["conv"].channel_axes == 1 and lay["to_last"].channel_axes == 0 and lay["to_last"].reorder_words == 0
    assert lay["to_first"].channel_axes == 1 and lay["to_first"].reorder_words == 0
    assert lay["split"].channel_axes == 2 and lay["swap"].reorder_words == 8 and lay["merge"].channel_axes == 1
    assert lay["scale"].constant and not lay["mul"].constant and lay["mul"].channel_axes == 1


def test_a_transpose_takes_the_layout_its_consumer_needs() -> None:
    """(C,H,W) -> (C,W,H) before a conv swaps rows and columns: the conv reads pixels with their channels
    innermost, so the whole map is buffered (the cheaper per-row re-order would hand the conv a stream in the
    wrong order). Without a consumer that cares, the cheapest re-order is taken."""
    rng = np.random.default_rng(0)
    g = Graph("swap")
    x = g.add_input("x", (4, 6, 5))
    swap = g.add_node("swap", OpKind.TRANSPOSE, [x], TransposeAttrs((0, 2, 1)))
    relu = g.add_node("relu", OpKind.RELU, [swap])
    conv = g.add_node("conv", OpKind.CONV, [relu], ConvAttrs(4, 4, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
                      params={"weight": rng.standard_normal((4, 4, 1, 1)).astype(np.float32)})  # fmt: skip
    free = g.add_node("free", OpKind.TRANSPOSE, [x], TransposeAttrs((0, 2, 1)))
    g.set_outputs([conv, free])
    propagate_shapes(g)
    lay = {n.name: v for n, v in stream_layouts(g).items()}
    assert lay["swap"].channel_axes == 1 and lay["swap"].reorder_words == 4 * 6 * 5
    assert lay["free"].reorder_words == 4 * 5  # a row's columns and channels, re-ordered row by row
