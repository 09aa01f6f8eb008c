"""Import an ONNX model into the IR.

Handles the spellings of both PyTorch exporters (TorchScript and dynamo): Gemm or MatMul(+Add) for
linear layers, Clip for ReLU6, GlobalAveragePool+Flatten or ReduceMean+Reshape for global pooling, and
BatchNormalization folded into the preceding Conv/Gemm. Unequal begin/end pads (TensorFlow's 'SAME' with
stride 2, ``auto_pad`` SAME_UPPER/LOWER) are kept as such, and a constant Pad node of the spatial axes
(Keras' ZeroPadding2D, or torch's export of :class:`~accelflow.zoo.PadConv2d`) is folded into the pads of
the Conv (zeros) or MaxPool (-inf) that reads it. Errors name the file, the node and the operator, and
list what is supported.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from accelflow.errors import ModelImportError, UnsupportedOperatorError
from accelflow.ir import (
    ChannelSparsity,
    ConcatAttrs,
    ConvAttrs,
    GlobalPoolAttrs,
    Graph,
    HardSigmoidAttrs,
    LinearAttrs,
    Node,
    OpKind,
    PoolAttrs,
    ReshapeAttrs,
    SoftmaxAttrs,
    ThresholdAttrs,
    canonicalize,
    fold_batchnorm,
    propagate_shapes,
)

__all__ = ["from_onnx", "SUPPORTED_ONNX_OPS"]


@dataclass(frozen=True)
class _PendingPad:
    """A Pad node's input, spatial pads (begins then ends) and fill value, until a consumer folds it."""

    x: Node
    pads: tuple[int, ...]
    value: float
    node: str


class _Importer:
    def __init__(self, model: onnx.ModelProto, source: str) -> None:
        self.model = model
        self.source = source
        self.graph = Graph(model.graph.name or Path(source).stem)
        self.consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        self.values: dict[str, Node] = {}
        self.comparisons: dict[str, tuple[Node, float]] = {}  # Greater(x, t) outputs awaiting a Where
        self.pads: dict[str, _PendingPad] = {}  # Pad outputs awaiting the Conv / MaxPool that reads them
        self.consumers: dict[str, int] = {}
        for n in model.graph.node:
            for i in n.input:
                self.consumers[i] = self.consumers.get(i, 0) + 1

    # -- helpers -------------------------------------------------------------------------------
    def where(self, n: onnx.NodeProto) -> str:
        return f"{self.source}: node {n.name or n.output[0]!r} ({n.op_type})"

    def act(self, n: onnx.NodeProto, i: int = 0) -> Node:
        name = n.input[i]
        if name in self.pads:
            raise UnsupportedOperatorError(
                f"{self.where(n)}: input {name!r} comes from Pad node {self.pads[name].node!r}; a Pad is "
                "supported only where it folds into the pads of what reads it: zeros into a Conv, -inf into a "
                "MaxPool"
            )
        if name not in self.values:
            kind = "a constant" if name in self.consts else "not produced by any supported node"
            raise UnsupportedOperatorError(f"{self.where(n)}: input {name!r} is {kind}; expected an activation")
        return self.values[name]

    def const(self, n: onnx.NodeProto, i: int, required: bool = True) -> np.ndarray | None:
        if i >= len(n.input) or not n.input[i]:
            if required:
                raise ModelImportError(f"{self.where(n)}: missing input {i}")
            return None
        if n.input[i] not in self.consts:
            raise UnsupportedOperatorError(f"{self.where(n)}: input {n.input[i]!r} must be a constant initializer")
        return self.consts[n.input[i]]

    @staticmethod
    def attrs(n: onnx.NodeProto) -> dict[str, Any]:
        return {a.name: helper.get_attribute_value(a) for a in n.attribute}

    def emit(self, n: onnx.NodeProto, op: OpKind, inputs: list[Node], attrs: Any = None,
             params: dict[str, np.ndarray | None] | None = None, name: str | None = None) -> Node:
        node = self.graph.add_node(self.graph.unique_name(name or n.name or n.output[0]), op, inputs, attrs,
                                   {k: v.astype(np.float32) for k, v in (params or {}).items() if v is not None})
        self.values[n.output[0]] = node
        return node

    @staticmethod
    def param_name(initializer: str) -> str | None:
        """'layer1.0.conv1.weight' -> 'layer1.0.conv1' (exporters keep module paths in initializer names)."""
        for suffix in (".weight", ".W"):
            if initializer.endswith(suffix):
                return initializer[: -len(suffix)]
        return None

    # -- operators -----------------------------------------------------------------------------
    def conv(self, n: onnx.NodeProto) -> None:
        w = self.const(n, 1)
        assert w is not None
        a = self.attrs(n)
        dims = w.ndim - 2
        if dims not in (1, 2):
            raise UnsupportedOperatorError(f"{self.where(n)}: only 1-D and 2-D convolutions are supported")
        kernel = tuple(int(k) for k in a.get("kernel_shape", w.shape[2:]))
        stride = tuple(int(s) for s in a.get("strides", [1] * dims))
        dil = tuple(int(d) for d in a.get("dilations", [1] * dims))
        x, extra = self.padded_input(n, dims, 0.0)
        pads = self.node_pads(n, x, extra, kernel, stride, dil)
        groups = int(a.get("group", 1))
        attrs = ConvAttrs(w.shape[1] * groups, w.shape[0], kernel, stride, pads, dil, groups)
        node = self.emit(n, OpKind.CONV, [x], attrs, {"weight": w, "bias": self.const(n, 2, required=False)},
                         name=self.param_name(n.input[1]))
        if "channel_sparsity_hist" in a:  # fpgaConvNet layout: [channel][zeros], C_in x (K*K+1)
            try:
                node.annotate(ChannelSparsity.from_onnx_attribute(
                    a["channel_sparsity_hist"], attrs.in_channels, attrs.kernel_size, source=self.source))
            except ValueError as exc:
                raise ModelImportError(f"{self.where(n)}: {exc}") from None

    def node_pads(self, n: onnx.NodeProto, x: Node, extra: tuple[int, ...], kernel: tuple[int, ...],
                  stride: tuple[int, ...], dil: tuple[int, ...]) -> tuple[int, ...]:
        """Begin-then-end pads of Conv/pooling node ``n`` on input ``x``: its ``pads`` (or ``auto_pad`` SAME,
        computed from ``x``'s shape) plus ``extra``, those of a Pad node it reads (:meth:`padded_input`)."""
        a = self.attrs(n)
        pads = tuple(int(p) for p in a.get("pads", [0] * len(extra)))
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto not in ("NOTSET", "VALID"):
            if any(extra):
                raise UnsupportedOperatorError(f"{self.where(n)}: a Pad before a {n.op_type} with auto_pad {auto}")
            propagate_shapes(self.graph)
            pads = _same_pads(x.shape[1:], kernel, stride, dil, upper=auto == "SAME_UPPER")  # type: ignore[index]
        return tuple(p + e for p, e in zip(pads, extra, strict=True))

    def padded_input(self, n: onnx.NodeProto, dims: int, fill: float) -> tuple[Node, tuple[int, ...]]:
        """``n``'s input and the pads of a Pad node it reads (zeros when it reads none), which must fill with
        ``fill`` (0 for a Conv, -inf for a MaxPool) to fold into ``n``'s own pads."""
        pending = self.pads.get(n.input[0])
        if pending is None:
            return self.act(n), (0,) * 2 * dims
        if pending.value != fill:
            raise UnsupportedOperatorError(f"{self.where(n)}: reads Pad node {pending.node!r} filling with "
                                           f"{pending.value}; a {n.op_type} folds only a Pad filling with {fill}")
        if len(pending.pads) != 2 * dims:
            raise ModelImportError(f"{self.where(n)}: the Pad it reads pads {len(pending.pads) // 2} spatial axes, "
                                   f"the {n.op_type} has {dims}")
        return pending.x, pending.pads

    def pad(self, n: onnx.NodeProto) -> None:
        """Constant padding of the spatial axes, held until the Conv (zeros) or MaxPool (-inf) that reads it
        adds it to its own pads."""
        a = self.attrs(n)
        mode = a.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if mode != "constant":
            raise UnsupportedOperatorError(f"{self.where(n)}: Pad mode {mode!r}; only 'constant' zero padding")
        pads = np.asarray(a["pads"] if "pads" in a else self.const(n, 1)).astype(np.int64).reshape(-1)
        value = a.get("value", 0.0) if "pads" in a else self.const(n, 2, required=False)
        fill = 0.0 if value is None or np.asarray(value).size == 0 else float(np.asarray(value).reshape(-1)[0])
        if fill not in (0.0, -math.inf):
            raise UnsupportedOperatorError(f"{self.where(n)}: Pad value {fill}; only 0 (before a Conv) or -inf "
                                           "(before a MaxPool)")
        x = self.act(n)
        propagate_shapes(self.graph)
        rank = len(x.shape) + 1  # type: ignore[arg-type]
        given = self.const(n, 3, required=False)
        raw = list(range(rank)) if given is None else [int(ax) for ax in np.asarray(given).reshape(-1)]
        if any(not -rank <= ax < rank for ax in raw) or len({ax % rank for ax in raw}) != len(raw):
            raise ModelImportError(f"{self.where(n)}: axes {raw} for a rank-{rank} input (each in [{-rank}, {rank}), "
                                   "once)")
        axes = [ax % rank for ax in raw]
        if len(pads) != 2 * len(axes):
            raise ModelImportError(f"{self.where(n)}: {len(pads)} pads for {len(axes)} axes")
        full = [0] * 2 * rank
        for i, ax in enumerate(axes):
            full[ax], full[rank + ax] = int(pads[i]), int(pads[len(axes) + i])
        if any(p < 0 for p in full) or full[0] or full[1] or full[rank] or full[rank + 1]:
            raise UnsupportedOperatorError(f"{self.where(n)}: pads {full} (begins, then ends, per axis); only "
                                           "non-negative padding of the spatial axes")
        self.pads[n.output[0]] = _PendingPad(x, tuple(full[2:rank] + full[rank + 2:]), fill, n.name or n.output[0])

    def gemm(self, n: onnx.NodeProto) -> None:
        a = self.attrs(n)
        if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
            raise UnsupportedOperatorError(f"{self.where(n)}: Gemm only with transA=0, alpha=1, beta=1")
        w = self.const(n, 1)
        assert w is not None
        w = w if a.get("transB", 0) else w.T
        self.emit(n, OpKind.LINEAR, [self.act(n)], LinearAttrs(w.shape[1], w.shape[0]),
                  {"weight": w, "bias": self.const(n, 2, required=False)}, name=self.param_name(n.input[1]))

    def matmul(self, n: onnx.NodeProto) -> None:
        if n.input[1] in self.consts and self.consts[n.input[1]].ndim == 2:
            w = self.consts[n.input[1]].T
            self.emit(n, OpKind.LINEAR, [self.act(n)], LinearAttrs(w.shape[1], w.shape[0]), {"weight": w},
                      name=self.param_name(n.input[1]))
        else:
            self.emit(n, OpKind.MATMUL, [self.act(n, 0), self.act(n, 1)])

    def add(self, n: onnx.NodeProto) -> None:
        consts = [i for i, name in enumerate(n.input) if name in self.consts]
        if len(consts) == 1:  # MatMul + Add(bias) from exporters that do not emit Gemm
            other = self.act(n, 1 - consts[0])
            bias = self.consts[n.input[consts[0]]].reshape(-1)
            if other.op is OpKind.LINEAR and other.bias is None and self.consumers.get(_out(other, self), 0) == 1:
                other.params["bias"] = bias.astype(np.float32)
                self.values[n.output[0]] = other
                return
            raise UnsupportedOperatorError(f"{self.where(n)}: Add of a constant is supported only as a linear bias")
        self.emit(n, OpKind.ADD, [self.act(n, 0), self.act(n, 1)])

    def mul(self, n: onnx.NodeProto) -> None:
        x, y = self.act(n, 0), self.act(n, 1)
        for a, b in ((x, y), (y, x)):  # x * sigmoid(x) is SiLU (exporters decompose it)
            if b.op is OpKind.SIGMOID and b.inputs[0] is a and len(b.users) == 0:
                self.graph.erase_node(b)
                self.emit(n, OpKind.SILU, [a])
                return
        self.emit(n, OpKind.MUL, [x, y])

    def batchnorm(self, n: onnx.NodeProto) -> None:
        prev = self.act(n)
        if prev.op not in (OpKind.CONV, OpKind.LINEAR) or prev.users or self.consumers.get(n.input[0], 0) != 1:
            raise UnsupportedOperatorError(
                f"{self.where(n)}: BatchNormalization must directly follow a Conv/Gemm used only by it (it is folded)"
            )
        gamma, beta, mean, var = (self.const(n, i) for i in range(1, 5))
        eps = float(self.attrs(n).get("epsilon", 1e-5))
        w, b = fold_batchnorm(prev.params["weight"], prev.bias, gamma, beta, mean, var, eps)  # type: ignore[arg-type]
        prev.params["weight"], prev.params["bias"] = w, b
        self.values[n.output[0]] = prev

    def clip(self, n: onnx.NodeProto) -> None:
        a = self.attrs(n)
        lo = self.const(n, 1, required=False) if len(n.input) > 1 else a.get("min")
        hi = self.const(n, 2, required=False) if len(n.input) > 2 else a.get("max")
        lo_v = None if lo is None else float(np.asarray(lo))
        hi_v = None if hi is None else float(np.asarray(hi))
        x = self.act(n)
        if lo_v is None and hi_v is not None and x.op is OpKind.THRESHOLD_RELU and not x.users \
                and isinstance(x.attrs, ThresholdAttrs) and x.attrs.clip is None:
            x.attrs = ThresholdAttrs(x.attrs.threshold, hi_v)  # torch.where(x > t, x, 0).clamp(max=c)
            self.values[n.output[0]] = x
        elif lo_v == 0.0 and hi_v == 6.0:
            self.emit(n, OpKind.RELU6, [self.act(n)])
        elif lo_v == 0.0 and hi_v is None:
            self.emit(n, OpKind.RELU, [self.act(n)])
        else:
            raise UnsupportedOperatorError(f"{self.where(n)}: Clip({lo_v}, {hi_v}); only Clip(0, 6) and Clip(0)")

    def pool(self, n: onnx.NodeProto) -> None:
        a = self.attrs(n)
        kernel = tuple(int(k) for k in a["kernel_shape"])
        dims = len(kernel)
        if any(int(d) != 1 for d in a.get("dilations", [1] * dims)):
            raise UnsupportedOperatorError(f"{self.where(n)}: dilated pooling is not supported")
        stride = tuple(int(s) for s in a.get("strides", [1] * dims))
        x, extra = self.padded_input(n, dims, -math.inf) if n.op_type == "MaxPool" else (self.act(n), (0,) * 2 * dims)
        pads = self.node_pads(n, x, extra, kernel, stride, (1,) * dims)
        attrs = PoolAttrs(kernel, stride, pads, bool(a.get("ceil_mode", 0)), bool(a.get("count_include_pad", 0)))
        self.emit(n, OpKind.MAXPOOL if n.op_type == "MaxPool" else OpKind.AVGPOOL, [x], attrs)

    def reduce_mean(self, n: onnx.NodeProto) -> None:
        a = self.attrs(n)
        axes = a.get("axes")
        if axes is None and len(n.input) > 1:
            axes = self.const(n, 1)
        x = self.act(n)
        propagate_shapes(self.graph)
        rank = len(x.shape or ()) + 1
        if axes is None or {int(v) % rank for v in np.asarray(axes).reshape(-1)} != set(range(2, rank)):
            raise UnsupportedOperatorError(f"{self.where(n)}: ReduceMean only over all spatial axes")
        self.emit(n, OpKind.GLOBAL_AVGPOOL, [x], GlobalPoolAttrs(keepdims=bool(a.get("keepdims", 1))))

    def reshape(self, n: onnx.NodeProto) -> None:
        target = self.const(n, 1)
        assert target is not None
        x = self.act(n)
        propagate_shapes(self.graph)
        shape = [int(d) for d in target.reshape(-1)]
        if not shape:
            raise UnsupportedOperatorError(f"{self.where(n)}: reshape to a scalar is not supported")
        inner = [x.shape[i - 1] if d == 0 and i > 0 else d for i, d in enumerate(shape)][1:]  # type: ignore[index]
        self.emit(n, OpKind.RESHAPE, [x], ReshapeAttrs(tuple(inner)))

    def flatten(self, n: onnx.NodeProto) -> None:
        if int(self.attrs(n).get("axis", 1)) != 1:
            raise UnsupportedOperatorError(f"{self.where(n)}: Flatten only with axis=1 (keep the batch)")
        self.emit(n, OpKind.FLATTEN, [self.act(n)])

    def greater(self, n: onnx.NodeProto) -> None:
        t = self.const(n, 1)
        if t is None or t.size != 1:
            raise UnsupportedOperatorError(f"{self.where(n)}: Greater only against a scalar threshold")
        self.comparisons[n.output[0]] = (self.act(n), float(t.reshape(-1)[0]))

    def where_op(self, n: onnx.NodeProto) -> None:
        """Where(x > t, x, 0) is a thresholded ReLU (PyTorch exports ThresholdReLU this way)."""
        cond = self.comparisons.get(n.input[0])
        zeros = self.consts.get(n.input[2])
        if cond is None or zeros is None or np.any(zeros) or self.values.get(n.input[1]) is not cond[0]:
            raise UnsupportedOperatorError(f"{self.where(n)}: Where only as Where(x > t, x, 0) (thresholded ReLU)")
        self.emit(n, OpKind.THRESHOLD_RELU, [cond[0]], ThresholdAttrs(cond[1]))

    def unsqueeze(self, n: onnx.NodeProto) -> None:
        axes = self.attrs(n).get("axes")
        if axes is None:
            axes = self.const(n, 1)
        x = self.act(n)
        propagate_shapes(self.graph)
        full = [1, *x.shape]  # type: ignore[misc]
        if n.op_type == "Unsqueeze":
            rank = len(full) + len(np.asarray(axes).reshape(-1))
            for ax in sorted(int(a) % rank for a in np.asarray(axes).reshape(-1)):
                full.insert(ax, 1)
        else:
            drop = {int(a) % len(full) for a in np.asarray(axes).reshape(-1)} if axes is not None else None
            full = [d for i, d in enumerate(full) if not (d == 1 and (drop is None or i in drop) and i > 0)]
        self.emit(n, OpKind.RESHAPE, [x], ReshapeAttrs(tuple(full[1:])))

    def passthrough(self, n: onnx.NodeProto) -> None:
        self.values[n.output[0]] = self.act(n)

    def run(self) -> Graph:
        g = self.model.graph
        for inp in g.input:
            if inp.name in self.consts:
                continue
            dims = inp.type.tensor_type.shape.dim
            shape = [d.dim_value if d.HasField("dim_value") else -1 for d in dims][1:]
            if not dims or any(s <= 0 for s in shape):
                raise ModelImportError(
                    f"{self.source}: input {inp.name!r} needs a static shape (batch first), got "
                    f"{[d.dim_value or d.dim_param for d in dims]}"
                )
            self.values[inp.name] = self.graph.add_input(inp.name, shape)
        for n in g.node:
            if not all(isinstance(t, str) for t in (n.name, n.op_type, *n.input, *n.output)):  # protobuf: bad UTF-8
                raise ModelImportError(f"{self.source}: node {n.name!r} has a name that is not valid UTF-8")
            if n.op_type == "Constant":
                value = next((a for a in n.attribute if a.name == "value"), None)
                if value is None:
                    raise UnsupportedOperatorError(f"{self.where(n)}: only tensor-valued Constant nodes")
                self.consts[n.output[0]] = numpy_helper.to_array(value.t)
                continue
            handler = _OP_TABLE.get(n.op_type)
            if handler is None:
                raise UnsupportedOperatorError(
                    f"{self.where(n)}: operator {n.op_type} is not supported; supported: "
                    f"{', '.join(sorted(SUPPORTED_ONNX_OPS))}"
                )
            try:
                handler(self, n)
            except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError) as exc:  # malformed node
                raise ModelImportError(f"{self.where(n)}: malformed node ({type(exc).__name__}: {exc})") from exc
        missing = [o.name for o in g.output if o.name not in self.values]
        if missing:
            raise ModelImportError(f"{self.source}: outputs {missing} are not computed by supported nodes")
        self.graph.set_outputs([self.values[o.name] for o in g.output])
        try:
            return canonicalize(self.graph)
        except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError) as exc:  # e.g. stride 0
            raise ModelImportError(f"{self.source}: malformed model ({type(exc).__name__}: {exc})") from exc


def _out(node: Node, imp: _Importer) -> str:
    return next(k for k, v in imp.values.items() if v is node)


def _same_pads(spatial: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...],
               dil: tuple[int, ...], upper: bool) -> tuple[int, ...]:
    totals = []
    for size, k, s, d in zip(spatial, kernel, stride, dil, strict=True):
        out = math.ceil(size / s)
        totals.append(max(0, (out - 1) * s + d * (k - 1) + 1 - size))
    small = [t // 2 for t in totals]
    big = [t - t // 2 for t in totals]
    return tuple(small + big) if upper else tuple(big + small)


def _simple(op: OpKind, attrs: Callable[[dict[str, Any]], Any] | None = None) -> Callable[[_Importer, onnx.NodeProto], None]:
    def handler(imp: _Importer, n: onnx.NodeProto) -> None:
        imp.emit(n, op, [imp.act(n)], attrs(imp.attrs(n)) if attrs else None)

    return handler


def _softmax_attrs(a: dict[str, Any]) -> SoftmaxAttrs:
    axis = int(a.get("axis", -1))
    return SoftmaxAttrs(axis - 1 if axis > 0 else axis)


def _concat(imp: _Importer, n: onnx.NodeProto) -> None:
    axis = int(imp.attrs(n)["axis"])
    imp.emit(n, OpKind.CONCAT, [imp.act(n, i) for i in range(len(n.input))], ConcatAttrs(axis - 1 if axis > 0 else axis))


_OP_TABLE: dict[str, Callable[[_Importer, onnx.NodeProto], None]] = {
    "Conv": _Importer.conv,
    "Gemm": _Importer.gemm,
    "MatMul": _Importer.matmul,
    "BatchNormalization": _Importer.batchnorm,
    "Relu": _simple(OpKind.RELU),
    "Clip": _Importer.clip,
    "ThresholdedRelu": _simple(OpKind.THRESHOLD_RELU, lambda a: ThresholdAttrs(float(a.get("alpha", 1.0)))),
    "HardSwish": _simple(OpKind.HARDSWISH),
    "HardSigmoid": _simple(
        OpKind.HARDSIGMOID, lambda a: HardSigmoidAttrs(float(a.get("alpha", 0.2)), float(a.get("beta", 0.5)))
    ),
    "Sigmoid": _simple(OpKind.SIGMOID),
    "MaxPool": _Importer.pool,
    "AveragePool": _Importer.pool,
    "GlobalAveragePool": _simple(OpKind.GLOBAL_AVGPOOL, lambda a: GlobalPoolAttrs(keepdims=True)),
    "ReduceMean": _Importer.reduce_mean,
    "Add": _Importer.add,
    "Mul": _Importer.mul,
    "Concat": _concat,
    "Flatten": _Importer.flatten,
    "Reshape": _Importer.reshape,
    "Softmax": _simple(OpKind.SOFTMAX, _softmax_attrs),
    "Greater": _Importer.greater,
    "Where": _Importer.where_op,
    "Unsqueeze": _Importer.unsqueeze,
    "Squeeze": _Importer.unsqueeze,
    "Pad": _Importer.pad,
    "Dropout": _Importer.passthrough,
    "Identity": _Importer.passthrough,
}

SUPPORTED_ONNX_OPS = frozenset(_OP_TABLE) | {"Constant"}


def from_onnx(source: str | Path | onnx.ModelProto) -> Graph:
    """Read an ONNX file (or a loaded ``ModelProto``) into the IR; input shapes must be static."""
    if isinstance(source, onnx.ModelProto):
        model, label = source, source.graph.name or "<onnx model>"
    else:
        label = str(source)
        path = Path(source)
        if not path.is_file():
            raise ModelImportError(f"{label}: no such ONNX file")
        try:
            model = onnx.load(str(path))
        except Exception as exc:  # protobuf DecodeError and friends
            raise ModelImportError(f"{label}: not a readable ONNX model ({type(exc).__name__}: {exc})") from exc
    try:
        onnx.checker.check_model(_without_extensions(model))
    except Exception as exc:
        raise ModelImportError(f"{label}: invalid ONNX model: {str(exc).splitlines()[0]}") from exc
    return _Importer(model, label).run()


#: Non-standard node attributes we read ourselves (the checker rejects unknown attributes of standard ops).
EXTENSION_ATTRIBUTES = frozenset({"channel_sparsity_hist"})


def _without_extensions(model: onnx.ModelProto) -> onnx.ModelProto:
    if not any(a.name in EXTENSION_ATTRIBUTES for n in model.graph.node for a in n.attribute):
        return model
    stripped = onnx.ModelProto()
    stripped.CopyFrom(model)
    for node in stripped.graph.node:
        keep = [a for a in node.attribute if a.name not in EXTENSION_ATTRIBUTES]
        del node.attribute[:]
        node.attribute.extend(keep)
    return stripped
