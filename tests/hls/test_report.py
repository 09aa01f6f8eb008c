"""Report parsers on sample reports written in the real Vitis HLS / Vivado formats."""

from pathlib import Path

import pytest

from accelflow.hls import ReportParseError, parse_csynth_rpt, parse_csynth_xml, parse_vivado_report

DATA = Path(__file__).parent / "data"


def test_csynth_rpt() -> None:
    r = parse_vivado_report(DATA / "myproject_csynth.rpt")
    assert r.kind == "csynth_rpt"
    assert (r.bram18, r.dsp, r.ff, r.lut, r.uram) == (0, 3716, 19720, 61912, 0)
    assert (r.latency_min_cycles, r.latency_max_cycles) == (9, 9)
    assert (r.interval_min_cycles, r.interval_max_cycles) == (1, 1)
    assert r.target_clock_ns == 5.0 and r.estimated_clock_ns == pytest.approx(3.954)


def test_csynth_xml() -> None:
    r = parse_vivado_report(DATA / "myproject_csynth.xml")
    assert r.kind == "csynth_xml"
    assert (r.bram18, r.dsp, r.ff, r.lut) == (22, 61, 23817, 41502)
    assert (r.latency_min_cycles, r.latency_max_cycles, r.interval_min_cycles) == (1637, 1641, 785)
    assert r.target_clock_ns == 5.0 and r.estimated_clock_ns == pytest.approx(4.21)


def test_utilization_report() -> None:
    r = parse_vivado_report(DATA / "vivado_synth.rpt")
    assert r.kind == "utilization"
    assert (r.lut, r.ff, r.dsp, r.uram) == (38211, 15873, 58, 0)
    assert r.bram18 == 11  # 5.5 block RAM tiles of 36 Kb
    assert r.latency_min_cycles is None


def test_malformed_reports_name_the_file(tmp_path: Path) -> None:
    bad_xml = tmp_path / "broken_csynth.xml"
    bad_xml.write_text("<?xml version='1.0'?><profile><AreaEstimates></AreaEstimates></profile>")
    with pytest.raises(ReportParseError, match="broken_csynth.xml"):
        parse_csynth_xml(bad_xml)
    truncated = tmp_path / "cut_csynth.rpt"
    text = (DATA / "myproject_csynth.rpt").read_text()
    truncated.write_text(text[: text.index("== Utilization Estimates")])
    with pytest.raises(ReportParseError, match="cut_csynth.rpt"):
        parse_csynth_rpt(truncated)
    other = tmp_path / "notes.txt"
    other.write_text("hello\n")
    with pytest.raises(ReportParseError, match="notes.txt.*unknown report format"):
        parse_vivado_report(other)
    with pytest.raises(ReportParseError, match="missing.rpt"):
        parse_vivado_report(tmp_path / "missing.rpt")
