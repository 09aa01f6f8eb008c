"""Structural invariants of the IR graph and its passes."""

import numpy as np
import pytest

from accelflow.errors import GraphError
from accelflow.ir import (
    ConvAttrs,
    GlobalPoolAttrs,
    Graph,
    LayerCost,
    LinearAttrs,
    OpKind,
    canonicalize,
    execute,
    network_cost,
    propagate_shapes,
)


def _tiny() -> Graph:
    g = Graph("tiny")
    x = g.add_input("x", (3, 8, 8))
    w = np.random.default_rng(0).normal(size=(4, 3, 3, 3)).astype(np.float32)
    conv = g.add_node("conv", OpKind.CONV, [x], ConvAttrs(3, 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)), {"weight": w})
    relu = g.add_node("relu", OpKind.RELU, [conv])
    gap = g.add_node("gap", OpKind.GLOBAL_AVGPOOL, [relu], GlobalPoolAttrs(keepdims=True))
    flat = g.add_node("flat", OpKind.FLATTEN, [gap])
    fc = g.add_node("fc", OpKind.LINEAR, [flat], LinearAttrs(4, 2), {"weight": np.ones((2, 4), np.float32)})
    g.set_outputs([fc])
    return propagate_shapes(g)


def test_links_follow_inputs():
    g = _tiny()
    g.check()
    assert g["conv"].users == (g["relu"],)
    g["gap"].inputs = [g["conv"]]
    assert g["relu"].users == () and g["gap"] in g["conv"].users
    g.check()


def test_erase_in_use_is_refused_and_bypass_relinks():
    g = _tiny()
    with pytest.raises(GraphError, match="still used"):
        g.erase_node(g["relu"])
    g.bypass(g["relu"])
    assert g["gap"].inputs == (g["conv"],) and "relu" not in g
    g.check()


def test_duplicate_names_and_order_are_checked():
    g = _tiny()
    with pytest.raises(GraphError, match="duplicate"):
        g.add_node("conv", OpKind.RELU, [g["x"]])
    with pytest.raises(GraphError, match="after its user"):
        g.add_node("late", OpKind.RELU, [g["fc"]], after=g["x"])


def test_shapes_and_macs_match_hand_count():
    g = _tiny()
    assert g["conv"].shape == (4, 8, 8)
    assert g["gap"].shape == (4, 1, 1) and g["fc"].shape == (2,)
    costs = network_cost(g)
    assert costs[g["conv"]].macs == 4 * 8 * 8 * 3 * 9
    assert costs[g["fc"]].macs == 8
    total = sum(costs.values(), LayerCost())
    assert total.macs == 4 * 8 * 8 * 27 + 8 and total.params == 4 * 27 + 8


def test_canonicalize_fuses_pool_flatten_without_changing_numerics():
    g = _tiny()
    x = np.random.default_rng(1).normal(size=(2, 3, 8, 8)).astype(np.float32)
    before = execute(g, x)[0]
    canonicalize(g)
    assert "flat" not in g and g["gap"].attrs == GlobalPoolAttrs(keepdims=False)
    np.testing.assert_allclose(execute(g, x)[0], before, rtol=1e-6)


def test_shape_errors_name_the_node():
    g = Graph("bad")
    x = g.add_input("x", (5,))
    fc = g.add_node("fc", OpKind.LINEAR, [x], LinearAttrs(4, 2), {"weight": np.ones((2, 4), np.float32)})
    g.set_outputs([fc])
    with pytest.raises(GraphError, match="'fc'"):
        propagate_shapes(g)
