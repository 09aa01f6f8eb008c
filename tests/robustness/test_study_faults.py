"""Fault tolerance of shared studies: SIGKILL in the middle of a search, concurrent workers (SQLite and a
real PostgreSQL server when ``ACCELFLOW_TEST_PG_URL`` is set, as `.ci/run` does)."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from optuna.trial import TrialState

from accelflow.search import create_study, enqueue_grid, optimize, recover_stale_trials

WORKER = Path(__file__).parent.parent / "search" / "_worker.py"
_spec = importlib.util.spec_from_file_location("accelflow_test_worker", WORKER)
assert _spec is not None and _spec.loader is not None
_worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_worker)
SPACE, Slow, value_of = _worker.SPACE, _worker.Slow, _worker.value_of
GRID = {"a": [0, 1, 2, 3], "b": [0, 1, 2, 3]}
PG_URL = os.environ.get("ACCELFLOW_TEST_PG_URL")


def _spawn(url: str, name: str, n_trials: int, workers: int, sleep_s: float, *extra: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen([sys.executable, str(WORKER), url, name, str(n_trials), str(workers), str(sleep_s), *extra],
                            env=env, start_new_session=True, stderr=subprocess.PIPE)


def _complete(study):
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def _check_intact(study, n_points: int) -> None:
    trials = study.get_trials(deepcopy=False)
    assert len({t.number for t in trials}) == len(trials)
    done = _complete(study)
    for t in done:
        assert t.value == value_of(t.params)
    points = [(t.params["a"], t.params["b"]) for t in done]
    assert len(set(points)) == n_points == len(points), "every grid point completed exactly once"
    assert not study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING))


@pytest.mark.parametrize("workers", [pytest.param(1, marks=pytest.mark.slow), 2])
def test_sigkill_mid_search_resumes_keeping_completed_trials(tmp_path, workers):
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    study = create_study("kill", storage=url)
    enqueue_grid(study, GRID)
    proc = _spawn(url, "kill", 16, workers, 0.4)
    deadline = time.monotonic() + 120
    def mid_evaluation() -> bool:  # >= 4 done, and every running trial has its owner recorded
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        return len(_complete(study)) >= 4 and bool(running) and all("worker" in t.user_attrs for t in running)

    while not mid_evaluation():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "worker made no progress"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the worker's own session: itself and its pool processes
    proc.wait()
    before = {t.number: (t.params, t.value) for t in _complete(study)}
    running = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    assert 4 <= len(before) < 16 and running, "killed in the middle, with trials running"

    assert sorted(recover_stale_trials(study)) == running  # dead local pid: stale at once
    res = optimize(study, Slow(0.0), SPACE, n_trials=16, progress=False)
    after = {t.number: (t.params, t.value) for t in _complete(study)}
    assert all(after[n] == before[n] for n in before), "completed trials kept unchanged"
    assert res.evaluated == 16 - len(before)
    for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        assert t.number in running and t.user_attrs["interrupted"] is True
    _check_intact(study, 16)


def _concurrent(url: str, name: str) -> None:
    study = create_study(name, storage=url)  # schema and study first, then the workers
    enqueue_grid(study, GRID)
    procs = [_spawn(url, name, 16, 1, 0.1, "grid") for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    _check_intact(study, 16)
    for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):  # only the enqueued_only guard
        assert t.user_attrs == {"skipped": "no enqueued point left"}
    workers = {t.user_attrs["worker"] for t in _complete(study)}
    assert len(workers) == 2, f"both workers took trials: {workers}"


def test_two_processes_share_one_sqlite_study(tmp_path):
    _concurrent(f"sqlite:///{tmp_path / 'shared.db'}", "shared")


@pytest.mark.skipif(not PG_URL, reason="ACCELFLOW_TEST_PG_URL not set (.ci/run starts a PostgreSQL server "
                                       "with CI=1 or ACCELFLOW_PG_SETUP=1)")
def test_two_processes_share_one_postgresql_study():
    assert PG_URL is not None
    _concurrent(PG_URL, f"pg-{uuid.uuid4().hex[:8]}")
