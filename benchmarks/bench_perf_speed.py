"""Speed of the performance model: fast-mode ResNet-50 on the Gemmini-like template (goal < 2 s on one
core), evaluated-instruction ratio fast vs full (paper: 154 iterations for 4.19e9 instructions), and
full-mode instructions per second.

Also the same at row granularity (``gemmini:row_granularity=1``: one compute instruction per row of A),
which is not the default and is reported separately.

Since the templates gained a vector unit, ResNet-50's max pooling, residual adds and global average pooling are
timed too (they were skipped before); ``gemm_layers`` repeats the figures over the 54 GEMM layers alone,
comparable with earlier versions of this benchmark.

Run: .venv/bin/python benchmarks/bench_perf_speed.py [--quick]   (--quick skips the full-mode runs)
Writes benchmarks/results/perf_speed.json. The process is pinned to one core.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from accelflow.arch import template
from accelflow.frontends import load_model
from accelflow.mapping import LayerKind
from accelflow.perf import Mode, PerfReport, estimate

OUT = Path(__file__).parent / "results" / "perf_speed.json"


def _against_full(graph: Any, arch: Any, fast: Any) -> dict[str, Any]:
    """Full mode on the same network and architecture: its speed, and fast mode's error against it."""
    t0 = time.perf_counter()
    full = estimate(graph, arch, Mode.FULL)
    wall = time.perf_counter() - t0
    return {
        "full_wall_seconds": wall,
        "total_cycles_full": full.total_cycles,
        "full_instructions_per_second": full.instructions_evaluated / wall,
        "fast_vs_full_error_pct": 100.0 * abs(fast.total_cycles - full.total_cycles) / full.total_cycles,
        "fast_equals_full_per_layer": [lp.cycles for lp in fast.layers] == [lp.cycles for lp in full.layers],
    }


def _by_kind(report: PerfReport, kind: LayerKind) -> dict[str, Any]:
    layers = [lp for lp in report.layers if lp.kind is kind]
    evaluated = sum(lp.instructions_evaluated for lp in layers)
    total = sum(lp.instructions for lp in layers)
    return {"layers": len(layers), "total_cycles": sum(lp.cycles for lp in layers), "instructions_total": total,
            "instructions_evaluated": evaluated, "evaluated_ratio": total / evaluated if evaluated else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the full-mode run")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    graph = load_model("zoo:resnet50")
    arch = template("gemmini")
    walls, fast = [], None
    for _ in range(3):
        t0 = time.perf_counter()
        fast = estimate(graph, arch, Mode.FAST)
        walls.append(time.perf_counter() - t0)
    assert fast is not None
    out = {
        "network": "resnet50 (224x224)",
        "template": "gemmini",
        "fast_wall_seconds_median": statistics.median(walls),
        "fast_wall_seconds_all": walls,
        "total_cycles_fast": fast.total_cycles,
        "instructions_total": fast.instructions_total,
        "instructions_evaluated_fast": fast.instructions_evaluated,
        "iterations_evaluated_fast": fast.iterations_evaluated,
        "map_applications_fast": fast.map_applications,
        "instructions_applied_fast": fast.instructions_applied,
        "evaluated_ratio": fast.instructions_total / fast.instructions_evaluated,
        "layers": len(fast.timed()),
        "skipped_not_timed": list(fast.skipped),
        "gemm_layers": _by_kind(fast, LayerKind.GEMM),
        "vector_layers": _by_kind(fast, LayerKind.VECTOR),
    }
    # the same fast mode with every segment evaluated instruction by instruction (no max-plus maps)
    t0 = time.perf_counter()
    plain = estimate(graph, arch, Mode.FAST, maxplus=False)
    out["without_maps"] = {
        "fast_wall_seconds": time.perf_counter() - t0,
        "instructions_evaluated_fast": plain.instructions_evaluated,
        "iterations_evaluated_fast": plain.iterations_evaluated,
        "evaluated_ratio": plain.instructions_total / plain.instructions_evaluated,
        "same_cycles_per_layer": [lp.cycles for lp in plain.layers] == [lp.cycles for lp in fast.layers],
    }
    print(json.dumps(out, indent=1), flush=True)
    if not args.quick:
        out.update(_against_full(graph, arch, fast))
        print(f"full: {out['total_cycles_full']:,} cycles, {out['full_wall_seconds']:.1f} s, "
              f"{out['full_instructions_per_second']:,.0f} instr/s")
    # finer abstraction level (not the default): one compute instruction per row of A
    rows = template("gemmini", row_granularity=1)
    t0 = time.perf_counter()
    fast_rows = estimate(graph, rows, Mode.FAST)
    row_out = {
        "fast_wall_seconds": time.perf_counter() - t0,
        "total_cycles_fast": fast_rows.total_cycles,
        "instructions_total": fast_rows.instructions_total,
        "instructions_evaluated_fast": fast_rows.instructions_evaluated,
        "iterations_evaluated_fast": fast_rows.iterations_evaluated,
        "map_applications_fast": fast_rows.map_applications,
        "instructions_applied_fast": fast_rows.instructions_applied,
        "evaluated_ratio": fast_rows.instructions_total / fast_rows.instructions_evaluated,
        "cycles_vs_block_granularity_pct": 100.0 * (fast_rows.total_cycles - fast.total_cycles) / fast.total_cycles,
        "gemm_layers": _by_kind(fast_rows, LayerKind.GEMM),
    }
    print("row granularity:", json.dumps(row_out, indent=1), flush=True)
    if not args.quick:
        row_out.update(_against_full(graph, rows, fast_rows))
        print(f"row granularity full: {row_out['total_cycles_full']:,} cycles, {row_out['full_wall_seconds']:.1f} s",
              flush=True)
    out["row_granularity"] = row_out
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
