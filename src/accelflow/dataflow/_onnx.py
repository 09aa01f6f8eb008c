"""Read per-channel sparsity histograms from the ONNX Conv attribute ``channel_sparsity_hist``.

Layout (fpgaConvNet/HASS): a float list of length C_in x (K*K+1), row-major ``[channel][zeros]``.
Conv nodes are keyed like the IR importer names them: the weight initializer without ``.weight``
(the PyTorch module path), else the ONNX node name, else its first output.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import onnx

from accelflow.errors import ConfigError, ModelImportError
from accelflow.ir import ChannelSparsity, ConvAttrs, Graph, OpKind

__all__ = ["read_sparsity_from_onnx", "load_onnx_with_sparsity", "apply_sparsity", "ONNX_ATTRIBUTE"]

ONNX_ATTRIBUTE = "channel_sparsity_hist"


def _key(weight: str, node_name: str, output: str) -> str:
    for suffix in (".weight", ".W"):
        if weight.endswith(suffix):
            return weight[: -len(suffix)]
    return node_name or output


def _load(path: str | Path) -> onnx.ModelProto:
    p = Path(path)
    if not p.exists():
        raise ModelImportError(f"{p}: no such file")
    try:
        return onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # onnx raises several unrelated types for a bad file
        raise ModelImportError(f"{p}: not a readable ONNX model ({type(exc).__name__}: {exc})") from exc


def read_sparsity_from_onnx(path: str | Path) -> dict[str, ChannelSparsity]:
    """``{layer name: ChannelSparsity}`` for every Conv of ``path`` carrying the attribute, in file order."""
    return _read_proto(_load(path), Path(path))


def load_onnx_with_sparsity(path: str | Path) -> tuple[Graph, dict[str, ChannelSparsity]]:
    """Import an ONNX model whose Conv nodes may carry ``channel_sparsity_hist``; the importer annotates
    them, and the histograms are returned keyed by layer name."""
    from accelflow.frontends import from_onnx

    graph = from_onnx(path)
    hists = {n.name: rec for n in graph.find(OpKind.CONV) if (rec := n.annotation(ChannelSparsity)) is not None}
    return graph, hists


def _read_proto(proto: onnx.ModelProto, p: Path) -> dict[str, ChannelSparsity]:
    dims = {init.name: list(init.dims) for init in proto.graph.initializer}
    out: dict[str, ChannelSparsity] = {}
    for node in proto.graph.node:
        if node.op_type != "Conv":
            continue
        attr = next((a for a in node.attribute if a.name == ONNX_ATTRIBUTE), None)
        if attr is None:
            continue
        weight = node.input[1] if len(node.input) > 1 else ""
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        shape = dims.get(weight)
        kernel = next((list(a.ints) for a in node.attribute if a.name == "kernel_shape"), None)
        taps = math.prod(shape[2:]) if shape else (math.prod(kernel) if kernel else None)
        name = _key(weight, node.name, node.output[0])
        if taps is None:
            raise ModelImportError(f"{p}: Conv {name!r}: kernel size unknown (no weight initializer or kernel_shape)")
        channels = shape[1] * group if shape else len(attr.floats) // (taps + 1)
        try:
            out[name] = ChannelSparsity.from_onnx_attribute(attr.floats, channels, taps, source=str(p))
        except ValueError as exc:
            raise ModelImportError(f"{p}: Conv {name!r}: {exc}") from None
    return out


def apply_sparsity(graph: Graph, sparsity: Mapping[str, ChannelSparsity]) -> int:
    """Annotate the conv nodes of ``graph`` (in place): by name when every name matches, else in order.

    Returns the number of annotated nodes; a histogram that does not fit its node is a ConfigError.
    """
    convs = graph.find(OpKind.CONV)
    by_name = {n.name: n for n in convs}
    if all(k in by_name for k in sparsity):
        pairs = [(by_name[k], v) for k, v in sparsity.items()]
    else:
        with_taps = [n for n in convs]
        if len(with_taps) != len(sparsity):
            raise ConfigError(
                f"cannot match {len(sparsity)} sparsity histograms to the {len(convs)} conv layers of "
                f"{graph.name!r}: names differ and counts differ"
            )
        pairs = list(zip(with_taps, sparsity.values(), strict=True))
    for node, record in pairs:
        a = node.attrs
        assert isinstance(a, ConvAttrs)
        if record.hist.shape != (a.in_channels, a.kernel_size + 1):
            raise ConfigError(
                f"layer {node.name!r}: histogram {record.hist.shape} does not fit "
                f"({a.in_channels}, {a.kernel_size + 1})"
            )
        node.annotate(record)
    return len(pairs)
