"""`accelflow hass MODEL`: hardware-aware sparsity search of a trained model (a zoo model, or the user's own
PyTorch model file with its weights) on a dataflow FPGA device."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from accelflow.cli._trained import add_train_arguments
from accelflow.dataflow import LockStep
from accelflow.errors import ConfigError

if TYPE_CHECKING:
    from accelflow.hass import Problem

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "hass", help="search per-layer sparsity thresholds for a dataflow accelerator (HASS)",
        description="MODEL is zoo:NAME (or NAME) of a zoo model with a data set, whose trained weights come from "
                    "the training cache (trained on first use); your own PyTorch model file model.py[:NAME] "
                    "(NAME an nn.Module or a function returning one; default model, build_model or MODEL) with "
                    "its trained weights (--weights, or --train to train it here once); or an ONNX file with its weights (run in PyTorch through "
                    "the IR, BatchNorm folded into the convs). Your own models need the data set they were "
                    "trained on (--data).")
    p.add_argument("model", help="zoo:NAME (e.g. zoo:resnet8), model.py[:NAME] or model.onnx")
    p.add_argument("--weights", default=None, metavar="FILE.pt",
                   help="state dict of a model file's trained weights (torch.save(model.state_dict(), FILE)); "
                        "without it the file's module is searched as it comes (it may load its own weights)")
    add_train_arguments(p)
    p.add_argument("--device", default="u250", help="FPGA device (see `accelflow dataflow --help`)")
    p.add_argument("--max-accuracy-drop", type=float, default=1.0, help="accuracy-drop bound in points")
    p.add_argument("--trials", type=int, default=40, help="completed trials the study should hold")
    p.add_argument("--refine-trials", type=int, default=0,
                   help="after the TPE trials, N trials of the hardware-aware greedy refinement (bottleneck layers first)")
    p.add_argument("--workers", type=int, default=1, help="evaluate trials in N local worker processes")
    p.add_argument("--scheduler", help="Dask scheduler ADDRESS (or 'local') to evaluate trials on a cluster")
    p.add_argument("--data", default=None,
                   help="image data set, e.g. fashion_mnist, mnist5k, digits_image (default for a zoo model: its "
                        "own; required for a model file)")
    p.add_argument("--storage", default=None, help="Optuna storage URL (default sqlite:///accelflow_hass.db)")
    p.add_argument("--study-name", default=None, help="study name (default derived from model/device/bound)")
    p.add_argument("--objective", choices=["throughput", "throughput_per_dsp"], default="throughput")
    p.add_argument("--sampler", choices=["tpe", "gp", "nsga2", "random"], default="tpe",
                   help="Optuna sampler: TPE (default), Gaussian-process BO with the bound as a modelled "
                        "constraint, NSGA-II (accuracy/throughput Pareto front), random")
    p.add_argument("--batch", type=int, default=256, help="accelerator batch size")
    p.add_argument("--lockstep", choices=[m.value for m in LockStep], default="mean",
                   help="sparse layers' lock-step cost: REFERENCE mean (default, fast, optimistic for sparse "
                        "layers), our expected maximum, or 'sampled' (within 2%% of a cycle-level simulation; "
                        "each trial's folding takes seconds)")
    p.add_argument("--validation-size", type=int, default=None,
                   help="validation images used for accuracy (default 1000, or 70%% of a smaller validation split)")
    p.add_argument("--calibration-size", type=int, default=100, help="training images used for sparsity")
    p.add_argument("--holdout-size", type=int, default=None,
                   help="further validation images the chosen design must also meet the bound on (0: none; "
                        "default 1000, or the rest of a smaller validation split)")
    p.add_argument("--finetune-steps", type=int, default=0,
                   help="fine-tune for N Adam steps (masks and thresholded ReLUs kept): the chosen design, or "
                        "with --finetune-slack the designs found within the widened bound; tuned weights are "
                        "kept in the weights cache, so a repeated or interrupted run reloads them")
    p.add_argument("--finetune-slack", type=float, default=0.0, metavar="POINTS",
                   help="search within --max-accuracy-drop + POINTS, then fine-tune the best designs back within "
                        "--max-accuracy-drop (needs --finetune-steps; at most --finetune-tries fine-tunings)")
    p.add_argument("--warm-start", default=None, metavar="STUDY",
                   help="start a new study from the 3 best designs of STUDY in the same storage (e.g. a 1-point "
                        "study before a --finetune-slack search of the same network)")
    p.add_argument("--finetune-tries", type=int, default=4, help="fine-tunings spent by --finetune-slack")
    p.add_argument("--finetune-lr", type=float, default=2e-4, help="Adam learning rate of the fine-tuning")
    p.add_argument("--finetune-distill", type=float, default=0.0, metavar="ALPHA",
                   help="weight in [0, 1] of distillation from the dense model in the fine-tuning loss "
                        "(0: labels only)")
    p.add_argument("--finetune-ramp", type=float, default=0.0, metavar="FRACTION",
                   help="prune gradually: thresholds rise from 0 over this fraction of the fine-tuning steps "
                        "(0: at once)")
    p.add_argument("--export", default=None, metavar="FILE.onnx",
                   help="write the chosen design (thresholds applied, fine-tuned weights if any) to ONNX with "
                        "channel_sparsity_hist on every Conv, for `accelflow dataflow --sparsity-from`")
    p.add_argument("--baselines", default=None, metavar="LIST",
                   help="also run these sparse baselines within the same bound and report HASS against them: "
                        "uniform (one global threshold pair, hardware-blind), slowest_layer, or all; they are "
                        "kept in the study and start a new study's search")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from accelflow.hass import (
        BASELINES,
        DEFAULT_STORAGE,
        FineTune,
        HassError,
        Objective,
        SamplerKind,
        SearchSettings,
        finetune_cache_dir,
        run_search,
        warm_start_points,
    )

    if args.trials < 1 or args.max_accuracy_drop < 0 or args.refine_trials < 0:
        raise ConfigError("--trials must be >= 1, --refine-trials >= 0 and --max-accuracy-drop >= 0")
    if args.finetune_steps < 0 or args.finetune_slack < 0 or args.finetune_tries < 1:
        raise ConfigError("--finetune-steps must be >= 0, --finetune-slack >= 0 points and --finetune-tries >= 1")
    try:
        FineTune.check_settings(lr=args.finetune_lr, distill=args.finetune_distill, ramp=args.finetune_ramp)
    except HassError as exc:
        raise ConfigError(f"--finetune-lr {args.finetune_lr} / --finetune-distill {args.finetune_distill} / "
                          f"--finetune-ramp {args.finetune_ramp}: {exc}") from None
    if args.finetune_slack > 0 and args.finetune_steps <= 0:
        raise ConfigError("--finetune-slack needs --finetune-steps N > 0: the slack is won back by fine-tuning")
    if args.export is not None and not args.export.endswith(".onnx"):
        raise ConfigError(f"--export {args.export!r}: the file name must end in .onnx")
    methods = _baseline_methods(args.baselines, BASELINES)
    problem = _problem(args)
    settings = SearchSettings(max_accuracy_drop=args.max_accuracy_drop, trials=args.trials,
                              refine_trials=args.refine_trials,
                              objective=Objective(args.objective), sampler=SamplerKind(args.sampler), seed=args.seed,
                              storage=args.storage or DEFAULT_STORAGE, study_name=args.study_name,
                              finetune_slack=args.finetune_slack, finetune_tries=args.finetune_tries)
    finetune = FineTune(problem.splits.train, steps=args.finetune_steps, lr=args.finetune_lr,
                        progress=not args.json, distill=args.finetune_distill, ramp=args.finetune_ramp,
                        cache_dir=finetune_cache_dir()) if args.finetune_steps > 0 else None
    initial = [] if args.warm_start is None else \
        warm_start_points(settings.storage, args.warm_start, problem.evaluator.space)
    from accelflow.search import make_executor

    executor = make_executor(args.workers, args.scheduler)
    try:
        result = run_search(problem.evaluator, settings, initial, progress=not args.json, finetune=finetune,
                            holdout=problem.holdout, executor=executor, baselines=methods)
    finally:
        executor.close()
    if args.export is not None:
        _export(result, problem, args.export)
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    _table(result)
    return 0


def _problem(args: argparse.Namespace) -> Problem:
    """The search problem of MODEL: a zoo model from the training cache, a model file with its weights, or an
    ONNX file."""
    from accelflow.cli._trained import train_recipe, trained_model
    from accelflow.hass import problem

    t = trained_model(args.model, args.weights, args.data, progress=not args.json, train=train_recipe(args))
    return problem(t.module, t.dataset, args.device, name=t.name, validation_size=args.validation_size,
                   calibration_size=args.calibration_size, batch=args.batch, seed=args.seed,
                   holdout_size=args.holdout_size, lockstep=args.lockstep, test_accuracy=t.test_accuracy)


def _baseline_methods(text: str | None, known: tuple[str, ...]) -> list[str]:
    """``--baselines``: a comma-separated subset of ``known``, or ``all``."""
    if text is None:
        return []
    methods = list(known) if text.strip() == "all" else [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in methods if m not in known]
    if bad or not methods:
        raise ConfigError(f"--baselines {text!r}: expected a comma-separated list of {', '.join(known)}, or all")
    return methods


def _export(result: object, problem: Problem, path: str) -> None:
    """The chosen design as ONNX with its measured ``channel_sparsity_hist`` (and window samples under the
    sampled lock-step model, beside it), so `accelflow dataflow --sparsity-from` rebuilds the same design."""
    from accelflow.hass import HassResult
    from accelflow.sparsity import export_sparsity_onnx

    assert isinstance(result, HassResult)
    ev = problem.evaluator
    model = result.design_model(ev.model)
    export_sparsity_onnx(model, ev.input_shape, ev.measure(model), path)


def _table(result: object) -> None:
    from rich.console import Console

    from accelflow.cli._table import Column, print_table
    from accelflow.hass import HassResult

    assert isinstance(result, HassResult)
    columns = [Column("layer"), *(Column(c, True) for c in ("folding (ci,co,cg,f)", "cycles/img", "DSP", "sparse",
                                                           "zeros", "w thr", "a thr"))]
    rows = [[layer.name, f"{layer.folding['coarse_in']},{layer.folding['coarse_out']},"
             f"{layer.folding['coarse_group']},{layer.folding['fine']}", f"{layer.cycles_per_image:,.0f}",
             f"{layer.resources.get('dsp', 0):,.0f}", "yes" if layer.sparse else "no", f"{layer.sparsity:.2f}",
             "" if layer.weight_threshold is None else f"{layer.weight_threshold:.3g}",
             "" if layer.activation_threshold is None else f"{layer.activation_threshold:.3g}"]
            for layer in result.layers if layer.op == "conv"]  # fmt: skip
    print_table(f"HASS {result.network} on {result.device} ({result.objective.value})", columns, rows)
    console = Console()
    console.print(f"throughput {result.throughput_images_per_s:,.0f} img/s (dense {result.dense_throughput_images_per_s:,.0f},"
                  f" x{result.speedup_over_dense:.2f}); DSP {result.dsp} LUT {result.lut:,.0f} FF {result.ff:,.0f} "
                  f"BRAM18 {result.bram18:,.0f}; accuracy {100 * result.accuracy:.2f}% "
                  f"(drop {result.accuracy_drop:.2f} points, bound {result.max_accuracy_drop})")
    estimates = result.extra.get("accuracy_drop_estimates", {})
    if estimates:
        where = {"validation": "validation images (where it was chosen: biased low)", "holdout": "hold-out images"}
        console.print("drop with its 95% interval: " + "; ".join(
            f"{e['points']:.2f} points ({e['ci95'][0]:.2f} to {e['ci95'][1]:.2f}) on {e['images']:,} {where[k]}"
            for k, e in estimates.items()))
    baselines = result.extra.get("baselines", {})
    if baselines and result.finetuned:
        console.print("the baselines below are not fine-tuned (bench_hass.py --part finetune tunes both alike)")
    for b in baselines.values():
        console.print(f"{b['method']} baseline: {b['throughput_images_per_s']:,.0f} img/s (x{b['speedup_over_dense']:.2f} "
                      f"dense), DSP {b['dsp']}, drop {b['accuracy_drop']:.2f} points, {100 * b['zero_products']:.0f}% "
                      f"zero products; HASS is {b['hass_ratio']:.2f}x ({result.objective.value})")
    tried = result.extra.get("recover_tried")
    if result.finetuned:
        how = "" if tried is None else (f": candidate {result.extra['recover_rank'] + 1} of "
                                        f"{result.extra['recover_candidates']}, {len(tried)} fine-tuned")
        console.print(f"fine-tuned weights{how} (--export writes them)")
    elif tried:
        console.print(f"fine-tuning: none of the {len(tried)} candidates tried beat the best untuned design "
                      f"within {result.max_accuracy_drop} points, which is kept")
    elif tried is not None:
        console.print("fine-tuning: no design found within the widened bound is faster than the best untuned "
                      f"one within {result.max_accuracy_drop} points; nothing to fine-tune")
