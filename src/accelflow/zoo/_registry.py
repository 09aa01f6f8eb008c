"""The model table: one literal tuple of (spec, builder) entries, checked for duplicate names when built.

A builder is a plain function whose keyword-only parameters are the options ``create`` accepts for that
model (``num_classes``, ``in_channels``, ``width_mult``, ...); their defaults agree with the spec.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import torch
from torch import nn

from accelflow.errors import ConfigError
from accelflow.zoo import cnn, convnext, mlp, mobilenet, resnet, shufflenet, tcresnet, transformer

__all__ = ["ModelFamily", "ZooSpec", "create", "names", "spec", "options"]


class ModelFamily(StrEnum):
    """Architecture family of a zoo model (compares equal to its lower-case string)."""

    MLP = "mlp"
    CNN = "cnn"
    RESNET = "resnet"
    MOBILENET = "mobilenet"
    TCN = "tcn"
    VIT = "vit"  # vision transformers
    LM = "lm"  # language models (token ids in)


@dataclass(frozen=True)
class ZooSpec:
    """What a zoo model expects and what it is known to cost.

    Attributes:
        name: registry key passed to :func:`create`.
        description: one line saying what the model is and where it comes from.
        input_shape: shape of one sample without the batch dimension, e.g. ``(3, 224, 224)``.
        num_classes: default number of output logits (per token for a language-model head: the vocabulary).
        default_dataset: name of the accelflow data set the model is trained on by default, or None.
        reference_macs: published multiply-accumulate count at ``input_shape`` (conv and linear layers, and
            attention's two activation products), or None.
        family: architecture family.
        input_dtype: element type of the input: ``"float32"`` (images, features) or ``"int64"`` (token ids,
            ``input_shape`` is then the sequence length).
    """

    name: str
    description: str
    input_shape: tuple[int, ...]
    num_classes: int
    default_dataset: str | None
    reference_macs: int | None
    family: ModelFamily
    input_dtype: str = "float32"


@dataclass(frozen=True)
class _Entry:
    spec: ZooSpec
    builder: Callable[..., nn.Module]


_F = ModelFamily
_FMNIST = "fashion_mnist"

_ENTRIES: tuple[_Entry, ...] = (
    _Entry(
        ZooSpec("jet_dnn", "hls4ml jet-tagging MLP 16-64-32-32-5 (Duarte et al. 2018)",
                (16,), 5, "synthetic_jets", None, _F.MLP),
        mlp.jet_dnn,
    ),
    _Entry(
        ZooSpec("digits_mlp", "MLP 64-64-32-10 for sklearn's flattened 8x8 digits",
                (64,), 10, "digits", None, _F.MLP),
        mlp.digits_mlp,
    ),
    _Entry(
        ZooSpec("fmnist_mlp", "MLP 784-128-64-10 on flattened 28x28 images",
                (1, 28, 28), 10, _FMNIST, None, _F.MLP),
        mlp.fmnist_mlp,
    ),
    _Entry(
        ZooSpec("lenet5", "LeNet-5 with ReLU and max pooling (LeCun et al. 1998) for 28x28 images",
                (1, 28, 28), 10, _FMNIST, None, _F.CNN),
        cnn.lenet5,
    ),
    _Entry(
        ZooSpec("vgg7", "VGG7-style CNN 64-64-128-128-256-256 with BatchNorm, fc 256 (MetaML variant)",
                (1, 28, 28), 10, _FMNIST, None, _F.CNN),
        cnn.vgg7,
    ),
    _Entry(
        ZooSpec("resnet8", "CIFAR-style ResNet-8, one basic block per stage (MLPerf Tiny)",
                (1, 28, 28), 10, _FMNIST, None, _F.RESNET),
        resnet.resnet8,
    ),
    _Entry(
        ZooSpec("resnet20", "CIFAR-style ResNet-20, three basic blocks per stage (He et al. 2016)",
                (1, 28, 28), 10, _FMNIST, None, _F.RESNET),
        resnet.resnet20,
    ),
    _Entry(
        ZooSpec("resnet18", "ImageNet ResNet-18, torchvision layout",
                (3, 224, 224), 1000, None, 1_814_000_000, _F.RESNET),
        resnet.resnet18,
    ),
    _Entry(
        ZooSpec("resnet50", "ImageNet ResNet-50 v1.5 (stride on the 3x3 conv), torchvision layout",
                (3, 224, 224), 1000, None, 4_110_000_000, _F.RESNET),
        resnet.resnet50,
    ),
    _Entry(
        ZooSpec("mobilenet_v2", "ImageNet MobileNetV2 width 1.0 (Sandler et al. 2018), torchvision layout",
                (3, 224, 224), 1000, None, 300_000_000, _F.MOBILENET),
        mobilenet.mobilenet_v2,
    ),
    _Entry(
        ZooSpec("mobilenet_v3_large", "ImageNet MobileNetV3-Large (Howard et al. 2019), torchvision layout",
                (3, 224, 224), 1000, None, 217_000_000, _F.MOBILENET),
        mobilenet.mobilenet_v3_large,
    ),
    _Entry(
        ZooSpec("mobilenet_v3_small", "ImageNet MobileNetV3-Small (Howard et al. 2019), torchvision layout",
                (3, 224, 224), 1000, None, 56_000_000, _F.MOBILENET),
        mobilenet.mobilenet_v3_small,
    ),
    _Entry(
        ZooSpec("mobilenet_v2_tiny", "Tiny MobileNetV2 for 28x28 images, trains on a CPU in minutes",
                (1, 28, 28), 10, _FMNIST, None, _F.MOBILENET),
        mobilenet.mobilenet_v2_tiny,
    ),
    _Entry(
        ZooSpec("mobilenet_v3_tiny", "Tiny MobileNetV3 (SE, hard-swish) for 28x28 images, trains on a CPU",
                (1, 28, 28), 10, _FMNIST, None, _F.MOBILENET),
        mobilenet.mobilenet_v3_tiny,
    ),
    _Entry(
        ZooSpec("tc_resnet8", "TC-ResNet8 keyword spotting on 40 MFCCs x 101 frames (Choi et al. 2019)",
                (40, 101), 12, None, None, _F.TCN),
        tcresnet.tc_resnet8,
    ),
    _Entry(
        ZooSpec("shufflenet_v2", "ImageNet ShuffleNetV2 x1.0 (Ma et al. 2018), torchvision layout",
                (3, 224, 224), 1000, None, 146_000_000, _F.CNN),
        shufflenet.shufflenet_v2,
    ),
    _Entry(
        ZooSpec("convnext_tiny", "ImageNet ConvNeXt-T (Liu et al. 2022), torchvision layout",
                (3, 224, 224), 1000, None, 4_500_000_000, _F.CNN),
        convnext.convnext_tiny,
    ),
    _Entry(
        ZooSpec("convnext_nano", "Tiny ConvNeXt (3 stages of 32/64/128, 2 blocks each) for 28x28 images",
                (1, 28, 28), 10, _FMNIST, None, _F.CNN),
        convnext.convnext_nano,
    ),
    _Entry(
        ZooSpec("vit_tiny", "ViT-Ti/16 = DeiT-Ti (Touvron et al. 2021): width 192, 12 blocks, 3 heads",
                (3, 224, 224), 1000, None, 1_260_000_000, _F.VIT),
        transformer.vit_tiny,
    ),
    _Entry(
        ZooSpec("vit_nano", "ViT for 28x28 images: 7x7 patches, width 64, 4 blocks, 4 heads; trains on a CPU",
                (1, 28, 28), 10, _FMNIST, None, _F.VIT),
        transformer.vit_nano,
    ),
    _Entry(
        ZooSpec("bert_tiny", "BERT-Tiny encoder (Turc et al. 2019: L=2, H=128, A=2) + classifier, 128 tokens",
                (128,), 2, None, None, _F.LM, "int64"),
        transformer.bert_tiny,
    ),
    _Entry(
        ZooSpec("gpt2_tiny", "GPT-2-style decoder, 2 layers, width 128, 2 heads, GPT-2 vocabulary, 128 tokens",
                (128,), 50257, None, None, _F.LM, "int64"),
        transformer.gpt2_tiny,
    ),
    _Entry(
        ZooSpec("gpt2_small", "GPT-2 small (Radford et al. 2019): 12 layers, width 768, 124 M parameters",
                (1024,), 50257, None, None, _F.LM, "int64"),
        transformer.gpt2_small,
    ),
)  # fmt: skip


def _build_table(entries: tuple[_Entry, ...]) -> dict[str, _Entry]:
    table: dict[str, _Entry] = {}
    for entry in entries:
        if entry.spec.name in table:
            raise ConfigError(f"zoo model {entry.spec.name!r} is registered twice")
        table[entry.spec.name] = entry
    return table


_TABLE: dict[str, _Entry] = _build_table(_ENTRIES)


def _entry(name: str) -> _Entry:
    try:
        return _TABLE[name]
    except KeyError:
        raise ConfigError(f"unknown zoo model {name!r}; known models: {', '.join(names())}") from None


def names() -> list[str]:
    """Names of all zoo models, in registration order."""
    return list(_TABLE)


def spec(name: str) -> ZooSpec:
    """The :class:`ZooSpec` of model ``name``; raises ConfigError listing the known names if unknown."""
    return _entry(name).spec


def options(name: str) -> dict[str, Any]:
    """Keyword options :func:`create` accepts for ``name`` (besides ``seed``), with their defaults."""
    params = inspect.signature(_entry(name).builder).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def create(name: str, *, seed: int = 0, **kwargs: Any) -> nn.Module:
    """Build zoo model ``name`` in eval mode with weights initialised from ``torch.manual_seed(seed)``.

    ``kwargs`` override the model's options (see :func:`options`), e.g. ``num_classes``, ``in_channels``,
    ``width_mult``. The global torch RNG state is restored afterwards, so creating a model does not change
    the random stream of the caller.

    Raises:
        ConfigError: unknown model name (the message lists the known names) or an option the model does
            not take (the message lists the options it does take).

    Example::

        >>> model = create("resnet8", num_classes=10, in_channels=3)
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    entry = _entry(name)
    allowed = options(name)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ConfigError(
            f"zoo model {name!r} does not take option(s) {unknown}; it takes seed, {', '.join(allowed)}"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = entry.builder(**kwargs)
    return model.eval()
