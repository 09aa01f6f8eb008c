"""Run ZigZag (zigzag-dse 3.9.1) on a list of conv/GEMM layers; JSON in, JSON out.

Executed with the interpreter of ``benchmarks/.peers/venv-zigzag``, never imported by accelflow.

    python run_zigzag.py request.json result.json

request.json: same layer records as ``run_scalesim.py`` plus
``{"array": {"rows": R, "cols": C}, "lpf_limit": 6}``.

Accelerator: ZigZag's own ``inputs/hardware/tpu_like.yaml`` (weight-stationary, systolic along both
array dimensions, its register files / 2 MB SRAM / DRAM hierarchy kept as shipped) with the operational
array resized to ``cols x rows``; mapping: ZigZag's ``tpu_like`` spatial mapping (K filters across D1,
C input channels across D2). ZigZag then *searches* the temporal mapping (LOMA, ``lpf_limit``) for
minimum latency: its numbers are for the best loop order it finds, not for SCALE-Sim's fixed one.
Depthwise layers use the G (group) dimension across D1, as ZigZag's tpu_like mapping does for its
G-only operators. Note the spatial mapping unrolls input channels only (not FY*FX*C as SCALE-Sim's im2col rows do), so
layers with few input channels under-use the array in ZigZag.

result.json: ``{"zigzag_version", "layers": [{"name", "latency_cycles" (latency_total2: with
on/off-loading and systolic drain), "latency_no_io" (latency_total0), "ideal_temporal_cycles",
"ideal_cycles", "spatial_utilisation", "energy_pj", "wall_seconds"}]}``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path


def _accelerator_yaml(rows: int, cols: int, out: Path) -> Path:
    import yaml  # zigzag depends on pyyaml
    import zigzag

    src = Path(zigzag.__file__).parent / "inputs" / "hardware" / "tpu_like.yaml"
    data = yaml.safe_load(src.read_text())
    data["name"] = f"tpu_like_{cols}x{rows}"
    data["operational_array"]["sizes"] = [cols, rows]
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def _mapping_yaml(rows: int, cols: int, out: Path, depthwise_name: str | None) -> Path:
    import yaml

    links = {"O": "O", "W": "I2", "I": "I1"}
    data = [{"name": "default", "spatial_mapping": {"D1": [f"K, {cols}"], "D2": [f"C, {rows}"]},
             "memory_operand_links": links}]
    if depthwise_name is not None:  # as ZigZag's tpu_like mapping does for its G-only operators
        data.append({"name": depthwise_name, "spatial_mapping": {"D1": [f"G, {cols}"], "D2": ["C, 1"]},
                     "memory_operand_links": links})
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def _workload(layer: dict) -> list[dict]:
    s = int(layer["stride"])
    ho = (layer["ifmap_h"] - layer["filter_h"]) // s + 1
    wo = (layer["ifmap_w"] - layer["filter_w"]) // s + 1
    if layer.get("kind") == "depthwise":  # groups = channels, one filter per group
        return [{
            "id": 0,
            "name": _safe(layer["name"]),
            "operator_type": "Conv",
            "equation": "O[b][g][oy][ox]+=W[g][fy][fx]*I[b][g][iy][ix]",
            "dimension_relations": [f"ix={s}*ox+1*fx", f"iy={s}*oy+1*fy"],
            "loop_dims": ["B", "G", "OY", "OX", "FY", "FX"],
            "loop_sizes": [1, layer["channels"], ho, wo, layer["filter_h"], layer["filter_w"]],
            "operand_precision": {"W": 8, "I": 8, "O": 16, "O_final": 8},
            "operand_source": {"W": 0, "I": 0},
        }]
    return [{
        "id": 0,
        "name": _safe(layer["name"]),
        "operator_type": "Conv",
        "equation": "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]",
        "dimension_relations": [f"ix={s}*ox+1*fx", f"iy={s}*oy+1*fy"],
        "loop_dims": ["B", "K", "C", "OY", "OX", "FY", "FX"],
        "loop_sizes": [1, layer["num_filters"], layer["channels"], ho, wo,
                       layer["filter_h"], layer["filter_w"]],
        "operand_precision": {"W": 8, "I": 8, "O": 16, "O_final": 8},
        "operand_source": {"W": 0, "I": 0},
    }]


def run_layer(work: Path, rows: int, cols: int, lpf_limit: int, layer: dict) -> dict:
    from zigzag.api import get_hardware_performance_zigzag

    acc = _accelerator_yaml(rows, cols, work / "accelerator.yaml")
    dw_name = _safe(layer["name"]) if layer.get("kind") == "depthwise" else None
    mapping = _mapping_yaml(rows, cols, work / "mapping.yaml", dw_name)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        energy, latency, cmes = get_hardware_performance_zigzag(
            workload=_workload(layer), accelerator=str(acc), mapping=str(mapping), opt="latency",
            dump_folder=str(work / "out"), lpf_limit=lpf_limit, loma_show_progress_bar=False)
    wall = time.perf_counter() - t0
    cme = cmes[0][1][0][0] if isinstance(cmes[0][1], list) and cmes[0][1] else cmes[0][0]
    return {
        "name": layer["name"],
        "latency_cycles": float(latency),
        "latency_no_io": float(getattr(cme, "latency_total0", float("nan"))),
        "ideal_temporal_cycles": float(getattr(cme, "ideal_temporal_cycle", float("nan"))),
        "ideal_cycles": float(getattr(cme, "ideal_cycle", float("nan"))),
        "spatial_utilisation": float(getattr(cme, "mac_spatial_utilization", float("nan"))),
        "energy_pj": float(energy),
        "wall_seconds": wall,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    # ZigZag calls logging.basicConfig(INFO); a handler installed first keeps it at WARNING.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    req = json.loads(Path(argv[1]).read_text())
    rows, cols = int(req["array"]["rows"]), int(req["array"]["cols"])
    lpf = int(req.get("lpf_limit", 6))
    results = []
    for layer in req["layers"]:
        with tempfile.TemporaryDirectory(prefix="zigzag_") as tmp:
            results.append(run_layer(Path(tmp), rows, cols, lpf, layer))
        print(f"zigzag {layer['name']}: {results[-1]['latency_cycles']:.0f} cycles "
              f"({results[-1]['wall_seconds']:.1f} s)", file=sys.stderr)
    Path(argv[2]).write_text(json.dumps({"zigzag_version": version("zigzag-dse"),
                                         "layers": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
