"""Run store (SQLite + a directory per run) and run reports.

Example::

    from accelflow.runs import RunStore, build_report, render_html
    store = RunStore("runs")
    run = store.runs()[-1]
    html = render_html(build_report(store, run.id))
"""

from accelflow.runs.report import build_report, render_html, write_report
from accelflow.runs.store import DB_NAME, ExecutionRecord, RunInfo, RunStatus, RunStore, RunStoreError

__all__ = ["DB_NAME", "ExecutionRecord", "RunInfo", "RunStatus", "RunStore", "RunStoreError",
           "build_report", "render_html", "write_report"]
