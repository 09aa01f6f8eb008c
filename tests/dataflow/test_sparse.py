import numpy as np
import pytest

from accelflow.dataflow import ConvLayer, Folding, speedup_over_dense
from accelflow.dataflow._sparse import expected_window_cycles, max_stream_cycles, snake_streams
from accelflow.ir import OpKind

from .conftest import uniform_hist


@pytest.mark.parametrize(("fine", "speedup"), [(1, 2.0), (3, 5 / 3), (9, 10 / 9)])
def test_reference_worked_example(fine: int, speedup: float) -> None:
    # 3x3 kernel, zeros uniform over 0..9: 2.0x at N=1, 1.67x at N=3, 1.11x at N=9
    assert speedup_over_dense(uniform_hist(1, 9), fine) == pytest.approx(speedup)


def test_worked_example_through_the_layer_model() -> None:
    kw = dict(name="c", op=OpKind.CONV, data_bits=16, weight_bits=16, channels=4, filters=4, kh=3, kw=3,
              h_in=8, w_in=8, h_out=8, w_out=8)  # fmt: skip
    dense = ConvLayer(**kw)
    sparse = ConvLayer(**kw, sparse=True, sparsity=0.5, hist=uniform_hist(4, 9))
    for fine, want in ((1, 2.0), (3, 5 / 3), (9, 10 / 9)):
        f = Folding(1, 1, 1, fine)
        assert dense.compute_cycles(f) / sparse.compute_cycles(f) == pytest.approx(want)


def test_all_zero_windows_take_no_cycles() -> None:
    hist = np.zeros((2, 10))
    hist[:, 9] = 1.0
    assert np.all(expected_window_cycles(hist) == 0)


def test_one_by_one_scales_with_one_minus_sparsity() -> None:
    s = np.array([0.2, 0.5, 0.7, 0.1])
    hist = np.stack([1 - s, s], axis=1)
    e = expected_window_cycles(hist)[:, 0]
    np.testing.assert_allclose(e, 1 - s)
    # two streams, snake order (0.9, 0.8 | 0.5, 0.3 dealt 0,1,1,0): sums 1.2 and 1.3
    assert max_stream_cycles(e, 2) == pytest.approx(1.3)


def test_snake_order_balances_streams() -> None:
    cost = np.arange(8, dtype=float)[::-1]  # 7..0
    streams = snake_streams(cost, 4)
    assert streams.tolist() == [0, 1, 2, 3, 3, 2, 1, 0]
    sums = np.bincount(streams, weights=cost)
    assert np.all(sums == 7)


def test_sparse_never_slower_than_dense_and_gain_shrinks_with_fine() -> None:
    rng = np.random.default_rng(1)
    hist = rng.dirichlet(np.ones(10), size=16)
    gains = [speedup_over_dense(hist, n) for n in (1, 3, 9)]
    assert all(g >= 1.0 for g in gains)
    assert gains[0] >= gains[1] >= gains[2]


def test_expected_max_lockstep_is_reference_for_one_stream_and_never_below_it() -> None:
    from accelflow.dataflow import LockStep

    rng = np.random.default_rng(2)
    kw = dict(name="c", op=OpKind.CONV, data_bits=16, weight_bits=16, channels=8, filters=4, kh=3, kw=3,
              h_in=6, w_in=6, h_out=6, w_out=6, sparse=True, sparsity=0.5, hist=rng.dirichlet(np.ones(10), size=8))  # fmt: skip
    mean = ConvLayer(**kw)
    emax = ConvLayer(**kw, lockstep=LockStep.EXPECTED_MAX)
    one = Folding(1, 2, 1, 3)
    assert emax.compute_cycles(one) == pytest.approx(mean.compute_cycles(one))
    for f in (Folding(2, 1, 1, 1), Folding(4, 2, 1, 3), Folding(8, 4, 1, 9)):
        assert emax.compute_cycles(f) >= mean.compute_cycles(f) * (1 - 1e-6)
