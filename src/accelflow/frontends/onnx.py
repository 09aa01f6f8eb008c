"""Import an ONNX model into the IR.

Reads what both torch exporters (TorchScript and dynamo, opsets 13-21) write for CNNs, vision transformers
and language models, and what Keras/TensorFlow converters write (unequal pads, ``auto_pad`` SAME, Pad
nodes). The file is checked with ``onnx.checker``, given a batch of 1, folded by onnxscript's optimizer and
shape-inferred (:mod:`._onnx.prepare`); each remaining node becomes typed IR nodes (:mod:`._onnx.ops_nn`,
:mod:`._onnx.ops_tensor`), constant subgraphs are computed at import, and the graph is canonicalised so
that equivalent spellings meet in one form. Errors name the file, the node and the operator, and list what
is supported.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from accelflow.errors import ModelImportError
from accelflow.frontends._onnx.importer import Handler, Importer
from accelflow.frontends._onnx.ops_nn import NN_HANDLERS
from accelflow.frontends._onnx.ops_tensor import TENSOR_HANDLERS
from accelflow.frontends._onnx.prepare import EXTENSION_ATTRIBUTES, OPSET_RANGE, prepare, read_model
from accelflow.ir import Graph, canonicalize

__all__ = ["from_onnx", "SUPPORTED_ONNX_OPS", "EXTENSION_ATTRIBUTES", "OPSET_RANGE"]

#: Operator type -> handler; one explicit table (a duplicate name between the two groups is an error).
_HANDLERS: dict[str, Handler] = {**NN_HANDLERS, **TENSOR_HANDLERS}
assert len(_HANDLERS) == len(NN_HANDLERS) + len(TENSOR_HANDLERS), "an ONNX operator has two handlers"

#: Operators the importer reads (constant subgraphs of any standard operator are computed at import).
SUPPORTED_ONNX_OPS = frozenset(_HANDLERS) | {"Constant", "Identity", "Dropout", "Shape", "Size"}


def from_onnx(source: str | Path | onnx.ModelProto) -> Graph:
    """Read an ONNX file (or a loaded ``ModelProto``) into the IR; input shapes must be static but for the
    batch (imported as 1)."""
    model, label = read_model(source)
    prepared, shapes = prepare(model, label)
    graph = Importer(prepared, label, shapes, _HANDLERS).run()
    try:
        return canonicalize(graph)
    except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError) as exc:  # e.g. stride 0
        raise ModelImportError(f"{label}: malformed model ({type(exc).__name__}: {exc})") from exc
