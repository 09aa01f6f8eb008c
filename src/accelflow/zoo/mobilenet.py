"""MobileNetV2 and MobileNetV3 (torchvision layout) plus tiny variants that train on Fashion-MNIST on a CPU.

The ImageNet configurations reproduce torchvision's channel tables, so MAC counts at 224x224 match the
published 300 M (V2), 217 M (V3-Large) and 56 M (V3-Small). The tiny variants keep the block structure
(inverted residuals, depthwise convs, SE, hard-swish) but use a stride-1 stem, fewer and narrower blocks
and a 28x28 single-channel input.

Differences from torchvision that the importers need: every activation is its own module, the SE block
pools with ``nn.AdaptiveAvgPool2d(1)`` and scales with ``x * s``, residual sums are ``out + x``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from accelflow.errors import ConfigError
from accelflow.zoo.layers import init_weights

__all__ = [
    "MobileNetV2",
    "MobileNetV3",
    "BlockV3",
    "SqueezeExcitation",
    "make_divisible",
    "mobilenet_v2",
    "mobilenet_v2_tiny",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "mobilenet_v3_tiny",
]

# BatchNorm settings torchvision uses for MobileNetV3 (TensorFlow's defaults).
_V3_BN_EPS = 1e-3
_V3_BN_MOMENTUM = 0.01


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to the nearest multiple of ``divisor`` without going below 90% of ``value``."""
    new_value = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


def _conv_bn_act(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    groups: int = 1,
    activation: type[nn.Module] | None = nn.ReLU6,
    v3_bn: bool = False,
) -> nn.Sequential:
    """Conv (no bias, 'same' padding) -> BN -> optional activation, as torchvision's Conv2dNormActivation."""
    bn = (
        nn.BatchNorm2d(out_channels, eps=_V3_BN_EPS, momentum=_V3_BN_MOMENTUM)
        if v3_bn
        else nn.BatchNorm2d(out_channels)
    )
    layers: list[nn.Module] = [
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=(kernel_size - 1) // 2,
            groups=groups,
            bias=False,
        ),
        bn,
    ]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


# ----------------------------------------------------------------------------------------------- V2


@dataclass(frozen=True)
class StageV2:
    """One row of the MobileNetV2 table: expansion ``t``, output channels ``c``, repeats ``n``, stride ``s``."""

    t: int
    c: int
    n: int
    s: int


IMAGENET_V2: tuple[StageV2, ...] = (
    StageV2(1, 16, 1, 1),
    StageV2(6, 24, 2, 2),
    StageV2(6, 32, 3, 2),
    StageV2(6, 64, 4, 2),
    StageV2(6, 96, 3, 1),
    StageV2(6, 160, 3, 2),
    StageV2(6, 320, 1, 1),
)

# Narrow early stages: at 28x28 with a stride-1 stem, wide expanded activations (not MACs) dominate CPU
# training time, so channels stay at 8-16 until the first downsampling.
TINY_V2: tuple[StageV2, ...] = (
    StageV2(1, 8, 1, 1),
    StageV2(4, 16, 1, 2),
    StageV2(4, 24, 2, 2),
    StageV2(4, 48, 2, 2),
)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand-BN-ReLU6 (skipped if t == 1), 3x3 depthwise-BN-ReLU6, 1x1 project-BN;
    residual sum when stride is 1 and channels are unchanged.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = int(round(in_channels * expand_ratio))
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(_conv_bn_act(in_channels, hidden, 1))
        layers.append(_conv_bn_act(hidden, hidden, 3, stride=stride, groups=hidden))
        layers.append(_conv_bn_act(hidden, out_channels, 1, activation=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.use_residual:
            out = out + x
        return out


class MobileNetV2(nn.Module):
    """MobileNetV2 (Sandler et al. 2018): stem conv3x3-BN-ReLU6, inverted residual stages, 1x1 conv to
    ``last_channel``, global average pooling, dropout, fc.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        width_mult: float = 1.0,
        stages: Sequence[StageV2] = IMAGENET_V2,
        stem_channels: int = 32,
        stem_stride: int = 2,
        last_channel: int = 1280,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if width_mult <= 0:
            raise ConfigError(f"width_mult must be > 0, got {width_mult}")
        channels = make_divisible(stem_channels * width_mult)
        self.last_channel = make_divisible(last_channel * max(1.0, width_mult))
        features: list[nn.Module] = [_conv_bn_act(in_channels, channels, 3, stride=stem_stride)]
        for stage in stages:
            out_channels = make_divisible(stage.c * width_mult)
            for i in range(stage.n):
                stride = stage.s if i == 0 else 1
                features.append(InvertedResidual(channels, out_channels, stride, stage.t))
                channels = out_channels
        features.append(_conv_bn_act(channels, self.last_channel, 1))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(self.avgpool(x), 1)
        return self.classifier(x)


# ----------------------------------------------------------------------------------------------- V3


@dataclass(frozen=True)
class BlockConfigV3:
    """One MobileNetV3 bneck row (channels before width scaling); ``hswish`` selects Hardswish over ReLU."""

    in_channels: int
    kernel: int
    expanded: int
    out_channels: int
    use_se: bool
    hswish: bool
    stride: int


def _b(i: int, k: int, e: int, o: int, se: bool, act: str, s: int) -> BlockConfigV3:
    return BlockConfigV3(i, k, e, o, se, act == "HS", s)


LARGE_V3: tuple[BlockConfigV3, ...] = (
    _b(16, 3, 16, 16, False, "RE", 1),
    _b(16, 3, 64, 24, False, "RE", 2),
    _b(24, 3, 72, 24, False, "RE", 1),
    _b(24, 5, 72, 40, True, "RE", 2),
    _b(40, 5, 120, 40, True, "RE", 1),
    _b(40, 5, 120, 40, True, "RE", 1),
    _b(40, 3, 240, 80, False, "HS", 2),
    _b(80, 3, 200, 80, False, "HS", 1),
    _b(80, 3, 184, 80, False, "HS", 1),
    _b(80, 3, 184, 80, False, "HS", 1),
    _b(80, 3, 480, 112, True, "HS", 1),
    _b(112, 3, 672, 112, True, "HS", 1),
    _b(112, 5, 672, 160, True, "HS", 2),
    _b(160, 5, 960, 160, True, "HS", 1),
    _b(160, 5, 960, 160, True, "HS", 1),
)

SMALL_V3: tuple[BlockConfigV3, ...] = (
    _b(16, 3, 16, 16, True, "RE", 2),
    _b(16, 3, 72, 24, False, "RE", 2),
    _b(24, 3, 88, 24, False, "RE", 1),
    _b(24, 5, 96, 40, True, "HS", 2),
    _b(40, 5, 240, 40, True, "HS", 1),
    _b(40, 5, 240, 40, True, "HS", 1),
    _b(40, 5, 120, 48, True, "HS", 1),
    _b(48, 5, 144, 48, True, "HS", 1),
    _b(48, 5, 288, 96, True, "HS", 2),
    _b(96, 5, 576, 96, True, "HS", 1),
    _b(96, 5, 576, 96, True, "HS", 1),
)

TINY_V3: tuple[BlockConfigV3, ...] = (
    _b(16, 3, 16, 16, True, "RE", 2),
    _b(16, 3, 64, 24, False, "RE", 2),
    _b(24, 3, 72, 24, False, "RE", 1),
    _b(24, 5, 96, 40, True, "HS", 2),
    _b(40, 5, 160, 40, True, "HS", 1),
)


class SqueezeExcitation(nn.Module):
    """SE: global average pool, 1x1 conv reduce-ReLU, 1x1 conv expand-Hardsigmoid, multiply the input."""

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.hardsigmoid = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.hardsigmoid(self.fc2(self.relu(self.fc1(self.avgpool(x)))))
        return x * s


class BlockV3(nn.Module):
    """MobileNetV3 bneck: optional 1x1 expand, kxk depthwise, optional SE, 1x1 project; residual if possible."""

    def __init__(self, cfg: BlockConfigV3, width_mult: float = 1.0) -> None:
        super().__init__()
        in_channels = make_divisible(cfg.in_channels * width_mult)
        expanded = make_divisible(cfg.expanded * width_mult)
        out_channels = make_divisible(cfg.out_channels * width_mult)
        act: type[nn.Module] = nn.Hardswish if cfg.hswish else nn.ReLU
        self.use_residual = cfg.stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expanded != in_channels:
            layers.append(_conv_bn_act(in_channels, expanded, 1, activation=act, v3_bn=True))
        layers.append(
            _conv_bn_act(
                expanded, expanded, cfg.kernel, stride=cfg.stride, groups=expanded, activation=act, v3_bn=True
            )
        )
        if cfg.use_se:
            layers.append(SqueezeExcitation(expanded, make_divisible(expanded // 4)))
        layers.append(_conv_bn_act(expanded, out_channels, 1, activation=None, v3_bn=True))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.use_residual:
            out = out + x
        return out


class MobileNetV3(nn.Module):
    """MobileNetV3 (Howard et al. 2019): stem conv3x3-BN-Hardswish, bneck blocks, 1x1 conv to 6x the last
    block's channels, global average pooling, fc ``last_channel``-Hardswish-dropout-fc.
    """

    def __init__(
        self,
        blocks: Sequence[BlockConfigV3],
        last_channel: int,
        num_classes: int = 1000,
        in_channels: int = 3,
        width_mult: float = 1.0,
        stem_stride: int = 2,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if width_mult <= 0:
            raise ConfigError(f"width_mult must be > 0, got {width_mult}")
        if not blocks:
            raise ConfigError("MobileNetV3 needs at least one block")
        stem = make_divisible(blocks[0].in_channels * width_mult)
        features: list[nn.Module] = [
            _conv_bn_act(in_channels, stem, 3, stride=stem_stride, activation=nn.Hardswish, v3_bn=True)
        ]
        features.extend(BlockV3(cfg, width_mult) for cfg in blocks)
        last_in = make_divisible(blocks[-1].out_channels * width_mult)
        last_conv = 6 * last_in
        features.append(_conv_bn_act(last_in, last_conv, 1, activation=nn.Hardswish, v3_bn=True))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.last_channel = make_divisible(last_channel * width_mult)
        self.classifier = nn.Sequential(
            nn.Linear(last_conv, self.last_channel),
            nn.Hardswish(),
            nn.Dropout(p=dropout),
            nn.Linear(self.last_channel, num_classes),
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(self.avgpool(x), 1)
        return self.classifier(x)


# ------------------------------------------------------------------------------------------ builders


def mobilenet_v2(*, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0) -> MobileNetV2:
    """MobileNetV2 for ImageNet; 300 M MACs at 3x224x224 with ``width_mult=1.0``."""
    return MobileNetV2(num_classes=num_classes, in_channels=in_channels, width_mult=width_mult)


def mobilenet_v2_tiny(*, num_classes: int = 10, in_channels: int = 1, width_mult: float = 1.0) -> MobileNetV2:
    """Tiny MobileNetV2 for 1x28x28: stride-1 8-channel stem, 6 blocks (t <= 4, up to 48 channels),
    last conv 256; spatial 28 -> 14 -> 7 -> 4; 1.8 M MACs, 55 K parameters.
    """
    return MobileNetV2(
        num_classes=num_classes,
        in_channels=in_channels,
        width_mult=width_mult,
        stages=TINY_V2,
        stem_channels=8,
        stem_stride=1,
        last_channel=256,
    )


def mobilenet_v3_large(
    *, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0
) -> MobileNetV3:
    """MobileNetV3-Large for ImageNet; 217 M MACs at 3x224x224."""
    return MobileNetV3(
        LARGE_V3, 1280, num_classes=num_classes, in_channels=in_channels, width_mult=width_mult
    )


def mobilenet_v3_small(
    *, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0
) -> MobileNetV3:
    """MobileNetV3-Small for ImageNet; 56 M MACs at 3x224x224."""
    return MobileNetV3(
        SMALL_V3, 1024, num_classes=num_classes, in_channels=in_channels, width_mult=width_mult
    )


def mobilenet_v3_tiny(*, num_classes: int = 10, in_channels: int = 1, width_mult: float = 1.0) -> MobileNetV3:
    """Tiny MobileNetV3 for 1x28x28: stride-1 stem, the first five Small-style blocks (SE and hard-swish
    kept), last conv 240, classifier hidden width 256; spatial 28 -> 14 -> 7 -> 4; 1.4 M MACs, 127 K parameters.
    """
    return MobileNetV3(
        TINY_V3, 256, num_classes=num_classes, in_channels=in_channels, width_mult=width_mult, stem_stride=1
    )
