"""Small plain CNNs for 28x28 images: LeNet-5 and the VGG7 variant used by MetaML.

Both end in a flatten + fully connected stack whose input size depends on the image size, so they take an
``input_size`` argument (square images, pixels) instead of a global pooling: the large first FC layer is
part of what makes these models interesting to map onto hardware.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from accelflow.errors import ConfigError
from accelflow.zoo.layers import init_weights

__all__ = ["LeNet5", "VGG7", "lenet5", "vgg7"]


class LeNet5(nn.Module):
    """LeNet-5 with ReLU and max pooling: conv 6@5x5 (pad 2), pool, conv 16@5x5, pool, fc 120, 84, classes.

    With ``input_size=28`` the flattened feature map is 16x5x5 = 400, as in LeCun et al. 1998 on 32x32.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28) -> None:
        super().__init__()
        # conv1 keeps the size, pool halves it, conv2 (5x5, no padding) takes 4 off, pool halves again
        side = ((input_size // 2) - 4) // 2
        if side < 1:
            raise ConfigError(f"lenet5 needs input_size >= 12 pixels, got {input_size}")
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(in_channels, 6, kernel_size=5, padding=2),
                relu1=nn.ReLU(),
                pool1=nn.MaxPool2d(2),
                conv2=nn.Conv2d(6, 16, kernel_size=5),
                relu2=nn.ReLU(),
                pool2=nn.MaxPool2d(2),
            )
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                fc1=nn.Linear(16 * side * side, 120),
                relu3=nn.ReLU(),
                fc2=nn.Linear(120, 84),
                relu4=nn.ReLU(),
                fc3=nn.Linear(84, num_classes),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


class VGG7(nn.Module):
    """VGG7-style CNN: 3 x (two conv3x3-BN-ReLU, maxpool 2) with 64/128/256 channels, fc 256, fc classes.

    The flattened size is ``256 * (input_size // 8) ** 2`` (2304 at 28x28, 4096 at 32x32); pass the image side
    as ``input_size`` for other resolutions (any ``input_size >= 8`` works).
    """

    def __init__(
        self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28, hidden: int = 256
    ) -> None:
        super().__init__()
        side = input_size // 8
        if side < 1:
            raise ConfigError(f"vgg7 needs input_size >= 8 pixels, got {input_size}")
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        c_in = in_channels
        for stage, width in enumerate((64, 128, 256), start=1):
            for j in (1, 2):
                name = f"{stage}_{j}"
                layers[f"conv{name}"] = nn.Conv2d(c_in, width, kernel_size=3, padding=1, bias=False)
                layers[f"bn{name}"] = nn.BatchNorm2d(width)
                layers[f"relu{name}"] = nn.ReLU()
                c_in = width
            layers[f"pool{stage}"] = nn.MaxPool2d(2)
        self.features = nn.Sequential(layers)
        self.classifier = nn.Sequential(
            OrderedDict(
                fc1=nn.Linear(256 * side * side, hidden),
                relu_fc1=nn.ReLU(),
                fc2=nn.Linear(hidden, num_classes),
            )
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def lenet5(*, num_classes: int = 10, in_channels: int = 1, input_size: int = 28) -> LeNet5:
    """LeNet-5 for 1x28x28 Fashion-MNIST."""
    return LeNet5(num_classes=num_classes, in_channels=in_channels, input_size=input_size)


def vgg7(*, num_classes: int = 10, in_channels: int = 1, input_size: int = 28, hidden: int = 256) -> VGG7:
    """VGG7 (MetaML variant) for 1x28x28 Fashion-MNIST."""
    return VGG7(num_classes=num_classes, in_channels=in_channels, input_size=input_size, hidden=hidden)
