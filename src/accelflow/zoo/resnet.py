"""Residual networks: CIFAR-style ResNet-8/20 (He et al. 2016, section 4.2) and ImageNet ResNet-18/50.

The ImageNet models follow torchvision's layout (ResNet v1.5: the stride of a bottleneck sits on its 3x3
conv), so parameter and MAC counts match the published 1.82 G / 4.1 G MACs at 224x224. Shortcuts that change
shape are 1x1 conv + BN (option B). The residual sum is written ``out + identity`` and every ReLU is its own
module so the graph importers and per-layer thresholds see one node per activation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from accelflow.errors import ConfigError
from accelflow.zoo.layers import init_weights

__all__ = ["BasicBlock", "Bottleneck", "CifarResNet", "ResNet", "resnet8", "resnet20", "resnet18", "resnet50"]


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus shortcut, then ReLU; ``stride`` applies to the first conv."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = _shortcut(in_channels, channels, stride)
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = self.shortcut(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + identity
        return self.relu2(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride, v1.5), 1x1 expand by 4, each with BN; shortcut add, ReLU."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(channels, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = _shortcut(in_channels, out_channels, stride)
        self.relu3 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = self.shortcut(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out = out + identity
        return self.relu3(out)


def _stage(
    block: type[BasicBlock | Bottleneck], in_channels: int, channels: int, blocks: int, stride: int
) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for i in range(blocks):
        layers.append(block(in_channels, channels, stride if i == 0 else 1))
        in_channels = channels * block.expansion
    return nn.Sequential(*layers), in_channels


class CifarResNet(nn.Module):
    """ResNet for small images: conv3x3 16-BN-ReLU, three stages of ``n`` basic blocks (16/32/64 channels,
    strides 1/2/2), global average pooling, fc. Depth is ``6 n + 2``; works at any input size >= 4 pixels.
    """

    def __init__(self, blocks_per_stage: int, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        if blocks_per_stage < 1:
            raise ConfigError(f"CIFAR ResNet needs >= 1 block per stage, got {blocks_per_stage}")
        self.conv1 = nn.Conv2d(in_channels, 16, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu1 = nn.ReLU()
        channels = 16
        self.layer1, channels = _stage(BasicBlock, channels, 16, blocks_per_stage, 1)
        self.layer2, channels = _stage(BasicBlock, channels, 32, blocks_per_stage, 2)
        self.layer3, channels = _stage(BasicBlock, channels, 64, blocks_per_stage, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


class ResNet(nn.Module):
    """ImageNet ResNet (torchvision layout): conv7x7/2-BN-ReLU, maxpool 3x3/2, four stages with
    64/128/256/512 base channels (strides 1/2/2/2), global average pooling, fc.
    """

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: Sequence[int],
        num_classes: int = 1000,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if len(layers) != 4:
            raise ConfigError(f"ImageNet ResNet needs 4 stage depths, got {list(layers)}")
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu1 = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = 64
        self.layer1, channels = _stage(block, channels, 64, layers[0], 1)
        self.layer2, channels = _stage(block, channels, 128, layers[1], 2)
        self.layer3, channels = _stage(block, channels, 256, layers[2], 2)
        self.layer4, channels = _stage(block, channels, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu1(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def resnet8(*, num_classes: int = 10, in_channels: int = 1) -> CifarResNet:
    """ResNet-8 (one basic block per stage, as in MLPerf Tiny's image classification model)."""
    return CifarResNet(1, num_classes=num_classes, in_channels=in_channels)


def resnet20(*, num_classes: int = 10, in_channels: int = 1) -> CifarResNet:
    """ResNet-20 (three basic blocks per stage, He et al. 2016)."""
    return CifarResNet(3, num_classes=num_classes, in_channels=in_channels)


def resnet18(*, num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNet-18: basic blocks [2, 2, 2, 2]; 1.82 G MACs at 3x224x224."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes=num_classes, in_channels=in_channels)


def resnet50(*, num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNet-50 v1.5: bottleneck blocks [3, 4, 6, 3]; 4.1 G MACs at 3x224x224."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes=num_classes, in_channels=in_channels)
