"""Parsers for real Vivado/Vitis HLS reports (``<top>_csynth.xml`` / ``<top>_csynth.rpt``) and Vivado
synthesis utilisation reports (``vivado_synth.rpt``, ``report_utilization`` output)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from accelflow.hls._config import ReportParseError

__all__ = [
    "SynthesisReport",
    "parse_vivado_report",
    "parse_csynth_xml",
    "parse_csynth_rpt",
    "parse_utilization_rpt",
]


@dataclass(frozen=True)
class SynthesisReport:
    """Resources and timing read from a report. Latencies and interval in cycles, clocks in ns; fields a
    report does not state are None (utilisation reports carry no latency, HLS reports no post-synthesis
    counts). ``source`` is the file read and ``kind`` one of 'csynth_xml', 'csynth_rpt', 'utilization'."""

    source: Path
    kind: str
    dsp: int
    lut: int
    ff: int
    bram18: int
    uram: int = 0
    latency_min_cycles: int | None = None
    latency_max_cycles: int | None = None
    interval_min_cycles: int | None = None
    interval_max_cycles: int | None = None
    target_clock_ns: float | None = None
    estimated_clock_ns: float | None = None


def _int(text: str | None, path: Path, what: str) -> int:
    if text is None:
        raise ReportParseError(f"{path}: field {what} missing")
    try:
        return int(float(text.strip().split("(")[0]))
    except ValueError as exc:
        raise ReportParseError(f"{path}: field {what} is not a number: {text!r}") from exc


def parse_csynth_xml(path: str | Path) -> SynthesisReport:
    """Vivado/Vitis HLS ``<top>_csynth.xml`` (elements as read by hls4ml's vivado_report)."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise ReportParseError(f"{path}: not a readable csynth XML report ({exc})") from exc
    perf = root.find("./PerformanceEstimates")
    res = root.find("./AreaEstimates/Resources")
    if perf is None or res is None:
        raise ReportParseError(f"{path}: no PerformanceEstimates/AreaEstimates section; is it a csynth.xml?")
    lat = perf.find("./SummaryOfOverallLatency")
    if lat is None:
        raise ReportParseError(f"{path}: no SummaryOfOverallLatency in PerformanceEstimates")

    def text(node: ET.Element | None, tag: str) -> str | None:
        found = node.find(tag) if node is not None else None
        return found.text if found is not None else None

    dsp = text(res, "DSP") or text(res, "DSP48E")
    clock = text(root, "./UserAssignments/TargetClockPeriod")
    est = text(perf, "./SummaryOfTimingAnalysis/EstimatedClockPeriod")
    return SynthesisReport(
        path,
        "csynth_xml",
        dsp=_int(dsp, path, "DSP"),
        lut=_int(text(res, "LUT"), path, "LUT"),
        ff=_int(text(res, "FF"), path, "FF"),
        bram18=_int(text(res, "BRAM_18K"), path, "BRAM_18K"),
        uram=_int(text(res, "URAM") or "0", path, "URAM"),
        latency_min_cycles=_int(text(lat, "Best-caseLatency"), path, "Best-caseLatency"),
        latency_max_cycles=_int(text(lat, "Worst-caseLatency"), path, "Worst-caseLatency"),
        interval_min_cycles=_int(text(lat, "Interval-min"), path, "Interval-min"),
        interval_max_cycles=_int(text(lat, "Interval-max"), path, "Interval-max"),
        target_clock_ns=float(clock) if clock else None,
        estimated_clock_ns=float(est) if est else None,
    )


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_csynth_rpt(path: str | Path) -> SynthesisReport:
    """Vivado/Vitis HLS ``<top>_csynth.rpt`` text report: clock table, latency summary, 'Total' row of the
    utilisation estimates."""
    path = Path(path)
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise ReportParseError(f"{path}: cannot read report ({exc})") from exc
    header: list[str] | None = None
    total: dict[str, str] = {}
    latency: list[str] | None = None
    clock: list[str] | None = None
    section = ""
    for i, line in enumerate(lines):
        low = line.lower()
        if "== utilization estimates" in low:
            section = "util"
        elif "== performance estimates" in low:
            section = "perf"
        if "|" not in line:
            continue
        cells = _cells(line)
        if section == "util" and cells and cells[0] == "Name" and header is None:
            header = cells
        elif section == "util" and header and cells and cells[0] == "Total" and not total:
            total = dict(zip(header, cells, strict=False))
        elif section == "perf" and cells and cells[0].lower() == "clock" and clock is None:
            clock = _cells(lines[i + 2]) if i + 2 < len(lines) else None
        elif (
            section == "perf" and latency is None and re.fullmatch(r"\d+", cells[0] or "") and len(cells) >= 6
        ):
            latency = cells
    if not total or latency is None:
        raise ReportParseError(
            f"{path}: no utilisation 'Total' row or no latency summary row; is it a csynth.rpt?"
        )
    dsp_key = "DSP" if "DSP" in total else "DSP48E"

    def num(key: str) -> int:
        return _int(total.get(key, "0").replace("-", "0") or "0", path, key)

    # latency row: min cycles | max cycles | min abs | max abs | interval min | interval max | pipeline
    lat_nums = [c for c in latency if re.fullmatch(r"\d+", c)]
    if len(lat_nums) < 4:
        raise ReportParseError(f"{path}: cannot read latency/interval cycles from row {latency}")
    target = est = None
    if clock and len(clock) >= 3:
        target = float(re.sub(r"[^0-9.]", "", clock[1]) or "nan")
        est = float(re.sub(r"[^0-9.]", "", clock[2]) or "nan")
    return SynthesisReport(
        path,
        "csynth_rpt",
        dsp=num(dsp_key),
        lut=num("LUT"),
        ff=num("FF"),
        bram18=num("BRAM_18K"),
        uram=num("URAM") if "URAM" in total else 0,
        latency_min_cycles=int(lat_nums[0]),
        latency_max_cycles=int(lat_nums[1]),
        interval_min_cycles=int(lat_nums[2]),
        interval_max_cycles=int(lat_nums[3]),
        target_clock_ns=target,
        estimated_clock_ns=est,
    )


def parse_utilization_rpt(path: str | Path) -> SynthesisReport:
    """Vivado ``report_utilization`` output (hls4ml's ``vivado_synth.rpt``): 'CLB/Slice LUTs', 'CLB/Slice
    Registers', 'Block RAM Tile' (counted in 36 Kb tiles, converted to BRAM18 = 2 per tile), 'URAM', 'DSPs'."""
    path = Path(path)
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise ReportParseError(f"{path}: cannot read report ({exc})") from exc
    found: dict[str, str] = {}
    for line in lines:
        if "|" not in line:
            continue
        cells = _cells(line)
        if len(cells) < 2:
            continue
        name = cells[0]
        for key, names in (
            ("lut", ("CLB LUTs", "Slice LUTs", "CLB LUTs*", "Slice LUTs*")),
            ("ff", ("CLB Registers", "Slice Registers")),
            ("bram_tile", ("Block RAM Tile",)),
            ("uram", ("URAM",)),
            ("dsp", ("DSPs",)),
        ):
            if name in names and key not in found:
                found[key] = cells[1]
    missing = [k for k in ("lut", "ff", "bram_tile", "dsp") if k not in found]
    if missing:
        raise ReportParseError(
            f"{path}: utilisation rows {missing} not found; is it a report_utilization file?"
        )
    try:
        tiles = float(found["bram_tile"])
    except ValueError as exc:
        raise ReportParseError(f"{path}: Block RAM Tile is not a number: {found['bram_tile']!r}") from exc
    return SynthesisReport(
        path,
        "utilization",
        dsp=_int(found["dsp"], path, "DSPs"),
        lut=_int(found["lut"], path, "LUTs"),
        ff=_int(found["ff"], path, "Registers"),
        bram18=int(round(tiles * 2)),
        uram=_int(found.get("uram", "0"), path, "URAM"),
    )


def parse_vivado_report(path: str | Path) -> SynthesisReport:
    """Parse any supported report, chosen by content: csynth XML, csynth text or utilisation report."""
    path = Path(path)
    if not path.is_file():
        raise ReportParseError(f"{path}: report file not found")
    head = path.read_text(errors="replace")[:4000]
    if head.lstrip().startswith("<?xml") or "<profile" in head:
        return parse_csynth_xml(path)
    if (
        "Utilization Estimates" in head
        or "Performance Estimates" in head
        or "== Vitis HLS Report" in head
        or "== Vivado HLS Report" in head
    ):
        return parse_csynth_rpt(path)
    if (
        "report_utilization" in head
        or "Utilization Design Information" in head
        or "Slice Logic" in head
        or "CLB Logic" in head
    ):
        return parse_utilization_rpt(path)
    raise ReportParseError(
        f"{path}: unknown report format (expected csynth.xml/.rpt or a utilisation report)"
    )
