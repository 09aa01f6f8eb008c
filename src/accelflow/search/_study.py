"""Studies on a shared RDB storage: creation before any worker starts, grids, recovery of dead trials.

The storage is SQLite by default (``runs/studies.db``); a PostgreSQL URL such as
``postgresql+psycopg2://user@host:5432/db`` lets workers on many machines share one study. The study and
its schema are created here, by the launching process, *before* any worker exists: two processes creating
the schema of a new SQLite file at once fail.

Crash recovery has two detectors. Every trial records the host and process id of the process that asked
it (user attribute ``worker``); a RUNNING trial whose process is gone on this host is stale at once. Trials
of other hosts are stale when their Optuna heartbeat (refreshed by :func:`accelflow.search.optimize`) is
older than the grace period. A stale trial is marked FAIL with ``interrupted=True`` and its parameters are
enqueued again, so a grid point interrupted by SIGKILL is evaluated again and no completed trial is lost.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.distributions import CategoricalDistribution
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

from accelflow.search._errors import SearchError

__all__ = [
    "DEFAULT_STORAGE",
    "HEARTBEAT_SECONDS",
    "storage_url",
    "create_study",
    "grid_space",
    "enqueue_grid",
    "recover_stale_trials",
    "finished_trials",
    "worker_id",
]

log = logging.getLogger(__name__)

#: Default storage, relative to the working directory.
DEFAULT_STORAGE = "sqlite:///runs/studies.db"
#: Heartbeat interval of running trials (s); a trial of another host is stale after 3 missed beats.
HEARTBEAT_SECONDS = 10

_INTERRUPTED = "interrupted"
_ERROR = "error"
_WORKER = "worker"


def worker_id() -> str:
    """``host:pid`` of this process, recorded on every trial it asks."""
    return f"{socket.gethostname()}:{os.getpid()}"


def storage_url(storage: str | os.PathLike[str] | None) -> str:
    """An RDB URL from ``None`` (the default SQLite file), a URL, or a path to a SQLite file."""
    if storage is None:
        storage = DEFAULT_STORAGE
    text = os.fspath(storage)
    if "://" not in text:
        if text.endswith((".db", ".sqlite", ".sqlite3")):
            return f"sqlite:///{Path(text).resolve()}"
        raise SearchError(f"storage {text!r}: expected an RDB URL such as sqlite:///runs/studies.db or "
                          "postgresql+psycopg2://user@host:5432/db, or a path ending in .db")
    return text


def _rdb(url: str) -> optuna.storages.BaseStorage:
    if url == "sqlite:///:memory:":
        # One process only: Optuna's in-memory storage. An in-memory SQLite database is private to each
        # connection, so the heartbeat thread's writes failed on a database without the trial.
        return optuna.storages.InMemoryStorage()
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        # Concurrent writers wait for the file lock instead of failing after pysqlite's 5 s default.
        engine_kwargs["connect_args"] = {"timeout": 120}
    else:
        engine_kwargs["pool_pre_ping"] = True
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs,
                                                 heartbeat_interval=HEARTBEAT_SECONDS,
                                                 grace_period=3 * HEARTBEAT_SECONDS)
    except ImportError as exc:
        raise SearchError(f"storage {url!r}: database driver missing ({exc}); install it, e.g. psycopg2-binary") from None
    except Exception as exc:  # sqlalchemy.exc.ArgumentError / OperationalError: bad URL, server down
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SearchError(f"storage {url!r}: cannot open ({type(exc).__name__}: {first})") from None
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        _sqlite_setup(storage.engine)
    return storage


def _sqlite_setup(engine: Any) -> None:
    """Make SQLite safe for several processes and faster.

    pysqlite opens a transaction only at the first write, so Optuna's read-check-write when popping an
    enqueued trial (``SELECT ... FOR UPDATE`` is a no-op in SQLite) can hand one trial to two processes.
    Every transaction here starts with ``BEGIN IMMEDIATE`` (takes the write lock first), which serialises
    them. Write-ahead logging with ``synchronous=NORMAL`` avoids a full fsync per commit (a power cut may
    lose the last transactions but does not corrupt the file; a killed process loses nothing).
    """

    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    sqlalchemy.event.listen(engine, "connect", _on_connect)
    sqlalchemy.event.listen(engine, "begin", _on_begin)
    engine.dispose()  # reopen pooled connections with these settings


def create_study(name: str, storage: str | os.PathLike[str] | None = None,
                 directions: Sequence[str] = ("minimize",), sampler: optuna.samplers.BaseSampler | None = None,
                 load_if_exists: bool = True) -> optuna.Study:
    """Create (or load, keeping its trials) the study ``name`` on ``storage``.

    Call this in the launching process before starting workers. Loading checks that the directions match.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dirs = [optuna.study.StudyDirection[d.upper()] if isinstance(d, str) else d for d in directions]
    study = optuna.create_study(storage=_rdb(storage_url(storage)), study_name=name, sampler=sampler,
                                directions=dirs, load_if_exists=load_if_exists)
    if list(study.directions) != dirs:
        raise SearchError(f"study {name!r} exists with directions {[d.name.lower() for d in study.directions]}, "
                          f"not {[d.name.lower() for d in dirs]}; pass another study name")
    return study


def grid_space(grid: Mapping[str, Sequence[Any]]) -> dict[str, CategoricalDistribution]:
    """Fixed distributions for a grid: one categorical per parameter."""
    bad = [k for k, v in grid.items() if len(v) == 0]
    if not grid or bad:
        raise SearchError(f"grid needs at least one value per parameter; empty: {bad or 'all'}")
    return {k: CategoricalDistribution(tuple(v)) for k, v in grid.items()}


def _key(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


def enqueue_grid(study: optuna.Study, grid: Mapping[str, Sequence[Any]]) -> int:
    """Enqueue every point of the grid that the study has not seen yet; returns how many were added.

    A point counts as seen if a trial with those parameters is waiting, running, complete or failed by
    its evaluation (trials failed by an interruption are re-enqueued by :func:`recover_stale_trials`).
    """
    seen = set()
    for t in study.get_trials(deepcopy=False):
        if t.state is TrialState.FAIL and t.user_attrs.get(_ERROR) is None:
            continue
        seen.add(_key(t.system_attrs.get("fixed_params", t.params)))
    added = 0
    names = list(grid)
    for combo in itertools.product(*(grid[n] for n in names)):
        point = dict(zip(names, combo, strict=True))
        if _key(point) not in seen:
            study.enqueue_trial(point)
            seen.add(_key(point))
            added += 1
    return added


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_dead_local(t: FrozenTrial, host: str) -> bool:
    owner = str(t.user_attrs.get(_WORKER, ""))
    owner_host, _, pid = owner.rpartition(":")
    return owner_host == host and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid))


def _is_orphan(t: FrozenTrial) -> bool:
    """A process killed between asking a trial and recording its owner leaves a trial with no owner and no
    heartbeat; after the grace period nobody can be working on it."""
    grace = timedelta(seconds=3 * HEARTBEAT_SECONDS)
    return _WORKER not in t.user_attrs and t.datetime_start is not None and datetime.now() - t.datetime_start > grace


def recover_stale_trials(study: optuna.Study) -> list[int]:
    """Fail RUNNING trials left by dead processes and enqueue their parameters again.

    Returns the numbers of the trials this process failed (another process recovering the same trial at
    the same time loses the race and leaves it alone, so a point is re-enqueued once).
    """
    storage = study._storage
    host = socket.gethostname()
    stale_ids: set[int] = set()
    if is_heartbeat_enabled(storage):  # the RDB storage, wrapped in Optuna's cache
        stale_ids.update(storage._get_stale_trial_ids(study._study_id))  # type: ignore[attr-defined]
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    stale_ids.update(t._trial_id for t in running if _is_dead_local(t, host) or _is_orphan(t))
    recovered = []
    for t in running:
        if t._trial_id not in stale_ids:
            continue
        try:
            storage.set_trial_user_attr(t._trial_id, _INTERRUPTED, True)
            if not storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:
            continue
        params = t.system_attrs.get("fixed_params", t.params)
        if params:
            study.enqueue_trial(dict(params), user_attrs={"retry_of": t.number})
        recovered.append(t.number)
    if recovered:
        log.warning("study %s: %d trial(s) of dead workers marked failed and re-enqueued: %s",
                    study.study_name, len(recovered), recovered)
    return recovered


def finished_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Trials that count towards a budget: complete ones and those whose evaluation raised."""
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
            if t.state is TrialState.COMPLETE or t.user_attrs.get(_ERROR) is not None]
