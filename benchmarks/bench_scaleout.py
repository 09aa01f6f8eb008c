"""Scale-out: wall time of one architecture sweep with 1 and 2 local workers, process pool and Dask.

usage: .venv/bin/python benchmarks/bench_scaleout.py [--quick]

The study is a real evaluation: full-mode (every instruction through the dependency graph) latency of
ResNet-18 on systolic arrays (rows x cols x dataflow grid), about 0.3-2 s per design on this machine. Each
configuration runs the same grid in a fresh SQLite study; the cycles must agree across configurations.
Times include starting the workers (process spawn, Dask cluster) as a user would see them; the loop-only
time is reported too, and the CPU time the evaluations actually got (``cores_obtained`` = evaluation CPU
seconds / loop wall seconds): on a shared machine it shows whether a second worker obtained a second core.
Writes benchmarks/results/scaleout.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from accelflow.search import (
    DaskExecutor,
    Executor,
    ProcessPoolExecutor,
    SerialExecutor,
    create_study,
    enqueue_grid,
    grid_space,
    optimize,
)
from accelflow.search._sweep import ArchSweep

RESULTS = Path(__file__).resolve().parent / "results" / "scaleout.json"


def _run(label: str, make: Any, grid: dict[str, list[Any]], sweep: ArchSweep, tmp: Path) -> dict[str, Any]:
    study = create_study(label, storage=tmp / f"{label}.db", directions=("minimize", "minimize"))
    n = enqueue_grid(study, grid)
    start = time.perf_counter()
    executor: Executor = make()
    started = time.perf_counter() - start
    with executor:
        res = optimize(study, sweep, grid_space(grid), n, executor, progress=False)
    total = time.perf_counter() - start
    cycles = {json.dumps(t.params, sort_keys=True): t.user_attrs["cycles"] for t in study.trials}
    evals = [t.user_attrs["eval_seconds"] for t in study.trials]
    cpu = sum(t.user_attrs["cpu_seconds"] for t in study.trials)
    row = {"config": label, "workers": executor.n_workers, "designs": res.completed, "failed": res.failed,
           "wall_seconds": round(total, 2), "executor_start_seconds": round(started, 2),
           "loop_seconds": round(res.wall_seconds, 2), "mean_eval_seconds": round(sum(evals) / len(evals), 3),
           "eval_cpu_seconds": round(cpu, 2), "cores_obtained": round(cpu / res.wall_seconds, 2),
           "_cycles": cycles}
    print(f"{label:10s} workers={row['workers']} wall {total:6.1f} s (start {started:4.1f} s, loop "
          f"{res.wall_seconds:6.1f} s), mean evaluation {row['mean_eval_seconds']:.2f} s, "
          f"evaluation CPU {cpu:5.1f} s = {row['cores_obtained']:.2f} cores", flush=True)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller grid")
    args = ap.parse_args()
    sizes = [16, 32] if args.quick else [16, 24, 32]
    grid: dict[str, list[Any]] = {"rows": sizes, "cols": sizes, "dataflow": ["ws", "os"] if args.quick else ["ws", "os", "is"]}
    sweep = ArchSweep("zoo:resnet18", "systolic", mode="full")
    configs = [
        ("serial", SerialExecutor),
        ("pool-1", lambda: ProcessPoolExecutor(1)),
        ("pool-2", lambda: ProcessPoolExecutor(2)),
        ("dask-1", lambda: DaskExecutor(n_workers=1)),
        ("dask-2", lambda: DaskExecutor(n_workers=2)),
    ]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [_run(label, make, grid, sweep, Path(tmp)) for label, make in configs]
    reference = rows[0]["_cycles"]
    agree = all(r["_cycles"] == reference for r in rows)
    for r in rows:
        del r["_cycles"]
    by = {r["config"]: r for r in rows}
    speedups = {
        "process_pool": round(by["pool-1"]["wall_seconds"] / by["pool-2"]["wall_seconds"], 2),
        "dask": round(by["dask-1"]["wall_seconds"] / by["dask-2"]["wall_seconds"], 2),
        "process_pool_loop_only": round(by["pool-1"]["loop_seconds"] / by["pool-2"]["loop_seconds"], 2),
        "dask_loop_only": round(by["dask-1"]["loop_seconds"] / by["dask-2"]["loop_seconds"], 2),
        "pool_2_vs_serial": round(by["serial"]["wall_seconds"] / by["pool-2"]["wall_seconds"], 2),
    }
    doc = {"evaluation": "accelflow.perf full mode, zoo:resnet18 on template systolic", "grid": grid,
           "designs": len(reference), "cpu_count": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load_before],
           "loadavg_after": [round(x, 2) for x in os.getloadavg()], "results_agree": agree, "runs": rows,
           "speedup_1_to_2_workers": speedups, "quick": args.quick}
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(doc, indent=1))
    print(json.dumps({"speedup_1_to_2_workers": speedups, "results_agree": agree, "loadavg": doc["loadavg_after"]}, indent=1))
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
