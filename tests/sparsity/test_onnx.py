"""channel_sparsity_hist export, read-back (ours and the dataflow reader) and IR annotation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from accelflow.frontends import from_pytorch
from accelflow.ir import ChannelSparsity, OpKind
from accelflow.sparsity import (
    ATTRIBUTE,
    SparsityError,
    annotate_graph,
    export_sparsity_onnx,
    measure_sparsity,
    read_sparsity_onnx,
)
from accelflow.zoo import create, replace_activations


@pytest.fixture(scope="module")
def lenet_stats():
    model = replace_activations(create("lenet5"), 0.05)
    torch.manual_seed(0)
    stats = measure_sparsity(model, [torch.randn(4, 1, 28, 28)])
    return model, stats


@pytest.fixture(scope="module")
def exported(lenet_stats, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export for the module: torch's ONNX exporter takes seconds per call."""
    model, stats = lenet_stats
    return export_sparsity_onnx(model, (1, 28, 28), stats, tmp_path_factory.mktemp("onnx") / "lenet.onnx")


def test_export_and_read_back(lenet_stats, exported: Path) -> None:
    _, stats = lenet_stats
    path = exported
    proto = onnx.load(str(path))
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    assert len(convs) == len(stats) == 2
    for node in convs:
        attr = next(a for a in node.attribute if a.name == ATTRIBUTE)
        assert len(attr.floats) % 26 == 0  # C_in x (5*5 + 1)
    back = read_sparsity_onnx(path)
    assert set(back) == set(stats)
    for name, s in stats.items():
        np.testing.assert_allclose(back[name], s.hist, atol=1e-6)  # stored as float32


def test_dataflow_reader_round_trip(lenet_stats, exported: Path) -> None:
    dataflow = pytest.importorskip("accelflow.dataflow")
    _, stats = lenet_stats
    theirs = dataflow.read_sparsity_from_onnx(exported)
    assert len(theirs) == len(stats)
    for mine, record in zip(stats.values(), theirs.values(), strict=True):  # both in file/layer order
        np.testing.assert_allclose(record.hist, mine.hist, atol=1e-6)


def test_annotate_graph(lenet_stats) -> None:
    model, stats = lenet_stats
    graph = from_pytorch(model, (1, 28, 28))
    annotate_graph(graph, stats)
    for node in graph.find(OpKind.CONV):
        record = node.annotation(ChannelSparsity)
        assert record is not None
        np.testing.assert_allclose(record.hist, stats[node.name].hist)
    with pytest.raises(SparsityError):
        annotate_graph(graph, {"missing": stats["features.conv1"]})
    with pytest.raises(SparsityError):  # conv2 has 6 input channels, conv1's histogram has 1
        annotate_graph(graph, {"features.conv2": stats["features.conv1"]})
