"""Window zero-pattern samples: bitmasks, position sampling, persistence beside the ONNX file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from accelflow.dataflow import WindowSample, load_window_samples, save_window_samples, window_sample_path
from accelflow.dataflow._lockstep import pack_taps
from accelflow.sparsity import ATTRIBUTE, export_sparsity_onnx, measure_sparsity, window_bitmasks

CONVS = [
    pytest.param(lambda: nn.Conv2d(4, 6, 3, padding=1), id="3x3"),
    pytest.param(lambda: nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2), id="stride2-groups2"),
    pytest.param(lambda: nn.Conv2d(4, 4, 3, padding=2, dilation=2), id="dilated"),
    pytest.param(lambda: nn.Conv2d(3, 5, 5, padding=2), id="5x5"),
    pytest.param(lambda: nn.Conv2d(2, 3, 7, padding=3), id="7x7"),
    pytest.param(lambda: nn.Conv2d(4, 6, 1), id="1x1"),
]


@pytest.mark.parametrize("make", CONVS)
def test_window_bitmasks_equal_unfold(make) -> None:
    torch.manual_seed(0)
    conv = make()
    x = torch.relu(torch.randn(2, conv.in_channels, 9, 8) - 0.3)
    kh, kw = conv.kernel_size
    cols = F.unfold((x != 0).float(), (kh, kw), padding=conv.padding, stride=conv.stride, dilation=conv.dilation)
    c = x.shape[1]
    want = cols.view(2, c, kh * kw, -1).permute(0, 3, 1, 2).reshape(-1, c, kh * kw) > 0.5
    np.testing.assert_array_equal(window_bitmasks(x, conv), pack_taps(want.numpy()))


def _model() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1)).eval()


def test_sample_is_uniform_subset_and_seeded() -> None:
    model = _model()
    x = torch.randn(6, 1, 8, 8)
    full = measure_sparsity(model, [x[:3], x[3:]], window_positions=10_000)["2"].windows
    assert full is not None and full.positions == full.positions_total == 6 * 64
    a = measure_sparsity(model, [x[:3], x[3:]], window_positions=50, seed=4)["2"].windows
    b = measure_sparsity(model, [x[:3], x[3:]], window_positions=50, seed=4)["2"].windows
    assert a.positions == 50 and a.positions_total == 6 * 64
    np.testing.assert_array_equal(a.act, b.act)
    rows = {r.tobytes() for r in full.act}
    assert all(r.tobytes() in rows for r in a.act)  # every sampled position is a real one
    w = (model[2].weight.detach() != 0).reshape(6, 4, 9).numpy()
    np.testing.assert_array_equal(a.weight, pack_taps(w))
    assert measure_sparsity(model, [x], window_positions=0)["2"].windows is None


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    s = WindowSample(rng.integers(0, 256, (7, 4, 2), dtype=np.uint8), rng.integers(0, 256, (6, 2, 2), dtype=np.uint8),
                     9, groups=2, positions_total=99)  # fmt: skip
    path = save_window_samples(tmp_path / "w.npz", {"layer1.0.conv1": s})
    back = load_window_samples(path)["layer1.0.conv1"]
    np.testing.assert_array_equal(back.act, s.act)
    np.testing.assert_array_equal(back.weight, s.weight)
    assert (back.kernel_taps, back.groups, back.positions_total) == (9, 2, 99)


def test_export_writes_sidecar_and_leaves_the_attribute_unchanged(tmp_path: Path) -> None:
    model = _model()
    x = torch.randn(2, 1, 8, 8)
    with_windows = measure_sparsity(model, [x], window_positions=32)
    plain = measure_sparsity(model, [x])
    a = export_sparsity_onnx(model, (1, 8, 8), with_windows, tmp_path / "a.onnx")
    b = export_sparsity_onnx(model, (1, 8, 8), plain, tmp_path / "b.onnx")
    assert window_sample_path(a).exists() and not window_sample_path(b).exists()

    def attrs(p: Path) -> list[list[float]]:
        nodes = onnx.load(str(p)).graph.node
        return [list(at.floats) for n in nodes for at in n.attribute if at.name == ATTRIBUTE]

    assert attrs(a) == attrs(b) and len(attrs(a)) == 2
    loaded = load_window_samples(window_sample_path(a))
    assert sorted(loaded) == ["0", "2"] and loaded["2"].positions == 32


def test_cli_sampled_lockstep_reads_the_sidecar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from accelflow.cli import main

    model = nn.Sequential(_model(), nn.ReLU(), nn.Conv2d(6, 4, 3, padding=1)).eval()
    stats = measure_sparsity(model, [torch.randn(4, 1, 8, 8)], window_positions=64)
    path = export_sparsity_onnx(model, (1, 8, 8), stats, tmp_path / "net.onnx")
    args = ["dataflow", str(path), "--device", "zc706", "--json", "--lockstep"]
    assert main([*args, "sampled"]) == 0
    sampled = json.loads(capsys.readouterr().out)
    assert main([*args, "mean"]) == 0
    mean = json.loads(capsys.readouterr().out)
    assert any(layer["sparse"] for layer in sampled["layers"])
    assert sampled["throughput_images_per_s"] > 0 and mean["throughput_images_per_s"] > 0
    window_sample_path(path).unlink()
    assert main([*args, "sampled"]) == 2  # no sample: a one-line ConfigError, not a silent fallback
    assert "window" in capsys.readouterr().err
