"""Small real PyTorch models of the families users bring (ConvNeXt, DenseNet, ShuffleNetV2, RepVGG, SE with
hard-swish, a decoder, a ViT), written as their reference implementations spell them, for the dataflow tests.

``NETS`` maps a name to (constructor, input shape without batch).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def _seeded_bn(module: nn.Module) -> None:
    """Give every BatchNorm non-trivial statistics (a fresh one would be folded to an identity)."""
    g = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


class ConvNeXtBlock(nn.Module):
    """torchvision/timm ConvNeXt block: depthwise 7x7, LayerNorm and MLP channels-last, layer scale."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.pwconv1 = nn.Linear(c, 4 * c)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * c, c)
        self.gamma = nn.Parameter(torch.linspace(0.5, 1.5, c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + (self.gamma * y).permute(0, 3, 1, 2)


class LayerNorm2d(nn.Module):
    """timm's channels-first LayerNorm, spelled out over dim 1 (ConvNeXt's stem and downsampling layers)."""

    def __init__(self, c: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.linspace(0.5, 1.5, c))
        self.bias = nn.Parameter(torch.linspace(-0.1, 0.1, c))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class ConvNeXtTiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 16, 4, stride=4)
        self.stem_norm = LayerNorm2d(16)
        self.block = ConvNeXtBlock(16)
        self.down_norm = LayerNorm2d(16)
        self.down = nn.Conv2d(16, 32, 2, stride=2)
        self.block2 = ConvNeXtBlock(32)
        self.head_norm = nn.LayerNorm(32)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block(self.stem_norm(self.stem(x)))
        x = self.block2(self.down(self.down_norm(x)))
        return self.fc(self.head_norm(x.mean((-2, -1))))


class DenseLayer(nn.Module):
    """torchvision DenseNet layer: BN-ReLU-conv1x1-BN-ReLU-conv3x3 on the concatenation of all earlier maps."""

    def __init__(self, c: int, growth: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(c)
        self.conv1 = nn.Conv2d(c, 4 * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = self.conv1(F.relu(self.norm1(torch.cat(feats, 1))))
        return self.conv2(F.relu(self.norm2(x)))


class DenseNetTiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv0 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.layers = nn.ModuleList([DenseLayer(16 + 8 * i, 8) for i in range(3)])
        self.norm5 = nn.BatchNorm2d(40)
        self.trans = nn.Conv2d(40, 16, 1, bias=False)
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(16, 10)
        _seeded_bn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [self.conv0(x)]
        for layer in self.layers:
            feats.append(layer(feats))
        x = self.pool(self.trans(F.relu(self.norm5(torch.cat(feats, 1)))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    b, c, h, w = x.shape
    x = x.view(b, groups, c // groups, h, w).transpose(1, 2).contiguous()
    return x.view(b, c, h, w)


class ShuffleUnit(nn.Module):
    """torchvision ShuffleNetV2 unit (stride 1): channel split, one branch convolved, concat, shuffle."""

    def __init__(self, c: int) -> None:
        super().__init__()
        b = c // 2
        self.branch2 = nn.Sequential(
            nn.Conv2d(b, b, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True),
            nn.Conv2d(b, b, 3, padding=1, groups=b, bias=False), nn.BatchNorm2d(b),
            nn.Conv2d(b, b, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)
        return channel_shuffle(torch.cat((x1, self.branch2(x2)), 1), 2)


class ShuffleNetTiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.units = nn.Sequential(ShuffleUnit(16), ShuffleUnit(16))
        self.fc = nn.Linear(16, 10)
        _seeded_bn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.units(self.conv1(x)).mean([2, 3]))


class RepVGGBlock(nn.Module):
    """RepVGG training-time block: 3x3 conv-BN + 1x1 conv-BN + identity BN, summed, ReLU."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.dense = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        self.one = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))
        self.identity = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.dense(x) + self.one(x) + self.identity(x))


class RepVGGTiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.blocks = nn.Sequential(RepVGGBlock(16), RepVGGBlock(16))
        self.fc = nn.Linear(16, 10)
        _seeded_bn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1), 1))


class SEHardswishNet(nn.Module):
    """MobileNetV3-style block (hard-swish, SE with hard-sigmoid) and the other activations users bring:
    LeakyReLU, PReLU, ELU, clamp, and a per-channel scale and shift by constants."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.fc1 = nn.Conv2d(16, 4, 1)
        self.fc2 = nn.Conv2d(4, 16, 1)
        self.proj = nn.Conv2d(16, 8, 1)
        self.prelu = nn.PReLU(8)
        self.scale = nn.Parameter(torch.linspace(0.5, 1.5, 8).view(1, 8, 1, 1))
        self.shift = nn.Parameter(torch.linspace(-0.1, 0.1, 8).view(1, 8, 1, 1))
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.hardswish(self.conv(x))
        y = F.hardswish(self.dw(x))
        s = F.hardsigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(y, 1)))))
        y = F.leaky_relu(self.proj(y * s), 0.1) * self.scale + self.shift
        y = torch.clamp(F.elu(self.prelu(y)), -1.0, 4.0)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


class Decoder(nn.Module):
    """An encoder-decoder: strided conv down, transposed conv up, an explicit pad, nearest and bilinear
    upsampling."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.enc = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1)
        self.conv = nn.Conv2d(8, 8, 3)
        self.out = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.up(F.relu(self.enc(x))))
        y = F.relu(self.conv(F.relu(F.pad(y, (1, 1, 1, 1), value=0.5))))
        y = F.interpolate(y, scale_factor=2, mode="nearest")
        return F.interpolate(self.out(y), scale_factor=2, mode="bilinear", align_corners=False)


class TinyViT(nn.Module):
    """A one-layer vision transformer: patch embedding, class token, positional embedding, encoder layer."""

    def __init__(self, d: int = 32, heads: int = 2) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.patch = nn.Conv2d(3, d, 4, stride=4)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.randn(1, 17, d) * 0.02)
        self.enc = nn.TransformerEncoderLayer(d, heads, 2 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        return self.head(self.norm(self.enc(x))[:, 0])


class TokenMLP(nn.Module):
    """A ViT without attention: patch embedding, class token, positional embedding, LayerNorm and a GELU MLP
    per token with a residual, the class token's head (every part has a stage)."""

    def __init__(self, d: int = 32) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.patch = nn.Conv2d(3, d, 4, stride=4)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.randn(1, 17, d) * 0.02)
        self.norm1 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(approximate="tanh"), nn.Linear(2 * d, d))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        x = x + self.mlp(self.norm1(x))
        return self.head(self.norm(x)[:, 0])


NETS: dict[str, tuple[Callable[[], nn.Module], tuple[int, int, int]]] = {
    "convnext": (ConvNeXtTiny, (3, 32, 32)),
    "densenet": (DenseNetTiny, (3, 16, 16)),
    "shufflenet": (ShuffleNetTiny, (3, 16, 16)),
    "repvgg": (RepVGGTiny, (3, 16, 16)),
    "se_hardswish": (SEHardswishNet, (3, 16, 16)),
    "decoder": (Decoder, (3, 16, 16)),
    "token_mlp": (TokenMLP, (3, 16, 16)),
    "vit": (TinyViT, (3, 16, 16)),
}
#: The ones without attention (every one must fold onto a device).
FOLDABLE = tuple(name for name in NETS if name != "vit")
