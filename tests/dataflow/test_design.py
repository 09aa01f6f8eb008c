import itertools

import numpy as np
import pytest

from accelflow.dataflow import (
    Device,
    Folding,
    ResourceKind,
    Resources,
    WeightStorage,
    evaluate_design,
    load_device,
)
from accelflow.ir import ChannelSparsity

from .conftest import conv_net, uniform_hist


def test_pipeline_interval_latency_and_throughput() -> None:
    g = conv_net()
    dev = load_device("zcu102")
    d = evaluate_design(g, dev, {"conv1": Folding(2, 4, 1, 3)}, batch=32)
    assert d.interval_cycles == max(layer.cycles_per_image for layer in d.layers)
    assert d.latency_cycles() == d.interval_cycles * 32 + d.pipeline_depth_cycles
    assert d.latency_cycles(1) == d.interval_cycles + d.pipeline_depth_cycles
    assert d.throughput_images_per_s == pytest.approx(32 * 200e6 / d.latency_cycles())
    assert d.pipeline_depth_cycles > 0 and d.bandwidth_slowdown == 1.0


def test_totals_cover_every_layer() -> None:
    d = evaluate_design(conv_net(), load_device("zcu102"))
    layer_sum = sum((layer.resources for layer in d.layers), Resources())
    assert d.resources.dsp == layer_sum.dsp
    assert d.resources.lut >= layer_sum.lut and d.resources.ff >= layer_sum.ff  # + squeeze modules
    assert d.to_dict()["dsp"] == d.resources.dsp and '"layers"' in d.to_json()


def test_bandwidth_slowdown_when_offchip_is_too_slow() -> None:
    g = conv_net()
    dev = load_device("zcu102")
    fast = evaluate_design(g, dev)
    slow_dev = Device("slow", dev.dsp, dev.bram18, dev.lut, dev.ff, dev.uram, dev.clock_mhz, offchip_gbps=1e-4)
    slow = evaluate_design(g, slow_dev)
    bits = (4 * 9 * 7 + 5) * 16  # input image + output vector per image
    needed_gbps = bits * 200e6 / slow.compute_interval_cycles / 1e9
    assert slow.bandwidth_slowdown == pytest.approx(needed_gbps / 1e-4)
    assert slow.interval_cycles == pytest.approx(fast.interval_cycles * slow.bandwidth_slowdown)
    assert slow.binding_resource is ResourceKind.BANDWIDTH


def test_weights_overflow_to_uram_then_offchip() -> None:
    g = conv_net(c=64, f=64, h=8, w=8, k=3, second=False)
    dev = load_device("u250")
    tiny_bram = Device("t", dev.dsp, 4, dev.lut, dev.ff, 100, 200, 100)
    d = evaluate_design(g, tiny_bram, {"conv1": Folding(1, 1, 1, 9)})
    assert d.layers[0].weight_storage is WeightStorage.URAM and d.resources.uram > 0
    no_uram = Device("t", dev.dsp, 4, dev.lut, dev.ff, 0, 200, 100)
    d = evaluate_design(g, no_uram, {"conv1": Folding(1, 1, 1, 9)})
    assert d.layers[0].weight_storage is WeightStorage.OFFCHIP
    assert d.required_gbps * 1e9 == pytest.approx(
        (64 * 64 * 9 * 16 + 64 * 64 * 16 + 64 * 64 * 16) * 200e6 / d.compute_interval_cycles
    )


def test_infeasible_design_is_flagged() -> None:
    dev = Device("toy", dsp=2, bram18=100, lut=100_000, ff=200_000, uram=0, clock_mhz=100, offchip_gbps=10)
    d = evaluate_design(conv_net(), dev, {"conv1": Folding(4, 8, 1, 9)})
    assert not d.feasible


def test_sparse_layers_cut_cycles_not_dsps() -> None:
    g = conv_net()
    dev = load_device("zcu102")
    f = {"conv1": Folding(2, 2, 1, 3)}
    dense = evaluate_design(g, dev, f)
    g["conv1"].annotate(ChannelSparsity(uniform_hist(4, 9)))
    sparse = evaluate_design(g, dev, f)
    assert sparse.layers[0].sparse and sparse.layers[0].sparsity == pytest.approx(0.5)
    assert sparse.layers[0].cycles_per_image < dense.layers[0].cycles_per_image
    assert sparse.layers[0].resources.dsp == dense.layers[0].resources.dsp
    ignored = evaluate_design(g, dev, f, use_sparsity=False)
    assert ignored.layers[0].cycles_per_image == dense.layers[0].cycles_per_image


def test_unknown_layer_name_rejected() -> None:
    with pytest.raises(Exception, match="unknown layers"):
        evaluate_design(conv_net(), load_device("zcu102"), {"nope": Folding()})


def test_every_folding_of_a_layer_evaluates() -> None:
    g = conv_net(c=2, f=4, h=4, w=4, k=3, second=False)
    dev = load_device("zcu102")
    seen = set()
    for ci, co, fine in itertools.product((1, 2), (1, 2, 4), (1, 3, 9)):
        d = evaluate_design(g, dev, {"conv1": Folding(ci, co, 1, fine)})
        seen.add(d.layers[0].cycles_per_image)
        assert np.isfinite(d.throughput_images_per_s)
    assert len(seen) > 5
