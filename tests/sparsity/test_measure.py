"""Vectorised zero-product histograms against a brute-force loop, padding, thresholds, model hooks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from accelflow.sparsity import (
    ConvSparsity,
    SparsityError,
    brute_force_counts,
    mask_weights,
    measure_sparsity,
    zero_product_counts,
)
from accelflow.zoo import ThresholdReLU

CONVS = [
    pytest.param(lambda: nn.Conv2d(4, 6, 3, padding=1), id="3x3"),
    pytest.param(lambda: nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2), id="3x3-stride2-groups2"),
    pytest.param(lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4), id="depthwise"),
    pytest.param(lambda: nn.Conv2d(4, 4, 3, padding=2, dilation=2), id="dilated"),
    pytest.param(lambda: nn.Conv2d(3, 5, 5, padding=2), id="5x5-matmul-route"),
    pytest.param(lambda: nn.Conv2d(4, 6, 1), id="1x1"),
    pytest.param(lambda: nn.Conv2d(4, 4, (1, 3), padding=(0, 1)), id="1x3"),
    pytest.param(lambda: nn.Conv1d(4, 6, 3, padding=1), id="conv1d"),
]


@pytest.mark.parametrize("make", CONVS)
@pytest.mark.parametrize("seed", [0, 1])
def test_vectorised_counts_equal_brute_force(make, seed: int) -> None:
    torch.manual_seed(seed)
    conv = make()
    spatial = (7, 6) if isinstance(conv, nn.Conv2d) else (9,)
    x = torch.relu(torch.randn(2, conv.in_channels, *spatial) - 0.3)  # ReLU zeros
    w = conv.weight.detach().clone()
    w[w.abs() < 0.1] = 0  # pruned weights
    fast = zero_product_counts(x, w, conv)
    slow = brute_force_counts(x.numpy(), w.numpy(), conv)
    np.testing.assert_array_equal(fast, slow)
    taps = int(np.prod(conv.kernel_size))
    assert fast.shape == (conv.in_channels, taps + 1)


def test_padding_zeros_counted() -> None:
    """All-ones 4x4 input, dense weights, 3x3 pad 1: corner windows have 5 padded taps, edges 3, inside 0."""
    conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    counts = zero_product_counts(torch.ones(1, 1, 4, 4), conv.weight.detach(), conv)
    expected = np.zeros((1, 10), dtype=np.int64)
    expected[0, 5] = 4 * 2  # 4 corners x 2 filters
    expected[0, 3] = 8 * 2  # 8 edge windows
    expected[0, 0] = 4 * 2  # 4 interior windows
    np.testing.assert_array_equal(counts, expected)


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1, groups=2),
                         ThresholdReLU(0.0), nn.Conv2d(6, 3, 1)).eval()


def test_measure_sparsity_matches_per_layer_counts() -> None:
    model = _tiny()
    x = torch.randn(3, 1, 6, 6)
    stats = measure_sparsity(model, [x[:2], x[2:]])  # two batches accumulate
    assert list(stats) == ["0", "2", "4"]
    with torch.no_grad():
        a1 = model[1](model[0](x))
        a2 = model[3](model[2](a1))
    expected = {"0": (x, model[0]), "2": (a1, model[2]), "4": (a2, model[4])}
    for name, (inp, conv) in expected.items():
        slow = brute_force_counts(inp.numpy(), conv.weight.detach().numpy(), conv)
        np.testing.assert_array_equal(stats[name].counts, slow)
        assert np.allclose(stats[name].hist.sum(axis=1), 1.0)
        assert stats[name].record().channels == conv.in_channels


def test_thresholds_raise_sparsity_monotonically() -> None:
    model = _tiny()
    x = torch.randn(8, 1, 6, 6)
    previous = -1.0
    for t in [0.0, 0.05, 0.1, 0.2, 0.4]:
        m = mask_weights(model, {"2": t})
        m[3].threshold = t
        s = measure_sparsity(m, [x], layers=["4"])["4"].mean_sparsity
        s2 = measure_sparsity(m, [x], layers=["2"])["2"].mean_sparsity
        assert s >= previous - 1e-12 and 0.0 <= s2 <= 1.0
        previous = s
    assert previous > 0.5


def test_mask_weights_copies_and_validates() -> None:
    model = _tiny()
    before = model[0].weight.detach().clone()
    pruned = mask_weights(model, {"0": 0.2})
    assert torch.equal(model[0].weight, before)  # original untouched
    w = pruned[0].weight.detach()
    assert torch.all((w == 0) | (w.abs() >= 0.2)) and bool((w == 0).any())
    with pytest.raises(SparsityError):
        mask_weights(model, {"1": 0.1})  # a ReLU, not a conv
    with pytest.raises(SparsityError):
        measure_sparsity(model, [torch.zeros(1, 1, 6, 6)], layers=["nope"])


def test_counts_add() -> None:
    a = ConvSparsity("c", np.array([[1, 2], [3, 4]]), 1)
    assert np.array_equal((a + a).counts, 2 * a.counts)
    assert a.mean_sparsity == pytest.approx((2 + 4) / 10)
