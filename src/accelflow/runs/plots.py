"""Figures of a run report: per-layer bars, Pareto fronts and the flow graph, as embedded PNGs.

Inputs are the report dict of :func:`accelflow.runs.report.build_report` and the JSON artefacts the tasks
wrote (``perf_report``, ``dataflow_design``, ``hass_result``); every figure is drawn only when its data
exist, so a MetaML-only run gets no empty plot. Matplotlib runs headless (Agg).
"""

from __future__ import annotations

import base64
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["ReportFigure", "report_figures", "load_artefacts", "pareto_front"]

log = logging.getLogger(__name__)

_STATUS_COLOURS = {"completed": "#4c9a2a", "failed": "#c0392b", "running": "#e6a23c", "skipped": "#999999"}


@dataclass(frozen=True)
class ReportFigure:
    """One figure: a title, what it shows, and the PNG bytes."""

    key: str
    title: str
    caption: str
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def load_artefacts(report: dict[str, Any]) -> dict[str, Any]:
    """The latest JSON artefact of each name written by the run's completed tasks (unreadable ones skipped)."""
    found: dict[str, Any] = {}
    for execution in report["executions"]:
        for name, path in execution.get("artefacts", {}).items():
            p = Path(path)
            if p.suffix != ".json" or not p.is_file():
                continue
            try:
                found[name] = json.loads(p.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                log.warning("skipping unreadable artefact %s: %s", p, exc)
    return found


def pareto_front(points: list[tuple[float, float]], maximise: tuple[bool, bool] = (True, True)) -> list[int]:
    """Indices of the non-dominated points (both coordinates maximised unless told otherwise)."""
    signs = [1 if m else -1 for m in maximise]
    keyed = [(p[0] * signs[0], p[1] * signs[1]) for p in points]
    front = []
    for i, (a, b) in enumerate(keyed):
        if not any((c >= a and d >= b) and (c > a or d > b) for j, (c, d) in enumerate(keyed) if j != i):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def _layer_bars(names: list[str], series: dict[str, list[float]], ylabel: str, title: str, log_y: bool = False) -> bytes:
    fig, ax = plt.subplots(figsize=(max(6.0, 0.32 * len(names) + 2), 3.6))
    width = 0.8 / max(1, len(series))
    for k, (label, values) in enumerate(series.items()):
        ax.bar([i + k * width for i in range(len(names))], values, width=width, label=label)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(names))])
    ax.set_xticklabels(names, rotation=70, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if log_y:
        ax.set_yscale("log")
    if len(series) > 1:
        ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def _pareto_plot(trials: list[dict[str, Any]], x_key: str, xlabel: str, maximise_x: bool, chosen: dict[str, Any],
                 bound: float, reference: float) -> bytes:
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for source in sorted({t["source"] for t in trials}):
        pts = [t for t in trials if t["source"] == source]
        ax.scatter([t[x_key] for t in pts], [100 * t["accuracy"] for t in pts], s=18, alpha=0.7, label=source)
    feasible = [t for t in trials if t["feasible"]]
    if feasible:
        idx = pareto_front([(t[x_key], t["accuracy"]) for t in feasible], (maximise_x, True))
        front = [feasible[i] for i in idx]
        ax.step([t[x_key] for t in front], [100 * t["accuracy"] for t in front], where="post", color="k", lw=1,
                label="Pareto front (feasible)")
    ax.axhline(100 * reference - bound, color="#c0392b", ls="--", lw=1, label=f"accuracy bound (-{bound:g} pt)")
    ax.scatter([chosen[x_key]], [100 * chosen["accuracy"]], marker="*", s=180, color="#e6a23c", zorder=5,
               label="returned design")
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _png(fig)


def _flow_graph(executions: list[dict[str, Any]]) -> bytes:
    """Executions left to right in run order; branches of a fork/branch are stacked by their flow key."""
    fig, ax = plt.subplots(figsize=(max(6.0, 1.5 * len(executions)), 2.4))
    lanes: dict[str, int] = {}
    positions = []
    for i, e in enumerate(executions):
        parts = e["key"].split("/")
        lane_key = "/".join(parts[:-1])
        lane = lanes.setdefault(lane_key, len(lanes))
        positions.append((i, -lane))
        colour = _STATUS_COLOURS.get(e["status"], "#999999")
        ax.text(i, -lane, f"{e['task']}\n[{e['key']}]", ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round", "fc": colour, "ec": "k", "alpha": 0.85}, color="white")
    for (x0, y0), (x1, y1) in zip(positions, positions[1:], strict=False):
        ax.annotate("", xy=(x1 - 0.35, y1), xytext=(x0 + 0.35, y0), arrowprops={"arrowstyle": "->", "lw": 1})
    ax.set_xlim(-0.7, len(executions) - 0.3)
    ax.set_ylim(-len(lanes) + 0.3, 0.7)
    ax.axis("off")
    return _png(fig)


def report_figures(report: dict[str, Any], artefacts: dict[str, Any] | None = None) -> list[ReportFigure]:
    """Every figure the run's data support, in reading order."""
    artefacts = load_artefacts(report) if artefacts is None else artefacts
    figures: list[ReportFigure] = []
    if report["executions"]:
        figures.append(ReportFigure("flow", "Flow graph", "Tasks in the order they ran (green: completed, "
                                    "red: failed); stacked lanes are fork/branch positions.",
                                    _flow_graph(report["executions"])))
    perf = artefacts.get("perf_report")
    if perf and perf.get("layers"):
        layers = perf["layers"]
        figures.append(ReportFigure(
            "perf_layers", "Accelerator latency per layer",
            f"Cycles per layer on the described accelerator ({perf.get('mode')} mode, "
            f"{perf.get('total_cycles', 0):,} cycles in total).",
            _layer_bars([lp["name"] for lp in layers], {"cycles": [lp["cycles"] for lp in layers]},
                        "cycles", "AIDG latency per layer", log_y=True)))
    hass = artefacts.get("hass_result")
    design = hass or artefacts.get("dataflow_design")
    if design and design.get("layers"):
        layers = design["layers"]
        names = [layer["name"] for layer in layers]
        figures.append(ReportFigure(
            "dataflow_cycles", "Dataflow pipeline: cycles per image per layer",
            "The slowest layer sets the pipeline interval.",
            _layer_bars(names, {"cycles/image": [layer["cycles_per_image"] for layer in layers]},
                        "cycles per image", "layer-pipelined FPGA design", log_y=True)))
        figures.append(ReportFigure(
            "dataflow_resources", "Dataflow pipeline: resources per layer", "DSP and BRAM18 per layer.",
            _layer_bars(names, {k: [layer["resources"].get(k, 0) for layer in layers] for k in ("dsp", "bram18")},
                        "count", "resources per layer")))
        if any(layer.get("sparsity") for layer in layers):
            figures.append(ReportFigure(
                "sparsity", "Measured sparsity per layer",
                "Fraction of zero activation x weight products per window (HASS statistic).",
                _layer_bars(names, {"zero products": [layer.get("sparsity", 0.0) for layer in layers]},
                            "fraction", "sparsity per layer")))
    if hass and hass.get("trials"):
        chosen = {"throughput_images_per_s": hass["throughput_images_per_s"], "dsp": hass["dsp"],
                  "accuracy": hass["accuracy"]}
        for key, label, maximise in (("throughput_images_per_s", "throughput (images/s)", True),
                                     ("dsp", "DSPs", False)):
            figures.append(ReportFigure(
                f"pareto_{key}", f"Accuracy / {label.split(' ')[0]} Pareto front",
                f"Every HASS trial and baseline probe; bound {hass['max_accuracy_drop']:g} points below "
                f"the dense accuracy {100 * hass['reference_accuracy']:.2f}%.",
                _pareto_plot(hass["trials"], key, label, maximise, chosen, hass["max_accuracy_drop"],
                             hass["reference_accuracy"])))
    return figures
