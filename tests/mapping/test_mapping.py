"""Layer -> loop-nest mappings: instruction counts, printing, unsupported operators, tiling overrides."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from accelflow.arch import ceil_div, template
from accelflow.errors import ConfigError
from accelflow.frontends import from_pytorch
from accelflow.ir import OpKind
from accelflow.mapping import Instr, Loop, UnsupportedOnArchError, iteration_sizes, layer_shape, map_layer

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


def test_unsupported_operators_and_tiling_overrides() -> None:
    g = from_pytorch(nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2)), (3, 8, 8))
    pool = g.find(OpKind.MAXPOOL)[0]
    with pytest.raises(UnsupportedOnArchError, match="maxpool is not supported on systolic"):
        map_layer(pool, ARCHS["systolic"])
    assert map_layer(pool, ARCHS["ultratrail"]).instruction_count() == 1
    conv = g.compute_nodes()[0]
    small = map_layer(conv, ARCHS["gemmini"], {"ti": 1})
    assert dict(small.tiling)["ti"] == 1
    with pytest.raises(ConfigError, match="no tile option"):
        map_layer(conv, ARCHS["gemmini"], {"px": 4})
    with pytest.raises(ConfigError, match="accumulator rows"):
        map_layer(conv, ARCHS["gemmini"], {"ti": 10_000})
    loops = [it for it in small.body if isinstance(it, Loop)]
    assert loops and loops[0].var == "j"
