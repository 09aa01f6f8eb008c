"""Import a PyTorch ``nn.Module`` into the IR through ``torch.export``.

The module (in eval mode) is exported for one example input with a batch of 1 (``strict=False``: Python
control flow on static shapes, assertions, ``x[:, 0]``, ``chunk`` and friends are evaluated while tracing),
and ``run_decompositions`` lowers it to the core ATen operator set torch maintains. A few operators that map
one-to-one onto IR operators are kept whole instead of decomposed (:data:`KEPT_WHOLE`), and a program made
only of operators the importer reads as exported (``conv2d``, ``batch_norm``, ``linear``, ``chunk``: every
zoo model) is not decomposed at all (:func:`_lower`: the decomposition traces the model a second time; both
readings give the same IR, tested). Each remaining ATen
node becomes IR nodes (:mod:`._torch.ops_nn`, :mod:`._torch.ops_tensor`); parameters, buffers, lifted
constants and everything computed from them alone are folded at import by running the node's own ATen
operator (``permute(weight)`` before ``addmm`` becomes the LINEAR layer's weight); BatchNorm is folded into
the conv/linear before it. The graph is then canonicalised (:func:`accelflow.ir.canonicalize`), as the ONNX
importer's is, so both routes give the same IR for the same model. The batch axis follows the rules both
importers share (:mod:`._batch`). Layers are named after their weights (``layer1.0.conv1``) and other nodes
after the module whose output they are (``layer1.0.relu``).

Why not ``torch.fx`` symbolic tracing any more: it fails on most real models (shape assertions, ``x.shape``
arithmetic, data-dependent branches on sizes, ``getitem`` on proxies), and what it added over torch.export
is now recovered without it. accelflow's own modules are read from their exported operators:
:class:`~accelflow.zoo.ThresholdReLU` is ``where(x > t, x, 0)`` (then ``clamp(max=c)``), which
canonicalisation turns into THRESHOLD_RELU with the same attributes (the ONNX route meets the same form);
:class:`~accelflow.zoo.PadConv2d` and :class:`~accelflow.zoo.PadMaxPool2d` are a ``constant_pad_nd`` folded
into the conv's or max pool's pads, as the ONNX importer folds a Pad. Module paths come from torch.export's
``nn_module_stack`` metadata. And torch.export infers shapes on fake tensors instead of running the model
(ShapeProp ran every conv of ResNet-50 at 224x224). So there is one PyTorch route; ``zoo.symbolic_trace``
remains for the passes that rewrite modules (HASS's activation links, width scaling).

Example::

    >>> from torch import nn
    >>> g = from_pytorch(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()), (3, 16, 16))
    >>> [n.op.value for n in g]
    ['input', 'conv', 'relu']
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.fx
from torch import nn

from accelflow.errors import ConfigError, ModelImportError
from accelflow.frontends._torch.importer import ASSERTIONS, SHAPE_ONLY, Handler, TorchImporter, op_name
from accelflow.frontends._torch.ops_nn import NN_HANDLERS
from accelflow.frontends._torch.ops_tensor import TENSOR_HANDLERS
from accelflow.ir import DType, Graph, canonicalize

if TYPE_CHECKING:
    from torch.export.decomp_utils import CustomDecompTable

__all__ = ["from_pytorch", "SUPPORTED_TORCH_OPS", "KEPT_WHOLE"]

#: ATen operator -> handler; one explicit table (a duplicate name between the two groups is an error).
_HANDLERS: dict[str, Handler] = {**NN_HANDLERS, **TENSOR_HANDLERS}
assert len(_HANDLERS) == len(NN_HANDLERS) + len(TENSOR_HANDLERS), "an ATen operator has two handlers"

#: ATen operators the importer reads (any operator is computed at import when its inputs are constants).
SUPPORTED_TORCH_OPS = frozenset(_HANDLERS)

#: Operators kept whole rather than decomposed into the core set: each is one IR operator (decomposed, they
#: would be recovered by pattern, or, for upsampling, become index arithmetic).
KEPT_WHOLE: tuple[str, ...] = ("linear", "hardswish", "hardsigmoid", "silu", "threshold", "upsample_nearest2d",
                               "upsample_bilinear2d", "upsample_nearest1d", "upsample_linear1d")

#: Element types of the example input.
_INPUT_DTYPES = {DType.FLOAT32: torch.float32, DType.INT64: torch.int64}


def _decompositions() -> CustomDecompTable:
    """torch's core ATen decompositions, but for :data:`KEPT_WHOLE`."""
    table = torch.export.default_decompositions()
    for name in KEPT_WHOLE:
        packet = getattr(torch.ops.aten, name)
        for overload in packet.overloads():
            table.pop(getattr(packet, overload), None)
    return table


def _export(model: nn.Module, example: torch.Tensor) -> torch.export.ExportedProgram:
    label = type(model).__name__
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with torch.no_grad():
                ep = torch.export.export(model.eval(), (example,), strict=False)
        except Exception as exc:  # export raises many types: user code, unsupported Python, wrong shapes
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ModelImportError(f"cannot export {label} with torch.export for an input of shape "
                                   f"{tuple(example.shape)} ({example.dtype}): {type(exc).__name__}: {first} (if the "
                                   "model branches on its data, torch.onnx.export(..., dynamo=False) traces one path: "
                                   "give accelflow that .onnx file)") from exc
        return ep


def _lower(ep: torch.export.ExportedProgram, label: str, always: bool = False) -> torch.export.ExportedProgram:
    """``ep`` in core ATen operators (:data:`KEPT_WHOLE` kept), unless every operator it calls is one the
    importer reads as exported (``conv2d``, ``batch_norm``, ``linear``, ``relu``, ...: every zoo model) and
    none mutates its input; then the decomposition, a second trace of the whole model, is skipped (for ResNet-50
    it would take longer than the rest of the import). ``always`` decomposes anyway."""
    if not always and all(_read_as_exported(n) for n in ep.graph.nodes if n.op == "call_function"):
        return ep
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return ep.run_decompositions(_decompositions())
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ModelImportError(f"cannot lower {label} to core ATen operators: {type(exc).__name__}: {first}") from exc


def _read_as_exported(n: torch.fx.Node) -> bool:
    """Whether the importer reads node ``n`` of a program as exported: an operator it has a handler for, or
    one it computes at import (no tensor inputs, or a shape-only one such as ``zeros_like``), or a check."""
    if n.target is operator.getitem:
        return True
    schema = getattr(n.target, "_schema", None)
    if schema is None or schema.is_mutable:
        return False
    name = op_name(n.target)
    short = name.rsplit(".", 1)[-1]
    return name in _HANDLERS or short in SHAPE_ONLY or short in ASSERTIONS or not n.all_input_nodes


def from_pytorch(model: nn.Module, input_shape: Sequence[int], name: str | None = None,
                 input_dtype: str | DType = DType.FLOAT32) -> Graph:
    """Export ``model`` (in eval mode) for one input of ``input_shape`` (without batch) into the IR.

    ``input_dtype`` is ``"float32"`` (images, features) or ``"int64"`` (token ids of a language model;
    ``input_shape`` is then the sequence length). The example input is zeros.

    Raises:
        ModelImportError: the model cannot be exported for that input, or computes something the IR cannot
            hold; :class:`~accelflow.errors.UnsupportedOperatorError` (a subclass) names the node and the ATen
            operator and lists the supported ones.
        ConfigError: ``input_dtype`` is neither float32 nor int64.
    """
    try:
        dtype = DType(input_dtype)
        torch_dtype = _INPUT_DTYPES[dtype]
    except (ValueError, KeyError):
        raise ConfigError(f"input dtype {input_dtype!r}; supported: {', '.join(d.value for d in _INPUT_DTYPES)}") \
            from None
    shape = tuple(int(d) for d in input_shape)
    example = torch.zeros(1, *shape, dtype=torch_dtype)
    return _to_ir(_lower(_export(model, example), type(model).__name__), name or type(model).__name__)


def _to_ir(ep: torch.export.ExportedProgram, name: str) -> Graph:
    return canonicalize(TorchImporter(ep, name, _HANDLERS).run())
