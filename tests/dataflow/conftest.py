"""Small real IR networks for the dataflow tests."""

from __future__ import annotations

import numpy as np
import pytest

from accelflow.ir import ConvAttrs, Graph, LinearAttrs, OpKind, PoolAttrs, propagate_shapes


def conv_net(
    c: int = 4, f: int = 8, h: int = 9, w: int = 7, k: int = 3, groups: int = 1, second: bool = True
) -> Graph:
    """conv(k x k, pad same) -> relu -> [maxpool 2 -> conv 1x1 -> flatten -> linear]."""
    rng = np.random.default_rng(0)
    g = Graph("tiny")
    x = g.add_input("x", (c, h, w))
    p = k // 2
    conv = g.add_node(
        "conv1", OpKind.CONV, [x], ConvAttrs(c, f, (k, k), (1, 1), (p, p, p, p), (1, 1), groups),
        params={"weight": rng.standard_normal((f, c // groups, k, k)).astype(np.float32),
                "bias": np.zeros(f, np.float32)},
    )  # fmt: skip
    out = g.add_node("relu1", OpKind.RELU, [conv])
    if second:
        pool = g.add_node("pool1", OpKind.MAXPOOL, [out], PoolAttrs((2, 2), (2, 2), (0, 0, 0, 0)))
        c2 = g.add_node(
            "conv2", OpKind.CONV, [pool], ConvAttrs(f, 6, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
            params={"weight": rng.standard_normal((6, f, 1, 1)).astype(np.float32)},
        )  # fmt: skip
        flat = g.add_node("flatten", OpKind.FLATTEN, [c2])
        n_in = 6 * (h // 2) * (w // 2)
        out = g.add_node(
            "fc", OpKind.LINEAR, [flat], LinearAttrs(n_in, 5),
            params={"weight": rng.standard_normal((5, n_in)).astype(np.float32), "bias": np.zeros(5, np.float32)},
        )  # fmt: skip
    g.set_outputs([out])
    propagate_shapes(g)
    return g


@pytest.fixture
def tiny() -> Graph:
    return conv_net()


def uniform_hist(channels: int, kk: int) -> np.ndarray:
    """Zeros uniform over 0..K*K in every channel."""
    return np.full((channels, kk + 1), 1.0 / (kk + 1))
