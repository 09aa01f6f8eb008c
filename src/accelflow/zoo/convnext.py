"""ConvNeXt (Liu et al., CVPR 2022): ConvNeXt-T in torchvision's layout, and a tiny variant for 28x28 images.

A block is a 7x7 depthwise conv, then in channels-last layout (a ``permute``) a LayerNorm, an inverted MLP
(linear to 4x the width, GELU, linear back) and a learned per-channel layer scale, then back to
channels-first and a residual sum. Stem and downsampling layers are patchify convs (4x4/4 and 2x2/2) next to
a channels-first LayerNorm, itself written as permute - LayerNorm - permute. ConvNeXt-T (widths
96/192/384/768, depths 3/3/9/3) has 28.6 M parameters and 4.46 G MACs at 224x224 (published: 4.5 G).

Stochastic depth is a training regulariser that is the identity at inference; it is left out, so every
model here is its inference graph. Every GELU is its own module.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from accelflow.errors import ConfigError

__all__ = ["ChannelsFirstLayerNorm", "ConvNeXtBlock", "ConvNeXt", "convnext_tiny", "convnext_nano"]

_LN_EPS = 1e-6


class ChannelsFirstLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of an (N, C, H, W) tensor: permute to channels-last, normalise, permute back."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, eps=_LN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """depthwise 7x7 conv, permute to (N, H, W, C), LayerNorm, linear C -> 4C, GELU, linear 4C -> C, times the
    layer scale, permute back, plus the input."""

    def __init__(self, dim: int, layer_scale: float = 1e-6, kernel_size: int = 7) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=_LN_EPS)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.gelu = nn.GELU()
        self.fc2 = nn.Linear(4 * dim, dim)
        self.layer_scale = nn.Parameter(torch.full((dim,), float(layer_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.fc2(self.gelu(self.fc1(self.norm(y))))
        return x + (y * self.layer_scale).permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    """Patchify stem (conv ``stem_patch`` x ``stem_patch`` with that stride, LayerNorm), stages of
    :class:`ConvNeXtBlock` separated by LayerNorm + conv 2x2/2 downsampling, global average pooling,
    LayerNorm, fc."""

    def __init__(self, dims: Sequence[int] = (96, 192, 384, 768), depths: Sequence[int] = (3, 3, 9, 3),
                 num_classes: int = 1000, in_channels: int = 3, stem_patch: int = 4,
                 layer_scale: float = 1e-6) -> None:
        super().__init__()
        if len(dims) != len(depths) or not dims or min(depths) < 1:
            raise ConfigError(f"ConvNeXt needs one depth >= 1 per stage width, got depths {list(depths)} "
                              f"for widths {list(dims)}")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, dims[0], stem_patch, stride=stem_patch),
                                  ChannelsFirstLayerNorm(dims[0]))
        stages: list[nn.Module] = []
        for i, (dim, depth) in enumerate(zip(dims, depths, strict=True)):
            layers: list[nn.Module] = []
            if i > 0:
                layers += [ChannelsFirstLayerNorm(dims[i - 1]), nn.Conv2d(dims[i - 1], dim, 2, stride=2)]
            layers += [ConvNeXtBlock(dim, layer_scale) for _ in range(depth)]
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.norm = nn.LayerNorm(dims[-1], eps=_LN_EPS)
        self.fc = nn.Linear(dims[-1], num_classes)
        self._init()

    def _init(self) -> None:
        # As the reference implementation: truncated normal (std 0.02) convs and linears, zero biases.
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.norm(x))


def convnext_tiny(*, num_classes: int = 1000, in_channels: int = 3) -> ConvNeXt:
    """ConvNeXt-T for ImageNet: widths 96/192/384/768, depths 3/3/9/3; 4.46 G MACs, 28.6 M parameters
    at 3x224x224."""
    return ConvNeXt(num_classes=num_classes, in_channels=in_channels)


def convnext_nano(*, num_classes: int = 10, in_channels: int = 1, dims: Sequence[int] = (32, 64, 128),
                  depths: Sequence[int] = (2, 2, 2), stem_patch: int = 2, layer_scale: float = 0.1) -> ConvNeXt:
    """A ConvNeXt for 1x28x28 images: 2x2/2 stem, three stages of widths 32/64/128 with two blocks each;
    spatial 28 -> 14 -> 7 -> 3; 10.5 M MACs, 0.41 M parameters. Its layer scale starts at 0.1, not 1e-6: the
    small net trains from scratch in a few epochs."""
    return ConvNeXt(dims=tuple(dims), depths=tuple(depths), num_classes=num_classes, in_channels=in_channels,
                    stem_patch=stem_patch, layer_scale=layer_scale)
