"""Building blocks shared by the zoo models, and the thresholded activation used by the sparsity search.

:class:`ThresholdReLU` generalises ReLU/ReLU6 with a tunable cut-off: raising the threshold zeroes more
activations, which sparse accelerators turn into skipped work. :func:`replace_activations` swaps every
ReLU/ReLU6 of a model for one, keyed by the module's qualified name so each layer can get its own value.

Example::

    >>> import torch
    >>> from accelflow.zoo import create, replace_activations
    >>> model = create("lenet5")
    >>> sparse = replace_activations(model, {"relu1": 0.1})   # other activations keep threshold 0.0
    >>> sparse(torch.zeros(1, 1, 28, 28)).shape
    torch.Size([1, 10])
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from accelflow.errors import ConfigError

__all__ = ["ThresholdReLU", "PadConv2d", "PadMaxPool2d", "pad_unequal", "replace_activations", "activation_names",
           "init_weights", "symbolic_trace"]

_RELU6_CLIP = 6.0


class ThresholdReLU(nn.Module):
    """``y = x if x > threshold else 0``, then ``min(y, clip)`` when ``clip`` is given.

    ``threshold == 0`` and ``clip is None`` is exactly :class:`torch.nn.ReLU`; ``clip=6.0`` gives a thresholded
    ReLU6. ``threshold`` is a plain float attribute so a search can set it in place between evaluations
    (re-trace the model afterwards: ``torch.fx`` bakes the value into the graph as a constant).
    """

    def __init__(self, threshold: float = 0.0, clip: float | None = None) -> None:
        super().__init__()
        self.threshold = float(threshold)
        self.clip = None if clip is None else float(clip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.where(x > self.threshold, x, torch.zeros_like(x))
        if self.clip is not None:
            y = torch.clamp(y, max=self.clip)
        return y

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}" + ("" if self.clip is None else f", clip={self.clip}")


def _check_pads(pads: tuple[int, ...]) -> tuple[int, int, int, int]:
    if len(pads) != 4 or any(int(p) < 0 for p in pads):
        raise ConfigError(f"pads {pads!r}: expected four non-negative ints (top, left, bottom, right)")
    top, left, bottom, right = (int(p) for p in pads)
    return top, left, bottom, right


def pad_unequal(x: torch.Tensor, pads: tuple[int, int, int, int], value: float = 0.0) -> torch.Tensor:
    """``x`` (N, C, H, W) padded by ``pads = (top, left, bottom, right)``, ONNX's begin-then-end layout
    (``F.pad`` wants the last axis first: left, right, top, bottom)."""
    top, left, bottom, right = pads
    return F.pad(x, (left, right, top, bottom), value=value)


class PadConv2d(nn.Conv2d):
    """A :class:`torch.nn.Conv2d` with explicit zero padding that may differ at the two ends of an axis.

    ``pads`` is ``(top, left, bottom, right)``, ONNX's begin-then-end layout. TensorFlow's ``'SAME'`` padding
    with stride 2 on an even input pads one more row/column at the end than at the start, which
    ``nn.Conv2d`` cannot express; ONNX files exported from Keras carry such pads. The module is still an
    ``nn.Conv2d`` (weights, groups, stride, dilation), so pruning, fine-tuning and HASS treat it as one;
    the sparsity measurement counts its padding taps as zeros, as for symmetric padding.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 pads: tuple[int, int, int, int], stride: int | tuple[int, int] = 1,
                 dilation: int | tuple[int, int] = 1, groups: int = 1, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, dilation=dilation,
                         groups=groups, bias=bias)
        self.pads = _check_pads(pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(pad_unequal(x, self.pads))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", pads={self.pads}"


class PadMaxPool2d(nn.MaxPool2d):
    """:class:`torch.nn.MaxPool2d` with ``pads = (top, left, bottom, right)`` that may be unequal (padding
    never wins the max, as in ONNX MaxPool and TensorFlow ``'SAME'``); no ceil mode, no dilation."""

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int],
                 pads: tuple[int, int, int, int]) -> None:
        super().__init__(kernel_size, stride, padding=0)
        self.pads = _check_pads(pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(pad_unequal(x, self.pads, float("-inf")))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", pads={self.pads}"


#: accelflow's own layers, kept whole (one ``call_module`` node) when a model is traced.
LEAF_MODULES: tuple[type[nn.Module], ...] = (ThresholdReLU, PadConv2d, PadMaxPool2d)


class _Tracer(torch.fx.Tracer):
    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, LEAF_MODULES) or super().is_leaf_module(m, module_qualified_name)


def symbolic_trace(model: nn.Module) -> torch.fx.GraphModule:
    """:func:`torch.fx.symbolic_trace` that keeps accelflow's layers (:data:`LEAF_MODULES`) as modules:
    a ``PadConv2d`` stays one conv node instead of a pad and a ``conv2d`` call."""
    return torch.fx.GraphModule(model, _Tracer().trace(model))


def _is_activation(module: nn.Module) -> bool:
    return isinstance(module, nn.ReLU | nn.ReLU6 | ThresholdReLU)


def activation_names(model: nn.Module) -> list[str]:
    """Qualified names of every ReLU, ReLU6 and ThresholdReLU in ``model``, in registration order.

    These are the keys :func:`replace_activations` accepts.
    """
    return [name for name, module in model.named_modules() if _is_activation(module)]


def replace_activations(model: nn.Module, thresholds: Mapping[str, float] | float) -> nn.Module:
    """Return a deep copy of ``model`` with each ReLU/ReLU6 replaced by a :class:`ThresholdReLU`.

    ``thresholds`` is either one value for every activation or a mapping from qualified module name (see
    :func:`activation_names`) to threshold; activations missing from the mapping get ``0.0``, i.e. keep
    their plain ReLU behaviour. ReLU6 becomes ``ThresholdReLU(t, clip=6.0)``. Existing ThresholdReLU
    modules are replaced too (keeping their clip), so the function can be applied repeatedly during a
    search. The original model is not modified; the copy keeps the original's train/eval mode.

    Raises:
        ConfigError: a key of ``thresholds`` is not the name of an activation module in ``model``.
    """
    names = activation_names(model)
    if isinstance(thresholds, Mapping):
        unknown = sorted(set(thresholds) - set(names))
        if unknown:
            raise ConfigError(
                f"replace_activations: {unknown} are not ReLU/ReLU6 modules of the model; "
                f"known activation names: {names}"
            )
        per_layer = {name: float(thresholds.get(name, 0.0)) for name in names}
    else:
        per_layer = dict.fromkeys(names, float(thresholds))

    new_model = copy.deepcopy(model)
    for name, threshold in per_layer.items():
        old = new_model.get_submodule(name)
        if isinstance(old, ThresholdReLU):
            clip = old.clip
        else:
            clip = _RELU6_CLIP if isinstance(old, nn.ReLU6) else None
        parent_name, _, leaf = name.rpartition(".")
        parent = new_model.get_submodule(parent_name) if parent_name else new_model
        setattr(parent, leaf, ThresholdReLU(threshold, clip=clip))
    return new_model


def init_weights(model: nn.Module) -> None:
    """Initialise in place as torchvision does: He-normal (fan-out) convolutions, unit-scale BatchNorm.

    Linear layers keep PyTorch's default uniform init. Deterministic given the global torch seed.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv1d | nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
