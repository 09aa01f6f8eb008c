"""The numpy fixed-point emulator: float sanity with wide types, bit-exact agreement with hls4ml C-sim."""

from pathlib import Path

import numpy as np
import pytest
from torch import nn

from accelflow.data import Splits
from accelflow.frontends import from_pytorch
from accelflow.hls import FixedPoint, HlsConfig, IOType, LayerPrecision, convert, csim_predict, emulate
from accelflow.ir import COMPUTE_OPS, execute
from accelflow.zoo import create


def _uniform(graph, fp: FixedPoint) -> dict[str, LayerPrecision]:  # type: ignore[no-untyped-def]
    return {
        n.name: LayerPrecision(fp, fp, fp, fp) if n.op in COMPUTE_OPS else LayerPrecision(fp) for n in graph
    }


@pytest.mark.parametrize("name,shape", [("digits_mlp", (64,)), ("lenet5", (1, 28, 28))])
def test_wide_types_match_float(name: str, shape: tuple[int, ...]) -> None:
    model = create(name)
    graph = from_pytorch(model, shape)
    x = np.random.default_rng(1).random((20, *shape), dtype=np.float32)
    (ref,) = execute(graph, x)
    out = emulate(graph, _uniform(graph, FixedPoint(40, 12)), x)
    np.testing.assert_allclose(out, ref, atol=1e-4)
    # a narrow type visibly changes the outputs, but only by a few LSBs per layer
    coarse = emulate(graph, _uniform(graph, FixedPoint(12, 6)), x)
    assert 0 < np.abs(coarse - ref).max() < 0.5


def _mixed(graph) -> dict[str, LayerPrecision]:  # type: ignore[no-untyped-def]
    """Deliberately awkward types: truncating accumulators, narrow results that wrap, odd widths."""
    out: dict[str, LayerPrecision] = {}
    for i, n in enumerate(graph):
        if n.op in COMPUTE_OPS:
            out[n.name] = LayerPrecision(
                result=FixedPoint(9 + i, 4),
                weight=FixedPoint(7 + i % 3, 1),
                bias=FixedPoint(6, 2),
                accum=FixedPoint(14 + i, 6),
            )
        elif n.name == "x":
            out[n.name] = LayerPrecision(FixedPoint(9, 3))
        else:
            out[n.name] = LayerPrecision(out[n.inputs[0].name].result)
    return out


def test_emulator_matches_hls4ml_csim_exactly(digits: tuple[nn.Module, Splits], tmp_path: Path) -> None:
    model, splits = digits
    graph = from_pytorch(model, (64,))
    prec = _mixed(graph)
    proj = convert(model, (64,), HlsConfig(io_type=IOType.PARALLEL, precision=prec), tmp_path)
    # every layer got the types we asked for ('auto' nowhere)
    assert proj.precisions["layers_fc2"]["accum_t"].startswith("fixed<17,6,")  # 14 + node index 3
    assert not any("auto" in t for types in proj.precisions.values() for t in types.values())
    x = np.concatenate(
        [splits.test.x[:300], np.random.default_rng(2).normal(0, 3, (100, 64)).astype(np.float32)]
    )
    np.testing.assert_array_equal(emulate(graph, prec, x), csim_predict(proj, x))
    # same key -> loaded from the cache without recompiling
    again = convert(model, (64,), HlsConfig(io_type=IOType.PARALLEL, precision=prec), tmp_path)
    assert again.key == proj.key and again.compile_seconds == 0.0
    np.testing.assert_array_equal(csim_predict(again, x[:10]), csim_predict(proj, x[:10]))


@pytest.mark.slow
def test_emulator_matches_csim_on_a_cnn_stream(tmp_path: Path) -> None:
    model = create("lenet5")
    graph = from_pytorch(model, (1, 28, 28))
    prec = _mixed(graph)
    proj = convert(model, (1, 28, 28), HlsConfig(io_type=IOType.STREAM, precision=prec), tmp_path)
    x = np.random.default_rng(3).random((40, 1, 28, 28), dtype=np.float32) * 4 - 2
    np.testing.assert_array_equal(emulate(graph, prec, x), csim_predict(proj, x))


def test_convert_refuses_a_leading_flatten(tmp_path: Path) -> None:
    """hls4ml orders a flattened multi-dimensional input differently from PyTorch: refused before writing."""
    from accelflow.hls import HlsError

    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    with pytest.raises(HlsError, match="flat inputs"):
        convert(model, (1, 4, 4), HlsConfig(), tmp_path)
    assert not any(tmp_path.iterdir())
