"""Run reports: ``build_report`` gathers a run's record into JSON-ready data, ``render_html`` draws it.

The report dict has a fixed shape (``REPORT_VERSION``), so other renderers (plots, dashboards) can consume
it without touching the store::

    {"version": 1,
     "run": {"id", "flow", "flow_file", "status", "created", "updated", "error"},
     "executions": [{"seq", "key", "task", "params", "status", "seconds", "metrics", "artefacts", "error"}],
     "metrics": {stage: {name: value}},   # final state (or the latest completed task's state)
     "info": {...}, "target": {...}, "model": str | None, "dataset": str | None}
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from accelflow.runs.plots import ReportFigure, report_figures
from accelflow.runs.store import RunStatus, RunStore

__all__ = ["REPORT_VERSION", "build_report", "render_html", "write_report"]

REPORT_VERSION = 1


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def build_report(store: RunStore, run_id: str) -> dict[str, Any]:
    """Everything recorded about run ``run_id`` (a unique prefix is enough) as JSON-ready data."""
    run = store.get_run(run_id)
    executions = store.executions(run.id)
    state = store.final_state(run.id)
    if state is None:  # interrupted or failed: show the latest state that was saved
        done = [e for e in executions if e.status is RunStatus.COMPLETED and e.state_dir]
        state = store.load_snapshot(done[-1]) if done else store.initial_state(run.id)
    return {
        "version": REPORT_VERSION,
        "run": {"id": run.id, "flow": run.flow_name, "flow_file": run.flow_file, "status": run.status.value,
                "created": _iso(run.created), "updated": _iso(run.updated), "error": run.error},
        "executions": [
            {"seq": e.seq, "key": e.key, "task": e.task, "params": dict(e.params), "status": e.status.value,
             "seconds": e.seconds, "metrics": {k: dict(v) for k, v in e.metrics.items()},
             "artefacts": dict(e.artefacts), "error": e.error}
            for e in executions
        ],
        "metrics": {k: dict(v) for k, v in state.metrics.items()},
        "info": json.loads(json.dumps(dict(state.info), default=str)),
        "target": state.target.model_dump(mode="json"),
        "model": state.model_name,
        "dataset": state.dataset,
    }


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def _metrics_table(metrics: dict[str, dict[str, float]]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(stage)}</td><td>{html.escape(name)}</td><td>{_fmt(value)}</td></tr>"
        for stage, values in metrics.items() for name, value in values.items()
    )
    return f"<table><tr><th>stage</th><th>metric</th><th>value</th></tr>{rows}</table>"


def _figures_html(figures: Sequence[ReportFigure]) -> str:
    if not figures:
        return ""
    blocks = "".join(
        f'<figure id="fig-{html.escape(f.key)}"><h3>{html.escape(f.title)}</h3>'
        f'<img class="plot" alt="{html.escape(f.title)}" src="{f.data_uri}">'
        f"<figcaption>{html.escape(f.caption)}</figcaption></figure>"
        for f in figures
    )
    return f"<h2>Figures</h2>{blocks}"


def render_html(report: dict[str, Any], figures: Sequence[ReportFigure] = ()) -> str:
    """A self-contained HTML page: run summary, per-stage metrics, figures, one row per task execution."""
    run = report["run"]
    ex_rows = "".join(
        "<tr>" + "".join(f"<td>{c}</td>" for c in (
            e["seq"], html.escape(e["key"]), html.escape(e["task"]), e["status"],
            "" if e["seconds"] is None else f"{e['seconds']:.2f}",
            html.escape(json.dumps(e["params"], default=str)),
            "<br>".join(f"{html.escape(s)}.{html.escape(n)} = {_fmt(v)}"
                        for s, vals in e["metrics"].items() for n, v in vals.items()),
            html.escape(e["error"] or ""))) + "</tr>"
        for e in report["executions"]
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>accelflow run {html.escape(run['id'])}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #bbb;padding:3px 8px;text-align:left;font-size:90%}}th{{background:#eee}}
figure{{margin:1em 0;max-width:100%}}img.plot{{max-width:100%;border:1px solid #ddd}}
figcaption{{font-size:85%;color:#555}}</style>
</head><body>
<h1>Run {html.escape(run['id'])}: {html.escape(run['flow'])}</h1>
<p>status <b>{run['status']}</b>, created {run['created']}, updated {run['updated']};
model {html.escape(str(report['model']))} on {html.escape(str(report['dataset']))};
target {html.escape(json.dumps(report['target']))}</p>
{f"<p><b>error:</b> {html.escape(run['error'])}</p>" if run['error'] else ""}
<h2>Metrics per stage</h2>
{_metrics_table(report['metrics'])}
{_figures_html(figures)}
<h2>Task executions</h2>
<table><tr><th>#</th><th>flow position</th><th>task</th><th>status</th><th>seconds</th><th>parameters</th>
<th>metrics written</th><th>error</th></tr>{ex_rows}</table>
</body></html>
"""


def write_report(store: RunStore, run_id: str) -> tuple[Path, Path]:
    """Write ``<run dir>/report.json`` and ``report.html``; returns both paths."""
    report = build_report(store, run_id)
    directory = store.run_dir(report["run"]["id"])
    json_path, html_path = directory / "report.json", directory / "report.html"
    json_path.write_text(json.dumps(report, indent=1))
    html_path.write_text(render_html(report, report_figures(report)))
    return json_path, html_path
