"""A real run through all three systems renders to an HTML report whose plots are not blank.

The flow is a cut-down demo (LeNet-5 from the training cache, a 3-trial HASS search, a systolic-array
latency estimate); the page is rendered by headless Chromium and the screenshot is inspected.
"""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import pytest
from matplotlib import image as mpimg

from accelflow.flow import check_flow, initial_state, parse_flow, run_flow
from accelflow.runs import RunStore
from accelflow.runs.plots import pareto_front, report_figures
from accelflow.runs.report import build_report, write_report

FLOW = """
name: render_check
start: {model: lenet5, dataset: fashion_mnist}
steps:
  - task: train_cached
  - task: hass
    params: {device: zcu102, objective: throughput_per_dsp, trials: 3, validation_size: 200, calibration_size: 8,
             lockstep: sampled}
  - task: perf_estimate
    params: {arch: "systolic:rows=8,cols=8,dataflow=ws"}
"""

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    spec, flow = parse_flow(FLOW, "render_check.yaml")[:2]
    start = initial_state(spec.start)
    check_flow(flow, start)
    store = RunStore(root)
    result = run_flow(flow, start, store=store, flow_text=FLOW, seed=0)
    yield store, result.run_id
    store.close()


def _is_blank(png: np.ndarray) -> bool:
    rgb = png[..., :3].astype(np.float64)
    return float(rgb.std()) < 0.02  # one flat colour


def test_report_has_every_figure_and_none_is_blank(finished_run):
    store, run_id = finished_run
    report = build_report(store, run_id)
    figures = report_figures(report)
    keys = {f.key for f in figures}
    assert {"flow", "perf_layers", "dataflow_cycles", "dataflow_resources", "pareto_throughput_images_per_s",
            "pareto_dsp"} <= keys
    for fig in figures:
        assert not _is_blank(mpimg.imread(io.BytesIO(fig.png), format="png")), fig.key
    assert report["metrics"]["hass"]["accuracy_drop"] <= 1.0 + 1e-9


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_html_report_renders_in_headless_chromium(finished_run, tmp_path):
    store, run_id = finished_run
    _, html_path = write_report(store, run_id)
    shot = tmp_path / "report.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", "--window-size=1200,3000",
           f"--screenshot={shot}", html_path.as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert shot.is_file() and shot.stat().st_size > 10_000
    page = mpimg.imread(shot)
    assert not _is_blank(page)
    dom = subprocess.run([*cmd[:-2], "--dump-dom", html_path.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    assert dom.count('class="plot"') >= 6 and "Accuracy / throughput Pareto front" in dom


def test_pareto_front_is_the_non_dominated_set():
    points = [(1.0, 0.9), (2.0, 0.8), (1.5, 0.85), (0.5, 0.95), (1.0, 0.7), (2.0, 0.6)]
    front = pareto_front(points)
    assert [points[i] for i in front] == [(0.5, 0.95), (1.0, 0.9), (1.5, 0.85), (2.0, 0.8)]
    brute = [i for i, p in enumerate(points)
             if not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in points)]
    assert sorted(front) == sorted(brute)


def test_report_without_hardware_stages_draws_no_empty_plots():
    report = {"executions": [], "metrics": {}}
    assert report_figures(report, artefacts={}) == []
