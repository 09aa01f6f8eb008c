"""Measured activation/weight sparsity of convolutions, the statistic of the HASS sparse accelerator model.

Example::

    >>> import torch
    >>> from accelflow.zoo import create, replace_activations
    >>> from accelflow.sparsity import mask_weights, measure_sparsity
    >>> model = mask_weights(replace_activations(create("lenet5"), 0.1), {"conv2": 0.05})
    >>> stats = measure_sparsity(model, [torch.randn(8, 1, 28, 28)])
    >>> stats["conv2"].hist.shape            # (C_in, K*K + 1), rows sum to 1
    (6, 26)

``annotate_graph(graph, stats)`` attaches them to IR conv nodes as :class:`accelflow.ir.ChannelSparsity`;
``export_sparsity_onnx(model, shape, stats, "net.onnx")`` writes the ``channel_sparsity_hist`` attribute.
``measure_sparsity(..., window_positions=4096)`` also samples window zero patterns
(:class:`accelflow.dataflow.WindowSample`) for the lock-step model ``LockStep.SAMPLED``; they are annotated
too and exported to ``net.windows.npz`` beside the ONNX file.
"""

from accelflow.sparsity._errors import SparsityError
from accelflow.sparsity._measure import (
    PATTERN_MAX_TAPS,
    ConvSparsity,
    brute_force_counts,
    conv_layers,
    mask_weights,
    measure_sparsity,
    window_bitmasks,
    zero_product_counts,
)
from accelflow.sparsity._onnx import ATTRIBUTE, annotate_graph, export_sparsity_onnx, read_sparsity_onnx

__all__ = [
    "ATTRIBUTE",
    "PATTERN_MAX_TAPS",
    "ConvSparsity",
    "SparsityError",
    "annotate_graph",
    "brute_force_counts",
    "conv_layers",
    "export_sparsity_onnx",
    "mask_weights",
    "measure_sparsity",
    "read_sparsity_onnx",
    "window_bitmasks",
    "zero_product_counts",
]
