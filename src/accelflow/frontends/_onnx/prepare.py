"""Reading an ONNX file before import: validation, a static batch of 1, constant folding, shape inference.

The generic work is done by the field's tools: ``onnx.checker``, onnxscript's optimizer (constant folding,
Identity and dead-node removal) and ``onnx.shape_inference``. What they leave, because a shape was only
known once our importer had propagated it (``Shape`` of an activation), is evaluated node by node with
onnxruntime (:class:`ConstantFolder`), under a size limit so that a hostile file cannot
ask for a huge tensor.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from accelflow.errors import ModelImportError, UnsupportedOperatorError

__all__ = ["read_model", "prepare", "ConstantFolder", "MAX_FOLDED_ELEMENTS", "EXTENSION_ATTRIBUTES",
           "OPSET_RANGE", "CONTROL_FLOW_OPS"]

log = logging.getLogger(__name__)

#: Largest tensor (elements) the importer computes from constants (256 MiB of float32).
MAX_FOLDED_ELEMENTS = 64 * 1024 * 1024
#: Non-standard node attributes we read ourselves (the checker rejects unknown attributes of standard ops).
EXTENSION_ATTRIBUTES = frozenset({"channel_sparsity_hist"})
#: Opsets of the default domain the importer reads: 7 to the newest the installed onnx knows (both torch
#: exporters write 13-20).
OPSET_RANGE = (7, onnx.defs.onnx_opset_version())
#: Operators with subgraphs: never evaluated (a loop's trip count could be anything).
CONTROL_FLOW_OPS = frozenset({"Loop", "Scan", "If", "SequenceMap"})


def read_model(source: str | Path | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """Load and check a model; return it with a label for messages (the path)."""
    if isinstance(source, onnx.ModelProto):
        model, label = source, source.graph.name or "<onnx model>"
    else:
        label = str(source)
        path = Path(source)
        if not path.is_file():
            raise ModelImportError(f"{label}: no such ONNX file")
        try:
            model = onnx.load(str(path))
        except Exception as exc:  # protobuf DecodeError, missing external data, ...
            raise ModelImportError(f"{label}: not a readable ONNX model ({type(exc).__name__}: {exc})") from exc
    try:
        onnx.checker.check_model(_without_extensions(model))
    except Exception as exc:
        raise ModelImportError(f"{label}: invalid ONNX model: {str(exc).splitlines()[0]}") from exc
    version = opset_version(model)
    if not OPSET_RANGE[0] <= version <= OPSET_RANGE[1]:
        raise ModelImportError(f"{label}: opset {version} of the default domain; supported: "
                               f"{OPSET_RANGE[0]}-{OPSET_RANGE[1]} (re-export with opset_version=18)")
    return model, label


def opset_version(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


def prepare(model: onnx.ModelProto, label: str) -> tuple[onnx.ModelProto, dict[str, tuple[int, ...]]]:
    """A copy with batch 1 on every graph input, folded by onnxscript's optimizer where it can, and the
    static shapes onnx's shape inference gives (value name -> shape with batch)."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for inp in fixed.graph.input:
        dims = inp.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = 1  # a symbolic batch: import one sample
    if not any(n.op_type in CONTROL_FLOW_OPS for n in fixed.graph.node) and not _has_extensions(fixed):
        fixed = _optimize(fixed, label)  # files with our extension attributes are our own simple exports
    return fixed, _inferred_shapes(_without_extensions(fixed))


def _optimize(model: onnx.ModelProto, label: str) -> onnx.ModelProto:
    """onnxscript's function inlining, constant folding (with shape inference) and dead-node removal. Not
    its pattern rewrites: they fuse nodes (a Pad into a Conv) before the importer has checked them."""
    import onnxscript.optimizer
    from onnxscript import ir

    quiet = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir")]
    levels = [q.level for q in quiet]
    try:
        for q in quiet:
            q.setLevel(logging.ERROR)
        graph = ir.serde.deserialize_model(model)
        onnxscript.optimizer.inline(graph)
        for _ in range(2):
            folded = onnxscript.optimizer.fold_constants_ir(graph, onnx_shape_inference=True)
            onnxscript.optimizer.remove_unused_nodes(graph)
            if not folded.modified:
                break
        return ir.serde.serialize_model(graph)
    except Exception as exc:  # the optimizer is an aid: the importer folds what remains itself
        log.info("%s: onnxscript's optimizer failed (%s: %s); importing unoptimised", label, type(exc).__name__, exc)
        return model
    finally:
        for q, level in zip(quiet, levels, strict=True):
            q.setLevel(level)


def _inferred_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # inconsistent value_info in a hostile file: the importer's own shapes decide
        return {}
    out: dict[str, tuple[int, ...]] = {}
    for v in (*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input):
        if not v.type.HasField("tensor_type") or not v.type.tensor_type.HasField("shape"):
            continue
        dims = v.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            out[v.name] = tuple(int(d.dim_value) for d in dims)
    return out


def _has_extensions(model: onnx.ModelProto) -> bool:
    return any(a.name in EXTENSION_ATTRIBUTES for n in model.graph.node for a in n.attribute)


def _without_extensions(model: onnx.ModelProto) -> onnx.ModelProto:
    if not _has_extensions(model):
        return model
    stripped = onnx.ModelProto()
    stripped.CopyFrom(model)
    for node in stripped.graph.node:
        keep = [a for a in node.attribute if a.name not in EXTENSION_ATTRIBUTES]
        del node.attribute[:]
        node.attribute.extend(keep)
    return stripped


#: Operators whose output can be much larger than their inputs: folded only when its size is known.
_GROWING_OPS = frozenset({"ConstantOfShape", "Expand", "Tile", "Range", "Resize", "Upsample", "Pad", "MatMul",
                          "Gemm", "Einsum", "OneHot", "EyeLike", "RandomNormal", "RandomUniform", "Trilu", "Where",
                          "Add", "Mul", "Sub", "Div", "Equal", "Less", "Greater", "And", "Or"})


def _run_onnxruntime(model: onnx.ModelProto) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.log_severity_level = 4
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return [np.asarray(o) for o in session.run(None, {})]


class ConstantFolder:
    """Evaluates a node whose inputs are all constants with onnxruntime (onnx's reference implementation
    where onnxruntime has no kernel for the types)."""

    def __init__(self, model: onnx.ModelProto, label: str) -> None:
        self.opsets = list(model.opset_import)
        self.label = label

    def __call__(self, n: onnx.NodeProto, consts: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        where = f"{self.label}: node {n.name or n.output[0]!r} ({n.op_type})"
        if n.op_type in CONTROL_FLOW_OPS or n.domain not in ("", "ai.onnx"):
            raise UnsupportedOperatorError(f"{where}: operator {n.domain + '.' if n.domain else ''}{n.op_type} on "
                                           "constants is not evaluated (control flow and custom domains)")
        feeds = {name: consts[name] for name in n.input if name}
        self._check_size(n, feeds, where)
        model = self._single_node_model(n, feeds, with_values=True)
        try:
            return _run_onnxruntime(model)
        except Exception:  # a type combination onnxruntime has no kernel for: onnx's reference implementation
            pass
        from onnx.reference import ReferenceEvaluator

        try:
            outs = ReferenceEvaluator(model).run(None, {})
        except Exception as exc:
            raise ModelImportError(f"{where}: cannot evaluate on its constant inputs "
                                   f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from exc
        return [np.asarray(o) for o in outs]

    def _check_size(self, n: onnx.NodeProto, feeds: Mapping[str, np.ndarray], where: str) -> None:
        biggest = max((int(v.size) for v in feeds.values()), default=1)
        if n.op_type not in _GROWING_OPS:
            if biggest > MAX_FOLDED_ELEMENTS:
                raise ModelImportError(f"{where}: constant input of {biggest:,} elements; at most "
                                       f"{MAX_FOLDED_ELEMENTS:,} are computed at import")
            return
        model = self._single_node_model(n, feeds, with_values=False)
        try:
            inferred = onnx.shape_inference.infer_shapes(model, data_prop=True, strict_mode=True)
            dims = [d for o in inferred.graph.output for d in [o.type.tensor_type.shape.dim]]
            sizes = [math.prod(int(d.dim_value) for d in ds) if all(d.HasField("dim_value") for d in ds) else None
                     for ds in dims]
        except Exception as exc:
            raise ModelImportError(f"{where}: malformed on its constant inputs ({str(exc).splitlines()[0]})") from None
        if any(s is None for s in sizes):
            raise ModelImportError(f"{where}: the size of its output cannot be known before computing it; "
                                   "constant subgraphs must have static shapes")
        if max(sizes, default=0) > MAX_FOLDED_ELEMENTS:  # type: ignore[type-var]
            raise ModelImportError(f"{where}: would create a constant of {max(sizes):,} elements; at most "  # type: ignore[type-var]
                                   f"{MAX_FOLDED_ELEMENTS:,} are computed at import")

    def _single_node_model(self, n: onnx.NodeProto, feeds: Mapping[str, np.ndarray], with_values: bool) -> onnx.ModelProto:
        inits, inputs = [], []
        for name, value in feeds.items():
            if with_values or value.size <= 64:  # small tensors carry shapes: shape inference needs their values
                inits.append(numpy_helper.from_array(np.asarray(value), name))
            else:
                inputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype),
                                                            list(value.shape)))
        outputs = [helper.make_empty_tensor_value_info(o) for o in n.output if o]
        graph = helper.make_graph([n], "fold", inputs, outputs, initializer=inits)
        return helper.make_model(graph, opset_imports=self.opsets, ir_version=10)
