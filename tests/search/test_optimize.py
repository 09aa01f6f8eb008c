"""The ask/tell loop on the serial and process-pool executors: counts, values, failures, resume."""

from __future__ import annotations

import contextlib
import time

import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState

from accelflow.search import (
    Outcome,
    ProcessPoolExecutor,
    SearchError,
    SerialExecutor,
    create_study,
    enqueue_grid,
    grid_space,
    make_executor,
    optimize,
    pareto_front,
    recover_stale_trials,
    storage_url,
)

from ._worker import SPACE, Slow, value_of


def _fails_on_odd(params: dict[str, int]) -> Outcome:
    if params["a"] % 2:
        raise ValueError(f"odd a={params['a']}")
    return Outcome((float(params["a"]), -float(params["a"])), {"twice": 2 * params["a"]}, {"a_le_2": params["a"] - 2.0})


def test_serial_values_and_budget(tmp_path):
    study = create_study("s", storage=tmp_path / "s.db")
    res = optimize(study, Slow(0.0), SPACE, n_trials=7, executor=SerialExecutor(), progress=False)
    assert res.completed == 7 and res.evaluated == 7 and res.failed == 0
    for t in study.trials:
        assert t.value == value_of(t.params)
    # a second call with the same budget runs nothing; a larger budget runs only the difference
    assert optimize(study, Slow(0.0), SPACE, n_trials=7, progress=False).evaluated == 0
    assert optimize(study, Slow(0.0), SPACE, n_trials=10, progress=False).evaluated == 3
    assert len(study.trials) == 10


def test_failures_are_recorded_and_count(tmp_path):
    study = create_study("f", storage=tmp_path / "f.db", directions=("minimize", "maximize"))
    enqueue_grid(study, {"a": list(range(6))})
    res = optimize(study, _fails_on_odd, grid_space({"a": list(range(6))}), n_trials=6, progress=False)
    assert (res.evaluated, res.failed, res.completed) == (6, 3, 3)
    for t in study.trials:
        if t.params["a"] % 2:
            assert t.state is TrialState.FAIL and t.user_attrs["error"] == f"ValueError: odd a={t.params['a']}"
        else:
            assert t.state is TrialState.COMPLETE and t.values == [t.params["a"], -t.params["a"]]
            assert t.user_attrs["twice"] == 2 * t.params["a"]
            assert t.constraints == {"a_le_2": t.params["a"] - 2.0}


def test_grid_enqueue_is_idempotent(tmp_path):
    study = create_study("g", storage=tmp_path / "g.db")
    grid = {"a": [1, 2, 3], "b": [0, 5]}
    assert enqueue_grid(study, grid) == 6
    assert enqueue_grid(study, grid) == 0
    optimize(study, Slow(0.0), grid_space(grid), n_trials=6, progress=False)
    assert sorted((t.params["a"], t.params["b"]) for t in study.trials) == [
        (a, b) for a in (1, 2, 3) for b in (0, 5)]


def test_process_pool_two_workers(tmp_path):
    study = create_study("p", storage=tmp_path / "p.db")
    grid = {"a": list(range(4)), "b": [1, 2]}
    enqueue_grid(study, grid)
    with ProcessPoolExecutor(2) as ex:
        res = optimize(study, Slow(0.05), grid_space(grid), n_trials=8, executor=ex, progress=False)
    assert res.completed == 8
    assert all(t.value == value_of(t.params) for t in study.trials)
    assert len({t.number for t in study.trials}) == 8


def test_bad_inputs_are_search_errors(tmp_path):
    with pytest.raises(SearchError, match="expected an RDB URL"):
        storage_url("not a url")
    with pytest.raises(SearchError, match="workers must be >= 1"):
        make_executor(0)
    with pytest.raises(SearchError, match="cannot open"):
        create_study("x", storage="postgresql+psycopg2://nobody@127.0.0.1:1/none")
    create_study("d", storage=tmp_path / "d.db", directions=("minimize",))
    with pytest.raises(SearchError, match="directions"):
        create_study("d", storage=tmp_path / "d.db", directions=("maximize",))
    study = create_study("v", storage=tmp_path / "v.db", directions=("minimize", "minimize"))
    res = optimize(study, lambda p: 1.0, {"x": FloatDistribution(0, 1)}, n_trials=1, progress=False)
    assert res.failed == 1 and "2 direction" in study.trials[0].user_attrs["error"]


def test_pareto_front_matches_brute_force():
    pts = [(x % 7, (x * 5) % 11) for x in range(40)]
    front = set(pareto_front(pts))
    for i, p in enumerate(pts):
        dominated = any(q[0] <= p[0] and q[1] <= p[1] and q != p for q in pts)
        assert (i in front) == (not dominated)


def test_int_space_sampling(tmp_path):
    study = create_study("i", storage=tmp_path / "i.db")
    optimize(study, Slow(0.0), {"a": IntDistribution(0, 9), "b": IntDistribution(0, 9)}, 5, progress=False)
    assert all(0 <= t.params["a"] <= 9 for t in study.trials)


class _Interrupt:
    """Raises KeyboardInterrupt at the third evaluation (as Ctrl-C in a serial search would)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, params: dict[str, int]) -> float:
        self.calls += 1
        if self.calls == 3:
            raise KeyboardInterrupt
        return value_of(params)


def test_ctrl_c_leaves_nothing_running_and_resumes(tmp_path):
    study = create_study("c", storage=tmp_path / "c.db")
    grid = {"a": [1, 2, 3, 4], "b": [7]}
    enqueue_grid(study, grid)
    with pytest.raises(KeyboardInterrupt):
        optimize(study, _Interrupt(), grid_space(grid), n_trials=4, progress=False, enqueued_only=True)
    assert not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    interrupted = [t for t in study.trials if t.state is TrialState.FAIL]
    assert len(interrupted) == 1 and interrupted[0].user_attrs["interrupted"] is True
    res = optimize(study, Slow(0.0), grid_space(grid), n_trials=4, progress=False, enqueued_only=True)
    assert res.evaluated == 2 and res.completed == 4
    assert sorted(t.params["a"] for t in study.trials if t.state is TrialState.COMPLETE) == [1, 2, 3, 4]


class _WatchHeartbeat:
    """A serial evaluation that reads its trial's heartbeat from the SQLite file twice, 1.2 s apart."""

    def __init__(self, db: str) -> None:
        self.db = db

    def _beat(self) -> str:
        import sqlite3

        with contextlib.closing(sqlite3.connect(self.db, timeout=30)) as con:
            return str(con.execute("SELECT max(heartbeat) FROM trial_heartbeats").fetchone()[0])

    def __call__(self, params: dict[str, int]) -> float:
        first = self._beat()
        time.sleep(1.2)
        return float(self._beat() > first)


def test_heartbeat_refreshed_during_a_blocking_evaluation(tmp_path, monkeypatch):
    import accelflow.search._optimize as opt

    monkeypatch.setattr(opt, "HEARTBEAT_SECONDS", 0.4)  # beats every 0.2 s instead of 5 s
    study = create_study("h", storage=tmp_path / "h.db")
    optimize(study, _WatchHeartbeat(str(tmp_path / "h.db")), {"a": IntDistribution(0, 1)}, 1, progress=False)
    assert study.trials[0].value == 1.0, "heartbeat did not advance while the serial evaluation ran"


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_trials_of_other_hosts_recovered_after_grace_period(tmp_path, monkeypatch):
    import accelflow.search._study as study_mod

    monkeypatch.setattr(study_mod, "HEARTBEAT_SECONDS", 1)  # storage heartbeat 1 s, grace 3 s
    study = create_study("o", storage=tmp_path / "o.db")
    remote = study.ask({"a": IntDistribution(0, 9)})
    remote.set_user_attr("worker", "some-other-host:123")
    study._storage.record_heartbeat(remote._trial_id)
    orphan = study.ask({"a": IntDistribution(0, 9)})  # asked, then killed before recording its owner
    assert recover_stale_trials(study) == []  # within the grace period: someone may be working on them
    time.sleep(5.0)  # SQLite stamps heartbeats to the second and Optuna needs > grace whole seconds
    assert sorted(recover_stale_trials(study)) == [remote.number, orphan.number]
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    assert sorted(t.params["a"] if t.params else t.system_attrs["fixed_params"]["a"] for t in waiting) == sorted(
        [remote.params["a"], orphan.params["a"]])
