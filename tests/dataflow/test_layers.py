import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelflow.dataflow import ConvLayer, Folding, PoolLayer, StreamLayer, evaluate_design, load_device
from accelflow.dataflow._build import build_layers
from accelflow.dataflow._resources import bram18_for, dsp_per_mac, memory
from accelflow.ir import ChannelSparsity, OpKind

from .conftest import conv_net, uniform_hist


def test_dense_cycles_use_rows_times_cols() -> None:
    # 9 x 7 output map (non-square): rows*rows would give 9*9
    g = conv_net(c=4, f=8, h=9, w=7, k=3, second=False)
    conv = build_layers(g)[0]
    f = Folding(2, 4, 1, 3)
    assert conv.cycles(f) == 9 * 7 * 4 * 9 * 8 / (3 * 2 * 4 * 1)


def test_depthwise_cycles_and_legal_values() -> None:
    g = conv_net(c=8, f=8, h=6, w=6, k=3, groups=8, second=False)
    conv = build_layers(g)[0]
    ci, co, cg, fine = conv.options()
    assert ci == (1,) and co == (1,) and cg == (1, 2, 4, 8) and fine == (1, 3, 9)
    assert conv.cycles(Folding(1, 1, 4, 9)) == 6 * 6 * 8 * 9 / (9 * 4)


def test_legal_foldings() -> None:
    conv = build_layers(conv_net(c=6, f=4, k=3))[0]
    assert conv.options() == ((1, 2, 3, 6), (1, 2, 4), (1,), (1, 3, 9))
    assert conv.is_legal(Folding(3, 4, 1, 9))
    assert not conv.is_legal(Folding(4, 1, 1, 1)) and not conv.is_legal(Folding(1, 1, 1, 2))
    g = conv_net(c=6, f=4, k=3)
    g["conv1"].annotate(ChannelSparsity(uniform_hist(6, 9)))
    sparse = build_layers(g)[0]
    assert sparse.sparse and sparse.options()[3] == tuple(range(1, 10))
    with pytest.raises(Exception, match="illegal folding"):
        evaluate_design(g, load_device("zcu102"), {"conv1": Folding(5, 1, 1, 1)})


def test_below_ten_percent_sparsity_is_built_dense() -> None:
    g = conv_net(c=4, k=3)
    hist = np.zeros((4, 10))
    hist[:, 0], hist[:, 9] = 0.95, 0.05  # 5% zero products
    g["conv1"].annotate(ChannelSparsity(hist))
    layer = build_layers(g)[0]
    assert not layer.sparse and layer.sparsity == pytest.approx(0.05)


def test_data_movement_floor() -> None:
    # all windows zero: compute is 0 cycles but every input word still has to stream in
    g = conv_net(c=4, f=8, h=9, w=7, k=3, second=False)
    hist = np.zeros((4, 10))
    hist[:, 9] = 1.0
    g["conv1"].annotate(ChannelSparsity(hist))
    conv = build_layers(g)[0]
    f = Folding(2, 2, 1, 1)
    assert conv.compute_cycles(f) == 0
    assert conv.cycles(f) == max(9 * 7 * 4 / 2, 9 * 7 * 8 / 2)


@pytest.mark.parametrize(("bits", "per_mac"), [(16, 1.0), (18, 1.0), (20, 2.0), (8, 0.5), (4, 0.25)])
def test_dsp_formula(bits: int, per_mac: float) -> None:
    assert dsp_per_mac(bits, bits) == per_mac
    conv = build_layers(conv_net(c=4, f=8, k=3), data_bits=bits, weight_bits=bits)[0]
    f = Folding(2, 4, 1, 3)
    assert conv.resources(f).dsp == math.ceil(3 * 2 * 4 * per_mac)


def test_weight_memory_bram_aspect_ratios_and_lutram() -> None:
    assert bram18_for(512, 36) == 1 and bram18_for(1024, 18) == 1 and bram18_for(2048, 16) == 2
    assert bram18_for(16384, 1) == 1 and bram18_for(4096, 4) == 1 and bram18_for(2048, 9) == 1
    assert memory(63, 16).bram18 == 0 and memory(63, 16).lut == 16  # 1,008 bits -> LUTRAM
    assert memory(64, 16).bram18 == 1  # 1,024 bits -> BRAM
    conv = build_layers(conv_net(c=64, f=64, h=4, w=4, k=3, second=False))[0]
    wm = conv.weights(Folding(1, 1, 1, 9))
    assert wm.arrays == 9 and wm.depth == 64 * 64 and wm.width == 16
    assert wm.on_chip().bram18 == 9 * bram18_for(4096, 16)


@settings(max_examples=40, deadline=None)
@given(
    c=st.sampled_from([1, 2, 3, 8]), f=st.sampled_from([1, 4, 6]), k=st.sampled_from([1, 3, 5]),
    bits=st.sampled_from([4, 8, 16]), sparse=st.booleans(),
)  # fmt: skip
def test_resources_never_negative(c: int, f: int, k: int, bits: int, sparse: bool) -> None:
    g = conv_net(c=c, f=f, h=6, w=5, k=k)
    if sparse:
        g["conv1"].annotate(ChannelSparsity(uniform_hist(c, k * k)))
    for layer in build_layers(g, bits, bits):
        for fold in (layer.minimal(), layer.maximal(), *layer.neighbours(layer.maximal(), up=False)):
            r = layer.resources(fold)
            assert min(r.dsp, r.lut, r.ff, r.bram18, r.uram) >= 0
            assert r.lut > 0 and r.ff > 0
            assert layer.cycles(fold) > 0


def test_sparse_layer_at_fine_kk_costs_more_logic_than_dense() -> None:
    # the original model went negative here; ours only adds zero-skip logic
    g = conv_net(c=4, f=8, k=3, second=False)
    dense = build_layers(g)[0]
    g["conv1"].annotate(ChannelSparsity(uniform_hist(4, 9)))
    sparse = build_layers(g)[0]
    f = Folding(2, 2, 1, 9)
    rd, rs = dense.resources(f), sparse.resources(f)
    assert rs.lut > rd.lut > 0 and rs.ff > rd.ff > 0 and rs.dsp == rd.dsp


def test_a_sparse_conv_built_dense_costs_what_the_dense_conv_costs() -> None:
    g = conv_net(c=4, f=8, k=3, second=False)
    dense = build_layers(g)[0]
    g["conv1"].annotate(ChannelSparsity(uniform_hist(4, 9)))
    sparse = build_layers(g)[0]
    for f in (Folding(1, 1, 1, 1), Folding(2, 4, 1, 3), Folding(4, 8, 1, 9)):
        alt = f.as_dense()
        assert sparse.is_legal(alt) and sparse.cycles(alt) == dense.cycles(f)
        assert sparse.resources(alt) == dense.resources(f) and sparse.weights(alt) == dense.weights(f)
        assert sparse.cycles(f) <= dense.cycles(f)  # zero skipping is faster per lane (or both at the floor)
    assert sparse.cycles(Folding()) < dense.cycles(Folding())
    assert not sparse.is_legal(Folding(1, 1, 1, 2, dense=True))  # a dense vector dot needs fine | K*K
    assert not dense.is_legal(Folding(1, 1, 1, 1, dense=True))  # nothing to choose without sparsity
    alternatives = [f for f in sparse.all_foldings() if f.dense]
    assert [f.plain for f in alternatives] == dense.all_foldings()  # every dense folding is on offer
    assert all(n.dense for n in sparse.neighbours(Folding(2, 4, 1, 3, dense=True)))
    assert sparse.alternatives(Folding(2, 4, 1, 5)) == alternatives and dense.alternatives(f) == []
    assert sparse.alternatives(Folding(2, 4, 1, 3, True)) == [g for g in sparse.all_foldings() if not g.dense]
    assert sparse.is_maximal(Folding(4, 8, 1, 9, dense=True)) and sparse.is_maximal(Folding(4, 8, 1, 9))


def test_more_folding_means_fewer_cycles_more_resources() -> None:
    for layer in build_layers(conv_net()):
        lo, hi = layer.minimal(), layer.maximal()
        assert layer.cycles(hi) <= layer.cycles(lo)
        assert layer.resources(hi).lut >= layer.resources(lo).lut


def test_layer_kinds_cover_the_network() -> None:
    kinds = [type(layer) for layer in build_layers(conv_net())]
    assert kinds == [ConvLayer, StreamLayer, PoolLayer, ConvLayer, ConvLayer]
    assert build_layers(conv_net())[-1].op is OpKind.LINEAR
