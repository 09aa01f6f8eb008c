"""Engine: checking, control nodes (sequence, fork/reduce, branch, loop), errors naming completed tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from accelflow.flow import (
    Branch,
    DesignState,
    ExpressionError,
    Flow,
    FlowValidationError,
    Fork,
    Loop,
    Step,
    TaskFailedError,
    check_flow,
    run_flow,
)
from accelflow.flow.expr import Expression

from ._tasks import Flaky, NeedsProject, Score, SetMetric


def test_sequence_runs_in_order_and_records_history(tmp_path: Path) -> None:
    flow = Flow("seq", (Step(SetMetric(value=2.0)), Step(Score(weight=3.0))))
    result = run_flow(flow, DesignState(), scratch_dir=str(tmp_path))
    assert result.state.metric("score.value") == 6.0
    assert [r.task for r in result.state.history] == ["set_metric", "score"]
    assert result.state.history[1].metrics == {"score": {"value": 6.0}}
    assert result.executed == 2


def test_check_rejects_missing_need_before_running(tmp_path: Path) -> None:
    log = tmp_path / "log"
    flow = Flow("bad", (Step(SetMetric(log=str(log))), Step(NeedsProject())), source="bad.yaml")
    with pytest.raises(FlowValidationError, match=r"bad.yaml: step 2 \(task 'needs_project'\).*hls_project"):
        run_flow(flow, DesignState(), scratch_dir=str(tmp_path))
    assert not log.exists()  # nothing ran


def test_check_rejects_metric_read_before_written() -> None:
    flow = Flow("bad", (Step(Score()),))
    with pytest.raises(FlowValidationError, match="probe.value"):
        check_flow(flow, DesignState())
    # the same flow is valid when the initial state already carries the metric
    check_flow(flow, DesignState().with_metrics("probe", value=1.0))


def test_fork_keeps_best_branch_by_objective(tmp_path: Path) -> None:
    fork = Fork(branches=((Step(SetMetric(value=1.0)), Step(Score(weight=2.0))),
                          (Step(SetMetric(value=5.0)), Step(Score(weight=-1.0))),
                          (Step(SetMetric(value=3.0)), Step(Score(weight=1.0)))),
                objective="score.value")
    state = run_flow(Flow("f", (fork,)), DesignState(), scratch_dir=str(tmp_path)).state
    assert state.metric("score.value") == 3.0 and state.metric("probe.value") == 3.0
    minimise = Fork(fork.branches, "score.value", maximize=False)
    assert run_flow(Flow("f", (minimise,)), DesignState(), scratch_dir=str(tmp_path)).state.metric(
        "score.value") == -5.0


def test_fork_objective_must_be_produced_by_every_branch() -> None:
    fork = Fork(branches=((Step(SetMetric()), Step(Score())), (Step(SetMetric()),)), objective="score.value")
    with pytest.raises(FlowValidationError, match="branch 2"):
        check_flow(Flow("f", (fork,)), DesignState())


def test_branch_goes_back_with_bounded_repeats(tmp_path: Path) -> None:
    log = tmp_path / "log"
    flow = Flow("b", (Step(SetMetric(value=0.0, step=1.0, log=str(log)), id="inc"),
                      Branch("probe.value < 10", goto="inc", max_repeats=3)))
    state = run_flow(flow, DesignState(), scratch_dir=str(tmp_path)).state
    assert state.metric("probe.value") == 3.0  # 1 initial run + 3 repeats
    assert len(log.read_text().splitlines()) == 4
    stop_early = Flow("b", (flow.steps[0], Branch("probe.value < 2", goto="inc", max_repeats=5)))
    log.unlink()
    assert run_flow(stop_early, DesignState(), scratch_dir=str(tmp_path)).state.metric("probe.value") == 2.0


def test_branch_target_must_be_earlier_step() -> None:
    with pytest.raises(FlowValidationError, match="goto 'later'"):
        check_flow(Flow("b", (Step(SetMetric()), Branch("probe.value < 1", goto="later"),
                              Step(Score(), id="later"))), DesignState())


def test_loop_until(tmp_path: Path) -> None:
    loop = Loop(body=(Step(SetMetric(value=0.0, step=1.0)),), times=10, until="probe.value >= 4")  # 0,1,2,3,4
    assert run_flow(Flow("l", (loop,)), DesignState(), scratch_dir=str(tmp_path)).state.metric("probe.value") == 4
    capped = Loop(body=loop.body, times=2, until="probe.value >= 4")
    assert run_flow(Flow("l", (capped,)), DesignState(), scratch_dir=str(tmp_path)).state.metric("probe.value") == 1  # 0, then 1


def test_task_failure_names_completed_tasks(tmp_path: Path) -> None:
    marker = tmp_path / "crash"
    marker.touch()
    import torch

    flow = Flow("x", (Step(SetMetric()), Step(Flaky(marker=str(marker)))))
    with pytest.raises(TaskFailedError, match=r"task 'flaky' at 1#0 failed.*set_metric \(0#0\)") as info:
        run_flow(flow, DesignState(model=torch.nn.Linear(2, 2)), scratch_dir=str(tmp_path))
    assert info.value.completed == ("set_metric (0#0)",)


@pytest.mark.parametrize("text", ["__import__('os')", "probe.value.x", "open('f')", "probe[0]", "lambda: 1"])
def test_expressions_refuse_anything_but_arithmetic(text: str) -> None:
    with pytest.raises(ExpressionError):
        Expression(text)


def test_expression_arithmetic_and_logic() -> None:
    e = Expression("a.x + 2 * max(b.y, 1) > 5 and not a.x < 0")
    assert {str(k) for k in e.metric_keys()} == {"a.x", "b.y"}
    assert e.evaluate({"a": {"x": 2.0}, "b": {"y": 3.0}}) is True
    assert e.evaluate({"a": {"x": 2.0}, "b": {"y": 0.5}}) is False
    with pytest.raises(ExpressionError, match="b.y is not recorded"):
        e.evaluate({"a": {"x": 1.0}})
