"""ShuffleNetV2 (Ma et al., ECCV 2018), torchvision's x1.0 ImageNet layout.

A unit splits its channels in two (``chunk``), transforms one half with 1x1 conv, 3x3 depthwise conv and
1x1 conv, concatenates and shuffles the channels of the two halves (reshape to (2, C/2), transpose,
reshape back); a downsampling unit feeds the whole input to both branches instead. With stage widths
116/232/464 and a 1024-channel last conv the model has 2.28 M parameters and 146 M MACs at 224x224, the
published figures.

Differences from torchvision that the importers need: every ReLU is its own module, the channel shuffle
never reads the batch size (``unflatten``/``flatten``), global pooling is ``nn.AdaptiveAvgPool2d(1)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from accelflow.errors import ConfigError
from accelflow.zoo.layers import init_weights

__all__ = ["ShuffleUnit", "ShuffleNetV2", "channel_shuffle", "shufflenet_v2"]


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` equal groups: (N, g*c, H, W) -> (N, c*g, H, W) channel-wise."""
    return x.unflatten(1, (groups, -1)).transpose(1, 2).flatten(1, 2)


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1,
             relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
                  groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ShuffleUnit(nn.Module):
    """One ShuffleNetV2 unit. Stride 1: split the channels, transform the second half (1x1-BN-ReLU,
    3x3 depthwise-BN, 1x1-BN-ReLU), concatenate with the first half. Stride 2: both branches read the whole
    input (branch 1: 3x3 depthwise/2-BN, 1x1-BN-ReLU), doubling the channels. Then a channel shuffle."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ConfigError(f"ShuffleNetV2 unit stride must be 1 or 2, got {stride}")
        half = out_channels // 2
        if stride == 1 and in_channels != 2 * half:
            raise ConfigError(f"a stride-1 ShuffleNetV2 unit keeps its width, got {in_channels} -> {out_channels}")
        self.stride = stride
        self.branch1 = (
            nn.Sequential(_conv_bn(in_channels, in_channels, 3, stride, groups=in_channels, relu=False),
                          _conv_bn(in_channels, half, 1))
            if stride == 2 else nn.Identity()
        )
        branch_in = in_channels if stride == 2 else half
        self.branch2 = nn.Sequential(
            _conv_bn(branch_in, half, 1),
            _conv_bn(half, half, 3, stride, groups=half, relu=False),
            _conv_bn(half, half, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """Stem conv3x3/2-BN-ReLU and maxpool 3x3/2, three stages of units (the first of each downsamples),
    1x1 conv-BN-ReLU to ``last_channels``, global average pooling, fc."""

    def __init__(self, stage_repeats: Sequence[int] = (4, 8, 4), stage_channels: Sequence[int] = (116, 232, 464),
                 stem_channels: int = 24, last_channels: int = 1024, num_classes: int = 1000,
                 in_channels: int = 3) -> None:
        super().__init__()
        if len(stage_repeats) != len(stage_channels) or not stage_repeats or min(stage_repeats) < 1:
            raise ConfigError(f"ShuffleNetV2 needs one repeat count >= 1 per stage, got {list(stage_repeats)} "
                              f"for channels {list(stage_channels)}")
        if any(c % 2 for c in stage_channels):
            raise ConfigError(f"ShuffleNetV2 stage channels must be even, got {list(stage_channels)}")
        self.conv1 = _conv_bn(in_channels, stem_channels, 3, stride=2)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = stem_channels
        stages: list[nn.Module] = []
        for repeats, width in zip(stage_repeats, stage_channels, strict=True):
            units = [ShuffleUnit(channels, width, 2)] + [ShuffleUnit(width, width, 1) for _ in range(repeats - 1)]
            stages.append(nn.Sequential(*units))
            channels = width
        self.stages = nn.Sequential(*stages)
        self.conv5 = _conv_bn(channels, last_channels, 1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(last_channels, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.conv5(self.stages(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def shufflenet_v2(*, num_classes: int = 1000, in_channels: int = 3, stage_repeats: Sequence[int] = (4, 8, 4),
                  stage_channels: Sequence[int] = (116, 232, 464), last_channels: int = 1024) -> ShuffleNetV2:
    """ShuffleNetV2 x1.0 for ImageNet: stages of 4/8/4 units with 116/232/464 channels; 146 M MACs and
    2.28 M parameters at 3x224x224. The other published widths: x0.5 48/96/192, x1.5 176/352/704, x2.0
    244/488/976 with 2048 last channels."""
    return ShuffleNetV2(stage_repeats=tuple(stage_repeats), stage_channels=tuple(stage_channels),
                        last_channels=last_channels, num_classes=num_classes, in_channels=in_channels)
