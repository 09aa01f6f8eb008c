"""`accelflow estimate`: JSON schema, exit code 2 on bad input; baselines against FULL mode."""

from __future__ import annotations

import json

import pytest

from accelflow.arch import template
from accelflow.cli.main import main
from accelflow.frontends import load_model
from accelflow.perf import Mode, estimate

KEYS = {"total_cycles", "mode", "instructions_total", "instructions_evaluated", "iterations_evaluated", "wall_seconds",
        "layers", "arch", "clock_mhz", "seconds", "non_gemm_share", "bound", "memory_bound_share", "skipped", "workload"}
LAYER_KEYS = {"name", "op", "cycles", "instructions", "iterations_evaluated", "utilisation", "seconds", "kind", "bound"}


def test_cli_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "zoo:tc_resnet8", "--arch", "systolic:rows=8,cols=8,dataflow=os", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == KEYS and data["mode"] == "fast"
    assert isinstance(data["total_cycles"], int) and data["total_cycles"] == sum(lp["cycles"] for lp in data["layers"])
    assert data["layers"] and all(set(lp) == LAYER_KEYS for lp in data["layers"])
    assert data["instructions_evaluated"] <= data["instructions_total"]
    # every layer is listed: GEMMs and the residual adds/pooling timed, views and fused ReLUs free
    assert {lp["kind"] for lp in data["layers"]} == {"gemm", "vector", "free"} and data["skipped"] == []
    assert all((lp["cycles"] > 0) == (lp["kind"] != "free") for lp in data["layers"])
    assert data["seconds"] == pytest.approx(data["total_cycles"] / 1e9)  # the systolic template assumes 1 GHz
    assert 0 < data["non_gemm_share"] < 1 and data["bound"] == "compute"  # unlimited bandwidth: never memory-bound
    # the same model in FULL mode gives the same cycles
    assert main(["estimate", "zoo:tc_resnet8", "--arch", "systolic:rows=8,cols=8,dataflow=os", "--json", "--mode", "full"]) == 0
    assert json.loads(capsys.readouterr().out)["total_cycles"] == data["total_cycles"]


def test_cli_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "zoo:tc_resnet8", "--arch", "ultratrail"]) == 0
    out = capsys.readouterr().out
    assert "total" in out and "instructions evaluated" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--arch", "tpu"],
        ["--arch", "systolic:rows=8,depth=2"],
        ["--arch", "systolic:dataflow=rs"],
        ["--arch", "missing.yaml"],
        ["--arch", "gemmini", "--tile", "px=3"],
        ["--arch", "gemmini", "--tile", "ti"],
        ["--arch", "gemmini", "--mode", "exact"],
    ],
)
def test_cli_bad_input_exits_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(["estimate", "zoo:tc_resnet8", *argv])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err and len(err.splitlines()) == 1


def test_baselines_against_full() -> None:
    g = load_model("zoo:tc_resnet8")
    arch = template("systolic", rows=8, cols=8)
    full, roof = estimate(g, arch, Mode.FULL), estimate(g, arch, Mode.ROOFLINE)
    reg = estimate(g, arch, Mode.REGRESSION)
    assert [lp.name for lp in roof.layers] == [lp.name for lp in full.layers] == [lp.name for lp in reg.layers]
    # the roofline is a lower bound on an array that cannot exceed its peak
    assert all(r.cycles <= f.cycles for r, f in zip(roof.layers, full.layers, strict=True))
    assert [lp.bound for lp in roof.layers] == [lp.bound for lp in full.layers]  # the bound is the roofline's
    assert all(lp.cycles > 0 for lp in reg.timed())
    assert not full.skipped  # pooling/add run on the vector unit now
