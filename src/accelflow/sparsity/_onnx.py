"""Attach measured histograms to IR conv nodes and export them as an ONNX Conv attribute.

The attribute is ``channel_sparsity_hist``: floats, the ``(C_in, K*K+1)`` histogram flattened row-major
(``[channel][zeros]``), as fpgaConvNet-based tools (HASS) read it. Conv nodes are matched to PyTorch modules
through their weight initializer, named ``<module path>.weight`` by torch's exporter.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import helper
from torch import nn

from accelflow.dataflow._lockstep import apply_window_samples, save_window_samples, window_sample_path
from accelflow.ir import ChannelSparsity, Graph, OpKind
from accelflow.sparsity._errors import SparsityError
from accelflow.sparsity._measure import ConvSparsity

__all__ = ["ATTRIBUTE", "annotate_graph", "export_sparsity_onnx", "read_sparsity_onnx"]

log = logging.getLogger(__name__)

#: Name of the ONNX Conv attribute (fpgaConvNet/HASS layout).
ATTRIBUTE = "channel_sparsity_hist"

_Hists = Mapping[str, ConvSparsity | ChannelSparsity | np.ndarray]


def _hist(value: ConvSparsity | ChannelSparsity | np.ndarray) -> np.ndarray:
    if isinstance(value, ConvSparsity):
        return value.hist
    if isinstance(value, ChannelSparsity):
        return value.hist
    return ChannelSparsity(np.asarray(value)).hist  # validates shape and normalisation


def annotate_graph(graph: Graph, hists: _Hists, strict: bool = True) -> Graph:
    """Attach a :class:`ChannelSparsity` to each conv node named in ``hists`` (in place; returns ``graph``).

    Names are IR node names, which :func:`accelflow.frontends.from_pytorch` takes from module paths.
    With ``strict``, a histogram without a conv node, or one whose channel count or kernel size differs
    from the node's, is an error.
    """
    convs = {n.name: n for n in graph.find(OpKind.CONV)}
    for name, value in hists.items():
        node = convs.get(name)
        if node is None:
            if strict:
                raise SparsityError(f"histogram for {name!r}: no conv node of that name in graph {graph.name!r}")
            continue
        record = value if isinstance(value, ChannelSparsity) else ChannelSparsity(_hist(value))
        attrs = node.attrs
        taps = int(np.prod(attrs.kernel))  # type: ignore[union-attr]
        if record.channels != attrs.in_channels or record.kernel_size != taps:  # type: ignore[union-attr]
            raise SparsityError(
                f"histogram for {name!r} is {record.hist.shape}, node needs ({attrs.in_channels}, {taps + 1})"  # type: ignore[union-attr]
            )
        node.annotate(record)
        if isinstance(value, ConvSparsity) and value.windows is not None:
            apply_window_samples(graph, {name: value.windows})
    return graph


def _weight_names(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {node.input[1]: node for node in model.graph.node if node.op_type == "Conv" and len(node.input) > 1}


def export_sparsity_onnx(model: nn.Module, input_shape: Sequence[int], hists: _Hists, path: str | Path) -> Path:
    """Export ``model`` to ONNX at ``path`` with ``channel_sparsity_hist`` on each measured Conv node.

    ``hists`` is keyed by conv module path. Every key must match a Conv whose weight initializer is
    ``<key>.weight``; the attribute length is checked against the weight's ``C_in x (K*K+1)``. Window
    samples carried by :class:`ConvSparsity` values (``measure_sparsity(..., window_positions=N)``) go to
    ``<stem>.windows.npz`` beside the ONNX file (:func:`accelflow.dataflow.window_sample_path`); the
    ``channel_sparsity_hist`` attribute is the same with or without them.
    """
    from accelflow.frontends import export_onnx

    path = export_onnx(model, input_shape, path)
    proto = onnx.load(str(path))
    by_weight = _weight_names(proto)
    inits = {init.name: init for init in proto.graph.initializer}
    for name, value in hists.items():
        node = by_weight.get(f"{name}.weight")
        if node is None:
            raise SparsityError(
                f"no ONNX Conv with weight {name}.weight in {path}; Conv weights: {sorted(by_weight)[:8]}..."
            )
        hist = _hist(value)
        dims = list(inits[node.input[1]].dims) if node.input[1] in inits else None
        if dims is not None:
            groups = next((a.i for a in node.attribute if a.name == "group"), 1)
            cin, taps = dims[1] * groups, int(np.prod(dims[2:]))
            if hist.shape != (cin, taps + 1):
                raise SparsityError(f"histogram for {name!r} is {hist.shape}, Conv needs ({cin}, {taps + 1})")
        for attr in [a for a in node.attribute if a.name == ATTRIBUTE]:
            node.attribute.remove(attr)
        node.attribute.append(helper.make_attribute(ATTRIBUTE, hist.astype(np.float32).ravel().tolist()))
    onnx.save(proto, str(path))
    log.info("wrote %s with %d sparsity histograms", path, len(hists))
    windows = {k: v.windows for k, v in hists.items() if isinstance(v, ConvSparsity) and v.windows is not None}
    if windows:
        side = save_window_samples(window_sample_path(path), windows)
        log.info("wrote %s with %d window samples", side, len(windows))
    return path


def read_sparsity_onnx(path: str | Path) -> dict[str, np.ndarray]:
    """``{module path: (C_in, K*K+1) histogram}`` from the Conv attributes of an ONNX file."""
    proto = onnx.load(str(Path(path)))
    inits = {init.name: list(init.dims) for init in proto.graph.initializer}
    out: dict[str, np.ndarray] = {}
    for node in proto.graph.node:
        attr = next((a for a in node.attribute if a.name == ATTRIBUTE), None)
        if node.op_type != "Conv" or attr is None:
            continue
        weight = node.input[1]
        dims = inits.get(weight)
        if dims is None:
            raise SparsityError(f"{path}: Conv {node.name!r} has {ATTRIBUTE} but no weight initializer")
        taps = int(np.prod(dims[2:]))
        flat = np.asarray(attr.floats, dtype=np.float64)
        key = weight[: -len(".weight")] if weight.endswith(".weight") else weight
        out[key] = flat.reshape(-1, taps + 1)
    return out
