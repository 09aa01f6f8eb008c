"""Scale-out of the flow-level search: the same candidates with 1 and 2 workers, process pool and Dask.

usage: .venv/bin/python benchmarks/bench_scaleout_flow_search.py [--candidates 8]

Evaluations are real MetaML flows from examples/flow_search/metaml_pro_digits.yaml (digits MLP: scaling,
pruning with fine-tuning, HLS-level quantisation, fixed-point emulation, resource estimate), a few seconds
to ~20 s each. The same candidates (the first --candidates points of a fixed grid over orders and
tolerances) are enqueued into a fresh SQLite study per configuration and evaluated through
``accelflow.search.optimize``, exactly as ``accelflow flow-search --workers N / --scheduler`` does; scores
must agree across configurations (flows are seeded). Times include starting the workers; each worker
builds the start state once (weights from the cache). ``cores_obtained`` = evaluation CPU seconds / loop
wall seconds shows whether the second worker got a second core on a shared machine.
Writes benchmarks/results/scaleout_flow_search.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from accelflow.flow.schema import initial_state  # noqa: E402
from accelflow.flow.search import Candidate, CandidateObjective, Evaluation, distributions  # noqa: E402
from accelflow.flow.search_file import FlowSearchEvaluator, load_flow_search, measure_baseline  # noqa: E402
from accelflow.search import (  # noqa: E402
    DaskExecutor,
    Executor,
    ProcessPoolExecutor,
    SerialExecutor,
    create_study,
    optimize,
)

FILE = Path(__file__).resolve().parents[1] / "examples" / "flow_search" / "metaml_pro_digits.yaml"


class TimedEvaluator(FlowSearchEvaluator):
    """Adds the evaluation's CPU seconds (this process) to the details."""

    def __call__(self, cand: Candidate) -> Evaluation:
        c0 = time.process_time()
        ev = super().__call__(cand)
        return Evaluation(ev.candidate, ev.score, ev.accuracy, ev.resources, ev.seconds,
                          {"cpu_seconds": time.process_time() - c0})


def _points(n: int) -> list[dict[str, Any]]:
    out = []
    for order in ("PQ", "SPQ", "Q", "SQ", "SP", "P", "S"):
        for tol in (0.02, 0.04):
            out.append({"order": order, "tol_S": tol, "tol_P": tol, "tol_Q": tol})
    return out[:n]


def _run(label: str, make: Any, points: list[dict[str, Any]], objective: CandidateObjective, space: Any,
         tmp: Path) -> dict[str, Any]:
    study = create_study(label, storage=tmp / f"{label}.db", directions=("maximize",))
    for p in points:
        study.enqueue_trial(p)
    start = time.perf_counter()
    executor: Executor = make()
    started = time.perf_counter() - start
    with executor:
        res = optimize(study, objective, space, len(points), executor, progress=False, enqueued_only=True)
    total = time.perf_counter() - start
    trials = [t for t in study.trials if t.value is not None]
    cpu = sum(t.user_attrs["details"]["cpu_seconds"] for t in trials)
    row = {"config": label, "workers": executor.n_workers, "candidates": res.completed, "failed": res.failed,
           "wall_seconds": round(total, 2), "executor_start_seconds": round(started, 2),
           "loop_seconds": round(res.wall_seconds, 2), "eval_cpu_seconds": round(cpu, 2),
           "cores_obtained": round(cpu / res.wall_seconds, 2),
           "_scores": {f"{t.params['order']}/{t.params['tol_P']}": round(t.value, 9) for t in trials}}
    print(f"{label:8s} workers={row['workers']} wall {total:6.1f} s (start {started:4.1f} s), evaluation CPU "
          f"{cpu:6.1f} s = {row['cores_obtained']:.2f} cores", flush=True)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=8)
    args = ap.parse_args()
    problem = load_flow_search(FILE)
    start = initial_state(problem.spec.start)  # trains (or loads) before any worker starts
    _, baseline = measure_baseline(problem, start)
    objective = CandidateObjective(TimedEvaluator(problem.text, problem.source, baseline))
    space = distributions(problem.space)
    points = _points(args.candidates)
    configs = [("pool-1", lambda: ProcessPoolExecutor(1)), ("pool-2", lambda: ProcessPoolExecutor(2)),
               ("dask-1", lambda: DaskExecutor(n_workers=1)), ("dask-2", lambda: DaskExecutor(n_workers=2)),
               ("serial", SerialExecutor)]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [_run(label, make, points, objective, space, Path(tmp)) for label, make in configs]
    agree = all(r["_scores"] == rows[0]["_scores"] for r in rows)
    scores = rows[0]["_scores"]
    for r in rows:
        del r["_scores"]
    by = {r["config"]: r for r in rows}
    speedups = {"process_pool": round(by["pool-1"]["wall_seconds"] / by["pool-2"]["wall_seconds"], 2),
                "dask": round(by["dask-1"]["wall_seconds"] / by["dask-2"]["wall_seconds"], 2)}
    path = write_result("scaleout_flow_search", {
        "evaluation": f"MetaML flows of {FILE.name} (digits MLP)", "candidates": points, "scores": scores,
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "results_agree": agree, "runs": rows, "speedup_1_to_2_workers": speedups})
    print(f"speed-up 1 -> 2 workers: {speedups}; scores agree: {agree}; {path}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
