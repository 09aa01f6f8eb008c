"""Check a flow, then interpret it over a design state, recording every task execution in a run store.

``check_flow`` walks the flow with the set of things available (from the initial state and earlier
producers) and refuses a step whose task needs something nothing provides, a branch to an unknown step,
or an expression over a metric no earlier step records. ``run_flow`` then executes it. With a store, each
execution gets a key (its position in the flow plus a visit count, e.g. ``2/b1/0#1``); resuming a run
replays completed executions from their saved states, in order, until the first one that is missing (or
whose parameters changed), and runs everything from there on.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from accelflow.flow.control import Branch, Flow, Fork, Loop, Node, Step, task_label
from accelflow.flow.errors import FlowError, FlowValidationError, TaskFailedError
from accelflow.flow.expr import Expression
from accelflow.flow.state import DesignState, MetricKey, StateField, TaskRecord
from accelflow.flow.task import TaskContext

if TYPE_CHECKING:  # the run store imports the flow state; import it lazily to keep the packages acyclic
    from accelflow.runs.store import RunStore

__all__ = ["check_flow", "run_flow", "FlowObserver", "FlowResult"]

log = logging.getLogger(__name__)

Available = set[StateField | MetricKey]


def _fmt(req: StateField | MetricKey) -> str:
    return f"metric '{req}'" if isinstance(req, MetricKey) else f"state field '{req.value}'"


def _check_expr(expr: Expression, have: Available, where: str) -> None:
    missing = [k for k in expr.metric_keys() if k not in have]
    if missing:
        raise FlowValidationError(
            f"{where}: expression {expr.text!r} reads {', '.join(map(str, missing))}, which no earlier step "
            f"records (available metrics: {sorted(str(k) for k in have if isinstance(k, MetricKey))})"
        )


def _check_seq(nodes: tuple[Node, ...], have: Available, where: str) -> Available:
    have = set(have)
    labels: list[str | None] = []
    for i, node in enumerate(nodes):
        here = f"{where}step {i + 1}"
        if isinstance(node, Step):
            missing = [r for r in node.task.needs if r not in have]
            if missing:
                raise FlowValidationError(
                    f"{here} (task '{task_label(node.task)}'): needs {', '.join(_fmt(m) for m in missing)}, "
                    f"which neither the initial state nor an earlier task provides"
                )
            have |= set(node.task.produces)
            labels.append(node.id)
        elif isinstance(node, Fork):
            outs = [_check_seq(b, have, f"{here} fork branch {j + 1} ") for j, b in enumerate(node.branches)]
            for j, out in enumerate(outs):
                _check_expr(node.objective, out, f"{here} fork objective (branch {j + 1})")
            have = set.intersection(*outs)
            labels.append(node.id)
        elif isinstance(node, Branch):
            if node.goto not in labels:
                raise FlowValidationError(
                    f"{here} (branch): goto '{node.goto}' is not the id of an earlier step in the same "
                    f"sequence (earlier ids: {[x for x in labels if x]})"
                )
            _check_expr(node.condition, have, f"{here} branch condition")
            labels.append(node.id)
        elif isinstance(node, Loop):
            have = _check_seq(node.body, have, f"{here} loop ")
            if node.until is not None:
                _check_expr(node.until, have, f"{here} loop until")
            labels.append(node.id)
        else:
            raise FlowValidationError(f"{here}: {node!r} is not a flow node")
    dup = {x for x in labels if x and labels.count(x) > 1}
    if dup:
        raise FlowValidationError(f"{where}step ids {sorted(dup)} are used more than once")
    return have


def check_flow(flow: Flow, initial: DesignState, *, final_metrics: tuple[MetricKey | str, ...] = ()) -> None:
    """Raise :class:`FlowValidationError` naming the file, step and task if ``flow`` cannot run from
    ``initial``, or if it does not end with every metric in ``final_metrics`` recorded (e.g. what a search
    scores the flow by)."""
    have = _check_seq(flow.steps, initial.available(), f"{flow.source}: ")
    wanted = [MetricKey.parse(k) if isinstance(k, str) else k for k in final_metrics]
    missing = [k for k in wanted if k not in have]
    if missing:
        raise FlowValidationError(
            f"{flow.source}: flow '{flow.name}' must end with {', '.join(map(str, missing))} recorded, but no "
            f"step records it (recorded: {sorted(str(k) for k in have if isinstance(k, MetricKey))})")


class FlowObserver(Protocol):
    """Receives progress events (the CLI draws them)."""

    def task_started(self, key: str, task: str) -> None: ...
    def task_finished(self, key: str, task: str, seconds: float, replayed: bool,
                      metrics: Mapping[str, Mapping[str, float]]) -> None: ...


@dataclass(frozen=True)
class FlowResult:
    """The final state, the run id (None without a store) and how many tasks ran vs were replayed."""

    state: DesignState
    run_id: str | None
    executed: int
    replayed: int


def _changed_metrics(before: DesignState, after: DesignState) -> dict[str, dict[str, float]]:
    return {s: dict(v) for s, v in after.metrics.items() if before.metrics.get(s) != v}


def _changed_artefacts(before: DesignState, after: DesignState) -> dict[str, str]:
    return {k: v for k, v in after.artefacts.items() if before.artefacts.get(k) != v}


@dataclass
class _Runner:
    store: RunStore | None
    run_id: str | None
    seed: int
    progress: bool
    observer: FlowObserver | None
    replaying: bool
    scratch: str
    visits: dict[str, int] = field(default_factory=dict)
    completed: list[str] = field(default_factory=list)
    executed: int = 0
    replayed: int = 0

    def seq(self, nodes: tuple[Node, ...], state: DesignState, path: str) -> DesignState:
        jumps: dict[int, int] = {}
        i = 0
        while i < len(nodes):
            node, here = nodes[i], f"{path}{i}"
            if isinstance(node, Step):
                state = self.step(node, state, here)
            elif isinstance(node, Fork):
                state = self.fork(node, state, here)
            elif isinstance(node, Loop):
                for it in range(node.times):
                    state = self.seq(node.body, state, f"{here}/i{it}/")
                    if node.until is not None and node.until.evaluate(state.metrics):
                        log.info("loop %s stops after %d iteration(s): %s", here, it + 1, node.until.text)
                        break
            elif isinstance(node, Branch):
                taken = jumps.get(i, 0)
                if taken < node.max_repeats and node.condition.evaluate(state.metrics):
                    jumps[i] = taken + 1
                    target = next(j for j, n in enumerate(nodes[:i]) if getattr(n, "id", None) == node.goto)
                    log.info("branch %s: %s holds, back to '%s' (%d/%d)", here, node.condition.text,
                             node.goto, taken + 1, node.max_repeats)
                    i = target
                    continue
            i += 1
        return state

    def fork(self, node: Fork, state: DesignState, here: str) -> DesignState:
        results = [self.seq(b, state, f"{here}/b{j}/") for j, b in enumerate(node.branches)]
        scores = [float(node.objective.evaluate(r.metrics)) for r in results]
        best = (max if node.maximize else min)(range(len(results)), key=lambda j: scores[j])
        log.info("fork %s: objective %s = %s, keeping branch %d", here, node.objective.text,
                 [round(s, 6) for s in scores], best + 1)
        chosen = results[best]
        return chosen.with_info(**{f"fork:{here}": {"scores": scores, "chosen": best}})

    def step(self, node: Step, state: DesignState, here: str) -> DesignState:
        visit = self.visits.get(here, 0)
        self.visits[here] = visit + 1
        key = f"{here}#{visit}"
        task, name = node.task, task_label(node.task)
        params = task.params()
        if self.observer:
            self.observer.task_started(key, name)
        if self.store is not None and self.run_id is not None and self.replaying:
            record = self.store.completed_execution(self.run_id, key, params)
            if record is not None:
                out = self.store.load_snapshot(record)
                self.replayed += 1
                self.completed.append(f"{name} ({key})")
                if self.observer:
                    self.observer.task_finished(key, name, record.seconds or 0.0, True, record.metrics)
                return out
            self.replaying = False  # from the first missing execution on, everything runs again
        seq = None
        if self.store is not None and self.run_id is not None:
            seq = self.store.start_execution(self.run_id, key, name, params)
            workdir = self.store.task_dir(self.run_id, seq)
        else:
            from pathlib import Path

            workdir = Path(self.scratch) / key.replace("/", "_").replace("#", "_")
            workdir.mkdir(parents=True, exist_ok=True)
        ctx = TaskContext(workdir=workdir, key=key, seed=self.seed, progress=self.progress)
        t0 = time.perf_counter()
        try:
            out = task.run(state, ctx)
            if not isinstance(out, DesignState):
                raise FlowError(f"task '{name}' returned {type(out).__name__}, not a DesignState")
        except BaseException as exc:
            seconds = time.perf_counter() - t0
            if self.store is not None and seq is not None:
                self.store.fail_execution(seq, seconds, "".join(traceback.format_exception_only(exc)).strip())
            if isinstance(exc, Exception):
                raise TaskFailedError(
                    f"task '{name}' at {key} failed: {type(exc).__name__}: {exc}. Completed before it: "
                    f"{self.completed or 'none'}" + (f"; resume with --resume {self.run_id}" if self.run_id else ""),
                    task=name, key=key, completed=tuple(self.completed)) from exc
            raise
        seconds = time.perf_counter() - t0
        metrics = _changed_metrics(state, out)
        out = out.evolve(history=(*out.history, TaskRecord(name, key, params, seconds, metrics)))
        if self.store is not None and seq is not None and self.run_id is not None:
            self.store.finish_execution(self.run_id, seq, out, seconds, metrics, _changed_artefacts(state, out))
        self.executed += 1
        self.completed.append(f"{name} ({key})")
        if self.observer:
            self.observer.task_finished(key, name, seconds, False, metrics)
        return out


def run_flow(flow: Flow, initial: DesignState, *, store: RunStore | None = None, run_id: str | None = None,
             flow_text: str = "", seed: int = 0, progress: bool = False,
             observer: FlowObserver | None = None, scratch_dir: str | None = None) -> FlowResult:
    """Check and run ``flow`` from ``initial``.

    With a ``store``: a new run is created (``flow_text`` is saved with it), or, when ``run_id`` is given,
    that run is resumed: its initial state is reloaded and completed executions are replayed, not re-run.
    Without a store, task artefacts go to ``scratch_dir`` (a temporary directory by default).
    """
    check_flow(flow, initial)
    from accelflow.runs.store import RunStatus

    if store is None:
        import tempfile

        runner = _Runner(None, None, seed, progress, observer, False, scratch_dir or tempfile.mkdtemp(prefix="accelflow-"))
        state = runner.seq(flow.steps, initial, "")
        return FlowResult(state, None, runner.executed, 0)
    if run_id is None:
        run_id = store.create_run(flow.name, flow_text, initial, flow.source).id
        resuming = False
    else:
        run_id = store.get_run(run_id).id
        initial = store.initial_state(run_id)
        check_flow(flow, initial)
        resuming = True
        log.info("resuming run %s", run_id)
    runner = _Runner(store, run_id, seed, progress, observer, resuming, str(store.run_dir(run_id)))
    try:
        state = runner.seq(flow.steps, initial, "")
    except BaseException as exc:
        store.set_status(run_id, RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    store.finish_run(run_id, state)
    return FlowResult(state, run_id, runner.executed, runner.replayed)
