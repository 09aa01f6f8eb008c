"""MetaML must-show: optimised vs unoptimised hls4ml designs of an MLP and a small CNN trained here.

Baseline: the trained float model converted with every type ap_fixed<16,6> (hls4ml's default), reuse
factor 1, Latency strategy. Optimised: the flow below (scale -> prune -> quantisation-aware fine-tuning of
low-bit weights -> HLS-level per-layer types), same reuse factor and strategy. Accuracy of both designs is
measured by hls4ml bit-accurate C simulation on the same test images (the first ``csim_samples``, stated in
the JSON); DSP/LUT/FF/BRAM18 come from accelflow's resource estimator (no Vivado here). Writes
benchmarks/results/metaml.json (``--quick``: metaml_quick.json, jet_dnn only, shortened training, no scaling).

    .venv/bin/python benchmarks/bench_metaml.py [--quick] [--only fmnist_mlp]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from accelflow.compress import (
    PruneConfig,
    PruneScope,
    QATConfig,
    ScaleConfig,
    auto_prune,
    auto_scale,
    layer_widths,
    quantize_aware_train,
    weight_sparsity,
    weight_types_for_bits,
)
from accelflow.data import ArraySplit, Splits, load
from accelflow.frontends import from_pytorch
from accelflow.hls import (
    FixedPoint,
    HlsConfig,
    IOType,
    PrecisionConfig,
    auto_precision,
    convert,
    csim_accuracy,
    estimate_resources,
    uniform_precision,
)
from accelflow.ir import COMPUTE_OPS
from accelflow.train import TrainRecipe, cached_model, evaluate

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "results" / "metaml.json"
BUILD = ROOT / ".build" / "hls"
log = logging.getLogger("bench_metaml")


@dataclass(frozen=True)
class Case:
    model: str
    dataset: str
    input_shape: tuple[int, ...]
    io_type: IOType
    train: TrainRecipe
    finetune: TrainRecipe
    retrain: TrainRecipe | None  # None: no scaling step
    data_kwargs: dict[str, Any] = field(default_factory=dict)
    csim_samples: int | None = None
    eval_samples: int = 2000
    prune_points: float = 1.0
    scale_relative: float = 0.01
    quant_relative: float = 0.005
    prune_scope: PruneScope = PruneScope.GLOBAL
    prune_start: float = 0.5
    prune_steps: int = 1
    # weight bits of quantisation-aware fine-tuning after pruning, one for all layers or per layer (None: no QAT)
    qat_bits: int | dict[str, int] | None = None
    qat: TrainRecipe | None = None
    flat_input: bool = False  # MLP on images: run the flow on flattened inputs (see _flatten_inputs)


CASES = {
    # MLP on real data with a 10,000-image test set (1 point = 100 images)
    "fmnist_mlp": Case(
        "fmnist_mlp",
        "fashion_mnist",
        (1, 28, 28),
        IOType.PARALLEL,
        train=TrainRecipe(epochs=20, batch_size=128, lr=1e-3),
        finetune=TrainRecipe(epochs=10, batch_size=128, lr=1e-3),
        retrain=None,
        eval_samples=6000,
        prune_points=0.5,
        prune_start=0.875,
        prune_steps=3,
        quant_relative=0.003,
        qat_bits=4,
        qat=TrainRecipe(epochs=8, batch_size=128, lr=5e-4),
        flat_input=True,
    ),
    "jet_dnn": Case(
        "jet_dnn",
        "synthetic_jets",
        (16,),
        IOType.PARALLEL,
        train=TrainRecipe(epochs=15, batch_size=256, lr=3e-3),
        finetune=TrainRecipe(epochs=12, batch_size=256, lr=1e-3),
        retrain=TrainRecipe(epochs=12, batch_size=256, lr=2e-3),
        data_kwargs={"val_fraction": 0.25},  # 7,200 validation samples steer the tolerances
        prune_points=0.75,
        scale_relative=0.01,
        quant_relative=0.005,
    ),
    # digits is tiny (359 test images, 1 point = 3.6 images): noisy accuracy drops
    "digits_mlp": Case(
        "digits_mlp",
        "digits",
        (64,),
        IOType.PARALLEL,
        train=TrainRecipe(epochs=30, batch_size=64, lr=3e-3),
        finetune=TrainRecipe(epochs=15, batch_size=64, lr=1e-3),
        retrain=TrainRecipe(epochs=15, batch_size=64, lr=3e-3),
        data_kwargs={"val_fraction": 0.25},
    ),
    "lenet5": Case(
        "lenet5",
        "fashion_mnist",
        (1, 28, 28),
        IOType.STREAM,
        train=TrainRecipe(epochs=12, batch_size=128, lr=2e-3),  # full 54,000 training images
        finetune=TrainRecipe(epochs=4, batch_size=128, lr=1e-3),
        retrain=None,
        eval_samples=6000,  # all validation images: fewer lucky passes in the greedy search
        prune_points=0.3,
        prune_start=0.875,
        prune_steps=3,
        quant_relative=0.002,
        # the big dense layers at 4 bits; the few conv and output weights get more (cheap in LUTs)
        qat_bits={
            "features.conv1": 8,
            "features.conv2": 6,
            "classifier.fc1": 4,
            "classifier.fc2": 4,
            "classifier.fc3": 6,
        },
        qat=TrainRecipe(epochs=8, batch_size=128, lr=1e-3),
    ),
}


def _flatten_inputs(model: nn.Module, splits: Splits) -> tuple[nn.Module, Splits, tuple[int, ...]]:
    """The MLP without its leading ``flatten`` module, and the splits with flattened images.

    Numerically the same network, but hls4ml's PyTorch converter treats a model that starts with a flatten
    as if the image were stored transposed (H and W swapped; measured: C-sim of the flatten model equals the
    emulator on transposed images), so the HLS flow is run on flat inputs instead.
    """
    flat = copy.deepcopy(model)
    flat.layers = nn.Sequential(
        OrderedDict((k, v) for k, v in flat.layers.named_children() if k != "flatten")
    )

    def _f(split: ArraySplit) -> ArraySplit:
        return ArraySplit(split.x.reshape(len(split.x), -1), split.y)

    flat_splits = replace(splits, train=_f(splits.train), val=_f(splits.val), test=_f(splits.test))
    return flat.eval(), flat_splits, (int(flat_splits.train.x.shape[1]),)


def _design(estimate: Any, accuracy: float) -> dict[str, float | int]:
    t = estimate.total
    return {
        "accuracy": accuracy,
        "dsp": t.dsp,
        "lut": t.lut,
        "ff": t.ff,
        "bram18": t.bram18,
        "latency_cycles": t.latency_cycles,
    }


def run_case(case: Case, quick: bool) -> dict[str, Any]:
    t_start = time.perf_counter()
    train_recipe = (
        TrainRecipe(**{**case.train.to_dict(), "epochs": max(1, case.train.epochs // 3)})
        if quick
        else case.train
    )
    model, info = cached_model(
        case.model, case.dataset, recipe=train_recipe, data_kwargs=case.data_kwargs or None
    )
    splits = load(case.dataset, **case.data_kwargs)
    input_shape = case.input_shape
    if case.flat_input:
        model, splits, input_shape = _flatten_inputs(model, splits)
    test = splits.test
    # ---- baseline: ap_fixed<16,6> everywhere, reuse factor 1 ------------------------------------------
    graph = from_pytorch(model, input_shape)
    names = [n.name for n in graph]
    compute = {n.name for n in graph if n.op in COMPUTE_OPS}
    base_prec = uniform_precision(names, compute, FixedPoint(16, 6))
    base_proj = convert(model, input_shape, HlsConfig(io_type=case.io_type, precision=base_prec), BUILD)
    base_acc = csim_accuracy(base_proj, test, limit=case.csim_samples)
    base_est = estimate_resources(graph, base_prec, io_type=case.io_type)
    log.info("%s baseline: C-sim accuracy %.4f, %s", case.model, base_acc, base_est.as_dict())
    flow: list[str] = []
    stages: dict[str, Any] = {"float_test_accuracy": evaluate(model, test)}
    # ---- S: auto-scaling ------------------------------------------------------------------------------
    current = model
    if case.retrain is not None and not quick:
        sres = auto_scale(
            current, splits, ScaleConfig(tolerance_relative=case.scale_relative, retrain=case.retrain)
        )
        current = sres.model
        flow.append(f"S(stepwise 1-i/8, tol {case.scale_relative:.1%} rel, factor {sres.factor:.3f})")
        stages["scale"] = {
            "factor": sres.factor,
            "widths": list(sres.widths),
            "val_accuracy": sres.accuracy,
            "trials": [[t.factor, t.accuracy, t.accepted] for t in sres.trials],
        }
    # ---- P: auto-pruning ------------------------------------------------------------------------------
    pres = auto_prune(
        current,
        splits,
        PruneConfig(
            tolerance_points=case.prune_points,
            finetune=case.finetune,
            min_step=0.05 if quick else 0.02,
            scope=case.prune_scope,
            start_rate=case.prune_start,
            steps=case.prune_steps,
        ),
    )
    current = pres.model
    gradual = f", {case.prune_steps} gradual steps" if case.prune_steps > 1 else ""
    flow.append(
        f"P({case.prune_scope.value} magnitude, bisection{gradual}, tol {case.prune_points} pt, "
        f"{case.finetune.epochs} ep fine-tune, rate {pres.rate:.3f})"
    )
    stages["prune"] = {
        "rate": pres.rate,
        "sparsity": weight_sparsity(current),
        "val_accuracy": pres.accuracy,
        "reference_val_accuracy": pres.reference_accuracy,
        "trials": [[t.rate, t.accuracy, t.accepted] for t in pres.trials],
    }
    # ---- QAT: low-bit weights (per-layer integer bits from the largest |w|), zeros kept --------------
    if case.qat_bits is not None and case.qat is not None:
        wtypes = weight_types_for_bits(current, case.qat_bits)
        qat = quantize_aware_train(
            current, splits, QATConfig(weight=wtypes, activation=None, finetune=case.qat)
        )
        current = qat.model
        bits = (
            f"{case.qat_bits}-bit"
            if isinstance(case.qat_bits, int)
            else "/".join(str(b) for b in case.qat_bits.values()) + "-bit per-layer"
        )
        flow.append(f"QAT({bits} weights, {case.qat.epochs} ep)")
        stages["qat"] = {
            "weight_types": {k: str(v) for k, v in wtypes.items()},
            "val_accuracy": qat.accuracy,
            "reference_val_accuracy": qat.reference_accuracy,
            "sparsity": weight_sparsity(current),
        }
    # ---- Q: HLS-level precision search (emulator inner loop, hls4ml C-sim confirmation) ---------------
    qcfg = PrecisionConfig(
        tolerance_relative=case.quant_relative,
        io_type=case.io_type,
        outdir=BUILD,
        eval_samples=case.eval_samples,
        csim_samples=case.csim_samples,
    )
    qres = auto_precision(current, input_shape, splits, qcfg)
    flow.append(f"Q(HLS per-layer ap_fixed, tol {case.quant_relative:.1%} rel)")
    assert qres.csim_test_accuracy is not None
    opt_est = estimate_resources(from_pytorch(current, input_shape), qres.precisions, io_type=case.io_type)
    stages["optimised_layers"] = {
        layer.name: {
            "dsp": layer.dsp,
            "lut": layer.lut,
            "products": layer.products,
            "zeros": layer.zero_weights,
        }
        for layer in opt_est.layers
    }
    stages["quantise"] = {
        "types": {k: {kk: str(vv) for kk, vv in v.items()} for k, v in qres.precisions.items()},
        "emulated_val_accuracy": qres.emulated_accuracy,
        "csim_val_accuracy": qres.csim_accuracy,
        "emulator_agrees_with_csim": qres.emulated_accuracy == qres.csim_accuracy,
        "trials": len(qres.trials),
    }
    log.info("%s optimised: C-sim accuracy %.4f, %s", case.model, qres.csim_test_accuracy, opt_est.as_dict())
    baseline = _design(base_est, base_acc)
    optimised = _design(opt_est, qres.csim_test_accuracy)
    return {
        "model": case.model,
        "dataset": case.dataset + (" (SYNTHETIC)" if splits.info.synthetic else ""),
        "baseline": baseline,
        "optimised": optimised,
        "dsp_reduction": 1 - optimised["dsp"] / baseline["dsp"],
        "lut_reduction": 1 - optimised["lut"] / baseline["lut"],
        "accuracy_drop": (baseline["accuracy"] - optimised["accuracy"]) * 100,
        "flow": " -> ".join(flow),
        "io_type": case.io_type.value,
        "reuse_factor": 1,
        "strategy": "Latency",
        "csim_test_samples": case.csim_samples or len(test),
        "train_samples": len(splits.train),
        "widths": list(layer_widths(current)),
        "stages": stages,
        "quick": quick,
        "seconds": time.perf_counter() - t_start,
        "resource_source": "accelflow.hls.estimate_resources (model, not Vivado)",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short training, no scaling, jet_dnn only")
    ap.add_argument("--only", choices=sorted(CASES), action="append")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("accelflow.train").setLevel(logging.WARNING)
    torch.set_num_threads(1)  # small models; a shared 2-core machine
    names = args.only or (["jet_dnn"] if args.quick else ["fmnist_mlp", "lenet5", "jet_dnn", "digits_mlp"])
    out = OUT.with_name("metaml_quick.json") if args.quick else OUT  # never overwrite full results
    results = json.loads(out.read_text()) if out.exists() and args.only else []
    for name in names:
        row = run_case(CASES[name], args.quick)
        results = [r for r in results if r["model"] != name] + [row]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
        log.info(
            "%s: DSP -%.1f%%, LUT -%.1f%%, accuracy drop %.2f points",
            name,
            100 * row["dsp_reduction"],
            100 * row["lut_reduction"],
            row["accuracy_drop"],
        )


if __name__ == "__main__":
    main()
