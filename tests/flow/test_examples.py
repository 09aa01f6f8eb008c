"""Example flows: every file validates; the quick MetaML flow runs end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accelflow.cli.main import main
from accelflow.flow import Fork, load_flow
from accelflow.runs import RunStatus, RunStore

FLOWS = Path(__file__).resolve().parents[2] / "examples" / "flows"


@pytest.mark.parametrize("path", sorted(FLOWS.glob("*.yaml")), ids=lambda p: p.name)
def test_example_flow_validates(path: Path) -> None:
    spec, flow, _ = load_flow(path)
    assert spec.name and flow.steps and flow.source == str(path)


def test_pro_flow_forks_over_orders() -> None:
    _, flow, _ = load_flow(FLOWS / "metaml_pro_fork.yaml")
    (fork,) = [n for n in flow.steps if isinstance(n, Fork)]
    assert len(fork.branches) == 4
    assert {str(k) for k in fork.objective.metric_keys()} >= {"hls_emu.accuracy", "resources.dsp", "baseline.lut"}


def test_quick_metaml_flow_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_dir = tmp_path / "runs"
    assert main(["run", str(FLOWS / "metaml_digits_quick.yaml"), "--store", str(store_dir)]) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    store = RunStore(store_dir)
    assert store.get_run(run_id).status is RunStatus.COMPLETED
    executions = store.executions(run_id)
    assert [e.task for e in executions] == ["train", "estimate", "prune", "scale", "quantize", "emulate",
                                            "hls4ml", "estimate"]
    state = store.final_state(run_id)
    assert state is not None and state.precision  # per-layer types chosen by the quantise task
    m = state.metrics
    assert m["train"]["accuracy"] > 0.8  # digits is easy even after 8 epochs
    # the optimised design is smaller than the ap_fixed<16,6> baseline on every resource
    assert m["resources"]["dsp"] < m["baseline"]["dsp"] and m["resources"]["lut"] < m["baseline"]["lut"]
    # independent check: the numpy emulator and hls4ml's compiled C simulation agree (both bit-accurate)
    assert m["hls_emu"]["accuracy"] == pytest.approx(m["hls_csim"]["accuracy"], abs=0.01)
    assert Path(state.artefacts["hls_project"]).is_dir()
    assert main(["report", run_id, "--store", str(store_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["metrics"]["hls_csim"]["accuracy"] == m["hls_csim"]["accuracy"]
    store.close()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["metaml_jet_dnn", "metaml_pro_fork", "metaml_vgg7"])
def test_example_flow_runs(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The larger example flows (run by `make bench`): each completes and shrinks the design."""
    assert main(["run", str(FLOWS / f"{name}.yaml"), "--store", str(tmp_path)]) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    store = RunStore(tmp_path)
    state = store.final_state(run_id)
    assert state is not None
    m = state.metrics
    assert m["resources"]["dsp"] <= m["baseline"]["dsp"] and m["resources"]["lut"] < m["baseline"]["lut"]
    assert 0.0 < m["hls_csim"]["accuracy"] <= 1.0
    store.close()
