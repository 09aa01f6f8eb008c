"""Small real tasks used by the engine tests (they count their executions in a log file)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from accelflow.flow import DesignState, MetricKey, StateField, Task, TaskContext, TaskRegistry, param
from accelflow.flow.tasks import builtin_tasks


def _log(path: str, line: str) -> None:
    if path:
        with open(path, "a") as fh:
            fh.write(line + "\n")


@dataclass
class SetMetric(Task):
    """Write ``stage.metric = value`` (plus ``+ step * visits`` so loops see progress)."""

    name = "set_metric"
    produces = (MetricKey("probe", "value"),)

    value: float = param(1.0)
    step: float = param(0.0)
    log: str = ""

    def run(self, state: DesignState, ctx: TaskContext) -> DesignState:
        _log(self.log, f"set_metric {ctx.key}")
        current = state.metrics.get("probe", {}).get("value")
        value = self.value if current is None or self.step == 0 else current + self.step
        (ctx.workdir / "note.txt").write_text(str(value))
        return state.with_metrics("probe", value=value).with_artefact("note", ctx.workdir / "note.txt")


@dataclass
class NeedsProject(Task):
    """Needs an hls4ml project that nothing in the test flows produces."""

    name = "needs_project"
    needs = (StateField.HLS_PROJECT,)

    def run(self, state: DesignState, ctx: TaskContext) -> DesignState:
        return state


@dataclass
class Flaky(Task):
    """Raises while ``marker`` exists; otherwise halves the model's first weight row and records it."""

    name = "flaky"
    needs = (StateField.MODEL,)
    produces = (MetricKey("flaky", "ok"),)

    marker: str = ""
    log: str = ""

    def run(self, state: DesignState, ctx: TaskContext) -> DesignState:
        _log(self.log, f"flaky {ctx.key}")
        if self.marker and Path(self.marker).exists():
            raise RuntimeError("simulated crash in the middle of the task")
        return state.with_metrics("flaky", ok=1.0)


@dataclass
class Score(Task):
    """Records ``score.value = weight * probe.value`` so forks have something to compare."""

    name = "score"
    needs = (MetricKey("probe", "value"),)
    produces = (MetricKey("score", "value"),)

    weight: float = param(1.0, low=-10, high=10)

    def run(self, state: DesignState, ctx: TaskContext) -> DesignState:
        return state.with_metrics("score", value=self.weight * state.metric("probe.value"))


TEST_TASKS: dict[str, type[Task]] = {"set_metric": SetMetric, "needs_project": NeedsProject, "flaky": Flaky,
                                     "score": Score}


def make_registry() -> TaskRegistry:
    return TaskRegistry({**builtin_tasks(), **TEST_TASKS})
