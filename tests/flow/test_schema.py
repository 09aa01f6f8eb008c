"""Flow files: validation names the file, the step, the task and the field before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from accelflow.cli.main import main
from accelflow.flow import Branch, Fork, Loop, Step, parse_flow
from accelflow.flow.errors import FlowValidationError

from ._tasks import make_registry

GOOD = """
name: demo
steps:
  - task: set_metric
    id: first
    params: {value: 2.0}
  - fork:
      objective: score.value
      branches:
        - [{task: score, params: {weight: 2.0}}]
        - [{task: set_metric, params: {value: 5.0}}, {task: score}]
  - branch: {if: "score.value < 100", goto: first, max_repeats: 2}
  - loop: {times: 2, until: "score.value > 1", body: [{task: score}]}
"""


def test_good_flow_builds_typed_nodes() -> None:
    spec, flow = parse_flow(GOOD, "good.yaml", make_registry())
    assert spec.name == flow.name == "demo" and flow.source == "good.yaml"
    kinds = [type(n) for n in flow.steps]
    assert kinds == [Step, Fork, Branch, Loop]
    assert flow.steps[0].task.value == 2.0  # type: ignore[union-attr]


@pytest.mark.parametrize(("snippet", "expected"), [
    ("  - task: score\n    params: {weight: heavy}",
     r"bad.yaml: step 1 \(task 'score'\): task 'score', field 'weight'.*valid number"),
    ("  - task: score\n    params: {weight: 50}", r"step 1 \(task 'score'\).*field 'weight'.*outside"),
    ("  - task: score\n    params: {wieght: 1}", r"step 1 \(task 'score'\): unknown parameter\(s\) \['wieght'\]"),
    ("  - task: nope", r"bad.yaml: step 1 \(task 'nope'\): unknown task 'nope'; registered tasks"),
    ("  - task: score\n    colour: red", r"step 1 \(task\): field 'colour': Extra inputs"),
    ("  - fork: {objective: x.y, branches: [[{task: score, params: {weight: heavy}}]]}",
     r"step 1 fork branch 1 step 1 \(task 'score'\).*field 'weight'"),
    ("  - branch: {goto: a}", r"step 1 \(branch\): field 'if': Field required"),
    ("  - loop: {times: 0, body: [{task: score}]}", r"step 1 \(loop\): field 'times'"),
    ("  - task: evaluate\n    params: {split: holdout}", r"field 'split'.*not one of"),
])
def test_invalid_flow_names_file_step_task_and_field(snippet: str, expected: str) -> None:
    with pytest.raises(FlowValidationError, match=expected):
        parse_flow(f"name: bad\nsteps:\n{snippet}\n", "bad.yaml", make_registry())


def test_bad_top_level_fields() -> None:
    with pytest.raises(FlowValidationError, match=r"f.yaml: field 'steps'"):
        parse_flow("name: x\nsteps: []\n", "f.yaml", make_registry())
    with pytest.raises(FlowValidationError, match=r"f.yaml: field 'start.target.io_type'"):
        parse_flow("name: x\nstart: {target: {io_type: io_serial}}\nsteps: [{task: score}]\n", "f.yaml",
                   make_registry())


def test_cli_rejects_invalid_flow_before_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = tmp_path / "broken.yaml"
    flow.write_text("name: broken\nstart: {model: digits_mlp, dataset: digits}\nsteps:\n"
                    "  - task: train\n    params: {epochs: 1}\n"
                    "  - task: fine_tune\n    params: {epochs: -3}\n")
    store = tmp_path / "store"
    assert main(["run", str(flow), "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert "broken.yaml: step 2 (task 'fine_tune')" in err and "field 'epochs'" in err
    assert not store.exists()  # nothing ran, not even the store was created


def test_cli_rejects_unsatisfied_needs_before_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = tmp_path / "needs.yaml"
    flow.write_text("name: needs\nsteps:\n  - task: quantize\n")  # no model, no data set
    store = tmp_path / "store"
    assert main(["run", str(flow), "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert "needs.yaml: step 1 (task 'quantize'): needs state field 'model', state field 'dataset'" in err
    assert not store.exists()


def test_binary_flow_file_is_rejected_with_the_file_named(tmp_path):
    from accelflow.flow import FlowValidationError, load_flow

    path = tmp_path / "binary.yaml"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(FlowValidationError, match="binary.yaml is not UTF-8"):
        load_flow(path)


def test_hass_task_slack_without_finetuning_is_rejected_by_name() -> None:
    from accelflow.flow import default_registry

    snippet = "  - task: hass\n    params: {finetune_slack: 2.0}"
    with pytest.raises(FlowValidationError, match=r"bad.yaml: step 1 \(task 'hass'\).*finetune_steps"):
        parse_flow(f"name: bad\nsteps:\n{snippet}\n", "bad.yaml", default_registry())
