"""Fully connected networks: the hls4ml jet-tagging DNN, a small MLP for sklearn's 8x8 digits and an MLP for
28x28 images (Fashion-MNIST)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from accelflow.errors import ConfigError

__all__ = ["MLP", "jet_dnn", "digits_mlp", "fmnist_mlp"]


class MLP(nn.Module):
    """Linear layers with a ReLU between consecutive ones; the last layer outputs logits (no softmax).

    ``widths`` lists every layer width including input and output, e.g. ``(16, 64, 32, 32, 5)``. Modules are
    named ``fc1, relu1, fc2, relu2, ...`` inside ``self.layers`` so per-layer settings can address them.
    Input is ``(batch, widths[0])``; with ``flatten=True`` a leading ``flatten`` module accepts images
    ``(batch, C, H, W)`` with ``C*H*W == widths[0]``.
    """

    def __init__(self, widths: Sequence[int], flatten: bool = False) -> None:
        super().__init__()
        if len(widths) < 2 or any(int(w) < 1 for w in widths):
            raise ConfigError(
                f"MLP widths must list at least input and output sizes >= 1, got {list(widths)}"
            )
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        if flatten:
            layers["flatten"] = nn.Flatten()
        for i, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:], strict=True), start=1):
            layers[f"fc{i}"] = nn.Linear(int(w_in), int(w_out))
            if i < len(widths) - 1:
                layers[f"relu{i}"] = nn.ReLU()
        self.widths = tuple(int(w) for w in widths)
        self.layers = nn.Sequential(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def jet_dnn(*, num_classes: int = 5, in_features: int = 16, hidden: Sequence[int] = (64, 32, 32)) -> MLP:
    """hls4ml's jet-substructure tagging DNN (Duarte et al. 2018): 16-64-32-32-5, 4,256 weights."""
    return MLP((in_features, *hidden, num_classes))


def digits_mlp(*, num_classes: int = 10, in_features: int = 64, hidden: Sequence[int] = (64, 32)) -> MLP:
    """MLP 64-64-32-10 for sklearn's flattened 8x8 handwritten digits."""
    return MLP((in_features, *hidden, num_classes))


def fmnist_mlp(
    *, num_classes: int = 10, in_channels: int = 1, input_size: int = 28, hidden: Sequence[int] = (128, 64)
) -> MLP:
    """MLP 784-128-64-10 on flattened 28x28 images (Fashion-MNIST), 109,184 weights."""
    return MLP((in_channels * input_size * input_size, *hidden, num_classes), flatten=True)
