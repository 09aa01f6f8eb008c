"""Resource estimator against brute-force counts on hand-built layers, and its threshold behaviour."""

import numpy as np

from accelflow.hls import (
    FixedPoint,
    IOType,
    LayerPrecision,
    Strategy,
    csd_digits,
    estimate_resources,
    hls_weight_codes,
)
from accelflow.ir import Graph, LinearAttrs, OpKind


def _dense(weight: np.ndarray, bias: np.ndarray | None = None) -> Graph:
    g = Graph("t")
    x = g.add_input("x", (weight.shape[1],))
    params = {"weight": weight.astype(np.float32)}
    if bias is not None:
        params["bias"] = bias.astype(np.float32)
    fc = g.add_node("fc", OpKind.LINEAR, [x], LinearAttrs(weight.shape[1], weight.shape[0]), params)
    g.set_outputs([fc])
    from accelflow.ir import propagate_shapes

    propagate_shapes(g)
    return g


def _prec(wbits: int, xbits: int = 16) -> dict[str, LayerPrecision]:
    w = FixedPoint(wbits, 2)
    return {
        "x": LayerPrecision(FixedPoint(xbits, 6)),
        "fc": LayerPrecision(FixedPoint(16, 6), w, w, FixedPoint(24, 8)),
    }


def test_csd_digits_brute_force() -> None:
    def naf_weight(v: int) -> int:
        v, n = abs(v), 0
        while v:
            if v & 1:
                n += 1
                v -= 2 - (v & 3)  # digit +1 if v%4==1 else -1
            v >>= 1
        return n

    values = np.arange(-300, 301)
    assert list(csd_digits(values)) == [naf_weight(int(v)) for v in values]


def test_counts_match_brute_force_and_dsp_threshold() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.5, (24, 40))
    w[rng.random(w.shape) < 0.6] = 0.0  # 60 % pruned
    g = _dense(w, rng.normal(0, 0.1, 24))
    wide = estimate_resources(g, _prec(16)).layers[0]
    codes = hls_weight_codes(w, FixedPoint(16, 2))
    nonzero = codes != 0
    real = nonzero & (csd_digits(codes) > 1)
    assert wide.products == int(real.sum())
    assert wide.zero_weights == int((~nonzero).sum())
    assert wide.dsp == wide.products  # 16-bit operands: one DSP per non-trivial product
    narrow = estimate_resources(g, _prec(8)).layers[0]
    assert narrow.dsp == 0 and narrow.lut > wide.lut  # narrow products move into LUTs
    # data width below the threshold also keeps products out of DSPs
    assert estimate_resources(g, _prec(16, xbits=8)).layers[0].dsp == 0


def test_zero_and_power_of_two_weights_are_free() -> None:
    w = np.zeros((4, 8))
    g_zero = _dense(w)
    r = estimate_resources(g_zero, _prec(16)).layers[0]
    assert (r.dsp, r.products) == (0, 0) and r.zero_weights == 32
    w_pow2 = np.full((4, 8), 0.25)
    r2 = estimate_resources(_dense(w_pow2), _prec(16)).layers[0]
    assert r2.dsp == 0 and r2.products == 0
    assert r2.lut > 0  # the adders remain


def test_more_pruning_never_costs_more() -> None:
    rng = np.random.default_rng(1)
    w = rng.normal(0, 0.5, (32, 32))
    order = np.argsort(np.abs(w), axis=None)
    previous = None
    for rate in (0.0, 0.25, 0.5, 0.75, 0.9):
        wp = w.copy().ravel()
        wp[order[: int(rate * wp.size)]] = 0
        est = estimate_resources(_dense(wp.reshape(w.shape)), _prec(8)).total
        if previous is not None:
            assert est.lut <= previous.lut and est.ff <= previous.ff
        previous = est


def test_reuse_factor_and_strategy() -> None:
    w = np.random.default_rng(2).normal(0, 0.5, (16, 64))
    g = _dense(w)
    rf1 = estimate_resources(g, _prec(16)).total
    rf4 = estimate_resources(g, _prec(16), reuse_factor=4).total
    assert rf4.dsp == -(-rf1.dsp // 4)
    assert rf1.bram18 == 0 and rf4.bram18 > 0  # weights leave registers when reused
    assert rf4.latency_cycles > rf1.latency_cycles
    assert estimate_resources(g, _prec(16), strategy=Strategy.RESOURCE).total.bram18 > 0
    per_layer = estimate_resources(g, _prec(16), reuse_factor={"fc": 2}).total
    assert per_layer.dsp == -(-rf1.dsp // 2)


def test_estimates_add_up() -> None:
    from accelflow.frontends import from_pytorch
    from accelflow.zoo import create

    graph = from_pytorch(create("lenet5"), (1, 28, 28))
    est = estimate_resources(graph, {}, io_type=IOType.STREAM)
    assert est.total.dsp == sum(layer.dsp for layer in est.layers)
    assert est.total.lut == sum(layer.lut for layer in est.layers)
    assert (est + est).total.dsp == 2 * est.total.dsp
    parallel = estimate_resources(graph, {}, io_type=IOType.PARALLEL)
    conv = {layer.name: layer for layer in est.layers}["features.conv1"]
    conv_par = {layer.name: layer for layer in parallel.layers}["features.conv1"]
    assert conv_par.dsp == conv.dsp * 28 * 28  # io_parallel replicates the conv kernel per output pixel


def test_accepts_a_pytorch_model() -> None:
    import pytest

    from accelflow.errors import ConfigError
    from accelflow.frontends import from_pytorch
    from accelflow.zoo import create

    model = create("digits_mlp")
    assert estimate_resources(model, {}, input_shape=(64,)) == estimate_resources(
        from_pytorch(model, (64,)), {}
    )
    with pytest.raises(ConfigError, match="input_shape"):
        estimate_resources(model, {})
