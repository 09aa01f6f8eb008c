"""A flow that starts from the user's own PyTorch model file and weights, not a zoo model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from accelflow.cli.main import main
from accelflow.flow import initial_state, parse_flow
from accelflow.flow.errors import FlowValidationError

EXAMPLE = Path(__file__).parents[2] / "examples" / "hass_own_model"

#: A model class defined in the user's file: the run store pickles it, so it must be found again by name.
NET = """import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.relu(self.conv(x)), 1), 1))


def build():
    return Net()
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's directory: the example model and its trained weights, a class-based model, flow files."""
    import runpy

    root = tmp_path_factory.mktemp("project")
    shutil.copy(EXAMPLE / "model.py", root / "model.py")
    runpy.run_path(str(EXAMPLE / "train.py"))["main"](str(root / "digits_cnn.pt"))
    (root / "nets").mkdir()
    (root / "nets" / "net.py").write_text(NET)
    return root


def test_flow_from_a_model_file_runs_and_resumes_from_its_saved_states(project: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Paths are relative to the flow file; the weights make the start trained (test accuracy recorded),
    so `hass` can run on it; the store's saved states load in a fresh process (the model file's classes are
    found again), and a second flow trains the class-based model from scratch with `train`."""
    flow = project / "flow.yaml"
    flow.write_text("""
name: own_model
start: {model: model.py, weights: digits_cnn.pt, dataset: digits_image}
steps:
  - task: hass
    params: {device: zc706, trials: 3, validation_size: 100, holdout_size: 44, max_accuracy_drop: 2.5,
             calibration_size: 16}
""")
    store = project / "runs"
    assert main(["run", str(flow), "--store", str(store)]) == 0
    (state_json,) = store.glob("*/states/final/state.json")
    saved = json.loads(state_json.read_text())
    assert saved["model_name"] == "model.py" and saved["metrics"]["train"]["accuracy"] > 0.9
    assert saved["metrics"]["hass"]["accuracy_drop"] <= 2.5
    hass = saved["metrics"]["hass"]  # the hold-out drop, within the bound, and its 95% upper end
    assert hass["holdout_accuracy_drop"] <= 2.5 + 1e-9 < hass["holdout_accuracy_drop_high"]
    (result,) = store.glob("*/tasks/*/hass.json")
    assert json.loads(result.read_text())["holdout_images"] == 44  # the flow task checks a hold-out too

    classes = project / "classes.yaml"
    classes.write_text("""
name: own_class
start: {model: nets/net.py:build, dataset: digits_image}
steps:
  - task: train
    params: {epochs: 2}
""")
    assert main(["run", str(classes), "--store", str(store)]) == 0
    (trained,) = [p.parent for p in store.glob("*/states/final/state.json") if p != state_json]
    code = ("import sys\nfrom pathlib import Path\nfrom accelflow.flow.state import load_state\n"
            "s = load_state(Path(sys.argv[1]))\nprint(type(s.model).__name__, s.model_name)")
    done = subprocess.run([sys.executable, "-c", code, str(trained)], capture_output=True, check=True)
    assert done.stdout.decode().split() == ["Net", "net.py:build"]


@pytest.mark.parametrize(("start", "needle"), [
    ("{model: model.py, weights: digits_cnn.pt, dataset: digits_image, pretrained: true}",
     r"field 'start.pretrained': the model already has trained weights \(start.weights\)"),
    ("{model: net.onnx, dataset: digits_image, pretrained: true}",
     "field 'start.pretrained': the model already has trained weights \\(an ONNX file carries them\\)"),
    ("{model: model.py}", "field 'start.dataset': required with a model file"),
    ("{model: model.py, dataset: digits_image, model_kwargs: {width: 2}}", "field 'start.model_kwargs'"),
    ("{model: lenet5, weights: w.pt}", "field 'start.weights': only for a model file"),
    ("{model: net.onnx, weights: w.pt, dataset: digits_image}", "field 'start.weights': an ONNX file carries"),
])
def test_start_fields_that_do_not_go_with_the_model_are_named(project: Path, start: str, needle: str) -> None:
    flow = project / "bad.yaml"
    flow.write_text(f"name: bad\nstart: {start}\nsteps: [{{task: evaluate}}]\n")
    with pytest.raises(FlowValidationError, match=needle):
        parse_flow(flow.read_text(), str(flow))


def test_model_file_start_misfits_are_named(project: Path) -> None:
    """INPUT_SHAPE against the data set, and weights of another model, name the file and what differs; a
    zoo-only task on a model-file start says what to do instead."""
    from accelflow.errors import ConfigError, ModelImportError

    spec, _ = parse_flow("name: x\nstart: {model: model.py, dataset: fashion_mnist}\nsteps: [{task: evaluate}]\n",
                         str(project / "flow.yaml"))
    with pytest.raises(ConfigError, match=r"model.py: INPUT_SHAPE \(1, 8, 8\) is not the shape of fashion_mnist"):
        initial_state(spec.start)
    torch.save({"w": torch.zeros(2)}, project / "other.pt")
    spec, _ = parse_flow("name: x\nstart: {model: model.py, weights: other.pt, dataset: digits_image}\n"
                         "steps: [{task: evaluate}]\n", str(project / "flow.yaml"))
    with pytest.raises(ModelImportError, match="other.pt: weights do not fit the model"):
        initial_state(spec.start)
    from accelflow.flow import check_flow

    spec, flow = parse_flow("name: x\nstart: {model: model.py, weights: digits_cnn.pt, dataset: digits_image}\n"
                            "steps: [{task: train_cached}]\n", str(project / "flow.yaml"))
    start = initial_state(spec.start)
    check_flow(flow, start)
    from accelflow.flow import TaskFailedError, run_flow

    with pytest.raises(TaskFailedError, match=r"train_cached trains untrained models; model.py starts trained"):
        run_flow(flow, start, seed=0)


def test_a_model_file_trains_once_through_the_weights_cache(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`train_cached` (and `pretrained: true`) on a model file without weights: the first run trains and
    caches, the same file trains no more (same entry, same accuracy), and an edited file is a new entry;
    `train` with `cache: true` does the same with its own recipe."""
    from accelflow.flow import run_flow
    from accelflow.train import cache_entries, weights_cache_dir

    monkeypatch.setenv("ACCELFLOW_CACHE", str(project / "cache"))
    text = ("name: c\nstart: {model: model.py, dataset: digits_image}\n"
            "steps: [{task: train_cached}, {task: evaluate}]\n")

    def run(flow: str) -> dict:
        source = project / "cached.yaml"  # paths are relative to the flow file only when it exists
        source.write_text(flow)
        spec, nodes = parse_flow(flow, str(source))
        final = run_flow(nodes, initial_state(spec.start), seed=0).state
        return {"key": final.info["weights_cache_key"], "train": final.metrics["train"]["accuracy"],
                "eval": final.metrics["eval"]["accuracy"]}

    first = run(text)
    assert first["train"] > 0.5 and first["eval"] == first["train"]  # test accuracy; 10 classes
    (entry,) = cache_entries(weights_cache_dir())
    assert run(text) == first
    (again,) = cache_entries(weights_cache_dir())
    assert again.modified == entry.modified  # loaded, not retrained

    spec, _ = parse_flow(text.replace("digits_image}", "digits_image, pretrained: true}"), str(project / "cached.yaml"))
    start = initial_state(spec.start)
    assert start.info["weights_cache_key"] == first["key"] and start.metrics["train"]["accuracy"] == first["train"]

    model_file = project / "model.py"
    original = model_file.read_text()
    try:
        model_file.write_text(original + "\n# edited: forward could differ without the module tree showing it\n")
        assert run(text)["key"] != first["key"]
        assert len(cache_entries(weights_cache_dir())) == 2
    finally:
        model_file.write_text(original)

    recipe = text.replace("{task: train_cached}", "{task: train, params: {epochs: 2, lr: 0.003, cache: true}}")
    own = run(recipe)
    assert own["key"] not in (first["key"],) and run(recipe) == own
    assert len(cache_entries(weights_cache_dir())) == 3


def test_flow_from_an_onnx_file_starts_trained_with_the_exported_weights(tmp_path: Path) -> None:
    """`start: {model: lenet5.onnx, dataset: fashion_mnist}`: the exported trained LeNet-5 starts the flow
    trained, and evaluates to the training cache's test accuracy of the model it was exported from."""
    from accelflow.flow import run_flow
    from accelflow.frontends import export_onnx
    from accelflow.train import cached_model

    model, info = cached_model("lenet5", "fashion_mnist")
    export_onnx(model, (1, 28, 28), tmp_path / "lenet5.onnx")
    flow = tmp_path / "flow.yaml"
    flow.write_text("name: onnx\nstart: {model: lenet5.onnx, dataset: fashion_mnist}\nsteps: [{task: evaluate}]\n")
    spec, nodes = parse_flow(flow.read_text(), str(flow))
    start = initial_state(spec.start)
    assert start.model_name == "lenet5.onnx" and start.metrics["train"]["accuracy"] == info.test_accuracy
    assert run_flow(nodes, start, seed=0).state.metrics["eval"]["accuracy"] == info.test_accuracy
