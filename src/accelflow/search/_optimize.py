"""The ask/tell loop: ask trials with fixed distributions, evaluate them on an executor, tell as they finish.

>>> from optuna.distributions import FloatDistribution
>>> study = create_study("doc", storage="sqlite:///:memory:")
>>> res = optimize(study, lambda p: p["x"] ** 2, {"x": FloatDistribution(-1, 1)}, n_trials=3, progress=False)
>>> res.completed
3
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import math
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import TrialState
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from accelflow.search._errors import SearchError
from accelflow.search._executor import Executor, SerialExecutor
from accelflow.search._study import (
    HEARTBEAT_SECONDS,
    finished_trials,
    recover_stale_trials,
    worker_id,
)

__all__ = ["Outcome", "OptimizeResult", "Objective", "optimize"]

log = logging.getLogger(__name__)

JSONValue = Any


@dataclass(frozen=True)
class Outcome:
    """What an objective may return instead of bare values: the values plus attributes to record on the
    trial (JSON-serialisable, e.g. cycles and area behind a latency/area objective)."""

    values: tuple[float, ...]
    attrs: Mapping[str, JSONValue] = field(default_factory=dict)
    #: Optuna constraints (``name -> value``, feasible when <= 0), seen by constraint-aware samplers.
    constraints: Mapping[str, float] = field(default_factory=dict)


#: ``objective(params) -> float | tuple[float, ...] | Outcome``; must be picklable for process/Dask executors.
Objective = Callable[[dict[str, Any]], "float | tuple[float, ...] | Outcome"]


@dataclass(frozen=True)
class OptimizeResult:
    """Counts after the loop: trials this call evaluated, failed and recovered; study totals."""

    evaluated: int
    failed: int
    recovered: int
    completed: int
    wall_seconds: float


def _as_outcome(value: Any, n_objectives: int) -> Outcome:
    if isinstance(value, Outcome):
        out = value
    elif isinstance(value, (tuple, list)):
        out = Outcome(tuple(float(v) for v in value))
    else:
        out = Outcome((float(value),))
    if len(out.values) != n_objectives:
        raise SearchError(f"objective returned {len(out.values)} value(s) for {n_objectives} direction(s)")
    if any(math.isnan(v) for v in out.values):
        raise SearchError(f"objective returned NaN: {out.values}")
    return out


def _tell(study: optuna.Study, trial: optuna.Trial, fut: cf.Future[Any]) -> bool:
    """Record a finished evaluation; False if it failed (the error text is kept as user attribute)."""
    try:
        out = _as_outcome(fut.result(), len(study.directions))
    except Exception as exc:
        msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        log.warning("trial %d failed: %s", trial.number, msg)
        try:
            trial.set_user_attr("error", msg)
            study.tell(trial, state=TrialState.FAIL)
        except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
            pass  # already failed as stale by another worker
        return False
    try:
        for key, value in out.attrs.items():
            trial.set_user_attr(key, value)
        for key, bound in out.constraints.items():
            trial.set_constraint(key, bound)
        study.tell(trial, list(out.values))
    except (ValueError, optuna.exceptions.UpdateFinishedTrialError) as exc:
        # Another worker declared it stale (e.g. this host was unreachable past the grace period) and
        # re-enqueued its point; that copy will be evaluated, so this result is dropped.
        log.warning("trial %d was recovered by another worker; result dropped (%s)", trial.number, exc)
        return False
    return True


def _abandon(study: optuna.Study, trial: optuna.Trial) -> None:
    """Fail an unfinished trial as interrupted and enqueue its parameters again (best effort: whatever
    remains RUNNING is recovered later by :func:`recover_stale_trials`)."""
    try:
        if study._storage.get_trial(trial._trial_id).state is not TrialState.RUNNING:
            return
        trial.set_user_attr("interrupted", True)
        study.tell(trial, state=TrialState.FAIL)
        study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})
    except Exception:
        log.warning("could not release trial %d", trial.number)


def _counts(study: optuna.Study) -> tuple[int, int]:
    """(finished trials, finished + running trials of every worker): the budget counts both."""
    done = len(finished_trials(study))
    return done, done + len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


class _Heartbeat(threading.Thread):
    """Refreshes the Optuna heartbeat of this process's running trials every half interval, also while a
    serial evaluation blocks the loop (Optuna's own ``Study.optimize`` does the same in a thread)."""

    def __init__(self, study: optuna.Study) -> None:
        super().__init__(name="accelflow-heartbeat", daemon=True)
        self.storage = study._storage
        self.trial_ids: set[int] = set()
        self.halt = threading.Event()
        self.enabled = is_heartbeat_enabled(self.storage)  # RDB storages (wrapped in Optuna's cache)

    def beat(self, trial_id: int) -> None:
        if self.enabled:
            self.storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]

    def run(self) -> None:
        while not self.halt.wait(HEARTBEAT_SECONDS / 2):
            for trial_id in list(self.trial_ids):
                try:
                    self.beat(trial_id)
                except Exception as exc:  # a transient storage error must not kill the search
                    log.warning("heartbeat of trial id %d failed: %s", trial_id, exc)


def _from_queue(study: optuna.Study, trial: optuna.Trial) -> bool:
    return "fixed_params" in study._storage.get_trial_system_attrs(trial._trial_id)


def optimize(study: optuna.Study, objective: Objective, space: Mapping[str, BaseDistribution], n_trials: int,
             executor: Executor | None = None, progress: bool = True, enqueued_only: bool = False) -> OptimizeResult:
    """Run trials until the study holds ``n_trials`` finished ones (complete, or failed by their evaluation).

    At most ``executor.n_workers`` evaluations are in flight. Trials left RUNNING by a killed process are
    failed and re-enqueued first, so a second call resumes an interrupted search. Several processes may run
    this loop on one study at once: each counts everyone's finished and running trials against the budget
    (two processes asking at the same instant may overshoot it by one trial each). With ``enqueued_only``
    (grids) only enqueued points are evaluated: a trial the sampler would have to invent is failed at once
    with ``skipped`` recorded, and this process stops asking.
    """
    if n_trials < 0:
        raise SearchError(f"n_trials must be >= 0, got {n_trials}")
    executor = executor or SerialExecutor()
    start = time.perf_counter()
    recovered = len(recover_stale_trials(study))
    done, active = _counts(study)
    in_flight: dict[cf.Future[Any], optuna.Trial] = {}
    evaluated = failed = 0
    exhausted = False
    me = worker_id()
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[status]}"), TimeElapsedColumn(), disable=not progress, console=Console(stderr=True))
    with bar:
        task = bar.add_task(study.study_name, total=n_trials, completed=min(done, n_trials), status="")
        last_check = time.monotonic()
        beats = _Heartbeat(study)
        beats.start()
        try:
            while True:
                while not exhausted and active < n_trials and len(in_flight) < executor.n_workers:
                    with warnings.catch_warnings():  # we record heartbeats ourselves, outside Study.optimize
                        warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
                        trial = study.ask(fixed_distributions=dict(space))
                    if enqueued_only and not _from_queue(study, trial):  # another worker took the last point
                        trial.set_user_attr("skipped", "no enqueued point left")
                        study.tell(trial, state=TrialState.FAIL)
                        exhausted = True  # ask no more; wait for what is in flight
                        break
                    trial.set_user_attr("worker", me)
                    beats.beat(trial._trial_id)
                    beats.trial_ids.add(trial._trial_id)
                    try:
                        in_flight[executor.submit(objective, dict(trial.params))] = trial
                    except BaseException:  # Ctrl-C inside a serial evaluation, or a broken pool
                        beats.trial_ids.discard(trial._trial_id)
                        _abandon(study, trial)
                        raise
                    active += 1
                if not in_flight:
                    break
                finished, _ = cf.wait(in_flight, timeout=HEARTBEAT_SECONDS / 2, return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    trial = in_flight.pop(fut)
                    beats.trial_ids.discard(trial._trial_id)
                    ok = _tell(study, trial, fut)
                    evaluated += 1
                    failed += not ok
                if time.monotonic() - last_check > HEARTBEAT_SECONDS / 2:
                    recovered += len(recover_stale_trials(study))
                    last_check = time.monotonic()
                if finished:
                    done, active = _counts(study)
                    bar.update(task, completed=min(done, n_trials), status=f"failed {failed}" if failed else "")
        except BaseException:
            # Interrupted (Ctrl-C) or the storage failed: leave no trial RUNNING on our account.
            for trial in in_flight.values():
                _abandon(study, trial)
            raise
        finally:
            beats.halt.set()
            beats.join()
    completed = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    return OptimizeResult(evaluated, failed, recovered, completed, time.perf_counter() - start)
