"""A user's PyTorch model file and its state-dict file: loaded as saved, and every misfit named."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from accelflow.errors import ModelImportError
from accelflow.frontends import is_model_file, load_model, load_model_file, load_weights
from accelflow.frontends.model_file import module_name_for

EXAMPLE = Path(__file__).parents[2] / "examples" / "hass_own_model" / "model.py"


def test_the_example_model_file_gives_its_module_and_input_shape() -> None:
    loaded = load_model_file(str(EXAMPLE))
    assert loaded.input_shape == (1, 8, 8) and loaded.name == "model" and not loaded.module.training
    assert loaded.module(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    named = load_model_file(f"{EXAMPLE}:build_model")
    assert named.name == "model.build_model"
    assert load_model(str(EXAMPLE)).name == "model"  # the IR importer goes through the same loader


def test_model_file_specs_are_told_apart() -> None:
    assert is_model_file("net.py") and is_model_file("dir/net.py:build")
    assert not is_model_file("zoo:resnet8") and not is_model_file("net.onnx") and not is_model_file("net.pyc")


def test_bad_input_shape_is_named(tmp_path: Path) -> None:
    path = tmp_path / "net.py"
    path.write_text("from torch import nn\nINPUT_SHAPE = 'big'\nmodel = nn.Linear(2, 2)\n")
    with pytest.raises(ModelImportError, match="net.py: INPUT_SHAPE must be a sequence of ints.*'big'"):
        load_model_file(str(path))


@pytest.fixture
def net_and_weights(tmp_path: Path) -> tuple[nn.Module, nn.Module]:
    """Two instances of the example model: one with its own random weights, one to load into."""
    torch.manual_seed(1)
    return load_model_file(str(EXAMPLE)).module, load_model_file(str(EXAMPLE)).module


def _same(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


@pytest.mark.parametrize("layout", ["state_dict", "checkpoint", "data_parallel"])
def test_weights_load_from_the_common_layouts(net_and_weights, tmp_path: Path, layout: str) -> None:
    saved, target = net_and_weights
    assert not _same(saved, target)
    state = saved.state_dict()
    payload = {"state_dict": state, "epoch": 3} if layout == "checkpoint" else \
        {f"module.{k}": v for k, v in state.items()} if layout == "data_parallel" else state
    torch.save(payload, tmp_path / "w.pt")
    loaded = load_weights(target, tmp_path / "w.pt")
    assert loaded is target and _same(saved, target) and not target.training


def test_weights_that_do_not_fit_name_the_keys(net_and_weights, tmp_path: Path) -> None:
    saved, target = net_and_weights
    state = dict(saved.state_dict())
    state.pop("0.weight")
    state["extra.bias"] = torch.zeros(3)
    state["12.weight"] = torch.zeros(5, 32)
    torch.save(state, tmp_path / "w.pt")
    with pytest.raises(ModelImportError, match=r"w.pt: weights do not fit the model \(missing: 0.weight; "
                                               r"unexpected: extra.bias; wrong shape: 12.weight \(5, 32\) "
                                               r"\(model \(10, 32\)\)\)"):
        load_weights(target, tmp_path / "w.pt")


def test_files_that_are_not_state_dicts_are_refused(net_and_weights, tmp_path: Path) -> None:
    saved, target = net_and_weights
    torch.save(saved, tmp_path / "whole.pt")  # a pickled module: loading it would run code
    (tmp_path / "junk.pt").write_text("not torch")
    torch.save({"epoch": 3, "note": "no weights"}, tmp_path / "meta.pt")
    for name in ("whole.pt", "junk.pt"):
        with pytest.raises(ModelImportError, match=f"{name}: not a state dict readable with torch.load"):
            load_weights(target, tmp_path / name)
    with pytest.raises(ModelImportError, match="meta.pt: expected a state dict.*found \\['epoch', 'note'\\]"):
        load_weights(target, tmp_path / "meta.pt")
    with pytest.raises(ModelImportError, match="nothing.pt: no such weights file"):
        load_weights(target, tmp_path / "nothing.pt")


def test_classes_of_a_model_file_unpickle_in_a_fresh_process(tmp_path: Path) -> None:
    """Worker processes (spawned, as `--workers` does) get the model pickled: a class defined in the user's
    file is found again by the module name the file was imported under."""
    import pickle
    import subprocess
    import sys

    path = tmp_path / "net.py"
    path.write_text("from torch import nn\n\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                    "        self.fc = nn.Linear(3, 2)\n\n    def forward(self, x):\n        return self.fc(x)\n\n"
                    "model = Net\n")
    net = load_model_file(str(path)).module
    assert type(net).__module__ == module_name_for(path)
    code = ("import pickle, sys, torch\nimport accelflow\nnet = pickle.loads(sys.stdin.buffer.read())\n"
            "print(type(net).__name__, net(torch.ones(1, 3)).shape[1])")
    done = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(net), capture_output=True, check=True)
    assert done.stdout.decode().split() == ["Net", "2"]
