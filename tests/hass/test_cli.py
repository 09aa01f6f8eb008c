"""`accelflow hass` rejects bad input with one line and exit code 2 (the full run is in the benchmark)."""

from __future__ import annotations

from pathlib import Path

import pytest

from accelflow.cli.main import main


@pytest.mark.parametrize("argv", [
    ["hass", "zoo:nope", "--trials", "2"],
    ["hass", "net.onnx"],
    ["hass", "zoo:lenet5", "--trials", "0"],
    ["hass", "zoo:lenet5", "--max-accuracy-drop", "-1"],
    ["hass", "zoo:lenet5", "--refine-trials", "-1"],
])
def test_bad_input_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("accelflow hass: error:") and "\n" not in err


def test_search_under_the_sampled_model_reports_it(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """A short real run: LeNet-5 (training cache) on ZCU102 with the sampled lock-step model."""
    import json

    argv = ["hass", "zoo:lenet5", "--device", "zcu102", "--trials", "2", "--validation-size", "200",
            "--calibration-size", "8", "--holdout-size", "100", "--lockstep", "sampled",
            "--storage", f"sqlite:///{tmp_path / 'h.db'}", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["lockstep"] == "sampled" and out["accuracy_drop"] <= 1.0
    assert len(out["trials"]) == 2 and out["throughput_images_per_s"] > 0


def test_unknown_lockstep_is_rejected() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["hass", "zoo:lenet5", "--lockstep", "bogus"])
    assert exc.value.code == 2


@pytest.mark.parametrize(("argv", "needle"), [
    (["hass", "zoo:lenet5", "--finetune-slack", "2"], "--finetune-steps"),
    (["hass", "zoo:lenet5", "--finetune-slack", "-1", "--finetune-steps", "5"], "--finetune-slack"),
    (["hass", "zoo:lenet5", "--finetune-tries", "0"], "--finetune-tries"),
    (["hass", "zoo:lenet5", "--finetune-steps", "-5"], "--finetune-steps"),
    (["hass", "zoo:lenet5", "--finetune-distill", "1.5"], "--finetune-distill"),
    (["hass", "zoo:lenet5", "--finetune-lr", "0"], "--finetune-lr"),
    (["hass", "zoo:lenet5", "--finetune-ramp", "2"], "--finetune-ramp"),
    (["hass", "zoo:lenet5", "--export", "design.txt"], ".onnx"),
])
def test_bad_finetune_and_export_options_exit_2(argv: list[str], needle: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert needle in capsys.readouterr().err


def test_exported_design_folds_to_the_same_throughput(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """`hass --export` writes the chosen design with its histograms; `accelflow dataflow --sparsity-from`
    on that file rebuilds the design the search reported (same device, batch and optimiser)."""
    import json

    onnx_path = tmp_path / "design.onnx"
    argv = ["hass", "zoo:lenet5", "--device", "zcu102", "--trials", "3", "--validation-size", "200",
            "--calibration-size", "8", "--holdout-size", "0", "--storage", f"sqlite:///{tmp_path / 'h.db'}",
            "--finetune-steps", "20", "--finetune-slack", "5", "--finetune-tries", "1", "--finetune-distill", "0.5",
            "--finetune-lr", "1e-3", "--export", str(onnx_path), "--json"]
    assert main(argv) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["finetune_slack"] == 5.0 and found["accuracy_drop"] <= 1.0
    assert found["finetune_recipe"]["steps"] == 20 and found["finetune_recipe"]["distill"] == 0.5
    assert found["finetune_recipe"]["lr"] == 1e-3
    assert main(["dataflow", str(onnx_path), "--sparsity-from", str(onnx_path), "--device", "zcu102",
                 "--json"]) == 0
    rebuilt = json.loads(capsys.readouterr().out)
    assert rebuilt["throughput_images_per_s"] == pytest.approx(found["throughput_images_per_s"], rel=1e-6)
    assert rebuilt["dsp"] == found["dsp"]


def test_warm_start_from_a_missing_study_exits_2(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["hass", "zoo:lenet5", "--trials", "2", "--validation-size", "100", "--calibration-size", "8",
            "--holdout-size", "0", "--storage", f"sqlite:///{tmp_path / 'h.db'}", "--warm-start", "nope"]
    assert main(argv) == 2
    assert "no study 'nope'" in capsys.readouterr().err


def test_table_says_what_fine_tuning_did(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """LeNet-5 on ZCU102 is as fast sparse as dense: its pipeline is bound by streaming the 28x28 input in at
    one word per cycle (200 MHz / 784 = 255k img/s), so no design in the widened bound beats the untuned one
    and the summary says there was nothing to fine-tune."""
    argv = ["hass", "zoo:lenet5", "--device", "zcu102", "--trials", "3", "--validation-size", "200",
            "--calibration-size", "8", "--holdout-size", "0", "--storage", f"sqlite:///{tmp_path / 'h.db'}",
            "--finetune-steps", "20", "--finetune-slack", "5", "--finetune-tries", "1"]
    assert main(argv) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "nothing to fine-tune" in out and "x1.00" in out


def test_warm_start_says_when_it_cannot_apply(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    """Starting points go into a new study only. Re-running with the same --warm-start resumes quietly (its
    points are already in the study); points the study does not hold are reported as ignored."""
    common = ["hass", "zoo:lenet5", "--device", "zcu102", "--validation-size", "100", "--calibration-size", "8",
              "--holdout-size", "0", "--storage", f"sqlite:///{tmp_path / 'h.db'}", "--json"]
    assert main([*common, "--trials", "2", "--study-name", "first"]) == 0
    assert main([*common, "--trials", "2", "--study-name", "other", "--seed", "3"]) == 0
    assert main([*common, "--trials", "3", "--study-name", "second", "--warm-start", "first"]) == 0
    assert main([*common, "--trials", "3", "--study-name", "second", "--warm-start", "first"]) == 0
    assert "ignored" not in caplog.text
    assert main([*common, "--trials", "3", "--study-name", "second", "--warm-start", "other"]) == 0
    assert "ignored: study 'second' exists" in caplog.text


def test_baselines_are_reported_kept_and_start_the_search(tmp_path, capsys: pytest.CaptureFixture[str],
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """--baselines runs the uniform and slowest-layer baselines within the bound (hold-out checked), reports
    HASS against them, and starts the search from their thresholds, so HASS is never slower; a resumed run
    reads them back from the study instead of re-scanning."""
    import json
    import logging

    argv = ["hass", "zoo:lenet5", "--device", "zc706", "--trials", "3", "--validation-size", "300",
            "--calibration-size", "8", "--holdout-size", "200", "--storage", f"sqlite:///{tmp_path / 'h.db'}",
            "--baselines", "all", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    base = out["baselines"]
    assert set(base) == {"uniform", "slowest_layer"}
    for b in base.values():
        assert b["accuracy_drop"] <= 1.0 + 1e-9 and b["holdout_images"] == 200 and b["evaluations"] >= 1
        assert b["hass_ratio"] == pytest.approx(out["throughput_images_per_s"] / b["throughput_images_per_s"])
        assert out["throughput_images_per_s"] >= b["throughput_images_per_s"] * (1 - 1e-9)
    sources = [t["source"] for t in out["trials"]]
    assert sources[:3] == ["dense", "initial", "initial"]
    caplog.set_level(logging.INFO, logger="accelflow.hass")
    assert main([*argv[:5], "4", *argv[6:]]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["baselines"]["uniform"]["thresholds"] == base["uniform"]["thresholds"]
    assert "uniform baseline read from study" in caplog.text and "ignored" not in caplog.text


def test_unknown_baseline_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hass", "zoo:lenet5", "--baselines", "uniform,magic"]) == 2
    err = capsys.readouterr().err
    assert "--baselines 'uniform,magic'" in err and "slowest_layer" in err


def test_flow_task_reports_baselines_on_the_search_objective(tmp_path) -> None:
    """The flow task `hass` with `baselines: uniform`: the uniform design's throughput and HASS over it on
    the searched objective (throughput per DSP here) become metrics; HASS starts from it, so is not worse."""
    from accelflow.flow import check_flow, initial_state, parse_flow, run_flow
    from accelflow.runs import RunStore

    text = """
name: hass_baselines
start: {model: lenet5, dataset: fashion_mnist}
steps:
  - task: train_cached
  - task: hass
    params: {device: zcu102, objective: throughput_per_dsp, trials: 3, validation_size: 200, calibration_size: 8,
             baselines: uniform}
"""
    spec, flow = parse_flow(text, "hass_baselines.yaml")[:2]
    start = initial_state(spec.start)
    check_flow(flow, start)
    store = RunStore(tmp_path)
    try:
        metrics = run_flow(flow, start, store=store, flow_text=text, seed=0).state.metrics["hass"]
    finally:
        store.close()
    assert metrics["uniform_throughput_images_per_s"] > 0
    assert metrics["vs_uniform"] >= 1 - 1e-9


EXAMPLE = Path(__file__).parents[2] / "examples" / "hass_own_model"


@pytest.fixture(scope="module")
def example_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example's own training script (plain PyTorch loop, 30 epochs on the 8x8 digits, seconds)."""
    import runpy

    out = tmp_path_factory.mktemp("own") / "digits_cnn.pt"
    runpy.run_path(str(EXAMPLE / "train.py"))["main"](str(out))
    return out


def test_own_model_file_is_searched_with_its_weights(example_weights: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """`accelflow hass model.py --weights W --data digits_image`: the search starts from the saved weights
    (the dense accuracy is the loaded model's on the same validation images, far above chance), keeps the
    bound, and a resume with other weights in the same study is refused rather than mixing trials. A
    hold-out too small to resolve the bound (one of 40 images is 2.5 points) is warned about."""
    import json

    from accelflow.frontends import load_model_file, load_weights
    from accelflow.hass import problem

    argv = ["hass", str(EXAMPLE / "model.py"), "--weights", str(example_weights), "--data", "digits_image",
            "--device", "zc706", "--trials", "4", "--validation-size", "100", "--holdout-size", "40",
            "--calibration-size", "16", "--baselines", "uniform", "--storage", f"sqlite:///{tmp_path / 'h.db'}",
            "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    model = load_weights(load_model_file(str(EXAMPLE / "model.py")).module, example_weights)
    reference = problem(model, "digits_image", "zc706", validation_size=100, holdout_size=40).evaluator
    assert out["network"] == "model" and out["accuracy_drop"] <= 1.0 + 1e-9
    assert out["accuracy"] + out["accuracy_drop"] / 100 == pytest.approx(reference.base_accuracy, abs=1e-9)
    assert reference.base_accuracy > 0.9 and out["baselines"]["uniform"]["hass_ratio"] >= 1 - 1e-9
    assert out["throughput_images_per_s"] > out["dense_throughput_images_per_s"]
    assert "40 hold-out images: one image is 2.5 points, more than the 1-point bound" in caplog.text
    estimates = out["accuracy_drop_estimates"]  # the reported drops with their 95% intervals
    assert estimates["validation"]["points"] == pytest.approx(out["accuracy_drop"], abs=1e-9)
    assert estimates["validation"]["images"] == 100 and estimates["holdout"]["images"] == 40
    for e in estimates.values():
        assert e["ci95"][0] <= e["points"] <= e["ci95"][1]
    assert estimates["holdout"]["points"] <= 1.0 + 1e-9  # the hold-out check held

    import torch

    other = tmp_path / "other.pt"
    torch.save({k: v * 1.01 if k == "0.weight" else v for k, v in model.state_dict().items()}, other)
    assert main([*argv[:3], str(other), *argv[4:]]) == 2
    assert "was run with other model weights" in capsys.readouterr().err


def test_own_model_file_trains_once_with_train(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """`accelflow hass model.py --train --data digits_image`: the file's model (no weights given) is trained
    once through the weights cache and then searched; `dataflow model.py --data digits_image --train` on the
    same file and data loads that entry instead of training again, and so does a flow's `train` task with
    the same recipe and `cache: true` (one key for CLI and flows)."""
    import json

    from accelflow.flow import initial_state, parse_flow, run_flow
    from accelflow.train import cache_entries, weights_cache_dir

    monkeypatch.setenv("ACCELFLOW_CACHE", str(tmp_path / "cache"))
    train = ["--train", "--train-epochs", "30"]
    argv = ["hass", str(EXAMPLE / "model.py"), *train, "--data", "digits_image", "--device", "zc706",
            "--trials", "2", "--validation-size", "100", "--holdout-size", "0", "--calibration-size", "16",
            "--storage", f"sqlite:///{tmp_path / 'h.db'}", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    (entry,) = cache_entries(weights_cache_dir())
    assert out["accuracy"] + out["accuracy_drop"] / 100 > 0.9  # trained: chance is 0.1
    assert out["accuracy_drop"] <= 1.0 + 1e-9

    assert main(["dataflow", str(EXAMPLE / "model.py"), *train, "--data", "digits_image", "--device", "zc706",
                 "--calibration-size", "16", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["throughput_images_per_s"] > 0
    (again,) = cache_entries(weights_cache_dir())
    assert again.modified == entry.modified  # loaded, not retrained

    flow = (f"name: c\nstart: {{model: {EXAMPLE / 'model.py'}, dataset: digits_image}}\n"
            "steps: [{task: train, params: {epochs: 30, cache: true}}]\n")
    spec, nodes = parse_flow(flow, str(tmp_path / "flow.yaml"))
    assert run_flow(nodes, initial_state(spec.start), seed=0).state.info["weights_cache_key"] == entry.key
    assert len(cache_entries(weights_cache_dir())) == 1


@pytest.mark.parametrize(("argv", "needle"), [
    (["hass", "zoo:lenet5", "--train"], "--train is for a model file"),
    (["hass", str(EXAMPLE / "model.py"), "--train", "--weights", "w.pt", "--data", "digits_image"],
     "give --weights (trained weights to load) or --train"),
    (["hass", "net.onnx", "--train", "--data", "digits_image"], "net.onnx: --train trains a PyTorch model file"),
    (["dataflow", str(EXAMPLE / "model.py"), "--train"], "--train only goes with --data"),
    (["hass", str(EXAMPLE / "model.py"), "--train", "--train-epochs", "0", "--data", "digits_image"],
     "--train-epochs must be >= 1, got 0"),
])
def test_train_misuse_is_named(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert needle in capsys.readouterr().err


def test_train_epochs_default_is_the_fallback_recipe() -> None:
    from accelflow.cli._trained import DEFAULT_TRAIN_EPOCHS
    from accelflow.train import FALLBACK_RECIPE

    assert DEFAULT_TRAIN_EPOCHS == FALLBACK_RECIPE.epochs


@pytest.mark.parametrize(("body", "extra", "needle"), [
    ("model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))", ["--data", "fashion_mnist"],
     "does not run on fashion_mnist images of shape (1, 28, 28)"),
    ("model = nn.Sequential(nn.Flatten(), nn.Linear(64, 5))", ["--data", "digits_image"],
     "gives (2, 5) on a batch of 2 digits_image images"),
    ("model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))", [], "your own model needs --data"),
    ("model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))", ["--data", "digits_image"], "near chance"),
])
def test_own_model_file_misfits_are_named(tmp_path: Path, body: str, extra: list[str], needle: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "net.py"
    path.write_text(f"import torch\nfrom torch import nn\ntorch.manual_seed(0)\n{body}\n")
    argv = ["hass", str(path), *extra, "--validation-size", "100", "--holdout-size", "0", "--trials", "2",
            "--storage", f"sqlite:///{tmp_path / 'h.db'}"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.startswith("accelflow hass: error:")


@pytest.mark.parametrize(("argv", "needle"), [
    (["hass", "zoo:lenet5", "--weights", "w.pt"], "--weights is for a model file"),
    (["hass", "lenet5.onnx", "--data", "fashion_mnist"], "lenet5.onnx: no such file"),
    (["hass", "zoo:nope"], "expected zoo:NAME"),
    (["hass", "missing.py", "--data", "digits_image"], "missing.py: no such file"),
])
def test_model_argument_misuse_is_named(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert needle in capsys.readouterr().err


def test_onnx_file_is_searched_as_the_model_it_was_exported_from(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """`accelflow hass net.onnx --data fashion_mnist`: the trained LeNet-5 exported to ONNX is run in PyTorch
    through the IR; its dense accuracy and dense design are exactly those of the zoo model it came from."""
    import json

    from accelflow.frontends import export_onnx
    from accelflow.train import cached_model

    model, _ = cached_model("lenet5", "fashion_mnist")
    path = export_onnx(model, (1, 28, 28), tmp_path / "lenet5.onnx")
    common = ["--device", "zc706", "--trials", "3", "--validation-size", "200", "--holdout-size", "100",
              "--calibration-size", "8", "--storage", f"sqlite:///{tmp_path / 'h.db'}", "--json"]
    assert main(["hass", str(path), "--data", "fashion_mnist", *common]) == 0
    from_file = json.loads(capsys.readouterr().out)
    # the same study name: its fingerprint (other module, so other weights digest) keeps the two apart
    assert main(["hass", "zoo:lenet5", *common]) == 2
    assert "was run with other model weights" in capsys.readouterr().err
    assert main(["hass", "zoo:lenet5", *common[:-2], f"sqlite:///{tmp_path / 'zoo.db'}", "--json"]) == 0
    from_zoo = json.loads(capsys.readouterr().out)
    assert from_file["network"] == "lenet5" and from_file["accuracy_drop"] <= 1.0 + 1e-9
    for key in ("reference_accuracy", "dense_throughput_images_per_s", "dense_dsp"):
        assert from_file[key] == from_zoo[key]
    assert main(["hass", str(path), "--data", "fashion_mnist", "--weights", "w.pt", *common]) == 2
    assert "an ONNX file carries its own weights" in capsys.readouterr().err


def test_keras_style_onnx_with_unequal_pads_is_searched_end_to_end(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A net with TensorFlow-'SAME' stride-2 convs (one more pad at the end; torch's exporter writes each as
    a Pad node then a Conv), trained on the 8x8 digits: `accelflow hass net.onnx` searches it within the
    bound, and its exported design rebuilds to the same throughput with `dataflow --sparsity-from`."""
    import json

    import torch
    from torch import nn

    from accelflow.data import load
    from accelflow.frontends import export_onnx, from_onnx
    from accelflow.ir import OpKind
    from accelflow.zoo import PadConv2d

    torch.manual_seed(0)
    model = nn.Sequential(
        PadConv2d(1, 16, 3, (0, 0, 1, 1), stride=2), nn.ReLU(),  # 8 -> 4
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        PadConv2d(32, 32, 3, (0, 0, 1, 1), stride=2), nn.ReLU(),  # 4 -> 2
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    splits = load("digits_image")
    x, y = torch.from_numpy(splits.train.x), torch.from_numpy(splits.train.y)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _epoch in range(25):
        for idx in torch.randperm(len(x)).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    path = export_onnx(model.eval(), (1, 8, 8), tmp_path / "keras_style.onnx")
    assert sorted(n.attrs.padding for n in from_onnx(path).find(OpKind.CONV)) == [(0, 0, 1, 1)] * 2 + [(1,) * 4]

    design = tmp_path / "design.onnx"
    assert main(["hass", str(path), "--data", "digits_image", "--device", "zc706", "--trials", "4",
                 "--storage", f"sqlite:///{tmp_path / 'h.db'}", "--export", str(design), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["reference_accuracy"] > 0.8 and result["accuracy_drop"] <= 1.0 + 1e-9
    convs = [layer for layer in result["layers"] if layer["op"] == "conv"]
    assert len(convs) == 3 and all(layer["weight_threshold"] is not None for layer in convs)  # all searched
    assert sum(layer["activation_threshold"] is not None for layer in convs) == 2  # the two fed by a ReLU
    assert main(["dataflow", str(design), "--sparsity-from", str(design), "--device", "zc706", "--json"]) == 0
    rebuilt = json.loads(capsys.readouterr().out)
    assert rebuilt["throughput_images_per_s"] == pytest.approx(result["throughput_images_per_s"], rel=1e-6)
    assert rebuilt["dsp"] == result["dsp"]
