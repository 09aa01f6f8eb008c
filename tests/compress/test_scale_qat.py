"""Width scaling (rebuild, warm start, auto-scaling) and quantisation-aware fine-tuning."""

import numpy as np
import pytest
import torch
from torch import nn

from accelflow.compress import (
    CompressError,
    QATConfig,
    ScaleConfig,
    auto_scale,
    layer_widths,
    prunable_layers,
    prune_magnitude,
    quantize_aware_train,
    scale_widths,
)
from accelflow.data import Splits
from accelflow.hls import FixedPoint
from accelflow.train import TrainRecipe
from accelflow.zoo import create


@pytest.mark.parametrize(
    "name,shape,kw",
    [("digits_mlp", (64,), {}), ("lenet5", (1, 28, 28), {}), ("vgg7", (1, 16, 16), {"input_size": 16})],
)
def test_scale_widths_rebuilds(name: str, shape: tuple[int, ...], kw: dict[str, int]) -> None:
    model = create(name, **kw)
    x = torch.as_tensor(np.random.default_rng(0).random((3, *shape), dtype=np.float32))
    same = scale_widths(model, 1.0)
    with torch.no_grad():
        torch.testing.assert_close(same(x), model(x))  # factor 1 keeps every channel, in order
    half = scale_widths(model, 0.5)
    full, narrow = layer_widths(model), layer_widths(half)
    assert narrow[-1] == full[-1]
    assert narrow[:-1] == tuple(max(1, round(w * 0.5)) for w in full[:-1])
    assert half(x).shape == model(x).shape


def test_scale_keeps_strongest_channels_of_a_pruned_model() -> None:
    model = create("digits_mlp")
    pruned = prune_magnitude(model, 0.5, structured=True)  # half the hidden neurons are exactly zero
    x = torch.as_tensor(np.random.default_rng(1).random((4, 64), dtype=np.float32))
    with torch.no_grad():
        torch.testing.assert_close(scale_widths(pruned, 0.5)(x), pruned(x))  # dropping dead neurons is exact


def test_unsupported_models_are_refused() -> None:
    with pytest.raises(CompressError, match="chain"):
        scale_widths(create("resnet8"), 0.5)


def test_scale_widths_on_a_keras_style_onnx_model(tmp_path) -> None:
    """An ONNX file with TensorFlow-'SAME' stride-2 convs and pool (one more pad at the end), back in
    PyTorch (PadConv2d / PadMaxPool2d, the global pool as torch.mean): scaled like a zoo chain, unequal
    pads kept, factor 1 exact."""
    from accelflow.frontends import export_onnx, load_torch_model
    from accelflow.zoo import PadConv2d, PadMaxPool2d

    torch.manual_seed(0)
    net = nn.Sequential(PadConv2d(1, 8, 3, (0, 0, 1, 1), stride=2), nn.ReLU(), PadMaxPool2d(3, 2, (0, 0, 1, 1)),
                        PadConv2d(8, 12, 3, (1, 1, 2, 2)), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(12, 10))
    model = load_torch_model(str(export_onnx(net.eval(), (1, 28, 28), tmp_path / "k.onnx"))).module
    x = torch.as_tensor(np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32))
    with torch.no_grad():
        torch.testing.assert_close(scale_widths(model, 1.0)(x), net(x), rtol=1e-5, atol=1e-5)
        half = scale_widths(model, 0.5)
        assert layer_widths(half) == (4, 6, 10) and half(x).shape == (3, 10)
    assert sorted(m.pads for m in half.modules() if isinstance(m, PadConv2d)) == [(0, 0, 1, 1), (1, 1, 2, 2)]


def test_scale_widths_names_what_it_cannot_follow() -> None:
    class ChannelMean(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.fc = nn.Linear(36, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.conv(x).mean(1).flatten(1))

    with pytest.raises(CompressError, match="unsupported function mean at node mean .*spatial axes only"):
        scale_widths(ChannelMean(), 0.5)


def test_auto_scale_stepwise(digits: tuple[nn.Module, Splits]) -> None:
    model, splits = digits
    cfg = ScaleConfig(tolerance_relative=0.02, retrain=TrainRecipe(epochs=3, batch_size=64, lr=3e-3))
    res = auto_scale(model, splits, cfg)
    factors = [t.factor for t in res.trials]
    assert factors == [1 - i / 8 for i in range(1, len(factors) + 1)]
    fails = [not t.accepted for t in res.trials]
    if len(factors) < 7:  # stopped early: the last three tries failed
        assert all(fails[-3:])
    accepted = [t for t in res.trials if t.accepted]
    if accepted:
        assert res.factor == min(t.factor for t in accepted)
        assert res.accuracy >= res.reference_accuracy * (1 - cfg.tolerance_relative)
        assert res.widths == layer_widths(res.model)


def test_qat_keeps_grid_and_zeros(digits: tuple[nn.Module, Splits]) -> None:
    model, splits = digits
    pruned = prune_magnitude(model, 0.6)
    wt = FixedPoint(6, 1)
    res = quantize_aware_train(
        pruned, splits, QATConfig(weight=wt, finetune=TrainRecipe(epochs=2, batch_size=64))
    )
    for (_, a), (_, b) in zip(prunable_layers(pruned), prunable_layers(res.model), strict=True):
        w = b.weight.detach().double().numpy()
        np.testing.assert_array_equal(w, wt.quantize(w))  # on the ap_fixed<6,1> grid
        assert torch.all(b.weight[a.weight == 0] == 0)  # pruned weights stay pruned
    assert res.accuracy > 0.8


def test_weight_types_for_bits_cover_each_layer(digits: tuple[nn.Module, Splits]) -> None:
    from accelflow.compress import weight_types_for_bits
    from accelflow.hls import RoundingMode

    model, splits = digits
    types = weight_types_for_bits(model, 4)
    layers = dict(prunable_layers(model))
    assert set(types) == set(layers)
    for name, fp in types.items():
        wmax = float(layers[name].weight.detach().abs().max())
        assert fp.width == 4 and fp.rounding is RoundingMode.RND
        assert fp.max_value + fp.lsb > wmax and 2.0 ** (fp.integer - 2) <= wmax  # just enough integer bits
    only = weight_types_for_bits(model, {"layers.fc1": 3})
    assert set(only) == {"layers.fc1"} and only["layers.fc1"].width == 3
    res = quantize_aware_train(
        model, splits, QATConfig(weight=types, activation=None, finetune=TrainRecipe(epochs=1, batch_size=64))
    )
    for name, mod in prunable_layers(res.model):
        w = mod.weight.detach().double().numpy()
        codes = w / types[name].lsb
        np.testing.assert_array_equal(codes, np.round(codes))  # on the 4-bit grid
        assert np.abs(codes).max() <= 2 ** (types[name].width - 1)
