"""Model zoo: PyTorch definitions of the networks accelflow maps onto accelerators.

Every model traces with ``torch.fx.symbolic_trace`` and exports with ``torch.onnx.export``; each activation
is its own module so per-layer thresholds can be set by name.

Example::

    >>> from accelflow.zoo import create, spec
    >>> spec("lenet5").input_shape
    (1, 28, 28)
    >>> model = create("lenet5", num_classes=10)   # eval mode, deterministic weights (seed=0)
"""

from accelflow.zoo._registry import ModelFamily, ZooSpec, create, names, options, spec
from accelflow.zoo.layers import (
    PadConv2d,
    PadMaxPool2d,
    ThresholdReLU,
    activation_names,
    replace_activations,
    symbolic_trace,
)

__all__ = [
    "ModelFamily",
    "PadConv2d",
    "PadMaxPool2d",
    "ThresholdReLU",
    "ZooSpec",
    "activation_names",
    "create",
    "names",
    "options",
    "replace_activations",
    "spec",
    "symbolic_trace",
]
