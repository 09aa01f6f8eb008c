"""Run store: records, atomic snapshots, resume after a mid-flow crash without redoing finished tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accelflow.cli.main import main
from accelflow.flow import DesignState, Flow, Step, default_registry, run_flow
from accelflow.runs import RunStatus, RunStore, RunStoreError, build_report, render_html
from tests.flow._tasks import TEST_TASKS, Flaky, SetMetric


def _register_test_tasks() -> None:
    registry = default_registry()
    for name, cls in TEST_TASKS.items():
        if name not in registry:
            registry.register(name, cls)


FLOW = """
name: crash_and_resume
start:
  model: digits_mlp
  dataset: digits
steps:
  - task: train
    params: {{epochs: 1, batch_size: 256}}
  - task: set_metric
    params: {{value: 7.0, log: "{log}"}}
  - task: flaky
    params: {{marker: "{marker}", log: "{log}"}}
  - task: set_metric
    params: {{value: 0.0, step: 1.0, log: "{log}"}}
"""


def test_crash_then_resume_does_not_redo_finished_tasks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _register_test_tasks()
    log, marker, store_dir = tmp_path / "executions.log", tmp_path / "crash", tmp_path / "store"
    marker.touch()
    flow_file = tmp_path / "flow.yaml"
    flow_file.write_text(FLOW.format(log=log, marker=marker))

    assert main(["run", str(flow_file), "--store", str(store_dir)]) == 2  # the 3rd task raises
    assert "task 'flaky' at 2#0 failed" in capsys.readouterr().err
    store = RunStore(store_dir)
    (run,) = store.runs()
    assert run.status is RunStatus.FAILED
    first = store.executions(run.id)
    assert [(e.task, e.status) for e in first] == [
        ("train", RunStatus.COMPLETED), ("set_metric", RunStatus.COMPLETED), ("flaky", RunStatus.FAILED)]
    train_acc = first[0].metrics["train"]["accuracy"]

    marker.unlink()
    assert main(["run", str(flow_file), "--store", str(store_dir), "--resume", run.id[:12]]) == 0
    assert log.read_text().splitlines() == ["set_metric 1#0", "flaky 2#0", "flaky 2#0", "set_metric 3#0"]
    every = store.executions(run.id)
    assert [e.task for e in every].count("train") == 1  # the trained model was reloaded, not retrained
    assert [(e.task, e.status) for e in every[3:]] == [("flaky", RunStatus.COMPLETED),
                                                        ("set_metric", RunStatus.COMPLETED)]
    assert store.get_run(run.id).status is RunStatus.COMPLETED
    final = store.final_state(run.id)
    assert final is not None and final.model is not None
    assert final.metric("train.accuracy") == train_acc  # recorded results survive the crash
    assert final.metric("flaky.ok") == 1.0 and final.metric("probe.value") == 8.0
    assert [r.task for r in final.history] == ["train", "set_metric", "flaky", "set_metric"]

    assert main(["report", run.id, "--store", str(store_dir)]) == 0
    report = json.loads((store_dir / run.id / "report.json").read_text())
    assert report["run"]["status"] == "completed" and len(report["executions"]) == 5
    assert report["metrics"]["train"]["accuracy"] == train_acc
    assert "flaky" in (store_dir / run.id / "report.html").read_text()
    assert main(["runs", "--store", str(store_dir)]) == 0
    store.close()


def test_unfinished_execution_is_never_reused(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    flow = Flow("f", (Step(SetMetric(value=3.0)),))
    run = store.create_run("f", "", DesignState())
    seq = store.start_execution(run.id, "0#0", "set_metric", SetMetric(value=3.0).params())  # crashed here
    (store.run_dir(run.id) / "states" / f".{seq}.tmp").mkdir(parents=True)  # half-written snapshot
    assert store.completed_execution(run.id, "0#0", SetMetric(value=3.0).params()) is None
    result = run_flow(flow, DesignState(), store=store, run_id=run.id)
    assert result.executed == 1 and result.replayed == 0
    # resuming a completed run replays everything
    again = run_flow(flow, DesignState(), store=store, run_id=run.id)
    assert again.executed == 0 and again.replayed == 1 and again.state.metric("probe.value") == 3.0
    # a changed parameter invalidates the recorded execution
    changed = run_flow(Flow("f", (Step(SetMetric(value=4.0)),)), DesignState(), store=store, run_id=run.id)
    assert changed.executed == 1 and changed.state.metric("probe.value") == 4.0


def test_unknown_run_id_lists_recent_runs(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.create_run("f", "", DesignState())
    with pytest.raises(RunStoreError, match="no run matching 'nope'"):
        store.get_run("nope")


def test_report_of_failed_run_renders(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    marker = tmp_path / "m"
    marker.touch()
    import torch

    flow = Flow("f", (Step(SetMetric(value=1.0)), Step(Flaky(marker=str(marker)))))
    with pytest.raises(Exception, match="simulated crash"):
        run_flow(flow, DesignState(model=torch.nn.Linear(2, 2)), store=store)
    report = build_report(store, store.runs()[0].id)
    assert report["run"]["status"] == "failed" and report["metrics"]["probe"]["value"] == 1.0
    assert "simulated crash" in render_html(report)


@pytest.mark.parametrize("module", ["accelflow.runs", "accelflow.runs.store", "accelflow.flow.engine"])
def test_packages_import_in_any_order(module: str) -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_sigterm_is_recorded_as_failed_and_resumable(tmp_path: Path) -> None:
    import os
    import signal
    from dataclasses import dataclass

    from accelflow.flow import Task, TaskContext

    @dataclass
    class Terminate(Task):
        """Sends SIGTERM to its own process once (while ``marker`` exists), like a scheduler stopping the job."""

        name = "terminate_once"
        marker: str = ""

        def run(self, state: DesignState, ctx: TaskContext) -> DesignState:
            if Path(self.marker).exists():
                Path(self.marker).unlink()
                os.kill(os.getpid(), signal.SIGTERM)
            return state.with_metrics("term", survived=1.0)

    registry = default_registry()
    if "terminate_once" not in registry:
        registry.register("terminate_once", Terminate)
    _register_test_tasks()
    marker = tmp_path / "m"
    marker.touch()
    flow = tmp_path / "f.yaml"
    flow.write_text(f"name: t\nsteps:\n  - task: set_metric\n  - task: terminate_once\n    params: {{marker: '{marker}'}}\n")
    store_dir = tmp_path / "s"
    assert main(["run", str(flow), "--store", str(store_dir)]) == 130
    store = RunStore(store_dir)
    (run,) = store.runs()
    assert run.status is RunStatus.FAILED
    assert [e.status for e in store.executions(run.id)] == [RunStatus.COMPLETED, RunStatus.FAILED]
    assert main(["run", str(flow), "--store", str(store_dir), "--resume", run.id]) == 0
    assert store.get_run(run.id).status is RunStatus.COMPLETED
    store.close()
