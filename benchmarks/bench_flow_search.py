"""Flow-level search (MetaML-Pro) against a grid over the same space, on the digits MLP (real data).

Space: task order in {Q, SP, SQ, PQ, SPQ, S, P} and the tolerances of S, P and Q (1-4 %). Every candidate
is run as a flow by the engine from the same trained model: its O-tasks, then the fixed-point accuracy
(numpy emulator of hls4ml's arithmetic, bit-accurate: the test suite cross-checks it against hls4ml C
simulation) and the hls4ml-style resource estimate. Score = accuracy + sum over DSP/LUT/FF/BRAM18 of the
relative saving against the unoptimised ap_fixed<16,6>, reuse-factor-1 design. A g++ C simulation per
candidate (10-25 s each) would dominate the grid, so hls4ml C simulation runs only on the final designs.

Grid: tolerance levels {1, 2, 3, 4} % for the letters an order uses (124 candidates; --quick: {1, 4} %, 26).
Search: Optuna, 2 random + N - 2 guided trials (Gaussian-process BO by default, --sampler tpe), several seeds.

Replay (--replay-seeds N): candidates' flows are seeded, so a point's score is a pure function of the point.
The searches are then replayed against the grid's table for N seeds per sampler (gp, tpe, random) and budget,
which measures how often each sampler reaches the grid's best without re-running flows.

Run: .venv/bin/python benchmarks/bench_flow_search.py [--quick] [--seeds 3] [--replay-seeds 30]
Writes benchmarks/results/flow_search.json.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from accelflow.flow import DesignState, Flow, HardwareTarget, Step, run_flow  # noqa: E402
from accelflow.flow.search import (  # noqa: E402
    RESOURCE_KEYS,
    SAMPLERS,
    Candidate,
    Evaluation,
    SearchSpace,
    candidate_flow,
    grid_candidates,
    grid_search,
    metaml_score,
    search_flows,
)
from accelflow.flow.tasks.compress_tasks import Prune, Scale  # noqa: E402
from accelflow.flow.tasks.hls_tasks import EmulateHls, EstimateResources, Hls4mlConvert, QuantizeHls  # noqa: E402
from accelflow.train import cached_model, evaluate  # noqa: E402

log = logging.getLogger("bench_flow_search")

MODEL, DATASET = "digits_mlp", "digits"
STEPS = {
    "S": lambda t: Step(Scale(tolerance=t, retrain_epochs=4, batch_size=64, max_failures=2)),
    "P": lambda t: Step(Prune(tolerance=t, finetune_epochs=3, batch_size=64, min_step=0.05)),
    "Q": lambda t: Step(QuantizeHls(tolerance=t)),
}
TAIL = (Step(EmulateHls()), Step(EstimateResources()))


class Evaluator:
    """Runs a candidate's flow from the trained model; keeps final states so the best can be C-simulated."""

    def __init__(self, start: DesignState, baseline: dict[str, float], scratch: str) -> None:
        self.start, self.baseline, self.scratch = start, baseline, scratch
        self.states: dict[str, DesignState] = {}

    def __call__(self, cand: Candidate) -> Evaluation:
        t0 = time.perf_counter()
        flow = candidate_flow(cand, STEPS, TAIL)
        state = run_flow(flow, self.start, scratch_dir=self.scratch).state
        acc = state.metric("hls_emu.accuracy")
        res = {k: state.metric(f"resources.{k}") for k in RESOURCE_KEYS}
        self.states[cand.label()] = state
        seconds = time.perf_counter() - t0
        ev = Evaluation(cand, metaml_score(acc, res, self.baseline), acc, res, seconds)
        log.info("%-28s score %.4f acc %.4f dsp %5.0f lut %6.0f  %.1f s", cand.label(), ev.score, acc,
                 res["dsp"], res["lut"], seconds)
        return ev


def _csim(state: DesignState, scratch: str) -> float:
    out = run_flow(Flow("csim", (Step(Hls4mlConvert()),)), state, scratch_dir=scratch).state
    return out.metric("hls_csim.accuracy")


def _ev_json(ev: Evaluation) -> dict[str, Any]:
    return {"order": ev.candidate.order, "tolerances": dict(ev.candidate.tolerances), "score": ev.score,
            "accuracy": ev.accuracy, "resources": dict(ev.resources), "seconds": ev.seconds}


def replay(grid: list[Evaluation], space: SearchSpace, samplers: list[str], budgets: list[int], seeds: int
           ) -> dict[str, dict[str, int]]:
    """How many of ``seeds`` searches per sampler and budget reach the grid's best, scores looked up in
    ``grid`` (exact: flows are seeded, so re-running a point gives the same score; the live searches above
    confirm it for their points)."""
    table = {e.candidate.label(): e.score for e in grid}
    best = max(table.values())

    def lookup(c: Candidate) -> Evaluation:
        return Evaluation(c, table[c.label()], 0.0, {}, 0.0)

    out: dict[str, dict[str, int]] = {}
    for sampler in samplers:
        for budget in budgets:
            hits = 0
            for seed in range(seeds):
                if sampler == "random":
                    res = search_flows(lookup, space, n_random=budget, n_guided=0, seed=seed, sampler="tpe")
                else:
                    res = search_flows(lookup, space, n_random=2, n_guided=budget - 2, seed=seed, sampler=sampler)
                hits += res.best.score >= best - 1e-9
            out.setdefault(sampler, {})[str(budget)] = hits
            log.info("replay %s %d trials: %d/%d reach the grid's best", sampler, budget, hits, seeds)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="grid with tolerance levels {1, 4} % only")
    parser.add_argument("--seeds", type=int, default=5, help="independent searches (TPE seeds) per budget")
    parser.add_argument("--budgets", type=int, nargs="+", default=[12, 20], help="trials per search")
    parser.add_argument("--sampler", choices=SAMPLERS, default="gp", help="Optuna sampler of the searches")
    parser.add_argument("--replay-seeds", type=int, default=0,
                        help="replay gp/tpe/random searches on the grid's table for this many seeds")
    parser.add_argument("--continuous", action="store_true", help="tolerances continuous in [1, 4] %%")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("accelflow").setLevel(logging.WARNING)

    model, info = cached_model(MODEL, DATASET, progress=False)
    start = DesignState(model=model, model_name=MODEL, input_shape=(64,), dataset=DATASET,
                        target=HardwareTarget(io_type="io_parallel", reuse_factor=1))
    float_acc = evaluate(model, start.splits().test)
    scratch = tempfile.mkdtemp(prefix="bench-flow-search-")
    base_state = run_flow(Flow("baseline", (Step(EmulateHls()), Step(EstimateResources(stage="baseline")))),
                          start, scratch_dir=scratch).state
    baseline = {k: base_state.metric(f"baseline.{k}") for k in RESOURCE_KEYS}
    log.info("baseline ap_fixed<16,6> RF1: %s, emulated accuracy %.4f", baseline, base_state.metric("hls_emu.accuracy"))

    space = SearchSpace()
    levels = (0.01, 0.04) if args.quick else (0.01, 0.02, 0.03, 0.04)
    grid_eval = Evaluator(start, baseline, scratch)
    grid = grid_search(grid_eval, list(grid_candidates(space, levels)))
    log.info("grid: %d candidates in %.0f s, best %s %.4f", len(grid.evaluations), grid.seconds,
             grid.best.candidate.label(), grid.best.score)

    search_space = SearchSpace(tolerance_step=None if args.continuous else levels[1] - levels[0])
    searches = []
    for budget in args.budgets:
        for seed in range(args.seeds):
            ev = Evaluator(start, baseline, scratch)
            with tempfile.TemporaryDirectory() as tmp:
                res = search_flows(ev, search_space, n_random=2, n_guided=budget - 2, seed=seed,
                                   storage=f"sqlite:///{tmp}/study.db", study_name=f"seed{seed}",
                                   sampler=args.sampler)
            best = res.best
            log.info("search %d trials seed %d: %.0f s, best %s %.4f", budget, seed, res.seconds,
                     best.candidate.label(), best.score)
            searches.append({"budget": budget, "seed": seed, "trials": len(res.evaluations), "seconds": res.seconds,
                             "best": _ev_json(best), "best_state": ev.states[best.candidate.label()],
                             "fraction_of_grid_best": best.score / grid.best.score,
                             "matches_grid_best": best.score >= grid.best.score - 1e-9,
                             "grid_candidates_beaten_or_matched": sum(e.score <= best.score for e in grid.evaluations)})

    # hls4ml C simulation of the final designs only (one g++ build each)
    # (one g++ build per distinct candidate: flows are seeded, so equal candidates give equal designs)
    csim: dict[str, float] = {}

    def csim_of(label: str, state: DesignState) -> float:
        if label not in csim:
            csim[label] = _csim(state, scratch)
        return csim[label]

    grid_csim = csim_of(grid.best.candidate.label(), grid_eval.states[grid.best.candidate.label()])
    for s in searches:
        label = Candidate(s["best"]["order"], s["best"]["tolerances"]).label()
        s["best"]["csim_accuracy"] = csim_of(label, s.pop("best_state"))
    per_budget = {}
    for budget in args.budgets:
        runs = [x for x in searches if x["budget"] == budget]
        secs = sum(x["seconds"] for x in runs) / len(runs)
        per_budget[str(budget)] = {"mean_seconds": secs, "time_fraction_of_grid": secs / grid.seconds,
                                   "speedup_vs_grid": grid.seconds / secs,
                                   "searches_matching_grid_best": sum(x["matches_grid_best"] for x in runs),
                                   "searches": len(runs),
                                   "fraction_of_grid_best": [round(x["fraction_of_grid_best"], 4) for x in runs]}
    replayed = (replay(list(grid.evaluations), search_space, ["gp", "tpe", "random"], [12, 16, 20, 30],
                       args.replay_seeds) if args.replay_seeds and not args.continuous else None)
    payload = {
        "model": MODEL, "dataset": DATASET, "dataset_synthetic": False,
        "float_test_accuracy": float_acc, "baseline": baseline,
        "baseline_emulated_accuracy": base_state.metric("hls_emu.accuracy"),
        "accuracy_in_score": "emulated fixed-point test accuracy (bit-accurate numpy emulator of hls4ml)",
        "sampler": args.sampler,
        "search_space": "tolerances continuous in [1, 4] %" if args.continuous else "the grid's tolerance levels",
        "grid": {"levels": list(levels), "candidates": len(grid.evaluations), "seconds": grid.seconds,
                 "best": {**_ev_json(grid.best), "csim_accuracy": grid_csim},
                 "all": [_ev_json(e) for e in grid.evaluations]},
        "search": searches,
        "per_budget": per_budget,
        "replay": None if replayed is None else {"seeds": args.replay_seeds, "searches_reaching_grid_best": replayed},
        "quick": args.quick,
    }
    path = write_result("flow_search", payload)
    for budget, row in per_budget.items():
        log.info("%s trials: %.0f s vs grid %.0f s (x%.1f); %d/%d match the grid's best; search best / grid best %s",
                 budget, row["mean_seconds"], grid.seconds, row["speedup_vs_grid"], row["searches_matching_grid_best"],
                 row["searches"], row["fraction_of_grid_best"])
    log.info("-> %s", path)


if __name__ == "__main__":
    main()
