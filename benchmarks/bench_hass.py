"""HASS benchmark: dense vs uniform threshold vs slowest-layer heuristic vs HASS on CNNs trained here on
Fashion-MNIST, a Pareto plot, sparsity-measurement timings, and ImageNet-size networks on U250/ZCU102.

    .venv/bin/python benchmarks/bench_hass.py [--quick] [--part small|imagenet|timing|all]

Writes benchmarks/results/hass.json (parts are merged into an existing file so they can run separately)
and benchmarks/results/hass_pareto_<model>.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from accelflow.data import load
from accelflow.dataflow import LockStep, Method, SearchBudgetError, load_device, optimise_folding
from accelflow.frontends import export_onnx, from_pytorch, load_torch_model
from accelflow.hass import (
    FineTune,
    HassResult,
    Objective,
    Problem,
    SamplerKind,
    SearchSettings,
    Thresholds,
    accuracy,
    dense_baseline,
    finetune_cache_dir,
    pareto_order,
    recover,
    run_search,
    scan_uniform_grid,
    slowest_layer_baseline,
    subset,
    uniform_baseline,
    uniform_grid,
    zoo_problem,
)
from accelflow.hass import problem as hass_problem
from accelflow.ir import ChannelSparsity, OpKind
from accelflow.sparsity import annotate_graph, mask_weights, measure_sparsity
from accelflow.train import TrainRecipe
from accelflow.zoo import create

RESULTS = Path(__file__).resolve().parent / "results"
OUT = RESULTS / "hass.json"
log = logging.getLogger("bench_hass")


def _summary(r: HassResult, test_acc: float | None, ref_test: float | None) -> dict[str, Any]:
    return {
        "throughput_images_per_s": r.throughput_images_per_s,
        "throughput_per_dsp": r.throughput_per_dsp,
        "dsp": r.dsp, "lut": r.lut, "ff": r.ff, "bram18": r.bram18,
        "binding_resource": r.binding_resource,
        "val_accuracy": r.accuracy, "val_accuracy_drop": r.accuracy_drop,
        "test_accuracy": test_acc,
        "test_accuracy_drop": None if test_acc is None or ref_test is None else 100 * (ref_test - test_acc),
        "mean_sparsity": float(np.mean([lay.sparsity for lay in r.layers if lay.op == "conv"])),
        "zero_products": r.zero_products,
        "thresholds": r.thresholds.to_dict(),
    }


def _pareto_plot(name: str, device: str, points: dict[str, list[tuple[float, float]]], path: Path,
                 reference: float | None = None, bound: float | None = None, cost_model: str = "mean") -> None:
    """Accuracy (%) vs throughput of every evaluated point; with ``reference`` (%) and ``bound`` (points)
    the view is zoomed to 6 points below the reference and the bound drawn as a dashed line. ``cost_model``
    (the lock-step cost the throughputs were scored under) is named on the axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    styles = {"hass trials": ("o", 0.35), "hass refinement": ("D", 0.5), "uniform grid": ("s", 0.6),
              "slowest layer": ("^", 0.6)}
    for label, pts in points.items():
        if not pts:
            continue
        marker, alpha = styles.get(label, ("*", 1.0))
        ax.scatter([p[1] for p in pts], [p[0] for p in pts], marker=marker, alpha=alpha, label=label,
                   s=60 if marker == "*" else 20)
    allpts = sorted((p for pts in points.values() for p in pts), key=lambda p: -p[1])
    front, best = [], -1.0
    for acc, thr in allpts:  # max throughput for each accuracy level
        if acc > best:
            front.append((acc, thr))
            best = acc
    ax.step([p[1] for p in front], [p[0] for p in front], where="post", color="k", lw=1, label="Pareto front")
    if reference is not None and bound is not None:
        ax.axhline(reference - bound, color="r", ls="--", lw=1, label=f"bound ({bound:g} pt drop)")
        hidden = sum(p[0] < reference - 6 for pts in points.values() for p in pts)
        ax.set_ylim(reference - 6, reference + 1)
        if hidden:
            ax.text(0.01, 0.01, f"{hidden} points below {reference - 6:.1f}% not shown", transform=ax.transAxes,
                    fontsize=7)
    model = "REFERENCE lock-step model" if cost_model == "mean" else f"{cost_model} lock-step model"
    ax.set_xlabel(f"throughput on {device} (images/s, {model})")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"HASS {name}: accuracy vs throughput")
    ax.legend(fontsize=7, loc="lower left" if reference is None else "lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _sampler_suffix(sampler: SamplerKind) -> str:
    """Study-name and result-key suffix of a sampler other than the default TPE (``-gp``)."""
    return "" if sampler is SamplerKind.TPE else f"-{sampler.value}"


def _bound_suffix(bound: float) -> str:
    """Study-name and result-key suffix of a bound other than the issue's 1 point (``-bound2``)."""
    return "" if bound == 1.0 else f"-bound{bound:g}"


def _objective_suffix(objective: Objective) -> str:
    """Study-name and result-key suffix of an objective other than throughput (``-perdsp``)."""
    return "" if objective is Objective.THROUGHPUT else "-perdsp"


def _bn_folded(p: Problem, device: str, **kwargs: Any) -> Problem:
    """``p`` with its model's BatchNorms folded into the convs: exported to ONNX and read back, as `accelflow
    hass net.onnx` runs a file (same validation, hold-out and calibration images: the same seed draws them)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(p.model, tuple(p.splits.info.input_shape), Path(tmp) / f"{p.name}.onnx")
        folded = load_torch_model(str(path)).module
    return hass_problem(folded, p.splits, device, name=p.name, test_accuracy=p.test_accuracy, **kwargs)


def run_small(models: list[str], device: str, trials: int, bound: float, val_size: int, calib_size: int,
              grid_w: tuple[float, ...], grid_a: tuple[float, ...], heuristic_steps: int,
              recipe: TrainRecipe | None, train_data: dict[str, Any] | None, holdout_size: int = 0,
              refine_trials: int = 0, test_size: int = 10_000, tag: str = "v3",
              other_devices: tuple[str, ...] = (), lockstep: LockStep = LockStep.MEAN,
              sampler: SamplerKind = SamplerKind.TPE, objective: Objective = Objective.THROUGHPUT,
              key_suffix: str = "", search_seed: int = 0, fold_bn: bool = False) -> dict[str, Any]:
    """Every method on each of ``models``, all folded and scored under ``lockstep`` (saved under the key
    ``model[@device][/lockstep][-sampler][-boundB][-perdsp]``: the REFERENCE ``mean`` entries keep the bare
    model name; ``key_suffix`` is appended, e.g. ``-replicate`` for a re-run kept beside the first).
    ``objective`` is what HASS maximises and what ``uniform_hw`` selects by; ``uniform`` stays the
    hardware-blind choice (most zero products). ``search_seed`` seeds HASS's sampler (the baselines are
    deterministic); a non-zero seed adds ``-seedN`` to the study name and the key. ``fold_bn`` searches the
    model with BatchNorm folded into the convs (key ``-bnfolded``): every threshold, the uniform one too,
    then acts on the weights the accelerator stores, whose scale differs from layer to layer."""
    out: dict[str, Any] = {}
    # what sets this run apart in both the study name and the result key
    variant = (_sampler_suffix(sampler) + _bound_suffix(bound) + _objective_suffix(objective)
               + (f"-seed{search_seed}" if search_seed else "") + ("-bnfolded" if fold_bn else ""))
    for name in models:
        t0 = time.perf_counter()
        problem = zoo_problem(name, device, validation_size=val_size, calibration_size=calib_size, batch=256,
                              recipe=recipe, train_data=train_data, holdout_size=holdout_size, lockstep=lockstep)
        if fold_bn:
            problem = _bn_folded(problem, device, validation_size=val_size, calibration_size=calib_size,
                                 batch=256, holdout_size=holdout_size, lockstep=lockstep)
        ev = problem.evaluator
        test = subset(problem.splits.test, test_size, seed=7)
        ref_test = accuracy(problem.model, test)

        def test_acc(r: HassResult, model: torch.nn.Module = problem.model, split: Any = test) -> float:
            return accuracy(r.thresholds.apply(model), split)

        dense = dense_baseline(ev)
        t1 = time.perf_counter()
        grid = uniform_grid(ev, grid_w, grid_a)
        uniform = uniform_baseline(ev, bound, objective, grid, holdout=problem.holdout, local=True)
        t_uniform = time.perf_counter() - t1
        # the same grid, choosing the pair by the folded design's throughput (evaluations are memoised)
        uniform_hw = uniform_baseline(ev, bound, objective, grid, holdout=problem.holdout, local=True,
                                      select="objective")
        t1 = time.perf_counter()
        heuristic = slowest_layer_baseline(ev, bound, objective, max_steps=heuristic_steps,
                                           holdout=problem.holdout) if heuristic_steps else None
        t_heuristic = time.perf_counter() - t1
        storage = f"sqlite:///{RESULTS / 'hass_studies.db'}"
        settings = SearchSettings(max_accuracy_drop=bound, trials=trials, objective=objective,
                                  storage=storage, study_name=f"bench-{name}-{device}-{trials}+{refine_trials}-{tag}"
                                  + ("" if lockstep is LockStep.MEAN else f"-{lockstep.value}") + variant,
                                  startup_trials=6, refine_trials=refine_trials, sampler=sampler, seed=search_seed)
        t1 = time.perf_counter()
        warm = [ev.space.params(uniform.thresholds), ev.space.params(uniform_hw.thresholds)]
        if heuristic is not None:  # HASS starts from the best designs the baselines found, then searches
            warm.append(ev.space.params(heuristic.thresholds))
        hass = run_search(ev, settings, initial=warm, progress=True,
                          holdout=problem.holdout)
        t_hass = time.perf_counter() - t1
        sampled = [t for t in hass.trials if t.source != "refine" and t.feasible]
        entry: dict[str, Any] = {
            "device": device, "lockstep": lockstep.value, "sampler": sampler.value, "bound_points": bound,
            "objective": objective.value,
            "trials": trials,
            "refine_trials": refine_trials,
            "validation_images": len(ev.validation), "calibration_images": len(ev.calibration),
            "holdout_images": 0 if problem.holdout is None else len(problem.holdout), "test_images": len(test),
            "uniform_selection": "most zero products (MAC-weighted) within the bound: hardware-blind",
            "uniform_hw_selection": "highest folded-design throughput within the bound (same grid)",
            "evaluations": {"uniform": len(uniform.trials), "uniform_hw": len(uniform_hw.trials), "slowest_layer": len(heuristic.trials) if heuristic else 0,
                            "hass": len(hass.trials)},
            "seconds_per_method": {"uniform": t_uniform, "slowest_layer": t_heuristic, "hass": t_hass},
            "hass_best_sampled_val_throughput": max(t.throughput_images_per_s for t in sampled),
            "hass_rejected_at_selection": hass.extra.get("rejected_at_selection"),
            "reference_val_accuracy": ev.base_accuracy, "reference_test_accuracy": ref_test,
            "cached_test_accuracy": problem.test_accuracy,
            "training": {"recipe": None if recipe is None else recipe.to_dict(), "data": train_data or {}},
            "dense": _summary(dense, ref_test, ref_test),
            "uniform": _summary(uniform, test_acc(uniform), ref_test),
            "uniform_hw": _summary(uniform_hw, test_acc(uniform_hw), ref_test),
            "hass": _summary(hass, test_acc(hass), ref_test),
            "hass_layers": [lay.to_dict() for lay in hass.layers if lay.op == "conv"],
        }
        if heuristic is not None:
            entry["slowest_layer"] = _summary(heuristic, test_acc(heuristic), ref_test)
        for key in ("uniform", "uniform_hw", "hass") + (("slowest_layer",) if heuristic else ()):
            entry[f"{key}_vs_dense_throughput"] = entry[key]["throughput_images_per_s"] / entry["dense"]["throughput_images_per_s"]
            entry[f"{key}_vs_dense_throughput_per_dsp"] = entry[key]["throughput_per_dsp"] / entry["dense"]["throughput_per_dsp"]
        entry["hass_vs_uniform_throughput"] = entry["hass"]["throughput_images_per_s"] / entry["uniform"]["throughput_images_per_s"]
        entry["hass_vs_uniform_throughput_per_dsp"] = entry["hass"]["throughput_per_dsp"] / entry["uniform"]["throughput_per_dsp"]
        entry["hass_vs_uniform_hw_throughput"] = (entry["hass"]["throughput_images_per_s"]
                                                  / entry["uniform_hw"]["throughput_images_per_s"])
        entry["trials_list"] = [t.to_dict() for t in hass.trials]
        entry["uniform_grid"] = [t.to_dict() for t in uniform.trials]
        entry["slowest_layer_steps"] = [t.to_dict() for t in heuristic.trials] if heuristic else []
        key = (name + ("" if device == "zc706" else f"@{device}") + ("" if lockstep is LockStep.MEAN else f"/{lockstep.value}")
               + variant + key_suffix)
        png = RESULTS / f"hass_pareto_{key.replace('@', '_').replace('/', '_')}.png"
        _pareto_plot(name, device, {
            "hass trials": [(100 * t.accuracy, t.throughput_images_per_s) for t in hass.trials if t.source != "refine"],
            "hass refinement": [(100 * t.accuracy, t.throughput_images_per_s) for t in hass.trials
                                if t.source == "refine"],
            "uniform grid": [(100 * t.accuracy, t.throughput_images_per_s) for t in uniform.trials],
            "slowest layer": [(100 * t.accuracy, t.throughput_images_per_s) for t in heuristic.trials] if heuristic else [],
            "dense": [(100 * dense.accuracy, dense.throughput_images_per_s)],
        }, png, reference=100 * ev.base_accuracy, bound=bound, cost_model=lockstep.value)
        entry["pareto_png"] = str(png.relative_to(RESULTS.parent.parent))
        designs = {"uniform": uniform.thresholds, "uniform_hw": uniform_hw.thresholds, "hass": hass.thresholds} | (
            {"slowest_layer": heuristic.thresholds} if heuristic else {})
        entry["other_devices"] = {dev: _transplant(ev, dev, designs) for dev in other_devices}
        entry["seconds"] = time.perf_counter() - t0
        out[name] = entry
        log.info("%s: dense %.0f uniform %.0f hass %.0f img/s (%.0fs)", name, dense.throughput_images_per_s,
                 uniform.throughput_images_per_s, hass.throughput_images_per_s, entry["seconds"])
        _merge({"small": {key: entry}})
    return out


def _transplant(ev: Any, device: str, designs: dict[str, Thresholds]) -> dict[str, Any]:
    """The thresholds chosen on the search's device, folded again on ``device`` (no new search: shows
    whether the gains depend on the device's resource balance)."""
    other = dataclasses.replace(ev, device=load_device(device))
    dense = other.dense_design()
    out: dict[str, Any] = {"dense": {"throughput_images_per_s": dense.throughput_images_per_s,
                                     "dsp": int(dense.resources.dsp), "binding_resource": dense.binding_resource.value}}
    for key, thresholds in designs.items():
        e = other(thresholds)
        out[key] = {"throughput_images_per_s": e.throughput, "dsp": e.dsp,
                    "binding_resource": e.design.binding_resource.value, "lut": float(e.design.resources.lut)}
    return out


def run_plots() -> None:
    """Regenerate the Pareto plots from the saved trials in hass.json (no evaluation)."""
    for key, e in json.loads(OUT.read_text()).get("small", {}).items():
        def pts(rows: list[dict[str, Any]]) -> list[tuple[float, float]]:
            return [(100 * r["accuracy"], r["throughput_images_per_s"]) for r in rows]

        trials = e["trials_list"]
        name = key.split("@")[0].split("/")[0]
        _pareto_plot(name, e["device"], {
            "hass trials": pts([t for t in trials if t["source"] != "refine"]),
            "hass refinement": pts([t for t in trials if t["source"] == "refine"]),
            "uniform grid": pts(e["uniform_grid"]), "slowest layer": pts(e["slowest_layer_steps"]),
            "dense": [(100 * e["reference_val_accuracy"], e["dense"]["throughput_images_per_s"])],
        }, RESULTS.parent.parent / e["pareto_png"], reference=100 * e["reference_val_accuracy"],
            bound=e["bound_points"], cost_model=e.get("lockstep", "mean"))


def run_sampled(models: list[str], window_positions: int = 4096) -> None:
    """``sampled_lockstep`` for saved REFERENCE-model entries: each chosen design re-folded under the sampled
    lock-step model (``LockStep.SAMPLED``, within 1.7% of the cycle simulation) without a new search. The
    REFERENCE model the search used overstates sparse designs; these figures do not."""
    data = json.loads(OUT.read_text())
    for name in models:
        entry = data["small"][name]
        problem = zoo_problem(name, entry["device"], validation_size=64, calibration_size=entry["calibration_images"])
        ev = dataclasses.replace(problem.evaluator, lockstep=LockStep.SAMPLED, window_positions=window_positions)
        out: dict[str, Any] = {"window_positions": window_positions}
        for key in ("uniform", "uniform_hw", "slowest_layer", "hass"):
            if key not in entry:
                continue
            t0 = time.perf_counter()
            e = ev(Thresholds.from_dict(entry[key]["thresholds"]))
            out[key] = {"throughput_images_per_s": e.throughput, "dsp": e.dsp, "lut": float(e.design.resources.lut),
                        "binding_resource": e.design.binding_resource.value,
                        "evaluate_seconds": time.perf_counter() - t0,
                        "vs_dense": e.throughput / entry["dense"]["throughput_images_per_s"]}
            log.info("%s %s sampled lock-step: %.0f images/s (%.2fx dense)", name, key, e.throughput, out[key]["vs_dense"])
        if "uniform" in out and "hass" in out:
            out["hass_vs_uniform"] = out["hass"]["throughput_images_per_s"] / out["uniform"]["throughput_images_per_s"]
        entry["sampled_lockstep"] = out
        _merge({"small": {name: entry}})


def run_finetune(models: list[str], device: str, search_bound: float, tag: str, steps: int, lr: float, max_tries: int,
                 grid_w: tuple[float, ...], grid_a: tuple[float, ...], val_size: int, holdout_size: int,
                 test_size: int = 10_000, methods: tuple[str, ...] = ("uniform", "hass"), suffix: str = "",
                 sampler: SamplerKind = SamplerKind.TPE, distill: float = 0.0, ramp: float = 0.0) -> None:
    """``finetune``: search within ``search_bound`` points, then fine-tune (masks and thresholded ReLUs in
    place, ``steps`` Adam steps) back within 1 point, HASS and the uniform baseline alike, ``max_tries``
    fine-tunings each (:func:`accelflow.hass.recover`, bisection over a front); ``distill`` > 0 adds
    distillation from the dense model to the fine-tuning loss; ``ramp`` > 0 prunes gradually over that
    fraction of the steps (both methods alike).

    HASS is the library path, ``run_search`` with ``finetune_slack = search_bound - 1`` on the saved
    ``--part small --bound search_bound --tag tag`` study (complete, so no new trials): candidates are its
    trials on the (accuracy, throughput) front that beat its best untuned design within 1 point, which
    is kept if none recovers. Uniform stays hardware-blind: candidates are its grid points within
    ``search_bound`` on the (accuracy, zero products) front with more zero products than the 1-point
    uniform baseline, and the recovered design with the most zero products wins (else that baseline)."""
    bound = 1.0
    storage = f"sqlite:///{RESULTS / 'hass_studies.db'}"
    for name in models:
        t0 = time.perf_counter()
        problem = zoo_problem(name, device, validation_size=val_size, calibration_size=100, batch=256,
                              holdout_size=holdout_size, lockstep=LockStep.SAMPLED)
        ev = problem.evaluator
        test = subset(problem.splits.test, test_size, seed=7)
        ref_test = accuracy(problem.model, test)
        finetune = FineTune(problem.splits.train, steps=steps, lr=lr, distill=distill, ramp=ramp,
                            cache_dir=finetune_cache_dir())
        dense = dense_baseline(ev)
        entry: dict[str, Any] = {"device": device, "lockstep": "sampled", "search_bound_points": search_bound,
                                 "bound_points": bound, "finetune_steps": steps, "finetune_lr": finetune.lr,
                                 "finetune_batch": finetune.batch_size, "finetune_distill": distill,
                                 "finetune_ramp": ramp,
                                 "max_tries": max_tries,
                                 "reference_val_accuracy": ev.base_accuracy, "reference_test_accuracy": ref_test,
                                 "dense": {"throughput_images_per_s": dense.throughput_images_per_s, "dsp": dense.dsp}}

        def summary(thresholds: Thresholds, e: Any, model: torch.nn.Module, test: Any = test,
                    ref_test: float = ref_test, dense: Any = dense) -> dict[str, Any]:
            test_acc = accuracy(thresholds.apply(model), test)
            return {"throughput_images_per_s": e.throughput, "dsp": e.dsp, "lut": float(e.design.resources.lut),
                    "binding_resource": e.design.binding_resource.value, "val_accuracy_drop": e.accuracy_drop,
                    "test_accuracy_drop": 100 * (ref_test - test_acc), "zero_products": e.zero_products,
                    "vs_dense": e.throughput / dense.throughput_images_per_s, "thresholds": thresholds.to_dict()}

        if "uniform" in methods:
            entry["uniform"] = _finetune_uniform(ev, problem, finetune, bound, search_bound, max_tries, grid_w, grid_a,
                                                 summary)
        if "hass" in methods:
            entry["hass"] = _finetune_hass(ev, problem, finetune, bound, search_bound, max_tries, name, device, tag,
                                           storage, summary, sampler)
        entry["seconds"] = time.perf_counter() - t0
        log.info("%s fine-tuned: %s", name, {m: entry[m]["throughput_images_per_s"] for m in methods})
        recipe_suffix = (f"-kd{distill:g}" if distill > 0 else "") + (f"-ramp{ramp:g}" if ramp > 0 else "")
        key = f"{name}{_sampler_suffix(sampler)}{_bound_suffix(search_bound)}/ft{steps}-lr{lr:g}{recipe_suffix}{suffix}"
        _merge_finetune(key, entry, methods)


def _merge_finetune(key: str, entry: dict[str, Any], methods: tuple[str, ...]) -> None:
    """Store a ``--part finetune`` entry; a run of one method keeps the other method's result under the same
    key (the key holds every setting), so ``--methods uniform`` and ``--methods hass`` can run as two
    processes. ``seconds`` is per method then; the ratio is recomputed from what is stored."""
    def combine(data: dict[str, Any]) -> None:
        old = data.setdefault("finetune", {}).get(key, {})
        kept = {m: old[m] for m in ("uniform", "hass") if m in old and m not in methods}
        merged = entry | kept
        if "uniform" in merged and "hass" in merged:
            merged["hass_vs_uniform"] = (merged["hass"]["throughput_images_per_s"]
                                         / merged["uniform"]["throughput_images_per_s"])
        data["finetune"][key] = merged

    _update(combine)


def _finetune_uniform(ev: Any, problem: Any, finetune: FineTune, bound: float, search_bound: float, max_tries: int,
                      grid_w: tuple[float, ...], grid_a: tuple[float, ...], summary: Any) -> dict[str, Any]:
    """Uniform's side of ``--part finetune``: hardware-blind, ranked and chosen by zero products. Grid
    points at least as aggressive in both thresholds as one beyond ``search_bound`` are not evaluated."""
    t1 = time.perf_counter()
    grid = uniform_grid(ev, grid_w, grid_a)
    floor = uniform_baseline(ev, bound, Objective.THROUGHPUT, grid, holdout=problem.holdout, local=True)
    front = pareto_order([(e.thresholds, e.accuracy, e.zero_products) for e in scan_uniform_grid(ev, grid, search_bound)
                          if e.zero_products > floor.zero_products])
    got = recover(ev, front, finetune, bound, holdout=problem.holdout, max_tries=max_tries,
                  score=lambda e: e.zero_products)
    tried = [dict(zip(("rank", "val_drop", "holdout_drop", "zero_products"), t, strict=True)) for t in got.tried]
    if got.evaluation is not None:
        uniform = summary(got.evaluation.thresholds, got.evaluation, got.model) | {"finetuned": True}
    else:
        uniform = summary(floor.thresholds, ev(floor.thresholds), problem.model) | {"finetuned": False}
    return uniform | {"candidates": len(front), "tried": tried, "seconds": time.perf_counter() - t1}


def _finetune_hass(ev: Any, problem: Any, finetune: FineTune, bound: float, search_bound: float, max_tries: int,
                   name: str, device: str, tag: str, storage: str, summary: Any,
                   sampler: SamplerKind = SamplerKind.TPE) -> dict[str, Any]:
    """HASS's side of ``--part finetune``: the library path, ``run_search(finetune_slack=...)``."""
    t1 = time.perf_counter()
    settings = SearchSettings(max_accuracy_drop=bound, finetune_slack=search_bound - bound, finetune_tries=max_tries,
                              trials=40, refine_trials=80, startup_trials=6, storage=storage, sampler=sampler,
                              study_name=f"bench-{name}-{device}-40+80-{tag}-sampled{_sampler_suffix(sampler)}"
                                         f"{_bound_suffix(search_bound)}")  # fmt: skip
    hass = run_search(ev, settings, finetune=finetune, holdout=problem.holdout)
    searched = hass.model if hass.finetuned else problem.model  # the weights the design's thresholds apply to
    return summary(hass.thresholds, ev(hass.thresholds, model=searched), searched) | {
        "finetuned": hass.finetuned, "study": settings.study_name, "seconds": time.perf_counter() - t1,
        **{k: hass.extra[k] for k in ("recover_candidates", "recover_tried", "recover_rank") if k in hass.extra}}


def _best_finetuned(data: dict[str, Any], name: str, method: str) -> tuple[str, dict[str, Any]] | None:
    """The ``--part finetune`` entry (key, entry) whose ``method`` design is fastest for ``name``."""
    rows = [(k, e) for k, e in data.get("finetune", {}).items()
            if k.split("/")[0].split("-")[0] == name and method in e and e.get("lockstep") == "sampled"]
    return max(rows, key=lambda r: r[1][method]["throughput_images_per_s"], default=None)


def _all_zero(graph: Any) -> Any:
    """``graph`` with every conv annotated as having only all-zero windows: its layers then cost their
    data-movement floor (one word per cycle per stream), the fastest any thresholds could make them."""
    for node in graph.find(OpKind.CONV):
        taps = int(np.prod(node.attrs.kernel))
        hist = np.zeros((node.attrs.in_channels, taps + 1))
        hist[:, -1] = 1.0
        node.annotate(ChannelSparsity(hist, source="all-zero bound"))
    return graph


def _row(design: Any) -> dict[str, Any]:
    return {"throughput_images_per_s": design.throughput_images_per_s, "interval_cycles": design.interval_cycles,
            "pipeline_depth_cycles": design.pipeline_depth_cycles, "dsp": int(design.resources.dsp),
            "binding_resource": design.binding_resource.value}


def _exact(fold: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """``{"exact": row}`` of the design ``fold(*args, **kwargs)`` returns, or ``{"exact": None, "error": ...}``
    when the exhaustive search runs past its node budget (too many layers)."""
    try:
        return {"exact": _row(fold(*args, **kwargs))}
    except SearchBudgetError as exc:
        return {"exact": None, "error": str(exc)}


def _exact_design(ev: Any, pruned: torch.nn.Module | None, node_budget: int) -> Any:
    """The exact (exhaustive) folding of ``pruned`` (histograms measured as the evaluator does), or of the
    dense design for None, under the evaluator's device, batch and lock-step cost."""
    graph = ev.graph()
    if pruned is not None:
        annotate_graph(graph, ev.measure(pruned))
    return optimise_folding(graph, ev.device, Method.EXHAUSTIVE, batch=ev.batch, lockstep=ev.lockstep,
                            use_sparsity=pruned is not None, node_budget=node_budget)


def run_ceiling(models: list[str], val_size: int, holdout_size: int, node_budget: int) -> None:
    """``ceiling``: how far the fastest fine-tuned designs are from the exact optimum folding. For each
    model: the dense design, the fastest fine-tuned uniform and HASS designs of any ``--part finetune``
    entry (best vs best) and the corner of the search space (every variable at its maximum), each folded by
    the greedy optimiser (what the search used) and by the exact branch-and-bound (``Method.EXHAUSTIVE``,
    interval optimal over all legal foldings); and the exact optimum when every conv window is all-zero,
    an upper bound on what any thresholds can reach on the device. Fine-tuned weights come from the
    fine-tuning cache (re-tuned, minutes each, if missing)."""
    data = json.loads(OUT.read_text())
    for name in models:
        t0 = time.perf_counter()
        picks = {m: _best_finetuned(data, name, m) for m in ("uniform", "hass")}
        if not all(picks.values()):
            log.warning("%s: no fine-tuned uniform and HASS entries in %s; run --part finetune first", name, OUT)
            continue
        device = picks["hass"][1]["device"]  # type: ignore[index]
        problem = zoo_problem(name, device, validation_size=val_size, calibration_size=100, batch=256,
                              holdout_size=holdout_size, lockstep=LockStep.SAMPLED)
        greedy_ev = problem.evaluator
        out: dict[str, Any] = {"device": device, "lockstep": "sampled",
                               "dense": {"greedy": _row(greedy_ev.dense_design()),
                                         **_exact(_exact_design, greedy_ev, None, node_budget)}}
        for method, (key, entry) in picks.items():  # type: ignore[misc]
            design = entry[method]
            thresholds = Thresholds.from_dict(design["thresholds"])
            model = problem.model
            if design.get("finetuned"):
                model = FineTune(problem.splits.train, steps=entry["finetune_steps"], lr=entry["finetune_lr"],
                                 batch_size=entry["finetune_batch"], distill=entry.get("finetune_distill", 0.0),
                                 ramp=entry.get("finetune_ramp", 0.0), cache_dir=finetune_cache_dir())(model, thresholds)
            greedy = greedy_ev(thresholds, model=model)
            out[method] = {"entry": key, "recorded_throughput_images_per_s": design["throughput_images_per_s"],
                           "val_accuracy_drop": greedy.accuracy_drop, "greedy": _row(greedy.design),
                           **_exact(_exact_design, greedy_ev, thresholds.apply(model), node_budget)}
        # the most aggressive point of the search space: every weight fraction and activation ratio at its maximum
        space = greedy_ev.space
        corner = space.thresholds({k: space.max_weight_fraction if k.startswith("w:") else space.max_activation_ratio
                                   for k in space.params(Thresholds())})
        greedy = greedy_ev(corner)
        out["space_corner"] = {"val_accuracy_drop": greedy.accuracy_drop, "zero_products": greedy.zero_products,
                               "greedy": _row(greedy.design),
                               **_exact(_exact_design, greedy_ev, corner.apply(problem.model), node_budget)}
        all_zero = _all_zero(greedy_ev.graph())
        # all windows all-zero: the mean and sampled lock-step costs agree (both give the movement floor)
        out["all_zero"] = _exact(optimise_folding, all_zero, greedy_ev.device, Method.EXHAUSTIVE, batch=256,
                                 lockstep=LockStep.MEAN, node_budget=node_budget)
        for fold in ("greedy", "exact"):
            if all(out[m][fold] for m in ("dense", "uniform", "hass")):
                out[f"hass_vs_uniform_{fold}"] = (out["hass"][fold]["throughput_images_per_s"]
                                                  / out["uniform"][fold]["throughput_images_per_s"])
                out[f"hass_vs_dense_{fold}"] = (out["hass"][fold]["throughput_images_per_s"]
                                                / out["dense"][fold]["throughput_images_per_s"])
        out["seconds"] = time.perf_counter() - t0
        log.info("%s ceiling: %s", name, {k: out[k] for k in out if k.startswith("hass_vs")})
        _merge({"ceiling": {name: out}})


def run_sensitivity(models: list[str], device: str, val_size: int,
                    ratios: tuple[float, ...] = (0.5, 1.0, 1.5, 2.5),
                    fractions: tuple[float, ...] = (0.5, 0.7, 0.85, 0.95)) -> None:
    """``sensitivity``: each search variable alone (one ReLU's activation ratio, one conv's prune fraction,
    every other threshold 0): the accuracy drop on the search's validation images and the network's
    MAC-weighted zero products. Per-layer search can only beat one global threshold where layers differ in
    how much they tolerate; this shows how much room the trained networks leave."""
    for name in models:
        problem = zoo_problem(name, device, validation_size=val_size, calibration_size=100)
        ev = problem.evaluator

        def probe(params: dict[str, float], ev: Any = ev) -> dict[str, float]:
            pruned = ev.space.thresholds(params).apply(ev.model)
            stats = measure_sparsity(pruned, ev.calibration_batches())
            return {"accuracy_drop": 100 * (ev.base_accuracy - accuracy(pruned, ev.validation)),
                    "zero_products": ev.zero_products({k: v.mean_sparsity for k, v in stats.items()})}

        out: dict[str, Any] = {"validation_images": len(ev.validation), "none": probe({}),
                               "activation": {a: {str(r): probe({f"a:{a}": r}) for r in ratios}
                                              for a in ev.space.activations},
                               "weight": {c: {"macs": ev.conv_macs[c]} | {str(f): probe({f"w:{c}": f}) for f in fractions}
                                          for c in ev.space.convs}}
        log.info("%s sensitivity: %s", name, json.dumps(out)[:200])
        _merge({"sensitivity": {name: out}})


def run_transplant(models: list[str], devices: tuple[str, ...]) -> None:
    """``other_devices`` for saved entries (the thresholds in hass.json; no search is re-run)."""
    data = json.loads(OUT.read_text())
    for name in models:
        entry = data["small"][name]
        problem = zoo_problem(name, entry["device"], validation_size=64, calibration_size=entry["calibration_images"])
        designs = {key: Thresholds.from_dict(entry[key]["thresholds"])
                   for key in ("uniform", "uniform_hw", "slowest_layer", "hass") if key in entry}
        entry["other_devices"] = {dev: _transplant(problem.evaluator, dev, designs) for dev in devices}
        _merge({"small": {name: entry}})


def _fmnist_224(n: int) -> np.ndarray:
    """Fashion-MNIST test images resized to 224x224 and replicated to 3 channels (no ImageNet offline)."""
    x = torch.as_tensor(load("fashion_mnist", limit_test=max(n, 10)).test.x[:n])
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
    return x.repeat(1, 3, 1, 1).numpy()


def run_imagenet(models: list[str], devices: list[str], images: int, weight_fraction: float,
                 window_positions: int = 4096) -> dict[str, Any]:
    out: dict[str, Any] = {}
    calib = _fmnist_224(images)
    for name in models:
        model = create(name)  # random (He) init: no ImageNet weights are available offline
        convs = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
        thresholds = {}
        for n in convs:
            w = model.get_submodule(n).weight.detach().abs().flatten().numpy()
            thresholds[n] = float(np.quantile(w, weight_fraction)) if weight_fraction > 0 else 0.0
        pruned = mask_weights(model, thresholds) if weight_fraction > 0 else model
        t0 = time.perf_counter()
        stats = measure_sparsity(pruned, [calib])
        measure_s = time.perf_counter() - t0
        graph = from_pytorch(model, (3, 224, 224), name=name)
        entry: dict[str, Any] = {"calibration_images": images, "weight_prune_fraction": weight_fraction,
                                 "measure_seconds": measure_s,
                                 "mean_sparsity": float(np.mean([s.mean_sparsity for s in stats.values()]))}
        # the same statistics plus sampled window masks, for the sparse design under LockStep.SAMPLED
        windows = measure_sparsity(pruned, [calib], window_positions=window_positions)
        for dev in devices:
            t1 = time.perf_counter()
            dense = optimise_folding(graph, load_device(dev))
            sparse = optimise_folding(annotate_graph(from_pytorch(model, (3, 224, 224), name=name), stats),
                                      load_device(dev))
            optimise_s = time.perf_counter() - t1
            t1 = time.perf_counter()
            sampled = optimise_folding(annotate_graph(from_pytorch(model, (3, 224, 224), name=name), windows),
                                       load_device(dev), lockstep=LockStep.SAMPLED)
            entry[dev] = {
                kind: {"throughput_images_per_s": d.throughput_images_per_s, "dsp": d.resources.dsp,
                       "lut": d.resources.lut, "ff": d.resources.ff, "bram18": d.resources.bram18,
                       "binding_resource": d.binding_resource.value, "feasible": d.feasible,
                       "bandwidth_slowdown": d.bandwidth_slowdown}
                for kind, d in (("dense", dense), ("sparse", sparse), ("sparse_sampled", sampled))
            }
            entry[dev]["optimise_seconds"] = optimise_s
            entry[dev]["sampled_optimise_seconds"] = time.perf_counter() - t1
            log.info("%s on %s: dense %.0f sparse %.0f (sampled lock-step %.0f) img/s", name, dev,
                     dense.throughput_images_per_s, sparse.throughput_images_per_s, sampled.throughput_images_per_s)
        out[name] = entry
        _merge({"imagenet": {name: entry}})
    return out


def run_timing() -> dict[str, Any]:
    out: dict[str, Any] = {"torch_threads": torch.get_num_threads()}
    r18 = create("resnet18")
    x = _fmnist_224(4)
    t0 = time.perf_counter()
    with torch.no_grad():
        r18(torch.as_tensor(x))
    fwd = time.perf_counter() - t0
    t0 = time.perf_counter()
    measure_sparsity(r18, [x])
    out["resnet18_224_4_images"] = {"measure_seconds": time.perf_counter() - t0, "forward_only_seconds": fwd}
    r8 = create("resnet8")
    xs = load("fashion_mnist", limit_test=1000).test.x[:1000]
    t0 = time.perf_counter()
    measure_sparsity(r8, [xs[i:i + 100] for i in range(0, 1000, 100)])
    out["resnet8_28_1000_images"] = {"measure_seconds": time.perf_counter() - t0}
    _merge({"timing": out})
    return out


def decompose(entry: dict[str, Any]) -> dict[str, Any] | None:
    """Split one ``small`` entry's HASS / uniform throughput ratio into what more zero products explain
    and what their placement does.

    Every evaluated point of the entry (HASS trials and the uniform grid: one network, one device) gives
    ``(z, T)``: its MAC-weighted fraction of zero products and its folded throughput. A least-squares fit
    ``log T = a + slope * log(1 / (1 - z))`` says how throughput follows the remaining (nonzero) work
    alone (slope 1: throughput inversely proportional to it). With ``z_u`` and ``z_h`` the zero products
    of the uniform and HASS designs, ``count = ((1 - z_u) / (1 - z_h)) ** slope`` is the ratio that the
    extra zeros explain and ``placement = (T_h / T_u) / count`` the rest: where the zeros sit relative to
    the pipeline's bottleneck layers, the part only a hardware-aware choice can find. ``residual_p5`` /
    ``residual_p95`` bound how far any one point's throughput lies from the fit. None without trials.
    """
    recs = [r for r in (*entry.get("trials_list", ()), *entry.get("uniform_grid", ())) if r["throughput_images_per_s"] > 0]
    if len(recs) < 3 or "uniform" not in entry or "hass" not in entry:
        return None
    z = np.array([r["zero_products"] for r in recs])
    x, y = np.log(1.0 / (1.0 - z)), np.log([r["throughput_images_per_s"] for r in recs])
    design = np.vstack([x, np.ones_like(x)]).T
    (slope, intercept), *_ = np.linalg.lstsq(design, y, rcond=None)
    fitted = design @ np.array([slope, intercept])
    spread = float(((y - y.mean()) ** 2).sum())
    residual = np.exp(y - fitted)
    z_u, z_h = entry["uniform"]["zero_products"], entry["hass"]["zero_products"]
    ratio = entry["hass"]["throughput_images_per_s"] / entry["uniform"]["throughput_images_per_s"]
    count = float(((1.0 - z_u) / (1.0 - z_h)) ** slope)
    return {"points": len(recs), "slope": float(slope), "r2": 1.0 - float(((y - fitted) ** 2).sum()) / spread if spread else 0.0,
            "residual_p5": float(np.percentile(residual, 5)), "residual_p95": float(np.percentile(residual, 95)),
            "zero_products_uniform": z_u, "zero_products_hass": z_h, "hass_vs_uniform": ratio,
            "count": count, "placement": ratio / count}


def run_decompose() -> None:
    """:func:`decompose` every saved ``small`` entry (no new evaluations) into ``decomposition``."""
    def change(data: dict[str, Any]) -> None:
        out = {name: d for name, e in data.get("small", {}).items() if (d := decompose(e)) is not None}
        data["decomposition"] = out
        log.info("decomposed %d entries", len(out))

    _update(change)


def markdown(data: dict[str, Any]) -> str:
    """The docs tables from a results dict (``--table`` prints them for benchmarks/results/hass.json)."""
    lines = ["| model | device | design | images/s | DSP | images/s per DSP | x dense (thr) | x dense (thr/DSP) "
             "| val drop (pts) | test drop (pts) | zero products |", "|" + "---|" * 11]
    for name, e in data.get("small", {}).items():
        for key in ("dense", "uniform", "uniform_hw", "slowest_layer", "hass"):
            if key not in e:
                continue
            r = e[key]
            td = r.get("test_accuracy_drop")
            lines.append(
                f"| {name} | {e['device']} | {key} | {r['throughput_images_per_s']:,.0f} | {r['dsp']} | "
                f"{r['throughput_per_dsp']:.1f} | {r['throughput_images_per_s'] / e['dense']['throughput_images_per_s']:.2f} | "
                f"{r['throughput_per_dsp'] / e['dense']['throughput_per_dsp']:.2f} | {r['val_accuracy_drop']:.2f} | "
                f"{'' if td is None else f'{td:.2f}'} | {r.get('zero_products', r['mean_sparsity']):.2f} |")
        lines.append(f"| {name} | | HASS / uniform | {e['hass_vs_uniform_throughput']:.2f}x | | "
                     f"{e['hass_vs_uniform_throughput_per_dsp']:.2f}x | | | | | |")
        if "hass_vs_uniform_hw_throughput" in e:
            lines.append(f"| {name} | | HASS / uniform_hw | {e['hass_vs_uniform_hw_throughput']:.2f}x | | | | | | | |")
    other = [(n, e) for n, e in data.get("small", {}).items() if e.get("other_devices")]
    if other:
        lines += ["", "| model | device | design | images/s | DSP | images/s per DSP | x dense (thr) | "
                  "x dense (thr/DSP) | binding |", "|" + "---|" * 9]
        for name, e in other:
            for dev, d in e["other_devices"].items():
                base = d["dense"]
                for key in ("dense", "uniform", "uniform_hw", "slowest_layer", "hass"):
                    if key not in d:
                        continue
                    r = d[key]
                    per = r["throughput_images_per_s"] / max(r["dsp"], 1)
                    lines.append(f"| {name} | {dev} | {key} | {r['throughput_images_per_s']:,.0f} | {r['dsp']} | "
                                 f"{per:.1f} | {r['throughput_images_per_s'] / base['throughput_images_per_s']:.2f} | "
                                 f"{per / (base['throughput_images_per_s'] / base['dsp']):.2f} | "
                                 f"{r['binding_resource']} |")
    sampled = [(n, e) for n, e in data.get("small", {}).items() if e.get("sampled_lockstep")]
    if sampled:
        lines += ["", "| model | design | images/s (REFERENCE model, searched) | images/s (sampled lock-step, "
                  "re-folded) | x dense (sampled) | DSP | LUT | binding |", "|" + "---|" * 8]
        for name, e in sampled:
            for key in ("uniform", "uniform_hw", "slowest_layer", "hass"):
                r = e["sampled_lockstep"].get(key)
                if r is None:
                    continue
                lines.append(f"| {name} | {key} | {e[key]['throughput_images_per_s']:,.0f} | "
                             f"{r['throughput_images_per_s']:,.0f} | {r['vs_dense']:.2f} | {r['dsp']} | "
                             f"{r['lut']:,.0f} | {r['binding_resource']} |")
            if "hass_vs_uniform" in e["sampled_lockstep"]:
                lines.append(f"| {name} | HASS / uniform | | {e['sampled_lockstep']['hass_vs_uniform']:.2f}x | | | | |")
    if data.get("imagenet"):
        lines += ["", "| network | zero products | device | dense images/s | sparse images/s | sparse images/s "
                  "(sampled lock-step) | dense DSP/LUT/BRAM18 | sparse DSP/LUT/BRAM18 | binding (sparse) "
                  "| optimiser s (dense + sparse REFERENCE / sparse sampled) |", "|" + "---|" * 10]
        for name, e in data["imagenet"].items():
            for dev in ("u250", "zcu102"):
                if dev not in e:
                    continue
                d, sp = e[dev]["dense"], e[dev]["sparse"]
                ss = e[dev].get("sparse_sampled")
                lines.append(f"| {name} | {e['mean_sparsity']:.2f} | {dev} | {d['throughput_images_per_s']:,.0f} | "
                             f"{sp['throughput_images_per_s']:,.0f} | "
                             f"{'' if ss is None else format(ss['throughput_images_per_s'], ',.0f')} | "
                             f"{d['dsp']}/{d['lut']:,}/{d['bram18']} | "
                             f"{sp['dsp']}/{sp['lut']:,}/{sp['bram18']} | {sp['binding_resource']} | "
                             f"{e[dev]['optimise_seconds']:.1f} / {e[dev].get('sampled_optimise_seconds', float('nan')):.1f} |")
    if data.get("ceiling"):
        lines += ["", "| model | design | greedy images/s (interval) | exact images/s (interval) | exact DSP | "
                  "exact binding |", "|" + "---|" * 6]
        for name, e in data["ceiling"].items():
            for key in ("dense", "uniform", "hass", "space_corner", "all_zero"):
                if key not in e:
                    continue
                g, x = e[key].get("greedy"), e[key].get("exact")
                cell = "" if g is None else f"{g['throughput_images_per_s']:,.0f} ({g['interval_cycles']:,.0f})"
                exact = ("over node budget", "", "") if x is None else (
                    f"{x['throughput_images_per_s']:,.0f} ({x['interval_cycles']:,.0f})", x["dsp"], x["binding_resource"])
                lines.append(f"| {name} | {key} | {cell} | {exact[0]} | {exact[1]} | {exact[2]} |")
    if data.get("decomposition"):
        lines += ["", "| entry | points | slope | R^2 | fit residual p5-p95 | zero products uniform / HASS | "
                  "HASS / uniform | from more zeros | from their placement |", "|" + "---|" * 9]
        for name, d in data["decomposition"].items():
            lines.append(f"| {name} | {d['points']} | {d['slope']:.2f} | {d['r2']:.2f} | {d['residual_p5']:.2f}-"
                         f"{d['residual_p95']:.2f} | {d['zero_products_uniform']:.3f} / {d['zero_products_hass']:.3f} | "
                         f"{d['hass_vs_uniform']:.3f} | {d['count']:.3f} | {d['placement']:.3f} |")
    return "\n".join(lines)


def _merge(part: dict[str, Any]) -> None:
    """Merge ``part`` into hass.json (one level deep) with :func:`_update`."""
    def combine(data: dict[str, Any]) -> None:
        for key, value in part.items():
            data.setdefault(key, {}).update(value)

    _update(combine)


def _update(change: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``change`` to hass.json under a lock, written atomically: benchmark parts run as parallel
    processes (one per model on a 2-core machine) and must not lose each other's entries."""
    with (RESULTS / ".hass.json.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(OUT.read_text()) if OUT.exists() else {}
        change(data)
        tmp = OUT.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(OUT)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer trials and images (minutes, not hours)")
    ap.add_argument("--part", choices=["small", "imagenet", "timing", "transplant", "sampled", "sensitivity", "finetune", "ceiling", "plots", "decompose", "all"],
                    default="all")
    ap.add_argument("--models", default="resnet8,mobilenet_v2_tiny")
    ap.add_argument("--device", default="zc706")
    ap.add_argument("--trials", type=int, default=None)
    ap.add_argument("--bound", type=float, default=1.0)
    ap.add_argument("--search-seed", type=int, default=0, help="--part small: seed of HASS's sampler (key -seedN)")
    ap.add_argument("--key-suffix", default="", help="--part small: appended to the result key (e.g. -replicate)")
    ap.add_argument("--fold-bn", action="store_true",
                    help="--part small: search the model with BatchNorm folded into the convs (key -bnfolded)")
    ap.add_argument("--objective", default="throughput", choices=[o.value for o in Objective],
                    help="--part small: what HASS maximises and uniform_hw selects by")
    ap.add_argument("--limit-train", type=int, default=0,
                    help="train the models on this many images for --epochs (0: the cache's default recipe, "
                         "full training set, what `accelflow hass` uses)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--validation", type=int, default=4000, help="validation images the search uses")
    ap.add_argument("--holdout", type=int, default=2000,
                    help="validation images (disjoint from the search's) every design must also meet the bound on")
    ap.add_argument("--refine-trials", type=int, default=None, help="hardware-aware refinement trials after TPE")
    ap.add_argument("--other-devices", default="zcu104",
                    help="comma-separated devices the chosen thresholds are re-folded on (no new search)")
    ap.add_argument("--tag", default="v4", help="study-name suffix (a new tag starts fresh studies)")
    ap.add_argument("--lockstep", default="mean", choices=[m.value for m in LockStep],
                    help="--part small: the sparse lock-step cost every method is folded and scored under "
                         "(mean: REFERENCE model; sampled: within 2%% of the cycle simulation, slower)")
    ap.add_argument("--sampler", default="tpe", choices=[k.value for k in SamplerKind],
                    help="--part small: HASS's Optuna sampler before the refinement; --part finetune: "
                         "the sampler of the study to recover from")
    ap.add_argument("--search-bound", type=float, default=2.0,
                    help="--part finetune: the bound of the saved study whose designs are fine-tuned back to 1 point")
    ap.add_argument("--finetune-steps", type=int, default=500, help="--part finetune: Adam steps per fine-tuning")
    ap.add_argument("--finetune-lr", type=float, default=2e-4, help="--part finetune: Adam learning rate")
    ap.add_argument("--finetune-distill", type=float, default=0.0,
                    help="--part finetune: weight of distillation from the dense model in the fine-tuning loss")
    ap.add_argument("--finetune-ramp", type=float, default=0.0,
                    help="--part finetune: prune gradually over this fraction of the fine-tuning steps (0: at once)")
    ap.add_argument("--methods", default="uniform,hass", help="--part finetune: which methods to fine-tune")
    ap.add_argument("--fine-grid", action="store_true",
                    help="--part finetune: uniform grid in 0.05 weight-fraction steps and 13 activation ratios "
                         "(more recovery candidates for uniform; entry key suffix -finegrid)")
    ap.add_argument("--max-tries", type=int, default=4, help="--part finetune: fine-tunings per method (bisection)")
    ap.add_argument("--node-budget", type=int, default=20_000_000,
                    help="--part ceiling: nodes the exact (exhaustive) folding search may visit per design")
    ap.add_argument("--table", action="store_true", help="print the markdown tables of the saved JSON and exit")
    args = ap.parse_args(argv)
    if args.table:
        sys.stdout.write(markdown(json.loads(OUT.read_text())) + "\n")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    quick = args.quick
    if args.part in ("timing", "all"):
        run_timing()
    if args.part in ("small", "all"):
        run_small(args.models.split(","), args.device, args.trials or (16 if quick else 60), args.bound,
                  val_size=500 if quick else args.validation, calib_size=32 if quick else 100,
                  grid_w=(0.0, 0.3, 0.5, 0.7) if quick else (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
                  grid_a=(0.0, 0.15, 0.3) if quick else (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7),
                  heuristic_steps=6 if quick else 20,
                  recipe=TrainRecipe(epochs=args.epochs, batch_size=128, lr=2e-3, optimizer="adam",
                                     scheduler="cosine") if args.limit_train else None,
                  train_data={"limit_train": args.limit_train} if args.limit_train else None,
                  holdout_size=500 if quick else args.holdout,
                  refine_trials=args.refine_trials if args.refine_trials is not None else (8 if quick else 60),
                  test_size=2000 if quick else 10_000, tag=args.tag,
                  other_devices=tuple(d for d in args.other_devices.split(",") if d),
                  lockstep=LockStep(args.lockstep), sampler=SamplerKind(args.sampler),
                  objective=Objective(args.objective), key_suffix=args.key_suffix, search_seed=args.search_seed,
                  fold_bn=args.fold_bn)
    if args.part == "plots":
        run_plots()
    if args.part == "decompose":
        run_decompose()
    if args.part == "sampled":
        run_sampled(args.models.split(","))
    if args.part == "finetune":
        fine = args.fine_grid
        run_finetune(args.models.split(","), args.device, args.search_bound, args.tag, args.finetune_steps,
                     args.finetune_lr, args.max_tries,
                     tuple(round(0.05 * i, 2) for i in range(19)) if fine else (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
                     (0.0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7) if fine
                     else (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7), args.validation, args.holdout,
                     methods=tuple(args.methods.split(",")), suffix="-finegrid" if fine else "",
                     sampler=SamplerKind(args.sampler), distill=args.finetune_distill, ramp=args.finetune_ramp)
    if args.part == "ceiling":
        run_ceiling(args.models.split(","), args.validation, args.holdout, args.node_budget)
    if args.part == "sensitivity":
        run_sensitivity(args.models.split(","), args.device, args.validation)
    if args.part == "transplant":
        run_transplant(args.models.split(","), tuple(d for d in args.other_devices.split(",") if d))
    if args.part in ("imagenet", "all"):
        run_imagenet(["resnet18", "mobilenet_v2", "mobilenet_v3_large"], ["u250", "zcu102"],
                     images=2 if quick else 8, weight_fraction=0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
