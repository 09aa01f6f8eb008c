"""`accelflow flow-search FILE.yaml`: MetaML-Pro flow-level search (task order x tolerances), locally
(--workers N) or on a Dask cluster (--scheduler ADDRESS), in a resumable Optuna study."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from accelflow.errors import ConfigError
from accelflow.flow.search import Evaluation, search_flows
from accelflow.flow.search_file import FlowSearchEvaluator, load_flow_search, measure_baseline
from accelflow.search import DEFAULT_STORAGE, make_executor, storage_url

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "flow-search", help="search task order and tolerances of a MetaML flow (Optuna TPE, any executor)",
        description="Runs the candidates of a flow-search file (see examples/flow_search/metaml_pro_digits.yaml) as "
                    "flows from the same start state and keeps the best MetaML-Pro score (accuracy + relative "
                    "DSP/LUT/FF/BRAM savings). The study is stored, so running the command again resumes it.")
    p.add_argument("file", help="flow-search YAML file")
    p.add_argument("--trials", type=int, help="completed trials the study should hold (default: the file's)")
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    p.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786), or 'local' for a local Dask cluster")
    p.add_argument("--storage", default=DEFAULT_STORAGE, help=f"study storage URL (default {DEFAULT_STORAGE})")
    p.add_argument("--study", help="study name (default: the file's name and a hash of its text)")
    p.add_argument("--check", action="store_true", help="only validate the file, run nothing")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _ev(ev: Evaluation) -> dict[str, Any]:
    return {"order": ev.candidate.order, "tolerances": dict(ev.candidate.tolerances), "score": ev.score,
            "accuracy": ev.accuracy, "resources": dict(ev.resources), "seconds": ev.seconds}


def run(args: argparse.Namespace) -> int:
    from accelflow.flow.schema import initial_state

    if args.trials is not None and args.trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {args.trials}")
    problem = load_flow_search(args.file)
    storage = storage_url(args.storage)
    console = Console(stderr=True)
    with console.status("preparing the start state (trained weights come from the cache)"):
        start = initial_state(problem.spec.start, progress=False)  # trains once here, before any worker
    problem.check(start)
    if args.check:
        console.print(f"{args.file}: valid flow search '{problem.spec.name}', orders {list(problem.space.orders)}")
        return 0
    with console.status("measuring the unoptimised design"):
        base_acc, baseline = measure_baseline(problem, start)
    spec = problem.spec.search
    trials = args.trials or spec.trials
    study = args.study or f"flow-search-{problem.spec.name}-{problem.digest}"
    evaluator = FlowSearchEvaluator(problem.text, problem.source, baseline)
    with make_executor(args.workers, args.scheduler) as executor:
        result = search_flows(evaluator, problem.space,
                              n_random=min(spec.random_trials, trials), n_guided=max(0, trials - spec.random_trials),
                              seed=problem.spec.seed, storage=storage, study_name=study, executor=executor,
                              sampler=spec.sampler,
                              progress=not args.json)
    ranked = sorted(result.evaluations, key=lambda e: -e.score)
    if args.json:
        payload = {"name": problem.spec.name, "study": study, "storage": storage, "workers": args.workers,
                   "scheduler": args.scheduler, "baseline": {"accuracy": base_acc, **baseline},
                   "wall_seconds": result.seconds, "best": _ev(result.best), "trials": [_ev(e) for e in ranked]}
        json.dump(payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    table = Table(title=f"flow search {problem.spec.name}: {len(ranked)} candidates, study {study}")
    for col in ("order", "tolerances", "score", "accuracy", "DSP", "LUT", "FF", "BRAM18", "s"):
        table.add_column(col, justify="left" if col in ("order", "tolerances") else "right")
    table.add_row("(baseline)", "", "", f"{base_acc:.4f}", *(f"{baseline[k]:,.0f}" for k in ("dsp", "lut", "ff", "bram18")), "")
    for ev in ranked[:15]:
        tol = " ".join(f"{k}={v:.3f}" for k, v in ev.candidate.tolerances.items())
        table.add_row(ev.candidate.order, tol, f"{ev.score:.4f}", f"{ev.accuracy:.4f}",
                      *(f"{ev.resources.get(k, 0):,.0f}" for k in ("dsp", "lut", "ff", "bram18")), f"{ev.seconds:.1f}")
    Console().print(table)
    best = result.best
    Console().print(f"best: {best.candidate.label()} score {best.score:.4f} (accuracy {best.accuracy:.4f}); "
                    f"{result.seconds:.0f} s in this call")
    return 0
