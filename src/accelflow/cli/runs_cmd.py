"""`accelflow runs` (table of recorded runs) and `accelflow report RUN [--json]` (report.json + report.html)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from accelflow.cli.run_cmd import DEFAULT_STORE
from accelflow.runs import RunStatus, RunStore, build_report, write_report

__all__ = ["register", "run_runs", "run_report"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list the runs in the run store")
    p.add_argument("--store", default=DEFAULT_STORE, help=f"run store directory (default: ./{DEFAULT_STORE})")
    p.set_defaults(func=run_runs)
    r = sub.add_parser("report", help="write runs/<id>/report.json and report.html for a run")
    r.add_argument("run_id", metavar="RUN", help="run id or unique prefix")
    r.add_argument("--store", default=DEFAULT_STORE, help=f"run store directory (default: ./{DEFAULT_STORE})")
    r.add_argument("--json", action="store_true", help="also print the report JSON on stdout")
    r.set_defaults(func=run_report)


def run_runs(args: argparse.Namespace) -> int:
    store = RunStore(args.store)
    try:
        table = Table(title=f"runs in {store.db_path}")
        for col in ("run", "flow", "status", "started (UTC)", "tasks", "failed", "task time (s)"):
            table.add_column(col, no_wrap=col in ("run", "flow", "started (UTC)"))
        for info in store.runs():
            ex = store.executions(info.id)
            done = [e for e in ex if e.status is RunStatus.COMPLETED]
            failed = [e for e in ex if e.status is RunStatus.FAILED]
            table.add_row(info.id, info.flow_name, info.status.value,
                          datetime.fromtimestamp(info.created, UTC).strftime("%Y-%m-%d %H:%M:%S"),
                          str(len(done)), str(len(failed)), f"{sum(e.seconds or 0.0 for e in done):.1f}")
    finally:
        store.close()
    console = Console()
    if not console.is_terminal:  # piped: do not squeeze the ids into 80 columns
        console = Console(width=160)
    console.print(table)
    return 0


def run_report(args: argparse.Namespace) -> int:
    store = RunStore(args.store)
    try:
        json_path, html_path = write_report(store, args.run_id)
        if args.json:
            print(json.dumps(build_report(store, args.run_id), indent=1))
        else:
            print(f"{json_path}\n{html_path}")
    finally:
        store.close()
    return 0
