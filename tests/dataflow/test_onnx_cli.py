import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import helper
from torch import nn

from accelflow.cli.main import main
from accelflow.dataflow import apply_sparsity, load_onnx_with_sparsity, read_sparsity_from_onnx
from accelflow.errors import ModelImportError
from accelflow.frontends import export_onnx, load_model
from accelflow.ir import ChannelSparsity


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.conv2(self.relu(self.conv1(x)))), 1))


def _write(tmp_path: Path, hists: dict[str, np.ndarray]) -> Path:
    path = export_onnx(Tiny(), (3, 8, 8), tmp_path / "tiny.onnx")
    proto = onnx.load(str(path))
    for node in proto.graph.node:
        key = node.input[1].removesuffix(".weight") if node.op_type == "Conv" else None
        if key in hists:
            node.attribute.append(helper.make_attribute("channel_sparsity_hist", hists[key].ravel().tolist()))
    onnx.save(proto, str(path))
    return path


def _hists() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    h1 = rng.dirichlet(np.ones(10), size=3)
    h2 = np.zeros((8, 10))
    h2[:, 5] = 1.0  # 5 of 9 products zero everywhere
    return {"conv1": h1, "conv2": h2}


def test_read_and_apply_by_name(tmp_path: Path) -> None:
    path = _write(tmp_path, _hists())
    got = read_sparsity_from_onnx(path)
    assert list(got) == ["conv1", "conv2"]
    np.testing.assert_allclose(got["conv1"].hist, _hists()["conv1"], atol=1e-6)
    g, hists = load_onnx_with_sparsity(path)  # the importer's checker rejects the attribute itself
    assert list(hists) == ["conv1", "conv2"] and g["conv2"].annotations
    plain = load_model(str(export_onnx(Tiny(), (3, 8, 8), tmp_path / "plain.onnx")))
    assert apply_sparsity(plain, got) == 2  # annotated by name
    assert plain["conv2"].annotation(ChannelSparsity).mean_sparsity == pytest.approx(5 / 9)


def test_bad_attribute_length_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, {"conv1": np.full((1, 7), 1 / 7)})
    with pytest.raises(ModelImportError, match="K\\*K\\+1"):
        read_sparsity_from_onnx(path)


def test_cli_json_with_sparsity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, _hists())
    dense_onnx = export_onnx(Tiny(), (3, 8, 8), tmp_path / "dense.onnx")
    assert main([ "dataflow", str(dense_onnx), "--device", "zc706", "--sparsity-from", str(path), "--json",
                  "--utilisation", "0.02"]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    for key in ("throughput_images_per_s", "dense_throughput_images_per_s", "dsp", "lut", "ff", "bram18"):
        assert key in out
    conv2 = next(layer for layer in out["layers"] if layer["name"] == "conv2")
    assert conv2["sparse"] and conv2["sparsity"] == pytest.approx(5 / 9)
    assert set(conv2["folding"]) == {"coarse_in", "coarse_out", "coarse_group", "fine"}
    assert out["throughput_images_per_s"] >= out["dense_throughput_images_per_s"]


def test_cli_zoo_model_is_dense_and_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dataflow", "zoo:lenet5", "--device", "zcu102", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert not any(layer["sparse"] for layer in out["layers"])
    assert out["throughput_images_per_s"] == out["dense_throughput_images_per_s"]
    assert main(["dataflow", "zoo:lenet5", "--device", "nope"]) == 2
    assert "known devices" in capsys.readouterr().err
    assert main(["dataflow", "zoo:resnet8", "--device", "zcu102", "--json"]) == 0
    full = json.loads(capsys.readouterr().out)["throughput_images_per_s"]
    assert main(["dataflow", "zoo:resnet8", "--device", "zcu102", "--fast", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["throughput_images_per_s"] <= full
    assert main(["dataflow", "zoo:lenet5", "--sparsity-from", "missing.onnx"]) == 2


def test_cli_reads_histograms_on_the_model_itself(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, _hists())
    assert main(["dataflow", str(path), "--device", "zc706", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [layer["sparse"] for layer in out["layers"] if layer["op"] == "conv"] == [True, True]


def test_cli_exhaustive_node_budget(capsys: pytest.CaptureFixture[str]) -> None:
    """--node-budget bounds the exact search: too small is a one-line error that says how to go on; the
    default solves ResNet-8 on ZC706 at least as well as greedy's interval."""
    assert main(["dataflow", "zoo:resnet8", "--device", "zc706", "--method", "exhaustive", "--node-budget", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "exceeded 5 nodes" in err and "--node-budget" in err and "\n" not in err
    assert main(["dataflow", "zoo:resnet8", "--device", "zc706", "--node-budget", "0"]) == 2
    assert "--node-budget must be >= 1" in capsys.readouterr().err
    assert main(["dataflow", "zoo:resnet8", "--device", "zc706", "--method", "exhaustive", "--json"]) == 0
    exact = json.loads(capsys.readouterr().out)["interval_cycles"]
    assert main(["dataflow", "zoo:resnet8", "--device", "zc706", "--json"]) == 0
    assert exact <= json.loads(capsys.readouterr().out)["interval_cycles"]


def test_cli_measures_histograms_on_data_and_exports_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`accelflow dataflow zoo:lenet5 --data fashion_mnist`: the trained model's own zero products (ReLU
    zeros, padding) measured on training images give the design HASS's zero-threshold evaluation gives (an
    independent path: the search's evaluator); --export writes them, and the file folds to the same design."""
    from accelflow.hass import Thresholds, problem
    from accelflow.train import cached_model

    out_file = tmp_path / "lenet5_measured.onnx"
    assert main(["dataflow", "zoo:lenet5", "--data", "fashion_mnist", "--device", "zc706", "--calibration-size", "50",
                 "--export", str(out_file), "--json"]) == 0
    measured = json.loads(capsys.readouterr().out)
    assert measured["sparsity_source"] == "measured on 50 fashion_mnist training images"
    assert any(layer["sparsity"] > 0.1 for layer in measured["layers"])
    model, _ = cached_model("lenet5", "fashion_mnist")
    evaluation = problem(model, "fashion_mnist", "zc706", validation_size=100, calibration_size=50)\
        .evaluator(Thresholds())
    assert measured["throughput_images_per_s"] == pytest.approx(evaluation.throughput, rel=1e-12)
    assert main(["dataflow", str(out_file), "--device", "zc706", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["throughput_images_per_s"] == pytest.approx(measured["throughput_images_per_s"], rel=1e-9)


@pytest.mark.parametrize(("extra", "needle"), [
    (["--data", "fashion_mnist", "--sparsity-from", "x.onnx"], "give one of the two"),
    (["--export", "x.onnx"], "--export only goes with --data"),
    (["--weights", "w.pt", "--export", "x.onnx"], "--weights and --export only go with --data"),
    (["--data", "fashion_mnist", "--export", "x.txt"], "must end in .onnx"),
    (["--data", "fashion_mnist", "--calibration-size", "0"], "--calibration-size must be >= 1"),
])
def test_cli_measure_options_that_do_not_fit_are_named(extra: list[str], needle: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dataflow", "zoo:lenet5", *extra]) == 2
    assert needle in capsys.readouterr().err
