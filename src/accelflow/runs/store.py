"""The run store: an SQLite database of runs and task executions, and a directory of artefacts per run.

Layout under the store root (``runs/`` by default)::

    accelflow.db            runs + executions tables (WAL journal, every update in one transaction)
    <run id>/flow.yaml      the flow text the run was started with
    <run id>/states/<seq>/  state.json + model.pt after execution <seq> (written to a temporary
                            directory, then renamed, then the database row is marked completed)
    <run id>/tasks/<seq>/   the task's own artefacts (hls4ml project, reports, ...)

A crash leaves at most an execution row in state ``running`` and an orphan temporary directory; neither is
ever read back, so resuming (:meth:`RunStore.completed_execution`) only reuses finished work.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from accelflow.errors import AccelflowError
from accelflow.flow.state import DesignState, load_state, save_state

__all__ = ["RunStatus", "RunInfo", "ExecutionRecord", "RunStore", "RunStoreError", "DB_NAME"]

DB_NAME = "accelflow.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, flow_name TEXT NOT NULL, flow_file TEXT, status TEXT NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL, final_seq INTEGER, error TEXT
);
CREATE TABLE IF NOT EXISTS executions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL,
    task TEXT NOT NULL, params TEXT NOT NULL, status TEXT NOT NULL, started REAL NOT NULL,
    seconds REAL, metrics TEXT, artefacts TEXT, error TEXT, state_dir TEXT
);
CREATE INDEX IF NOT EXISTS executions_run ON executions(run_id, key);
"""


class RunStoreError(AccelflowError):
    """A run id is unknown/ambiguous or the store is unreadable."""


class RunStatus(StrEnum):
    """Lifecycle of a run and of one task execution."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True)
class RunInfo:
    id: str
    flow_name: str
    flow_file: str | None
    status: RunStatus
    created: float  # Unix seconds
    updated: float
    final_seq: int | None
    error: str | None


@dataclass(frozen=True)
class ExecutionRecord:
    """One task execution. ``metrics`` are the stages the task wrote; ``seconds`` is wall-clock time."""

    seq: int
    run_id: str
    key: str
    task: str
    params: Mapping[str, Any]
    status: RunStatus
    started: float
    seconds: float | None
    metrics: Mapping[str, Mapping[str, float]]
    artefacts: Mapping[str, str]
    error: str | None
    state_dir: str | None


def _params_json(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


class RunStore:
    """Open (or create) a store rooted at ``root``. Thread-unsafe; one process writes a run at a time."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / DB_NAME
        try:
            self._conn = sqlite3.connect(self.db_path, isolation_level=None, timeout=30.0)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise RunStoreError(f"cannot open run store {self.db_path}: {exc}") from exc
        self._conn.row_factory = sqlite3.Row

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # -- runs ----------------------------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        return self.root / run_id

    def create_run(self, flow_name: str, flow_text: str, initial: DesignState, flow_file: str | None = None) -> RunInfo:
        now = time.time()
        run_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
        directory = self.run_dir(run_id)
        directory.mkdir(parents=True)
        (directory / "flow.yaml").write_text(flow_text)
        self._write_snapshot(directory / "states" / "initial", initial)
        with self._tx() as c:
            c.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,NULL,NULL)",
                      (run_id, flow_name, flow_file, RunStatus.RUNNING.value, now, now))
        return self.get_run(run_id)

    def set_status(self, run_id: str, status: RunStatus, *, final_seq: int | None = None,
                   error: str | None = None) -> None:
        with self._tx() as c:
            c.execute("UPDATE runs SET status=?, updated=?, final_seq=COALESCE(?, final_seq), error=? WHERE id=?",
                      (status.value, time.time(), final_seq, error, run_id))

    def get_run(self, run_id: str) -> RunInfo:
        """The run whose id is ``run_id`` or starts with it (a unique prefix is enough)."""
        rows = self._conn.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchall()
        if not rows:
            rows = self._conn.execute("SELECT * FROM runs WHERE id LIKE ? ORDER BY id",
                                      (run_id.replace("%", "") + "%",)).fetchall()
        if len(rows) != 1:
            known = [r["id"] for r in self._conn.execute("SELECT id FROM runs ORDER BY created DESC LIMIT 5")]
            what = "no run" if not rows else f"{len(rows)} runs"
            raise RunStoreError(f"{what} matching '{run_id}' in {self.db_path}; recent runs: {known}")
        return self._run(rows[0])

    def runs(self) -> list[RunInfo]:
        return [self._run(r) for r in self._conn.execute("SELECT * FROM runs ORDER BY created")]

    @staticmethod
    def _run(r: sqlite3.Row) -> RunInfo:
        return RunInfo(r["id"], r["flow_name"], r["flow_file"], RunStatus(r["status"]), r["created"],
                       r["updated"], r["final_seq"], r["error"])

    def flow_text(self, run_id: str) -> str:
        return (self.run_dir(run_id) / "flow.yaml").read_text()

    def initial_state(self, run_id: str) -> DesignState:
        return load_state(self.run_dir(run_id) / "states" / "initial")

    # -- executions ----------------------------------------------------------------------------------------
    def start_execution(self, run_id: str, key: str, task: str, params: Mapping[str, Any]) -> int:
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO executions (run_id, key, task, params, status, started) VALUES (?,?,?,?,?,?)",
                (run_id, key, task, _params_json(params), RunStatus.RUNNING.value, time.time()))
            c.execute("UPDATE runs SET updated=?, status=? WHERE id=?",
                      (time.time(), RunStatus.RUNNING.value, run_id))
        assert cur.lastrowid is not None
        return int(cur.lastrowid)

    def task_dir(self, run_id: str, seq: int) -> Path:
        path = self.run_dir(run_id) / "tasks" / str(seq)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def finish_execution(self, run_id: str, seq: int, state: DesignState | None, seconds: float,
                         metrics: Mapping[str, Mapping[str, float]], artefacts: Mapping[str, str]) -> None:
        """Save the output state (if any) atomically, then mark the execution completed in one transaction."""
        state_dir = None
        if state is not None:
            target = self.run_dir(run_id) / "states" / str(seq)
            self._write_snapshot(target, state)
            state_dir = str(target.relative_to(self.root))
        with self._tx() as c:
            c.execute("UPDATE executions SET status=?, seconds=?, metrics=?, artefacts=?, state_dir=? WHERE seq=?",
                      (RunStatus.COMPLETED.value, seconds, json.dumps(metrics), json.dumps(artefacts),
                       state_dir, seq))

    def fail_execution(self, seq: int, seconds: float, error: str) -> None:
        with self._tx() as c:
            c.execute("UPDATE executions SET status=?, seconds=?, error=? WHERE seq=?",
                      (RunStatus.FAILED.value, seconds, error, seq))

    def _write_snapshot(self, target: Path, state: DesignState) -> None:
        tmp = target.with_name(f".{target.name}.tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        save_state(state, tmp)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)

    def completed_execution(self, run_id: str, key: str, params: Mapping[str, Any]) -> ExecutionRecord | None:
        """The latest completed execution at flow position ``key`` with the same parameters, if any."""
        row = self._conn.execute(
            "SELECT * FROM executions WHERE run_id=? AND key=? AND params=? AND status=? ORDER BY seq DESC LIMIT 1",
            (run_id, key, _params_json(params), RunStatus.COMPLETED.value)).fetchone()
        return None if row is None else self._execution(row)

    def load_snapshot(self, record: ExecutionRecord) -> DesignState:
        if record.state_dir is None:
            raise RunStoreError(f"execution {record.seq} of run {record.run_id} saved no state")
        return load_state(self.root / record.state_dir)

    def executions(self, run_id: str) -> list[ExecutionRecord]:
        rows = self._conn.execute("SELECT * FROM executions WHERE run_id=? ORDER BY seq", (run_id,))
        return [self._execution(r) for r in rows]

    def finish_run(self, run_id: str, state: DesignState) -> None:
        """Save the flow's final state as ``states/final`` and mark the run completed."""
        self._write_snapshot(self.run_dir(run_id) / "states" / "final", state)
        self.set_status(run_id, RunStatus.COMPLETED)

    def final_state(self, run_id: str) -> DesignState | None:
        """The final state of a completed run (None if the run has not completed)."""
        path = self.run_dir(self.get_run(run_id).id) / "states" / "final"
        return load_state(path) if path.exists() else None

    @staticmethod
    def _execution(r: sqlite3.Row) -> ExecutionRecord:
        return ExecutionRecord(
            r["seq"], r["run_id"], r["key"], r["task"], json.loads(r["params"]), RunStatus(r["status"]),
            r["started"], r["seconds"], json.loads(r["metrics"] or "{}"), json.loads(r["artefacts"] or "{}"),
            r["error"], r["state_dir"])
