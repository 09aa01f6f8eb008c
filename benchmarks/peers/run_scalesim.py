"""Run SCALE-Sim 3.0.0 on a list of conv/GEMM layers; JSON in, JSON out.

Executed with the interpreter of ``benchmarks/.peers/venv-scalesim`` (SCALE-Sim needs numpy<2.4,
the project pins 2.4), never imported by accelflow itself.

    python run_scalesim.py request.json result.json

request.json::

    {"array": {"rows": 32, "cols": 32, "dataflow": "ws",
               "ifmap_kb": 256, "filter_kb": 256, "ofmap_kb": 128},
     "bandwidth": "CALC" | <int words/cycle, USER mode>,
     "layers": [{"name": "...", "ifmap_h": 14, "ifmap_w": 14, "filter_h": 3, "filter_w": 3,
                 "channels": 64, "num_filters": 64, "stride": 1}, ...]}

The pip wheel ships no configs, so the cfg, topology CSV and (unused but required) layout CSV are
written here into a temporary directory. Each layer is simulated as its own one-layer run so that its
wall time is measured separately and the benchmark can cache layer by layer. SCALE-Sim topologies have
no padding: ``ifmap_h/ifmap_w`` are the (already padded, if wanted) input sizes as SCALE-Sim sees them.

A layer with ``"kind": "depthwise"`` is given to SCALE-Sim as a 'DP' layer (SCALE-Sim splits it into
``channels`` one-channel, one-filter layers); its numbers are the sums over those rows.

result.json: ``{"scalesim_version": ..., "layers": [{"name", "report_rows", "total_cycles_incl_prefetch",
"total_cycles", "stall_cycles", "compute_cycles", "overall_util_pct", "mapping_eff_pct",
"compute_util_pct", "wall_seconds"}]}`` where ``compute_cycles = total_cycles - stall_cycles``
(the stall-free compute cycles, fill and drain of the array included).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

CFG_TEMPLATE = """[general]
run_name = {run_name}

[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
IfmapSramSzkB = {ifmap_kb}
FilterSramSzkB = {filter_kb}
OfmapSramSzkB = {ofmap_kb}
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Bandwidth = {bandwidth}
Dataflow = {dataflow}
MemoryBanks = 1
ReadRequestBuffer = 32
WriteRequestBuffer = 32

[layout]
IfmapCustomLayout = False
IfmapSRAMBankBandwidth = {bandwidth}
IfmapSRAMBankNum = 1
IfmapSRAMBankPort = 2
FilterCustomLayout = False
FilterSRAMBankBandwidth = {bandwidth}
FilterSRAMBankNum = 1
FilterSRAMBankPort = 2

[sparsity]
SparsitySupport = false
SparseRep = ellpack_block
OptimizedMapping = false
BlockSize = 8
RandomNumberGeneratorSeed = 40

[run_presets]
InterfaceBandwidth = {bw_mode}
UseRamulatorTrace = False
"""

TOPO_HEADER = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
               "Num Filter, Strides,\n")
LAYOUT_HEADER = ("Layer name, IFMAP Height Intraline Factor, IFMAP Width Intraline Factor, "
                 "Filter Height Intraline Factor, Filter Width Intraline Factor, "
                 "Channel Intraline Factor, Num Filter Intraline Factor, "
                 "IFMAP Height Intraline Order, IFMAP Width Intraline Order, "
                 "Channel Intraline Order, IFMAP Height Interline Order, "
                 "IFMAP Width Interline Order, Channel Interline Order, "
                 "Num Filter Intraline Order, Channel Intraline Order, "
                 "Filter Height Intraline Order, Filter Width Intraline Order, "
                 "Num Filter Interline Order, Channel Interline Order, "
                 "Filter Height Interline Order, Filter Width Interline Order,\n")


def _safe_name(name: str) -> str:
    # 'DP' in a SCALE-Sim layer name means depthwise (split per channel): never emit it by accident.
    out = "".join(ch if ch.isalnum() else "_" for ch in name)
    return out.replace("DP", "Dp")


def run_layer(work: Path, array: dict, bandwidth: object, layer: dict) -> dict:
    from scalesim.scale_sim import scalesim  # imported here: only inside the peer venv

    if bandwidth == "CALC":
        bw_mode, bw = "CALC", 10
    else:
        bw_mode, bw = "USER", int(bandwidth)  # type: ignore[arg-type]
    run_name = "run"
    cfg = work / "scale.cfg"
    cfg.write_text(CFG_TEMPLATE.format(run_name=run_name, bandwidth=bw, bw_mode=bw_mode, **array))
    name = _safe_name(layer["name"])
    num_filters = layer["num_filters"]
    if layer.get("kind") == "depthwise":
        # SCALE-Sim's own depthwise convention: a 'DP' layer name is split into `channels` one-channel
        # layers, simulated one after the other; each has one filter (channel multiplier 1).
        name, num_filters = "DP_" + name, 1
    topo = work / "topology.csv"
    topo.write_text(TOPO_HEADER + (
        f"{name}, {layer['ifmap_h']}, {layer['ifmap_w']}, {layer['filter_h']}, "
        f"{layer['filter_w']}, {layer['channels']}, {num_filters}, {layer['stride']},\n"))
    lay = work / "layout.csv"
    lay.write_text(LAYOUT_HEADER + f"{name}, " + ", ".join(["1"] * 6 + [str(i % 3) for i in range(14)])
                   + ",\n")
    out_dir = work / "out"
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        sim = scalesim(save_disk_space=True, verbose=False, config=str(cfg), topology=str(topo),
                       layout=str(lay), input_type_gemm=False)
        sim.run_scale(top_path=str(out_dir))
    wall = time.perf_counter() - t0
    with open(out_dir / run_name / "COMPUTE_REPORT.csv", newline="") as fh:
        rows = [[c.strip() for c in r] for r in csv.reader(fh)]
    head = rows[0]
    recs = [dict(zip(head, r, strict=True)) for r in rows[1:] if r and r[0]]

    def col(key: str) -> list[float]:
        return [float(rec[key]) for rec in recs]

    total = int(sum(col("Total Cycles")))
    stall = int(sum(col("Stall Cycles")))
    return {
        "name": layer["name"],
        "report_rows": len(recs),
        "total_cycles_incl_prefetch": int(sum(col("Total Cycles (incl. prefetch)"))),
        "total_cycles": total,
        "stall_cycles": stall,
        "compute_cycles": total - stall,
        "overall_util_pct": sum(col("Overall Util %")) / len(recs),
        "mapping_eff_pct": sum(col("Mapping Efficiency %")) / len(recs),
        "compute_util_pct": sum(col("Compute Util %")) / len(recs),
        "wall_seconds": wall,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    req = json.loads(Path(argv[1]).read_text())
    results = []
    for layer in req["layers"]:
        with tempfile.TemporaryDirectory(prefix="scalesim_") as tmp:
            results.append(run_layer(Path(tmp), req["array"], req.get("bandwidth", "CALC"), layer))
        print(f"scalesim {layer['name']}: {results[-1]['compute_cycles']} cycles "
              f"({results[-1]['wall_seconds']:.1f} s)", file=sys.stderr)
    Path(argv[2]).write_text(json.dumps({"scalesim_version": version("scalesim"),
                                         "pid": os.getpid(), "layers": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
