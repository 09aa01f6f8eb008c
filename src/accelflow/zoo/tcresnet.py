"""TC-ResNet8 (Choi et al., Interspeech 2019): temporal convolutions for keyword spotting.

The MFCC frequency bins are treated as channels and convolved over time only, so the model is a stack of
``Conv1d`` layers: input ``(batch, 40 MFCCs, 101 frames)``. About 66 K parameters and 1.56 M MACs
(the paper's "3.0 M FLOPs" counts multiply and add separately).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from accelflow.zoo.layers import init_weights

__all__ = ["TCResBlock", "TCResNet", "tc_resnet8"]


class TCResBlock(nn.Module):
    """Strided residual block: conv(k)/2-BN-ReLU-conv(k)-BN plus a 1x1/2 conv-BN-ReLU shortcut, add, ReLU."""

    def __init__(self, in_channels: int, channels: int, kernel_size: int = 9, stride: int = 2) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv1d(in_channels, channels, kernel_size, stride=stride, padding=pad, bias=False)
        self.bn1 = nn.BatchNorm1d(channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv1d(channels, channels, kernel_size, padding=pad, bias=False)
        self.bn2 = nn.BatchNorm1d(channels)
        self.shortcut = nn.Sequential(
            nn.Conv1d(in_channels, channels, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm1d(channels),
            nn.ReLU(),
        )
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = self.shortcut(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + identity
        return self.relu2(out)


class TCResNet(nn.Module):
    """First conv (3 taps, 16 channels, no bias), strided residual blocks, global average pool over time, fc."""

    def __init__(
        self,
        num_classes: int = 12,
        in_channels: int = 40,
        channels: Sequence[int] = (24, 32, 48),
        first_channels: int = 16,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(in_channels, first_channels, kernel_size=3, padding=1, bias=False)
        blocks: list[nn.Module] = []
        c_in = first_channels
        for width in channels:
            blocks.append(TCResBlock(c_in, width))
            c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(c_in, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.conv1(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def tc_resnet8(*, num_classes: int = 12, in_channels: int = 40) -> TCResNet:
    """TC-ResNet8 for 12-class Google Speech Commands keyword spotting on 40x101 MFCCs."""
    return TCResNet(num_classes=num_classes, in_channels=in_channels)
