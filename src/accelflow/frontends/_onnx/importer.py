"""The ONNX -> IR walk: values, their batch axis, constant operands, and the one place nodes are emitted.

Every ONNX value is either a constant (a NumPy array, folded at import) or an activation (an IR node). An
activation's ONNX shape is its IR shape with a leading batch axis of 1 in front (``batched``), or its IR
shape as it is, when the exporter merged the batch of 1 into another axis (``x.view(-1, d)`` in GPT-2,
``(1, heads, S, d) -> (heads, S, d)`` before a batched matmul). At run time every IR value carries its own
batch axis, so both kinds run on any batch. The operator handlers (:mod:`.ops_tensor`, :mod:`.ops_nn`)
translate ONNX axes to IR axes with :meth:`Importer.ir_axis` and build operands with
:meth:`Importer.operands`, which puts constants in the graph as :attr:`OpKind.CONSTANT` nodes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from accelflow.errors import GraphError, ModelImportError, UnsupportedOperatorError
from accelflow.frontends._batch import broadcast_batched, view_shape
from accelflow.frontends._onnx.prepare import ConstantFolder
from accelflow.ir import Attrs, DType, Graph, InputAttrs, Node, OpKind, PadAttrs, ReshapeAttrs, infer_shape

__all__ = ["Importer", "Handler", "PendingPad", "dtype_of"]

Handler = Callable[["Importer", onnx.NodeProto], None]

#: ONNX element types as IR element types (half and double precision are computed in float32).
_ONNX_DTYPES: dict[int, DType] = {
    onnx.TensorProto.FLOAT: DType.FLOAT32, onnx.TensorProto.FLOAT16: DType.FLOAT32,
    onnx.TensorProto.BFLOAT16: DType.FLOAT32, onnx.TensorProto.DOUBLE: DType.FLOAT32,
    onnx.TensorProto.INT64: DType.INT64, onnx.TensorProto.INT32: DType.INT64, onnx.TensorProto.INT16: DType.INT64,
    onnx.TensorProto.INT8: DType.INT64, onnx.TensorProto.UINT8: DType.INT64, onnx.TensorProto.BOOL: DType.BOOL,
}  # fmt: skip


def dtype_of(elem_type: int, where: str) -> DType:
    if elem_type not in _ONNX_DTYPES:
        name = onnx.TensorProto.DataType.Name(elem_type) if elem_type in onnx.TensorProto.DataType.values() else elem_type
        raise UnsupportedOperatorError(f"{where}: element type {name}; supported: float, int and bool tensors")
    return _ONNX_DTYPES[elem_type]


def _ir_array(value: np.ndarray) -> np.ndarray:
    """A constant in the IR's element types: float32, int64 or bool."""
    if value.dtype == np.bool_:
        return value
    if np.issubdtype(value.dtype, np.integer):
        return value.astype(np.int64)
    return value.astype(np.float32)


@dataclass(frozen=True)
class PendingPad:
    """A constant Pad of an activation, held until what reads it folds it (a Conv, a MaxPool) or needs it
    as a node of its own. ``pads``: begins then ends over every ONNX axis (batch included)."""

    x: str
    pads: tuple[int, ...]
    value: float
    node: str


class Importer:
    def __init__(self, model: onnx.ModelProto, source: str, shapes: Mapping[str, tuple[int, ...]],
                 handlers: Mapping[str, Handler]) -> None:
        self.model = model
        self.source = source
        self.shapes = shapes
        self.handlers = handlers
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.graph = Graph(model.graph.name or Path(source).stem)
        self.consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        self.values: dict[str, Node] = {}
        self.batched: dict[str, bool] = {}
        self.pads: dict[str, PendingPad] = {}
        self.consumers: dict[str, int] = {}
        self._const_nodes: dict[tuple[str, bool], Node] = {}
        self.fold = ConstantFolder(model, source)
        for n in model.graph.node:
            for i in n.input:
                self.consumers[i] = self.consumers.get(i, 0) + 1
        for o in model.graph.output:
            self.consumers[o.name] = self.consumers.get(o.name, 0) + 1

    # -- naming and attributes -----------------------------------------------------------------
    def where(self, n: onnx.NodeProto) -> str:
        return f"{self.source}: node {n.name or n.output[0]!r} ({n.op_type})"

    @staticmethod
    def attrs(n: onnx.NodeProto) -> dict[str, Any]:
        return {a.name: helper.get_attribute_value(a) for a in n.attribute}

    @staticmethod
    def text(value: Any) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    # -- reading values ------------------------------------------------------------------------
    def is_const(self, name: str) -> bool:
        return name in self.consts

    def const(self, n: onnx.NodeProto, i: int, required: bool = True) -> np.ndarray | None:
        if i >= len(n.input) or not n.input[i]:
            if required:
                raise ModelImportError(f"{self.where(n)}: missing input {i}")
            return None
        name = n.input[i]
        if name not in self.consts:
            raise UnsupportedOperatorError(f"{self.where(n)}: input {name!r} must be a constant; it is computed from "
                                           "the model's input")
        return self.consts[name]

    def ints(self, n: onnx.NodeProto, i: int, attr: str | None = None) -> list[int] | None:
        """Integer list from attribute ``attr`` (older opsets) or constant input ``i`` (newer), or None."""
        a = self.attrs(n)
        if attr is not None and attr in a:
            return [int(v) for v in a[attr]]
        value = self.const(n, i, required=False)
        return None if value is None else [int(v) for v in np.asarray(value).reshape(-1)]

    def act(self, n: onnx.NodeProto, i: int = 0) -> Node:
        """The activation node feeding input ``i`` (a Pad no one folded becomes a node here)."""
        if i >= len(n.input) or not n.input[i]:
            raise ModelImportError(f"{self.where(n)}: missing input {i}")
        name = n.input[i]
        if name in self.pads and name not in self.values:
            self._materialise_pad(name)
        if name not in self.values:
            kind = "a constant" if name in self.consts else "not produced by any node before it"
            raise UnsupportedOperatorError(f"{self.where(n)}: input {name!r} is {kind}; expected an activation")
        return self.values[name]

    def shape(self, name: str) -> tuple[int, ...]:
        """The ONNX shape of a value (batch axis of 1 included when the value has one)."""
        if name in self.consts:
            return tuple(int(d) for d in self.consts[name].shape)
        if name in self.pads and name not in self.values:
            self._materialise_pad(name)
        node = self.values[name]
        assert node.shape is not None
        return ((1,) if self.batched[name] else ()) + node.shape

    def rank(self, name: str) -> int:
        return len(self.shape(name))

    def ir_axis(self, n: onnx.NodeProto, name: str, axis: int) -> int | None:
        """ONNX ``axis`` of value ``name`` as an IR axis (non-negative), or None for its batch axis."""
        rank = self.rank(name)
        if not -rank <= axis < rank:
            raise ModelImportError(f"{self.where(n)}: axis {axis} out of range for rank {rank}")
        axis %= rank
        if self.batched.get(name, False):
            return None if axis == 0 else axis - 1
        return axis

    # -- building ------------------------------------------------------------------------------
    def emit(self, n: onnx.NodeProto, op: OpKind, inputs: Sequence[Node], attrs: Attrs | None = None,
             params: Mapping[str, np.ndarray | None] | None = None, *, batched: bool, name: str | None = None,
             output: int = 0) -> Node:
        """Add a node for output ``output`` of ``n``, infer its shape and check it against ONNX's."""
        node = self.node(name or n.name or n.output[output], op, inputs, attrs, params)
        self.bind(n, node, batched, output)
        return node

    def node(self, name: str, op: OpKind, inputs: Sequence[Node], attrs: Attrs | None = None,
             params: Mapping[str, np.ndarray | None] | None = None) -> Node:
        """Add a helper node (not bound to an ONNX output) with its shape."""
        clean = {k: _ir_array(np.asarray(v)) for k, v in (params or {}).items() if v is not None}
        node = self.graph.add_node(self.graph.unique_name(name), op, list(inputs), attrs, clean)
        try:
            infer_shape(node)
        except GraphError as exc:
            raise ModelImportError(f"{self.source}: {exc}") from None
        return node

    def bind(self, n: onnx.NodeProto, node: Node, batched: bool, output: int = 0) -> None:
        """Make output ``output`` of ``n`` the value of ``node`` (an alias when it existed before)."""
        name = n.output[output]
        self.values[name] = node
        self.batched[name] = batched
        expected = self.shapes.get(name)
        if expected is not None and expected != self.shape(name):
            raise ModelImportError(f"{self.where(n)}: imported shape {self.shape(name)} differs from ONNX's inferred "
                                   f"shape {expected}")

    def constant(self, name: str, strip_batch: bool) -> Node:
        """A constant input as a CONSTANT node (one per constant and form), without its leading axis of 1
        when it lines up with a batch axis."""
        key = (name, strip_batch)
        if key not in self._const_nodes:
            value = self.consts[name]
            if strip_batch:
                value = value.reshape(value.shape[1:])
            self._const_nodes[key] = self.node(_const_name(name), OpKind.CONSTANT, [], None, {"value": value})
        return self._const_nodes[key]

    def constant_value(self, label: str, value: np.ndarray) -> Node:
        return self.node(label, OpKind.CONSTANT, [], None, {"value": value})

    def reshape(self, label: str, x: Node, shape: tuple[int, ...]) -> Node:
        """``x`` as IR shape ``shape`` (same element count); ``x`` itself when it already has it."""
        if x.shape == shape:
            return x
        return self.node(label, OpKind.RESHAPE, [x], ReshapeAttrs(shape))

    def reshape_to(self, n: onnx.NodeProto, x: Node, target: Sequence[int], output: int = 0) -> None:
        """Bind output ``output`` of ``n`` to ``x`` viewed as ONNX shape ``target``: a leading 1 is taken as
        the batch axis (the exporters' batch of 1), otherwise the value has no batch axis."""
        target = tuple(int(d) for d in target)
        batched, ir = view_shape(target)
        if math.prod(ir) != math.prod(x.shape or ()):
            raise ModelImportError(f"{self.where(n)}: cannot view {x.shape} (without batch) as {target}")
        node = x if x.shape == ir else self.node(n.name or n.output[output], OpKind.RESHAPE, [x], ReshapeAttrs(ir))
        self.bind(n, node, batched, output)

    def operands(self, n: onnx.NodeProto, names: Sequence[str], lead: int = 0) -> tuple[list[Node], bool]:
        """Inputs of a broadcasting operator as IR nodes, and whether its output has a batch axis.

        ONNX broadcasts right-aligned over whole shapes; the IR broadcasts the batch axis apart and the rest
        right-aligned. They agree when the output's axis 0 is a batch axis exactly if some batched
        activation of the full rank puts one there and every operand of the full rank has size 1 there.
        ``lead`` > 0 (MatMul) excludes the trailing matrix axes from that test."""
        ranks = [self.rank(x) for x in names]
        full = max(ranks)
        batched = broadcast_batched([self.shape(x) for x in names],
                                    [None if self.is_const(x) else self.batched[x] for x in names], lead)
        nodes = []
        for x, r in zip(names, ranks, strict=True):
            if self.is_const(x):
                nodes.append(self.constant(x, strip_batch=batched and r == full))
                continue
            node = self.values[x] if x in self.values else self.act(n, list(n.input).index(x))
            if batched and r == full and not self.batched[x]:  # axis 0 of size 1 lines up with the batch
                assert node.shape is not None
                node = self.reshape(f"{node.name}/unbatched", node, node.shape[1:])
            nodes.append(node)
        return nodes, batched

    # -- pads ------------------------------------------------------------------------------------
    def _materialise_pad(self, name: str) -> None:
        pending = self.pads[name]
        x = self.values[pending.x]
        rank = len(pending.pads) // 2
        offset = 1 if self.batched[pending.x] else 0
        if offset and (pending.pads[0] or pending.pads[rank]):
            raise UnsupportedOperatorError(f"{self.source}: Pad node {pending.node!r} pads the batch axis")
        if math.isinf(pending.value) and pending.value < 0:
            raise UnsupportedOperatorError(f"{self.source}: Pad node {pending.node!r} fills with -inf, which only a "
                                           "MaxPool reading it can absorb")
        pads = pending.pads[offset:rank] + pending.pads[rank + offset:]
        node = self.node(pending.node, OpKind.PAD, [x], PadAttrs(tuple(pads), pending.value))
        self.values[name] = node
        self.batched[name] = bool(offset)

    # -- the walk ------------------------------------------------------------------------------
    def run(self) -> Graph:
        g = self.model.graph
        for inp in g.input:
            if inp.name not in self.consts:
                self._input(inp)
        for n in g.node:
            if not all(isinstance(t, str) for t in (n.name, n.op_type, *n.input, *n.output)):  # protobuf: bad UTF-8
                raise ModelImportError(f"{self.source}: node {n.name!r} has a name that is not valid UTF-8")
            try:
                self._node(n)
            except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError, OverflowError) as exc:
                raise ModelImportError(f"{self.where(n)}: malformed node ({type(exc).__name__}: {exc})") from exc
        outputs = []
        for o in g.output:
            if o.name in self.consts:
                outputs.append(self.constant(o.name, strip_batch=False))
            elif o.name in self.values or o.name in self.pads:
                outputs.append(self.values[o.name] if o.name in self.values else self._pad_output(o.name))
            else:
                raise ModelImportError(f"{self.source}: output {o.name!r} is not computed by any node")
        self.graph.set_outputs(outputs)
        return self.graph

    def _pad_output(self, name: str) -> Node:
        self._materialise_pad(name)
        return self.values[name]

    def _input(self, inp: onnx.ValueInfoProto) -> None:
        where = f"{self.source}: input {inp.name!r}"
        if not inp.type.HasField("tensor_type"):
            raise ModelImportError(f"{where}: only tensor inputs are supported")
        dims = inp.type.tensor_type.shape.dim
        shape = [d.dim_value if d.HasField("dim_value") else -1 for d in dims][1:]
        if not dims or any(s <= 0 for s in shape):
            raise ModelImportError(f"{where}: needs a static shape (batch first), got "
                                   f"{[d.dim_value or d.dim_param for d in dims]}; re-export with a fixed input size")
        dtype = dtype_of(inp.type.tensor_type.elem_type, where)
        self.values[inp.name] = self.graph.add_input(inp.name, shape)
        if dtype is not DType.FLOAT32:
            self.values[inp.name].attrs = InputAttrs(dtype)
        self.batched[inp.name] = True

    def _node(self, n: onnx.NodeProto) -> None:
        inputs = [i for i in n.input if i]
        if n.op_type == "Identity" or (n.op_type == "Dropout" and len(n.output) == 1):
            self._alias(n)
            return
        if all(i in self.consts for i in inputs) and n.op_type not in ("Dropout",):
            for name, value in zip(n.output, self.fold(n, self.consts), strict=False):
                if name:
                    self.consts[name] = value
            return
        if n.op_type in ("Shape", "Size") and len(inputs) == 1:
            self._shape_of(n)
            return
        handler = self.handlers.get(n.op_type) if n.domain in ("", "ai.onnx") else None
        if handler is None:
            op = f"{n.domain}.{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type
            raise UnsupportedOperatorError(f"{self.where(n)}: operator {op} is not supported; supported: "
                                           f"{', '.join(sorted(self.handlers))}{self.hint()}")
        try:
            handler(self, n)
        except UnsupportedOperatorError as exc:
            if self.hint() and self.hint() not in str(exc):
                raise UnsupportedOperatorError(f"{exc}{self.hint()}") from None
            raise

    def hint(self) -> str:
        """What to try when a file from torch's TorchScript (legacy) exporter holds a pattern we do not read:
        the dynamo exporter writes most patterns in plainer operators."""
        legacy = self.model.producer_name == "pytorch" and not any(n.name.startswith("node_")
                                                                   for n in self.model.graph.node)
        return (" (this file comes from torch's TorchScript exporter; torch.onnx.export(..., dynamo=True) writes "
                "many patterns in operators accelflow reads)") if legacy else ""

    def _alias(self, n: onnx.NodeProto) -> None:
        src = n.input[0]
        if src in self.consts:
            self.consts[n.output[0]] = self.consts[src]
        elif src in self.pads and src not in self.values:
            self.pads[n.output[0]] = self.pads[src]
        else:
            self.bind(n, self.act(n), self.batched[src])

    def _shape_of(self, n: onnx.NodeProto) -> None:
        shape = self.shape(n.input[0])
        if n.op_type == "Size":
            self.consts[n.output[0]] = np.asarray(math.prod(shape), dtype=np.int64)
            return
        a = self.attrs(n)
        start, end = int(a.get("start", 0)), int(a.get("end", len(shape)))
        self.consts[n.output[0]] = np.asarray(shape[start:end] if "end" in a else shape[start:], dtype=np.int64)


def _const_name(initializer: str) -> str:
    return initializer.rsplit("/", 1)[-1] or "constant"
