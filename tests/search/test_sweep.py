"""`accelflow sweep` and its objective: cycles from the performance model, the documented area proxy,
the Pareto flags, resume from the study, and one-line errors for bad options."""

from __future__ import annotations

import json

import pytest

from accelflow.arch import template
from accelflow.cli.main import main
from accelflow.frontends import load_model
from accelflow.perf import Mode, estimate
from accelflow.search._sweep import ArchSweep, AreaProxy


def test_objective_values():
    sweep = ArchSweep("zoo:lenet5", "systolic", fixed=(("dataflow", "os"),))
    out = sweep({"rows": 4, "cols": 8})
    arch = template("systolic", rows=4, cols=8, dataflow="os")
    assert out.attrs["cycles"] == estimate(load_model("zoo:lenet5"), arch, Mode.FAST).total_cycles
    # 32 MACs; ifmap/filter/ofmap 64 KB each + 4*8 PE registers of 2 bytes (by hand from the template)
    assert out.attrs["pes"] == 32 and out.attrs["sram_kb"] == pytest.approx(192 + 64 / 1024)
    assert out.values[1] == pytest.approx(32 * AreaProxy.mm2_per_mac + (192 + 64 / 1024) * AreaProxy.mm2_per_kb)


def _sweep(tmp_path, capsys, *extra: str) -> tuple[int, dict]:
    argv = ["sweep", "zoo:lenet5", "--arch", "systolic", "--param", "rows=4,8,16", "--param", "cols=4,16",
            "--storage", str(tmp_path / "s.db"), "--out", str(tmp_path / "out"), "--json", *extra]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return code, json.loads(captured.out)


def test_cli_grid_pareto_and_resume(tmp_path, capsys):
    code, doc = _sweep(tmp_path, capsys)
    assert code == 0 and doc["designs"] == 6 and doc["evaluated_this_run"] == 6 and not doc["failed"]
    pts = doc["points"]
    for p in pts:  # Pareto flag against brute force on (cycles, area)
        dominated = any(q["cycles"] <= p["cycles"] and q["area_mm2"] <= p["area_mm2"]
                        and (q["cycles"], q["area_mm2"]) != (p["cycles"], p["area_mm2"]) for q in pts)
        assert p["pareto"] == (not dominated)
    # more MACs never make this network slower on the same array shape family
    by = {(p["params"]["rows"], p["params"]["cols"]): p["cycles"] for p in pts}
    assert by[(16, 16)] < by[(8, 16)] < by[(4, 16)]
    assert (tmp_path / "out" / "pareto.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "out" / "sweep.json").read_text())["pareto"] == doc["pareto"]
    code, again = _sweep(tmp_path, capsys)  # same command: the study already holds every design
    assert code == 0 and again["evaluated_this_run"] == 0 and again["points"] == pts


@pytest.mark.parametrize("argv, message", [
    (["--arch", "systolic", "--param", "rows"], "expected NAME=V1,V2"),
    (["--arch", "systolic", "--param", "banana=1,2"], "has parameters"),
    (["--arch", "nosuch", "--param", "rows=1,2"], "sweeps take a template name"),
    (["--arch", "systolic", "--param", "dataflow=ws,xx"], "dataflow must be one of"),
    (["--arch", "systolic", "--param", "rows=4", "--workers", "0"], "workers must be >= 1"),
    (["--arch", "systolic", "--param", "rows=4", "--storage", "mysql"], "expected an RDB URL"),
    (["--arch", "systolic", "--param", "rows=4", "--trials", "0"], "--trials must be >= 1"),
])
def test_cli_bad_options_exit_2_with_one_line(tmp_path, capsys, argv, message):
    code = main(["sweep", "zoo:lenet5", *argv, "--storage", str(tmp_path / "x.db")]
                if "--storage" not in argv else ["sweep", "zoo:lenet5", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err
