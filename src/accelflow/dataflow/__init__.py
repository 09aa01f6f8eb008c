"""Layer-pipelined (fpgaConvNet-style) dataflow FPGA accelerator model and folding optimisers.

Every layer of a network becomes a hardware stage with a *folding* (coarse_in, coarse_out,
coarse_group, fine); the pipeline runs at the pace of its slowest stage. Dense and sparse (HASS)
convolutions, transposed convolutions, pooling, activations, element-wise arithmetic, residual add, concat,
squeeze-excitation, layer norm, softmax, reductions, channel shuffles, slices, pads and resizes are
modelled (:mod:`accelflow.dataflow._layout` decides which layout operators are free); products of two
activations (attention) are refused with the reason. Device tables are data (``devices/devices.yaml``).

Example::

    >>> from accelflow.frontends import load_model
    >>> from accelflow.dataflow import load_device, optimise_folding, Method
    >>> design = optimise_folding(load_model("zoo:lenet5"), load_device("zcu102"), method=Method.GREEDY)
    >>> design.throughput_images_per_s > 0
    True
"""

from accelflow.dataflow._design import (
    DataflowDesign,
    LayerDesign,
    design_from_cost,
    evaluate_design,
    network_model,
)
from accelflow.dataflow._device import Device, device_names, load_device
from accelflow.dataflow._folding import Folding
from accelflow.dataflow._layers import SPARSE_MIN, ConvLayer, ConvTransposeLayer, LayerModel, PoolLayer
from accelflow.dataflow._layout import StreamLayout, stream_layouts
from accelflow.dataflow._lockstep import (
    SampledLockStep,
    WindowSample,
    apply_window_samples,
    load_window_samples,
    save_window_samples,
    window_sample_path,
)
from accelflow.dataflow._movement import BroadcastLayer, PadLayer, ReorderLayer, ResizeLayer, SelectLayer
from accelflow.dataflow._network import DEFAULT_UTILISATION, NetworkModel, WeightStorage
from accelflow.dataflow._norm import NormLayer, ReduceLayer
from accelflow.dataflow._onnx import apply_sparsity, load_onnx_with_sparsity, read_sparsity_from_onnx
from accelflow.dataflow._optimise import Method, optimise_folding
from accelflow.dataflow._resources import ResourceKind, Resources
from accelflow.dataflow._search import SearchBudgetError
from accelflow.dataflow._sparse import LockStep, expected_window_cycles, speedup_over_dense
from accelflow.dataflow._stream import StreamLayer

__all__ = [
    "DEFAULT_UTILISATION",
    "SPARSE_MIN",
    "BroadcastLayer",
    "ConvLayer",
    "ConvTransposeLayer",
    "DataflowDesign",
    "Device",
    "Folding",
    "LayerDesign",
    "LayerModel",
    "LockStep",
    "Method",
    "NetworkModel",
    "NormLayer",
    "PadLayer",
    "PoolLayer",
    "ReduceLayer",
    "ReorderLayer",
    "ResizeLayer",
    "SelectLayer",
    "ResourceKind",
    "Resources",
    "SearchBudgetError",
    "SampledLockStep",
    "StreamLayer",
    "StreamLayout",
    "WindowSample",
    "WeightStorage",
    "device_names",
    "evaluate_design",
    "expected_window_cycles",
    "load_device",
    "load_onnx_with_sparsity",
    "network_model",
    "design_from_cost",
    "optimise_folding",
    "apply_sparsity",
    "apply_window_samples",
    "load_window_samples",
    "save_window_samples",
    "window_sample_path",
    "read_sparsity_from_onnx",
    "stream_layouts",
    "speedup_over_dense",
]
