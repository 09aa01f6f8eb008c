"""`accelflow inspect`: JSON schema, table output, and bad input -> exit 2 with one line."""

import json
import subprocess
import sys

import pytest

from accelflow.cli.main import main
from accelflow.frontends import export_onnx
from accelflow.zoo import create, spec


def test_inspect_json_schema(capsys):
    assert main(["inspect", "zoo:lenet5", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert set(info) == {"model", "total_macs", "total_params", "layers"}
    assert info["total_macs"] == sum(layer["macs"] for layer in info["layers"]) == 416_520
    first = info["layers"][0]
    assert set(first) == {"name", "op", "input_shape", "output_shape", "macs", "params"}
    assert first["input_shape"] == [1, 28, 28] and first["output_shape"] == [6, 28, 28]


def test_inspect_onnx_file_matches_zoo(tmp_path, capsys):
    path = export_onnx(create("lenet5"), spec("lenet5").input_shape, tmp_path / "lenet5.onnx")
    assert main(["inspect", str(path), "--json"]) == 0
    from_onnx = json.loads(capsys.readouterr().out)
    assert main(["inspect", "zoo:lenet5", "--json"]) == 0
    from_zoo = json.loads(capsys.readouterr().out)
    assert from_onnx["total_macs"] == from_zoo["total_macs"]
    assert [layer["op"] for layer in from_onnx["layers"]] == [layer["op"] for layer in from_zoo["layers"]]


def test_inspect_input_shape_override(capsys):
    assert main(["inspect", "zoo:resnet8", "--input-shape", "3,32,32", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["layers"][0]["input_shape"] == [3, 32, 32]


def test_inspect_table(capsys):
    assert main(["inspect", "zoo:jet_dnn"]) == 0
    out = capsys.readouterr().out
    assert "4,256 MACs" in out and "linear" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["inspect", "zoo:nope"], "unknown zoo model 'nope'"),
        (["inspect", "missing.onnx"], "missing.onnx: no such file"),
        (["inspect", "model.txt"], "expected an .onnx file, a PyTorch file model.py[:NAME] or zoo:NAME"),
        (["inspect", "zoo:lenet5", "--input-shape", "a,b"], "--input-shape"),
        (["inspect"], "required"),
    ],
)
def test_bad_input_exits_2_with_one_line_no_traceback(args, message, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "accelflow", *args], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2


def test_corrupt_onnx_exits_2(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    proc = subprocess.run([sys.executable, "-m", "accelflow", "inspect", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "bad.onnx" in proc.stderr and "Traceback" not in proc.stderr


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and "accelflow" in capsys.readouterr().out


def test_inspect_pytorch_model_file(tmp_path, capsys):
    path = tmp_path / "mymodel.py"
    path.write_text(
        "import torch.nn as nn\n"
        "INPUT_SHAPE = (3, 16, 16)\n"
        "def build_model():\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 14 * 14, 10))\n"
    )
    assert main(["inspect", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["total_macs"] == 8 * 14 * 14 * 27 + 8 * 14 * 14 * 10
    assert main(["inspect", f"{path}:nope"]) == 2
    assert "no 'nope' defined; candidates: ['build_model']" in capsys.readouterr().err
    bad = tmp_path / "bad.py"
    bad.write_text("syntax error(\n")
    assert main(["inspect", str(bad)]) == 2
    assert "bad.py: running the model file failed: SyntaxError" in capsys.readouterr().err
