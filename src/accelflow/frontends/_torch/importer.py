"""The torch.export -> IR walk: values, their batch axis, constant folding, and the one place nodes are emitted.

Every value of the exported program is a constant (a parameter, buffer or lifted tensor, or anything
computed from constants alone, which is folded here by running the node's own ATen operator on it), an
activation (an IR node), a pending constant pad (held until the conv or max pool reading it absorbs it), or
the tuple of a node with several outputs. An activation carries the exporter's batch axis of 1 as its
leading axis or not (:mod:`accelflow.frontends._batch`, the rules the ONNX importer follows too). The
operator handlers (:mod:`.ops_nn`, :mod:`.ops_tensor`) read arguments by their schema names
(:func:`arguments`), translate torch dims to IR axes with :meth:`TorchImporter.ir_axis` and build operands
with :meth:`TorchImporter.operands`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import torch
import torch.fx
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind, OutputKind

from accelflow.errors import GraphError, ModelImportError, UnsupportedOperatorError
from accelflow.frontends._batch import broadcast_batched, view_shape
from accelflow.ir import Attrs, DType, Graph, InputAttrs, Node, OpKind, PadAttrs, ReshapeAttrs, infer_shape

__all__ = ["TorchImporter", "Handler", "Act", "Const", "PendingPad", "Outputs", "arguments", "op_name",
           "ir_dtype", "f32", "MAX_FOLDED_ELEMENTS", "SHAPE_ONLY", "ASSERTIONS"]

#: Largest tensor (elements) computed from constants at import (as the ONNX importer: 256 MiB of float32).
MAX_FOLDED_ELEMENTS = 64 * 1024 * 1024

Handler = Callable[["TorchImporter", torch.fx.Node], None]


@dataclass(frozen=True, eq=False)
class Act:
    """An activation: the IR node computing it, and whether its leading axis is the batch axis."""

    node: Node
    batched: bool


@dataclass(frozen=True, eq=False)
class Const:
    """A constant tensor; ``source`` is the qualified name of the parameter or buffer it was computed from
    alone (``fc.weight`` for ``permute(fc.weight)``), which names the layer it ends up in."""

    value: torch.Tensor
    source: str | None = None


@dataclass(frozen=True, eq=False)
class PendingPad:
    """A constant pad of an activation, held until what reads it folds it (a conv, a max pool) or needs it as
    a node of its own. ``pads``: begins then ends over every axis (batch included), as ONNX writes them."""

    x: Act
    pads: tuple[int, ...]
    value: float
    name: str


@dataclass(frozen=True, eq=False)
class Outputs:
    """The outputs of a node with several (``native_layer_norm``, ``split``); None where an output is not
    supported (a max pool's indices), which is refused only if something reads it."""

    items: tuple[Any, ...]
    why: str = ""


Value: TypeAlias = Act | Const | PendingPad | Outputs

#: Operators whose result depends only on their inputs' shapes and dtypes (folded like constants).
SHAPE_ONLY = frozenset({"full_like", "zeros_like", "ones_like", "empty_like", "new_zeros", "new_ones", "new_full",
                        "new_empty", "scalar_tensor"})
#: Run-time checks torch.export records; they produce nothing.
ASSERTIONS = frozenset({"_assert_async", "_assert_scalar", "_assert_tensor_metadata", "sym_constrain_range",
                        "sym_constrain_range_for_size", "_functional_assert_async", "_functional_assert_scalar"})


def op_name(target: Any) -> str:
    """``aten.add`` for ``torch.ops.aten.add.Tensor`` (the overload packet: what handlers are keyed by)."""
    packet = getattr(target, "_overloadpacket", None)
    if packet is not None:
        return str(getattr(packet, "_qualified_op_name", packet.__name__)).replace("::", ".")
    return getattr(target, "__name__", repr(target))


def arguments(n: torch.fx.Node) -> dict[str, Any]:
    """The node's arguments by schema name, defaults filled in (``max_pool2d_with_indices``'s omitted padding)."""
    schema = getattr(n.target, "_schema", None)
    if schema is None:
        raise ModelImportError(f"node {n.name!r}: {n.target} is not an ATen operator")
    out: dict[str, Any] = {}
    for i, arg in enumerate(schema.arguments):
        if i < len(n.args):
            out[arg.name] = n.args[i]
        elif arg.name in n.kwargs:
            out[arg.name] = n.kwargs[arg.name]
        else:
            out[arg.name] = arg.default_value if arg.has_default_value() else None
    return out


def f32(value: Any) -> float:
    """A float attribute as the float32 it is at run time (and in an ONNX file), so both routes agree exactly."""
    return float(np.float32(value))


def ir_dtype(dtype: torch.dtype) -> DType:
    """The IR element type of a torch dtype (half, bfloat16 and double are computed in float32)."""
    if dtype == torch.bool:
        return DType.BOOL
    if dtype.is_floating_point:
        return DType.FLOAT32
    if not dtype.is_complex:
        return DType.INT64
    raise UnsupportedOperatorError(f"element type {dtype}; supported: float, int and bool tensors")


def to_numpy(value: torch.Tensor) -> np.ndarray:
    """A constant in the IR's element types: float32, int64 or bool."""
    t = value.detach().cpu()
    kind = ir_dtype(t.dtype)
    if kind is DType.FLOAT32:
        return t.to(torch.float32).numpy().copy()
    return t.to(torch.int64 if kind is DType.INT64 else torch.bool).numpy().copy()


def _tensors(val: Any) -> Iterator[torch.Tensor]:
    if isinstance(val, torch.Tensor):
        yield val
    elif isinstance(val, (tuple, list)):
        for v in val:
            yield from _tensors(v)


class TorchImporter:
    def __init__(self, ep: ExportedProgram, name: str, handlers: Mapping[str, Handler]) -> None:
        self.ep = ep
        self.gm = ep.graph_module
        self.handlers = handlers
        self.graph = Graph(name)
        self.values: dict[torch.fx.Node, Value] = {}
        self._bound: dict[Node, list[torch.fx.Node]] = {}  # IR node -> the fx nodes whose value it is
        self._const_nodes: dict[tuple[Const, bool], Node] = {}  # (identity-hashed) constant, form -> node
        self._specs = {s.arg.name: s for s in ep.graph_signature.input_specs if hasattr(s.arg, "name")}

    # -- naming --------------------------------------------------------------------------------
    def where(self, n: torch.fx.Node) -> str:
        target = str(n.target) if n.op == "call_function" else n.op
        return f"node {n.name!r} ({target})"

    def label(self, n: torch.fx.Node) -> str:
        """The IR name of what ``n`` computes: the path of the module whose output it is (``layer1.0.relu``),
        else the exported node's name."""
        path = _module_path(n)
        return path if path and _escapes(n, path) else n.name

    # -- reading values ------------------------------------------------------------------------
    def is_const(self, arg: Any) -> bool:
        return isinstance(arg, torch.fx.Node) and isinstance(self.values.get(arg), Const)

    def const(self, n: torch.fx.Node, arg: Any, required: bool = True) -> torch.Tensor | None:
        """A constant tensor argument of ``n`` (None when it is absent and not ``required``)."""
        if arg is None and not required:
            return None
        v = self.values.get(arg) if isinstance(arg, torch.fx.Node) else None
        if not isinstance(v, Const):
            kind = "computed from the model's input" if v is not None else f"{arg!r}"
            raise UnsupportedOperatorError(f"{self.where(n)}: argument {getattr(arg, 'name', arg)!r} must be a "
                                           f"constant; it is {kind}")
        return v.value

    def source(self, arg: Any) -> str | None:
        v = self.values.get(arg) if isinstance(arg, torch.fx.Node) else None
        return v.source if isinstance(v, Const) else None

    def act(self, n: torch.fx.Node, arg: Any) -> Node:
        """The IR node of activation argument ``arg`` (a pad no one folded becomes a node here)."""
        v = self.values.get(arg) if isinstance(arg, torch.fx.Node) else None
        if isinstance(v, PendingPad):
            v = self._materialise_pad(arg, v)
        if not isinstance(v, Act):
            kind = "a constant" if isinstance(v, Const) else "a tuple" if isinstance(v, Outputs) else repr(arg)
            raise UnsupportedOperatorError(f"{self.where(n)}: input {getattr(arg, 'name', arg)!r} is {kind}; "
                                           "expected an activation")
        return v.node

    def batched(self, arg: Any) -> bool:
        v = self.values[arg]
        if isinstance(v, PendingPad):
            v = self._materialise_pad(arg, v)
        return isinstance(v, Act) and v.batched

    def shape(self, arg: Any) -> tuple[int, ...]:
        """The exported shape of a tensor argument (the batch axis of 1 included when it has one); ``()`` for
        a Python number."""
        if not isinstance(arg, torch.fx.Node):
            return ()
        v = self.values[arg]
        if isinstance(v, Const):
            return tuple(int(d) for d in v.value.shape)
        if isinstance(v, PendingPad):
            v = self._materialise_pad(arg, v)
        if not isinstance(v, Act):
            raise ModelImportError(f"node {arg.name!r} is a tuple, not a tensor")
        assert v.node.shape is not None
        return ((1,) if v.batched else ()) + v.node.shape

    def rank(self, arg: Any) -> int:
        return len(self.shape(arg))

    def dtype(self, arg: Any) -> torch.dtype:
        """The element type of a tensor argument (from the exporter's metadata)."""
        if isinstance(arg, torch.fx.Node):
            v = self.values.get(arg)
            if isinstance(v, Const):
                return v.value.dtype
            meta = arg.meta.get("val")
            if isinstance(meta, torch.Tensor):
                return meta.dtype
        return torch.float32

    def out_shape(self, n: torch.fx.Node, output: int | None = None) -> tuple[int, ...]:
        """The exported shape of ``n``'s result (output ``output`` of a node with several)."""
        val = n.meta.get("val")
        if output is not None and isinstance(val, (tuple, list)):
            val = val[output]
        if not isinstance(val, torch.Tensor):
            raise ModelImportError(f"{self.where(n)}: no static shape recorded by torch.export")
        return tuple(int(d) for d in val.shape)

    def ir_axis(self, n: torch.fx.Node, arg: Any, dim: int) -> int | None:
        """Torch ``dim`` of tensor ``arg`` as an IR axis (non-negative), or None for its batch axis."""
        rank = self.rank(arg)
        if not -rank <= dim < max(rank, 1):
            raise ModelImportError(f"{self.where(n)}: dim {dim} out of range for rank {rank}")
        dim %= max(rank, 1)
        if self.batched(arg):
            return None if dim == 0 else dim - 1
        return dim

    def consumers(self, node: Node) -> int:
        """How many exported nodes read the value ``node`` computes (through every alias of it, such as a
        ``clone``, which is not counted itself)."""
        bound = self._bound.get(node, [])
        return sum(1 for f in bound for u in f.users if u not in bound)

    # -- building ------------------------------------------------------------------------------
    def node(self, name: str, op: OpKind, inputs: Sequence[Node], attrs: Attrs | None = None,
             params: Mapping[str, Any] | None = None) -> Node:
        """Add a helper node (not bound to an exported value) with its shape."""
        clean = {k: to_numpy(v) if isinstance(v, torch.Tensor) else np.asarray(v)
                 for k, v in (params or {}).items() if v is not None}
        node = self.graph.add_node(self.graph.unique_name(name), op, list(inputs), attrs, clean)
        try:
            infer_shape(node)
        except GraphError as exc:
            raise ModelImportError(str(exc)) from None
        return node

    def emit(self, n: torch.fx.Node, op: OpKind, inputs: Sequence[Node], attrs: Attrs | None = None,
             params: Mapping[str, Any] | None = None, *, batched: bool, name: str | None = None) -> Node:
        """Add the node computing ``n``, infer its shape and check it against torch.export's."""
        node = self.node(name or self.label(n), op, inputs, attrs, params)
        self.bind(n, node, batched)
        return node

    def bind(self, n: torch.fx.Node, node: Node, batched: bool) -> None:
        """Make ``n``'s value the IR node ``node`` (an alias when it existed before)."""
        self._check_shape(n, node, batched, None)
        self.values[n] = Act(node, batched)
        self._bound.setdefault(node, []).append(n)

    def bind_outputs(self, n: torch.fx.Node, items: Sequence[tuple[Node, bool] | None], why: str = "") -> None:
        """Make ``n``'s value a tuple of activations (None: an output that is not supported, see ``why``)."""
        for i, item in enumerate(items):
            if item is not None:
                self._check_shape(n, item[0], item[1], i)
                self._bound.setdefault(item[0], []).append(n)
        self.values[n] = Outputs(tuple(None if it is None else Act(*it) for it in items), why)

    def _check_shape(self, n: torch.fx.Node, node: Node, batched: bool, output: int | None) -> None:
        assert node.shape is not None
        got = ((1,) if batched else ()) + node.shape
        want = self.out_shape(n, output)
        if got != want:
            raise ModelImportError(f"{self.where(n)}: imported shape {got} differs from torch.export's {want}")

    def constant(self, n: torch.fx.Node, arg: Any, strip_batch: bool) -> Node:
        """A constant operand (an exported node's constant, a :class:`Const`, or a Python number, which takes
        the element type torch gives it beside ``n``'s first tensor argument) as a CONSTANT node, one per
        constant and form, without its leading axis of 1 when it lines up with a batch axis."""
        item = self.values.get(arg) if isinstance(arg, torch.fx.Node) else arg
        if not isinstance(item, Const):
            if isinstance(item, torch.fx.Node | Act | Outputs | PendingPad) or item is None:
                raise UnsupportedOperatorError(f"{self.where(n)}: argument {getattr(arg, 'name', arg)!r} must be "
                                               "a constant")
            item = Const(torch.tensor(item, dtype=torch.result_type(self._zero_like_input(n), item)))
        key = (item, strip_batch)
        if key not in self._const_nodes:
            value = item.value.reshape(item.value.shape[1:]) if strip_batch else item.value
            label = item.source or (arg.name if isinstance(arg, torch.fx.Node) else f"{n.name}/constant")
            self._const_nodes[key] = self.node(label, OpKind.CONSTANT, [], None, {"value": value})
        return self._const_nodes[key]

    def _zero_like_input(self, n: torch.fx.Node) -> torch.Tensor:
        """A zero of the element type of ``n``'s first tensor argument (what a Python number combines with)."""
        for a in n.all_input_nodes:
            return torch.zeros((), dtype=self.dtype(a))
        return torch.zeros(())

    def reshape(self, label: str, x: Node, shape: tuple[int, ...]) -> Node:
        """``x`` as IR shape ``shape`` (same element count); ``x`` itself when it already has it."""
        if x.shape == shape:
            return x
        return self.node(label, OpKind.RESHAPE, [x], ReshapeAttrs(shape))

    def reshape_to(self, n: torch.fx.Node, x: Node, target: Sequence[int]) -> None:
        """Bind ``n`` to ``x`` viewed as exported shape ``target`` (:func:`~accelflow.frontends._batch.view_shape`
        decides whether the result carries the batch axis)."""
        batched, ir = view_shape(target)
        if math.prod(ir) != math.prod(x.shape or ()):
            raise ModelImportError(f"{self.where(n)}: cannot view {x.shape} (without batch) as {tuple(target)}")
        self.bind(n, x if x.shape == ir else self.node(self.label(n), OpKind.RESHAPE, [x], ReshapeAttrs(ir)), batched)

    def operands(self, n: torch.fx.Node, args: Sequence[Any], lead: int = 0) -> tuple[list[Node], bool]:
        """Inputs of a broadcasting operator as IR nodes, and whether its output carries the batch axis
        (:func:`~accelflow.frontends._batch.broadcast_batched`). ``args`` are exported nodes, :class:`Act` or
        :class:`Const` values, or Python numbers; constants become CONSTANT nodes."""
        items = [self._operand(a) for a in args]
        shapes = [self._item_shape(it) for it in items]
        flags = [it.batched if isinstance(it, Act) else None for it in items]
        batched = broadcast_batched(shapes, flags, lead)
        full = max(len(s) for s in shapes)
        nodes = []
        for a, it, s in zip(args, items, shapes, strict=True):
            if not isinstance(it, Act):
                nodes.append(self.constant(n, a, strip_batch=batched and len(s) == full))
                continue
            node = it.node
            if batched and len(s) == full and not it.batched:  # axis 0 of size 1 lines up with the batch
                assert node.shape is not None
                node = self.reshape(f"{node.name}/unbatched", node, node.shape[1:])
            nodes.append(node)
        return nodes, batched

    def _operand(self, a: Any) -> Any:
        if not isinstance(a, torch.fx.Node):
            return a
        v = self.values.get(a)
        if isinstance(v, PendingPad):
            v = self._materialise_pad(a, v)
        if v is None or isinstance(v, Outputs):
            raise ModelImportError(f"node {a.name!r} is not a tensor")
        return v

    @staticmethod
    def _item_shape(item: Any) -> tuple[int, ...]:
        if isinstance(item, Act):
            assert item.node.shape is not None
            return ((1,) if item.batched else ()) + item.node.shape
        if isinstance(item, Const):
            return tuple(int(d) for d in item.value.shape)
        return ()

    # -- pads ----------------------------------------------------------------------------------
    def _materialise_pad(self, arg: torch.fx.Node, pending: PendingPad) -> Act:
        rank = len(pending.pads) // 2
        offset = 1 if pending.x.batched else 0
        if offset and (pending.pads[0] or pending.pads[rank]):
            raise UnsupportedOperatorError(f"node {pending.name!r} (constant_pad_nd): pads the batch axis")
        if math.isinf(pending.value) and pending.value < 0:
            raise UnsupportedOperatorError(f"node {pending.name!r} (constant_pad_nd): fills with -inf, which only "
                                           "a max pool reading it can absorb")
        pads = pending.pads[offset:rank] + pending.pads[rank + offset:]
        node = self.node(pending.name, OpKind.PAD, [pending.x.node], PadAttrs(tuple(pads), pending.value))
        act = Act(node, pending.x.batched)
        self.values[arg] = act
        self._bound.setdefault(node, []).append(arg)
        return act

    # -- the walk ------------------------------------------------------------------------------
    def run(self) -> Graph:
        nodes = list(self.gm.graph.nodes)
        live = _live(nodes)
        for n in nodes:
            if n.op == "placeholder":
                self._placeholder(n)
            elif n.op == "call_function":
                if n in live:
                    self._call(n)
            elif n.op == "output":
                self._outputs(n)
            else:
                raise UnsupportedOperatorError(f"{self.where(n)}: exported graph node kind {n.op!r} ({n.target}); "
                                               "supported: ATen operator calls")
        return self.graph

    def _placeholder(self, n: torch.fx.Node) -> None:
        spec = self._specs.get(n.name)
        kind = spec.kind if spec is not None else InputKind.USER_INPUT
        if kind is InputKind.USER_INPUT:
            val = n.meta.get("val")
            if not isinstance(val, torch.Tensor) or val.dim() < 1 or int(val.shape[0]) != 1:
                raise ModelImportError(f"input {n.name!r}: expected a tensor with a batch of 1 first, got {val!r}")
            node = self.graph.add_input(n.name, tuple(int(d) for d in val.shape[1:]))
            dtype = ir_dtype(val.dtype)
            if dtype is not DType.FLOAT32:
                node.attrs = InputAttrs(dtype)
            self.values[n] = Act(node, True)
            self._bound.setdefault(node, []).append(n)
            return
        target = str(spec.target) if spec is not None else n.name
        if kind in (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR):
            store = self.ep.state_dict if target in self.ep.state_dict else self.ep.constants
            value = store.get(target)
            if isinstance(value, torch.Tensor):
                self.values[n] = Const(value.detach(), target)
                return
        raise UnsupportedOperatorError(f"input {n.name!r}: a {kind.name.lower()} input ({target}); supported: the "
                                       "model's input tensor, parameters, buffers and constant tensors")

    def _call(self, n: torch.fx.Node) -> None:
        if n.target is operator.getitem:
            self._getitem(n)
            return
        name = op_name(n.target)
        short = name.rsplit(".", 1)[-1]
        if short in ASSERTIONS:
            return
        inputs = n.all_input_nodes
        if all(isinstance(self.values.get(a), Const) for a in inputs) or short in SHAPE_ONLY:
            self._fold(n)
            return
        handler = self.handlers.get(name)
        if handler is None:
            raise UnsupportedOperatorError(f"{self.where(n)}: operator {name} is not supported; supported: "
                                           f"{', '.join(sorted(self.handlers))}")
        try:
            handler(self, n)
        except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError) as exc:
            raise ModelImportError(f"{self.where(n)}: cannot import ({type(exc).__name__}: {exc})") from exc

    def _fold(self, n: torch.fx.Node) -> None:
        """Run ``n``'s own ATen operator on its constant inputs (activations of shape-only operators, such as
        ``full_like``, stand in as zeros of their shape)."""
        size = sum(int(t.numel()) for t in _tensors(n.meta.get("val")))
        if size > MAX_FOLDED_ELEMENTS:
            raise ModelImportError(f"{self.where(n)}: would create a constant of {size:,} elements; at most "
                                   f"{MAX_FOLDED_ELEMENTS:,} are computed at import")

        def concrete(a: torch.fx.Node) -> Any:
            v = self.values[a]
            if isinstance(v, Const):
                return v.value
            if isinstance(v, Outputs):
                return tuple(x.value if isinstance(x, Const) else None for x in v.items)
            meta = a.meta.get("val")
            return torch.zeros(meta.shape, dtype=meta.dtype)

        args, kwargs = torch.fx.node.map_arg((n.args, n.kwargs), concrete)
        try:
            with torch.no_grad():
                out = n.target(*args, **kwargs)
        except Exception as exc:  # an operator may raise anything on bad constants
            raise ModelImportError(f"{self.where(n)}: cannot evaluate on its constant inputs "
                                   f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from exc
        sources = {s for a in n.all_input_nodes if (s := self.source(a)) is not None}
        source = sources.pop() if len(sources) == 1 else None
        if isinstance(out, torch.Tensor):
            self.values[n] = Const(out, source)
        elif isinstance(out, (tuple, list)):
            self.values[n] = Outputs(tuple(Const(o, source) if isinstance(o, torch.Tensor) else None for o in out))
        else:
            raise ModelImportError(f"{self.where(n)}: folded to {type(out).__name__}, not a tensor")

    def _getitem(self, n: torch.fx.Node) -> None:
        src, index = n.args[0], n.args[1]
        v = self.values.get(src) if isinstance(src, torch.fx.Node) else None
        if not isinstance(v, Outputs) or not isinstance(index, int) or not -len(v.items) <= index < len(v.items):
            raise ModelImportError(f"{self.where(n)}: item {index!r} of {getattr(src, 'name', src)!r}")
        item = v.items[index]
        if item is None:
            raise UnsupportedOperatorError(f"{self.where(n)}: output {index} of {src.name!r} is read; {v.why}")  # type: ignore[union-attr]
        self.values[n] = item
        if isinstance(item, Act):
            self._bound.setdefault(item.node, []).append(n)

    def _outputs(self, n: torch.fx.Node) -> None:
        results = n.args[0] if isinstance(n.args[0], (tuple, list)) else (n.args[0],)
        specs = self.ep.graph_signature.output_specs
        outputs = []
        for i, r in enumerate(results):
            if i < len(specs) and specs[i].kind is not OutputKind.USER_OUTPUT:
                continue  # buffer updates: not part of inference
            if not isinstance(r, torch.fx.Node):
                continue  # None or a Python number among the outputs
            if self.is_const(r):
                outputs.append(self.constant(n, r, strip_batch=False))
            else:
                outputs.append(self.act(n, r))
        if not outputs:
            raise ModelImportError("the model returns no tensor computed from its input")
        self.graph.set_outputs(outputs)


def _module_path(n: torch.fx.Node) -> str:
    stack = n.meta.get("nn_module_stack")
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    return str(path).removeprefix("L['self'].").removeprefix("L__self__.")


def _escapes(n: torch.fx.Node, path: str) -> bool:
    """Whether ``n``'s value is read outside module ``path`` (or is a graph output), looking through the
    items a tuple-valued node hands out."""
    for u in n.users:
        if u.op == "output":
            return True
        if u.target is operator.getitem:
            if _escapes(u, path):
                return True
            continue
        inner = _module_path(u)
        if inner != path and not inner.startswith(path + "."):
            return True
    return False


def _live(nodes: list[torch.fx.Node]) -> set[torch.fx.Node]:
    """Nodes the outputs depend on (a module's unused results, such as attention weights, are skipped)."""
    live: set[torch.fx.Node] = set()
    for n in reversed(nodes):
        if n.op == "output" or n in live:
            live.add(n)
            live.update(n.all_input_nodes)
    return live
