"""LockStep.SAMPLED: the sampled lock-step model against brute force and a lock-step simulation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from accelflow.dataflow import (
    ConvLayer,
    Folding,
    LockStep,
    SampledLockStep,
    WindowSample,
    load_device,
    optimise_folding,
)
from accelflow.dataflow._build import build_layers
from accelflow.dataflow._lockstep import pack_taps
from accelflow.dataflow._sparse import snake_streams
from accelflow.errors import ConfigError
from accelflow.frontends import from_pytorch
from accelflow.ir import OpKind
from accelflow.sparsity import annotate_graph, measure_sparsity

from .conftest import uniform_hist


def _brute(act: np.ndarray, w: np.ndarray, groups: int, fine: int, stream: np.ndarray, co: int) -> float:
    """Definition, one window at a time: mean over positions of the slowest (stream, unit) pair."""
    positions, channels, _ = act.shape
    cg, fg = channels // groups, w.shape[0] // groups
    total = 0
    for p in range(positions):
        work: dict[tuple[int, int], int] = {}
        for c in range(channels):
            for j in range(fg):
                nz = int((act[p, c] & w[(c // cg) * fg + j, c % cg]).sum())
                key = (int(stream[c]), j % co)
                work[key] = work.get(key, 0) - (-nz // fine)
        total += max(work.values())
    return total / positions


@pytest.mark.parametrize(
    ("taps", "positions", "channels", "filters", "groups"),
    [(9, 40, 4, 6, 1), (9, 30, 2, 64, 1), (9, 20, 4, 8, 2), (25, 20, 3, 4, 1), (1, 50, 8, 4, 1), (9, 30, 4, 4, 4)],
)
def test_sampled_model_equals_brute_force(taps: int, positions: int, channels: int, filters: int, groups: int) -> None:
    rng = np.random.default_rng(taps + channels)
    act = rng.random((positions, channels, taps)) < 0.5
    w = rng.random((filters, channels // groups, taps)) < 0.6
    model = SampledLockStep(WindowSample(pack_taps(act), pack_taps(w), taps, groups, positions))
    fg = filters // groups
    for fine in sorted({1, 3, taps}):
        for streams in sorted({1, 2, channels}):
            dealing = snake_streams(rng.random(channels), streams)
            for co in [d for d in (1, 2, 3, 4, fg) if fg % d == 0]:
                got = model.cycles(fine, dealing, co)
                assert got == pytest.approx(_brute(act, w, groups, fine, dealing, co), abs=1e-9)


def _simulate(x: torch.Tensor, conv: nn.Conv2d, fine: int, dealing: np.ndarray, co: int) -> float:
    """Lock-step replay of the images ``x``: cycles per image (independent of the model's code path)."""
    kh, kw = conv.kernel_size
    a = F.unfold((x != 0).float(), (kh, kw), padding=conv.padding, stride=conv.stride)
    n, c = x.shape[:2]
    a = a.reshape(n, c, kh * kw, -1)
    wnz = (conv.weight.detach() != 0).float().reshape(conv.out_channels, c, kh * kw)
    nz = torch.einsum("nckp,fck->ncfp", a, wnz).round().long().numpy()
    cyc = -(-nz // fine)
    streams = int(dealing.max()) + 1
    work = np.zeros((n, streams, co, nz.shape[3]))
    for ch in range(c):
        for f in range(conv.out_channels):
            work[:, dealing[ch], f % co] += cyc[:, ch, f]
    return float(work.max(axis=(1, 2)).sum() / n)


@pytest.fixture(scope="module")
def measured():
    torch.manual_seed(3)
    conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight[conv.weight.abs() < 0.08] = 0  # pruned weights: filters differ
    model = nn.Sequential(conv).eval()
    x = torch.relu(torch.randn(3, 8, 7, 7) + torch.linspace(-1.5, 1.0, 7).view(1, 1, 7, 1))  # rows differ
    stats = measure_sparsity(model, [x[:2], x[2:]], window_positions=10_000)  # keeps every position
    graph = from_pytorch(model, (8, 7, 7), name="one_conv")
    annotate_graph(graph, stats)
    return conv, x, stats, graph


def _layer(graph, lockstep: LockStep) -> ConvLayer:
    return next(layer for layer in build_layers(graph, lockstep=lockstep) if isinstance(layer, ConvLayer))


def test_model_equals_lockstep_simulation_on_the_same_windows(measured) -> None:
    conv, x, stats, graph = measured
    assert stats["0"].windows is not None and stats["0"].windows.positions == 3 * 49
    layer = _layer(graph, LockStep.SAMPLED)
    assert layer.sparse
    for ci, co, fine in [(1, 1, 1), (2, 1, 3), (1, 4, 2), (4, 2, 9), (8, 8, 1), (2, 8, 4)]:
        dealing = snake_streams(layer._window_cycles[:, fine - 1], ci)
        want = _simulate(x, conv, fine, dealing, co)
        assert layer.compute_cycles(Folding(ci, co, 1, fine)) == pytest.approx(want, rel=1e-12)


def test_sampled_is_reference_for_one_stream_and_never_below_it(measured) -> None:
    _, _, _, graph = measured
    mean, sampled = _layer(graph, LockStep.MEAN), _layer(graph, LockStep.SAMPLED)
    for fine in (1, 4, 9):
        one = Folding(1, 1, 1, fine)  # mean of sums = sum of means
        assert sampled.compute_cycles(one) == pytest.approx(mean.compute_cycles(one), rel=1e-9)
        for ci, co in [(2, 1), (1, 2), (4, 4), (8, 8)]:
            f = Folding(ci, co, 1, fine)  # E[max] >= max E (same windows)
            assert sampled.compute_cycles(f) >= mean.compute_cycles(f) * (1 - 1e-9)


def test_missing_or_mismatched_window_sample_is_a_config_error() -> None:
    kw = dict(name="c", op=OpKind.CONV, data_bits=16, weight_bits=16, channels=4, filters=4, kh=3, kw=3,
              h_in=6, w_in=6, h_out=6, w_out=6, sparse=True, sparsity=0.5, hist=uniform_hist(4, 9))  # fmt: skip
    with pytest.raises(ConfigError, match="window"):
        ConvLayer(**kw, lockstep=LockStep.SAMPLED)
    wrong = WindowSample(np.zeros((5, 4, 2), np.uint8), np.zeros((8, 4, 2), np.uint8), 9)  # 8 filters, not 4
    with pytest.raises(ConfigError, match="filters"):
        ConvLayer(**kw, lockstep=LockStep.SAMPLED, windows=wrong)
    ConvLayer(**kw, lockstep=LockStep.MEAN)  # the REFERENCE model needs no sample


def test_optimiser_runs_with_the_sampled_model(measured) -> None:
    _, _, _, graph = measured
    device = load_device("zcu102")
    mean = optimise_folding(graph, device, utilisation=0.05)
    sampled = optimise_folding(graph, device, utilisation=0.05, lockstep=LockStep.SAMPLED)
    assert sampled.feasible and sampled.throughput_images_per_s > 0
    # never more optimistic than the REFERENCE model at the REFERENCE model's own folding
    f = mean.foldings()["0"]
    assert _layer(graph, LockStep.SAMPLED).cycles(f) >= _layer(graph, LockStep.MEAN).cycles(f) * (1 - 1e-9)


def test_subsampled_positions_for_wide_layers() -> None:
    rng = np.random.default_rng(0)
    act = pack_taps(rng.random((1000, 4, 9)) < 0.5)
    w = pack_taps(rng.random((4, 4, 9)) < 0.5)
    small = SampledLockStep(WindowSample(act, w, 9, 1, 1000), max_elements=16 * 300)
    assert small.positions == 300
    full = SampledLockStep(WindowSample(act, w, 9, 1, 1000))
    dealing = np.array([0, 1, 1, 0])
    assert small.cycles(3, dealing, 2) == pytest.approx(full.cycles(3, dealing, 2), rel=0.1)
